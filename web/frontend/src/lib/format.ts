// Numbers, times and statistics as the tables show them.

import type { Statistic } from "../api/types";

const EMPTY = "—";

/** A statistic as a number: "Infinity" strings become Infinity, null stays null. */
export function statisticValue(value: Statistic | undefined): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  const number = Number(value);
  return Number.isNaN(number) ? null : number;
}

export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || Number.isNaN(value)) return EMPTY;
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatMoney(value: number | null | undefined, currency = "USD"): string {
  if (value === null || value === undefined || Number.isNaN(value)) return EMPTY;
  const text = formatNumber(Math.abs(value));
  const sign = value < 0 ? "-" : "";
  return currency === "USD" ? `${sign}$${text}` : `${sign}${text} ${currency}`;
}

export function formatPercent(value: number | null | undefined, digits = 2): string {
  return value === null || value === undefined || Number.isNaN(value) ? EMPTY : `${formatNumber(value, digits)}%`;
}

/** A ratio (0.1855) as a percentage (18.55%). */
export function formatRatio(value: number | null | undefined): string {
  return value === null || value === undefined ? EMPTY : formatPercent(value * 100);
}

/** Seconds as "3d 4h 5m" (the largest two units). */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return EMPTY;
  const units: [string, number][] = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0 && parts.length < 2) {
      parts.push(`${count}${name}`);
      rest -= count * size;
    }
  }
  return parts.length ? parts.join(" ") : "0s";
}

/** An ISO time with its offset ("2026-01-02T10:55:00-05:00") as "2026-01-02 10:55": the
 * backend's times are already in New York time, so this shows them as they are. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return EMPTY;
  return iso.replace("T", " ").slice(0, 16);
}

/** The statistics' labels (quant_trading.backtesting.statistics.LABELS). */
export const STATISTIC_LABELS: Record<string, string> = {
  start: "Start",
  end: "End",
  duration_s: "Duration",
  exposure_pct: "Exposure Time [%]",
  equity_initial: "Equity Initial [$]",
  equity_final: "Equity Final [$]",
  equity_peak: "Equity Peak [$]",
  net_profit: "Net Profit [$]",
  commissions: "Commissions [$]",
  return_pct: "Return [%]",
  buy_hold_return_pct: "Buy & Hold Return [%]",
  return_ann_pct: "Return (Ann.) [%]",
  volatility_ann_pct: "Volatility (Ann.) [%]",
  cagr_pct: "CAGR [%]",
  sharpe: "Sharpe Ratio",
  sortino: "Sortino Ratio",
  calmar: "Calmar Ratio",
  alpha_pct: "Alpha [%]",
  beta: "Beta",
  max_drawdown_pct: "Max. Drawdown [%]",
  avg_drawdown_pct: "Avg. Drawdown [%]",
  max_drawdown_usd: "Max. Drawdown [$]",
  max_drawdown_peak: "Max. Drawdown Peak",
  max_drawdown_trough: "Max. Drawdown Trough",
  max_drawdown_duration_s: "Max. Drawdown Duration",
  avg_drawdown_duration_s: "Avg. Drawdown Duration",
  trades: "# Trades",
  long_trades: "# Long Trades",
  short_trades: "# Short Trades",
  win_rate_pct: "Win Rate [%]",
  best_trade_pct: "Best Trade [%]",
  worst_trade_pct: "Worst Trade [%]",
  avg_trade_pct: "Avg. Trade [%]",
  max_trade_duration_s: "Max. Trade Duration",
  avg_trade_duration_s: "Avg. Trade Duration",
  profit_factor: "Profit Factor",
  expectancy_pct: "Expectancy [%]",
  sqn: "SQN",
  kelly: "Kelly Criterion",
};

/** One statistic as text, by what its name says it is. */
export function formatStatistic(name: string, value: Statistic | undefined): string {
  if (typeof value === "string" && !["Infinity", "-Infinity"].includes(value)) return formatTime(value);
  const number = statisticValue(value);
  if (name.endsWith("_s")) return formatDuration(number);
  if (name.endsWith("_pct")) return formatPercent(number);
  if (name.includes("trades")) return number === null ? EMPTY : String(number);
  if (name.startsWith("equity") || ["net_profit", "commissions", "max_drawdown_usd"].includes(name)) {
    return formatMoney(number);
  }
  return formatNumber(number);
}
