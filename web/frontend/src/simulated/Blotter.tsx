import { Input, Space, Table, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useEffect, useState } from "react";
import { withQuery } from "../api/client";
import type { Paginated, SimulatedOrder } from "../api/types";
import { useApi } from "../api/useApi";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatMoney, formatNumber, formatTime } from "../lib/format";

export const BLOTTER_COLUMNS: ColumnsType<SimulatedOrder> = [
  { title: "Executed", dataIndex: "executed_at", render: formatTime, className: "nowrap" },
  { title: "Symbol", dataIndex: "symbol" },
  { title: "Side", dataIndex: "side", render: (side: string) => <Tag color={side === "BUY" ? "green" : "red"}>{side}</Tag> },
  { title: "Qty", dataIndex: "quantity", align: "right", render: (v: number) => formatNumber(v, v % 1 ? 4 : 0) },
  { title: "Price", dataIndex: "price", align: "right", render: (v: number) => formatMoney(v) },
  { title: "Value", key: "value", align: "right", responsive: ["md"], render: (_, o) => formatMoney(o.quantity * o.price) },
  { title: "Comm.", dataIndex: "commission", align: "right", responsive: ["md"], render: (v: number) => formatMoney(v) },
  { title: "Strategy", dataIndex: "strategy", responsive: ["lg"] },
  { title: "Note", dataIndex: "note", responsive: ["lg"], ellipsis: true },
];

/** The simulated orders, newest first, filtered by symbol on the server, paginated. */
export function Blotter({ version }: { version: number }) {
  const [symbol, setSymbol] = useState("");
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(10);
  const orders = useApi<Paginated<SimulatedOrder>>(withQuery("/api/simulated-orders/", { symbol, page, page_size: pageSize }));
  const { reload } = orders;
  useEffect(() => {
    if (version) reload();
  }, [version, reload]);
  const badFilter = orders.error?.status === 400;
  return (
    <>
      <Space style={{ marginBottom: 8 }} wrap>
        <Input.Search
          aria-label="Filter by symbol"
          placeholder="Filter by symbol"
          allowClear
          onSearch={(value) => { setSymbol(value.trim().toUpperCase()); setPage(1); }}
          style={{ width: 220 }}
        />
        {orders.data && <Typography.Text type="secondary">{orders.data.count} fills{symbol ? ` of ${symbol}` : ""}</Typography.Text>}
      </Space>
      {orders.error && <ErrorAlert error={orders.error} onRetry={badFilter ? undefined : orders.reload} />}
      <Table<SimulatedOrder>
        data-testid="blotter"
        size="small"
        rowKey="id"
        loading={orders.loading && !orders.data}
        columns={BLOTTER_COLUMNS}
        dataSource={orders.data?.results ?? []}
        scroll={{ x: 560 }}
        locale={{ emptyText: symbol ? `No simulated orders for ${symbol}` : "No simulated orders yet" }}
        pagination={{
          current: page, pageSize, total: orders.data?.count ?? 0, showSizeChanger: true, pageSizeOptions: [10, 25, 50],
          onChange: (p, s) => { setPage(p); setPageSize(s); }, hideOnSinglePage: false, size: "small",
        }}
      />
    </>
  );
}
