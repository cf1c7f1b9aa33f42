import { Card, Col, Descriptions, Empty, List, Row, Statistic, Table, Tabs, Tag, Typography } from "antd";
import type { ColumnsType } from "antd/es/table";
import type { BacktestRun, MonthlyEquity, SymbolMetrics } from "../api/types";
import { BacktestChart } from "../chart/BacktestChart";
import {
  STATISTIC_LABELS,
  formatMoney,
  formatNumber,
  formatPercent,
  formatStatistic,
  formatTime,
  statisticValue,
} from "../lib/format";
import { TradesTable } from "./TradesTable";

/** The headline numbers shown as cards, in this order. */
export const HEADLINE = ["net_profit", "return_pct", "buy_hold_return_pct", "sharpe", "max_drawdown_pct", "win_rate_pct", "trades", "equity_final"];

function tone(name: string, value: number | null): string | undefined {
  if (value === null || !["net_profit", "return_pct"].includes(name)) return undefined;
  return value >= 0 ? "#389e0d" : "#cf1322";
}

export function SummaryCards({ summary }: { summary: BacktestRun["summary"] }) {
  return (
    <Row gutter={[12, 12]} data-testid="summary-stats">
      {HEADLINE.map((name) => (
        <Col key={name} xs={12} sm={6}>
          <Card size="small" styles={{ body: { padding: "8px 12px" } }}>
            <Statistic
              title={STATISTIC_LABELS[name] ?? name}
              value={formatStatistic(name, summary[name])}
              styles={{ content: { fontSize: 18, color: tone(name, statisticValue(summary[name])) } }}
            />
          </Card>
        </Col>
      ))}
    </Row>
  );
}

/** The per-symbol table's columns with short titles (the full label is the tooltip). */
const METRIC_COLUMNS: [string, string][] = [
  ["bars", "Bars"], ["net_profit", "Net profit"], ["return_pct", "Return"], ["buy_hold_return_pct", "Buy & hold"],
  ["sharpe", "Sharpe"], ["max_drawdown_pct", "Max. DD"], ["trades", "Trades"], ["win_rate_pct", "Win rate"],
  ["profit_factor", "Profit factor"], ["commissions", "Commissions"],
];

export function SymbolMetricsTable({ rows }: { rows: SymbolMetrics[] }) {
  const columns: ColumnsType<SymbolMetrics> = [
    { title: "Symbol", dataIndex: "symbol", fixed: "left", render: (s: string, row) => (row.warning ? <span title={row.warning}>{s} ⚠</span> : s) },
    ...METRIC_COLUMNS.map(([name, title]) => ({
      title: <span title={STATISTIC_LABELS[name] ?? "Bars in the traded window"}>{title}</span>,
      className: "nowrap",
      dataIndex: name,
      align: "right" as const,
      sorter: (a: SymbolMetrics, b: SymbolMetrics) => (statisticValue(a[name]) ?? -Infinity) - (statisticValue(b[name]) ?? -Infinity),
      render: (value: SymbolMetrics[string]) => (name === "bars" ? String(value) : formatStatistic(name, value)),
    })),
  ];
  return <Table<SymbolMetrics> data-testid="symbol-metrics" size="small" rowKey="symbol" columns={columns} dataSource={rows} pagination={false} scroll={{ x: 900 }} />;
}

export function MonthlyEquityTable({ rows }: { rows: MonthlyEquity[] }) {
  const columns: ColumnsType<MonthlyEquity> = [
    { title: "Month", dataIndex: "month" },
    { title: "Equity", dataIndex: "equity", align: "right", render: (v: number) => formatMoney(v) },
    { title: "Change", dataIndex: "month_pct", align: "right", render: (v: number) => <span className={v >= 0 ? "gain" : "loss"}>{formatPercent(v)}</span> },
    { title: "Max. drawdown", dataIndex: "max_drawdown_pct", align: "right", render: (v: number) => formatPercent(v) },
  ];
  return <Table<MonthlyEquity> data-testid="monthly-equity" size="small" rowKey="month" columns={columns} dataSource={rows} pagination={{ pageSize: 12, hideOnSinglePage: true }} />;
}

