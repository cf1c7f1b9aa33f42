import { Button, Table, Tag } from "antd";
import type { ColumnsType } from "antd/es/table";
import { useEffect, useState } from "react";
import { withQuery } from "../api/client";
import type { BacktestRunSummary, Paginated } from "../api/types";
import { useApi } from "../api/useApi";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatPercent, formatTime, statisticValue } from "../lib/format";

/** Stored runs, newest first (GET /api/backtests/); a click re-opens one. */
export function PastRuns({ version, selected, onOpen }: { version: number; selected: number | null; onOpen: (id: number) => void }) {
  const [page, setPage] = useState(1);
  const [pageSize, setPageSize] = useState(8);
  const runs = useApi<Paginated<BacktestRunSummary>>(withQuery("/api/backtests/", { page, page_size: pageSize }));
  const { reload } = runs;
  useEffect(() => {
    if (version) reload();
  }, [version, reload]);
  const columns: ColumnsType<BacktestRunSummary> = [
    { title: "#", dataIndex: "id", width: 48 },
    { title: "When", dataIndex: "created", render: formatTime, responsive: ["sm"] },
    { title: "Run", key: "what", render: (_, r) => <><b>{r.strategy}</b> {r.timeframe} · {r.symbols.join(", ")}</> },
    {
      title: "Return", key: "return", align: "right",
      render: (_, r) => {
        const value = statisticValue(r.summary.return_pct);
        return <span className={value !== null && value >= 0 ? "gain" : "loss"}>{formatPercent(value)}</span>;
      },
    },
    { title: "", key: "open", width: 70, render: (_, r) => (r.id === selected ? <Tag color="blue">open</Tag> : <Button size="small" onClick={() => onOpen(r.id)}>Open</Button>) },
  ];
  return (
    <>
      <ErrorAlert error={runs.error} onRetry={runs.reload} />
      <Table<BacktestRunSummary>
        data-testid="past-runs"
        size="small"
        rowKey="id"
        loading={runs.loading}
        columns={columns}
        dataSource={runs.data?.results ?? []}
        onRow={(r) => ({ onClick: () => onOpen(r.id), style: { cursor: "pointer" } })}
        rowClassName={(r) => (r.id === selected ? "row-selected" : "")}
        locale={{ emptyText: runs.error ? "Could not load the runs" : "No backtests yet: run one above" }}
        pagination={{
          current: page, pageSize, total: runs.data?.count ?? 0, size: "small", showSizeChanger: false,
          onChange: (p, s) => { setPage(p); setPageSize(s); },
          hideOnSinglePage: true,
        }}
      />
    </>
  );
}
