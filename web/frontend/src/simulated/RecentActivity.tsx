import { Empty, Tag, Timeline, Typography } from "antd";
import { useEffect } from "react";
import { Link } from "react-router";
import type { BacktestRunSummary, Paginated, SimulatedOrder } from "../api/types";
import { useApi } from "../api/useApi";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatMoney, formatPercent, formatTime, statisticValue } from "../lib/format";

interface Item {
  time: string;
  key: string;
  node: React.ReactNode;
  color: string;
}

/** The latest simulated orders and backtest runs, merged newest first. */
export function RecentActivity({ version, count = 6 }: { version: number; count?: number }) {
  const orders = useApi<Paginated<SimulatedOrder>>(`/api/simulated-orders/?page_size=${count}`);
  const runs = useApi<Paginated<BacktestRunSummary>>(`/api/backtests/?page_size=${count}`);
  const reloadOrders = orders.reload;
  useEffect(() => {
    if (version) reloadOrders();
  }, [version, reloadOrders]);
  const items: Item[] = [
    ...(orders.data?.results ?? []).map((o) => ({
      time: o.created,
      key: `o${o.id}`,
      color: o.side === "BUY" ? "green" : "red",
      node: <><Tag color={o.side === "BUY" ? "green" : "red"}>{o.side}</Tag>{o.quantity} {o.symbol} @ {formatMoney(o.price)}</>,
    })),
    ...(runs.data?.results ?? []).map((r) => ({
      time: r.created,
      key: `r${r.id}`,
      color: "blue",
      node: (
        <>
          <Tag color="blue">backtest</Tag>
          <Link to={`/?run=${r.id}`}>#{r.id} {r.strategy} {r.timeframe} {r.symbols.join(", ")}</Link>{" "}
          {formatPercent(statisticValue(r.summary.return_pct))}
        </>
      ),
    })),
  ]
    .sort((a, b) => Date.parse(b.time) - Date.parse(a.time))
    .slice(0, count);
  const error = orders.error ?? runs.error;
  if (error) return <ErrorAlert error={error} compact />;
  if (!items.length) return <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={orders.loading || runs.loading ? "Loading…" : "Nothing yet"} />;
  return (
    <Timeline
      data-testid="recent-activity"
      items={items.map((item) => ({
        key: item.key,
        color: item.color,
        content: <>{item.node} <Typography.Text type="secondary" style={{ fontSize: 12 }}>{formatTime(item.time)}</Typography.Text></>,
      }))}
    />
  );
}