function AllStatistics({ summary }: { summary: BacktestRun["summary"] }) {
  return (
    <Descriptions size="small" bordered column={{ xs: 1, md: 2, xl: 3 }}>
      {Object.keys(STATISTIC_LABELS).filter((k) => k in summary).map((name) => (
        <Descriptions.Item key={name} label={STATISTIC_LABELS[name]}>{formatStatistic(name, summary[name])}</Descriptions.Item>
      ))}
    </Descriptions>
  );
}

function Files({ run }: { run: BacktestRun }) {
  return (
    <>
      <Typography.Title level={5}>Cache files</Typography.Title>
      <List
        data-testid="cache-files"
        size="small"
        bordered
        dataSource={run.cache_files}
        locale={{ emptyText: "No cache written (write cache was off)" }}
        renderItem={(path) => <List.Item><Typography.Text code copyable>{path}</Typography.Text></List.Item>}
      />
      <Typography.Title level={5} style={{ marginTop: 16 }}>Data files</Typography.Title>
      <Table
        size="small"
        rowKey="symbol"
        pagination={false}
        dataSource={run.data_files}
        scroll={{ x: 700 }}
        columns={[
          { title: "Symbol", dataIndex: "symbol" },
          { title: "File", dataIndex: "file", render: (f: string) => <Typography.Text code>{f}</Typography.Text> },
          { title: "Source", dataIndex: "source_timeframe" },
          { title: "Bars", dataIndex: "rows", align: "right" },
          { title: "First bar", dataIndex: "first_bar", render: formatTime },
          { title: "Last bar", dataIndex: "last_bar", render: formatTime },
          { title: "SHA-256", dataIndex: "sha256", render: (h: string) => <Typography.Text copyable={{ text: h }}>{h.slice(0, 12)}…</Typography.Text> },
        ]}
      />
    </>
  );
}

/** Everything a run produced: headline cards, per-symbol metrics, then tabs with the chart,
 * trades, monthly equity, every statistic and the files. */
export function RunResults({ run }: { run: BacktestRun }) {
  const skipped = Object.entries(run.skipped ?? {});
  const symbols = run.symbol_metrics.map((m) => m.symbol);
  return (
    <div data-testid="run-results">
      <Typography.Title level={4} style={{ marginTop: 0 }}>
        Run #{run.id}: {run.strategy} on {run.symbols.join(", ")} ({run.timeframe})
      </Typography.Title>
      <Typography.Paragraph type="secondary" style={{ marginBottom: 8 }}>
        {formatTime(run.created)} · {formatNumber(run.duration_seconds)} s ·{" "}
        {Object.entries(run.params).map(([k, v]) => <Tag key={k}>{k}={String(v)}</Tag>)}
        {formatTime(run.summary.start as string)} → {formatTime(run.summary.end as string)}
      </Typography.Paragraph>
      {skipped.length > 0 && (
        <Typography.Paragraph type="warning">Skipped: {skipped.map(([s, why]) => `${s} (${why})`).join("; ")}</Typography.Paragraph>
      )}
      <SummaryCards summary={run.summary} />
      <Card size="small" style={{ marginTop: 12 }}>
        <Tabs
          defaultActiveKey="chart"
          items={[
            {
              key: "chart",
              label: "Chart",
              children: symbols.length ? (
                <BacktestChart timeframe={run.timeframe} symbols={symbols} cacheWritten={run.cache_files.length > 0} expected={{ strategy: run.strategy, params: run.params }} />
              ) : (
                <Empty description="No symbol was run" />
              ),
            },
            { key: "trades", label: `Trades (${run.trades.length})`, children: <TradesTable trades={run.trades} /> },
            { key: "monthly", label: "Monthly equity", children: <MonthlyEquityTable rows={run.monthly_equity} /> },
            { key: "stats", label: "All statistics", children: <AllStatistics summary={run.summary} /> },
            { key: "files", label: "Files", children: <Files run={run} /> },
          ]}
        />
      </Card>
      <Card size="small" title="Per symbol" style={{ marginTop: 12 }}>
        <SymbolMetricsTable rows={run.symbol_metrics} />
      </Card>
    </div>
  );
}
