import { Table, Tag } from "antd";
import type { ColumnsType } from "antd/es/table";
import type { Trade } from "../api/types";
import { formatMoney, formatNumber, formatPercent, formatTime } from "../lib/format";

const unique = (values: string[]) => [...new Set(values)].sort().map((v) => ({ text: v, value: v }));

/** Every round trip: sortable, filterable by symbol, side and exit reason, paginated. */
export function TradesTable({ trades, pageSize = 20 }: { trades: Trade[]; pageSize?: number }) {
  const columns: ColumnsType<Trade> = [
    { title: "Symbol", dataIndex: "symbol", filters: unique(trades.map((t) => t.symbol)), onFilter: (v, t) => t.symbol === v, filterSearch: true },
    {
      title: "Side", dataIndex: "side",
      filters: [{ text: "long", value: "long" }, { text: "short", value: "short" }],
      onFilter: (v, t) => t.side === v,
      render: (side: string) => <Tag color={side === "long" ? "green" : "red"}>{side}</Tag>,
    },
    { title: "Entry", dataIndex: "entry_time", render: formatTime, className: "nowrap", sorter: (a, b) => a.entry_time.localeCompare(b.entry_time) },
    { title: "Entry price", dataIndex: "entry_price", align: "right", render: (v: number) => formatNumber(v) },
    { title: "Exit", dataIndex: "exit_time", render: formatTime, className: "nowrap", sorter: (a, b) => a.exit_time.localeCompare(b.exit_time), defaultSortOrder: "descend" },
    { title: "Exit price", dataIndex: "exit_price", align: "right", render: (v: number) => formatNumber(v) },
    { title: "Shares", dataIndex: "shares", align: "right", render: (v: number) => formatNumber(v, 0), sorter: (a, b) => a.shares - b.shares },
    {
      title: "P&L", dataIndex: "pnl", align: "right", sorter: (a, b) => a.pnl - b.pnl,
      render: (v: number) => <span className={v >= 0 ? "gain" : "loss"}>{formatMoney(v)}</span>,
    },
    { title: "Return", dataIndex: "return_pct", align: "right", render: (v: number | null) => formatPercent(v), sorter: (a, b) => (a.return_pct ?? 0) - (b.return_pct ?? 0) },
    { title: "Bars", dataIndex: "bars_held", align: "right", sorter: (a, b) => a.bars_held - b.bars_held },
    { title: "Exit reason", dataIndex: "exit_reason", filters: unique(trades.map((t) => t.exit_reason)), onFilter: (v, t) => t.exit_reason === v },
  ];
  return (
    <Table<Trade>
      data-testid="trades-table"
      size="small"
      rowKey={(t) => `${t.symbol}|${t.side}|${t.entry_time}|${t.exit_time}`}
      columns={columns}
      dataSource={trades}
      scroll={{ x: 900 }}
      pagination={{ defaultPageSize: pageSize, showSizeChanger: true, pageSizeOptions: [10, 20, 50, 100], showTotal: (n) => `${n} trades` }}
      locale={{ emptyText: "No trades in this run" }}
    />
  );
}
