import { Table, Tooltip, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useEffect } from "react";
import type { OrderSummary, PositionSummary } from "../api/types";
import { useApi } from "../api/useApi";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatMoney, formatNumber } from "../lib/format";

const pnl = (v: number | null) => (v === null ? "—" : <span className={v >= 0 ? "gain" : "loss"}>{formatMoney(v)}</span>);

export const POSITION_COLUMNS: ColumnsType<PositionSummary> = [
  { title: "Symbol", dataIndex: "symbol" },
  { title: "Position", dataIndex: "position", align: "right", render: (v: number) => formatNumber(v, v % 1 ? 4 : 0) },
  { title: "Avg. cost", dataIndex: "average_cost", align: "right", render: (v: number | null) => formatMoney(v) },
  {
    title: "Price", key: "price", align: "right",
    render: (_, p) => (p.price ? <Tooltip title={p.price.detail}>{formatMoney(p.price.value)}</Tooltip> : <Tooltip title={p.note}>—</Tooltip>),
  },
  { title: "Realized P&L", dataIndex: "realized_pnl", align: "right", render: pnl },
  { title: "Unrealized P&L", dataIndex: "unrealized_pnl", align: "right", render: pnl },
  { title: "Comm.", dataIndex: "commission", align: "right", responsive: ["md"], render: (v: number) => formatMoney(v) },
  { title: "Fills", dataIndex: "fills", align: "right", responsive: ["md"] },
];

/** Per-symbol simulated positions (GET /api/simulated-orders/summary/). */
export function PositionsSummary({ version }: { version: number }) {
  const summary = useApi<OrderSummary>("/api/simulated-orders/summary/");
  const { reload } = summary;
  useEffect(() => {
    if (version) reload();
  }, [version, reload]);
  const totals = summary.data?.totals;
  return (
    <>
      <ErrorAlert error={summary.error} onRetry={summary.reload} />
      <Table<PositionSummary>
        data-testid="positions-summary"
        size="small"
        rowKey="symbol"
        loading={summary.loading && !summary.data}
        columns={POSITION_COLUMNS}
        dataSource={summary.data?.positions ?? []}
        pagination={false}
        scroll={{ x: 560 }}
        locale={{ emptyText: "No simulated positions yet" }}
        summary={() =>
          totals && summary.data!.positions.length > 0 ? (
            <Table.Summary.Row>
              <Table.Summary.Cell index={0} colSpan={4}><b>Total</b></Table.Summary.Cell>
              <Table.Summary.Cell index={4} align="right">{pnl(totals.realized_pnl)}</Table.Summary.Cell>
              <Table.Summary.Cell index={5} align="right">{pnl(totals.unrealized_pnl)}</Table.Summary.Cell>
              <Table.Summary.Cell index={6} align="right">{formatMoney(totals.commission)}</Table.Summary.Cell>
              <Table.Summary.Cell index={7} align="right">{totals.fills}</Table.Summary.Cell>
            </Table.Summary.Row>
          ) : null
        }
      />
      {summary.data && <Typography.Paragraph type="secondary" style={{ marginTop: 8, fontSize: 12 }}>{summary.data.accounting}</Typography.Paragraph>}
    </>
  );
}
