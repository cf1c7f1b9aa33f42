// Answers of the real backend (trimmed), for the unit tests.
import type { ChartIndicator, ChartTrade, Strategy, Trade } from "../api/types";

export const MACD: Strategy = {
  name: "MACD",
  description: "MACD/Signal crossover (TA-Lib MACD definition)",
  parameters: [
    { name: "FAST", type: "integer", default: 12, choices: [], bounds: [1, 200], help: "fast EMA period" },
    { name: "SLOW", type: "integer", default: 26, choices: [], bounds: [2, 400], help: "slow EMA period" },
    { name: "SIGNAL", type: "integer", default: 9, choices: [], bounds: [1, 200], help: "signal EMA period" },
    { name: "MODE", type: "string", default: "long_short", choices: ["long_short", "long_only", "short_only"], bounds: null, help: "which sides to trade" },
  ],
  default_timeframe: "5m",
  timeframes: null,
  default_symbols: ["AAPL", "MSFT", "SPY"],
};

export const RSI: Strategy = {
  ...MACD,
  name: "RSI",
  description: "RSI thresholds",
  parameters: [{ name: "PERIOD", type: "integer", default: 14, choices: [], bounds: [2, 200], help: "RSI period" }],
  default_symbols: ["SPY"],
};

export const MACD_INDICATORS: ChartIndicator[] = [
  {
    panel: "MACD", levels: [0.0], limits: null,
    lines: [
      { column: "MACD", label: "MACD", style: "line", color: "#1f77b4" },
      { column: "Signal", label: "Signal", style: "line", color: "#ff7f0e" },
      { column: "Hist", label: "Hist", style: "histogram", color: null },
    ],
  },
];

export const MA_CROSS_INDICATORS: ChartIndicator[] = [
  { panel: "price", levels: [], limits: null, lines: [{ column: "fast", label: "SMA(10)", style: "line", color: "#f08c00" }] },
  { panel: "price", levels: [], limits: null, lines: [{ column: "slow", label: "SMA(30)", style: "line", color: null }] },
];

export const RSI_INDICATORS: ChartIndicator[] = [
  { panel: "RSI", levels: [30.0, 70.0], limits: [0.0, 100.0], lines: [{ column: "RSI", label: "RSI(14)", style: "line", color: "#7048e8" }] },
];

// 2026-10-30 15:45, 15:50, 15:55 New York (EDT, UTC-4)
export const CANDLES = {
  time: [1793389500, 1793389800, 1793390100],
  open: [312.33, 312.48, 312.09],
  high: [312.75, 312.58, 312.56],
  low: [312.2, 311.95, 311.12],
  close: [312.48, 312.09, 311.23],
  volume: [370531.0, 411794.0, 1014707.0],
  MACD: [null, 0.49532, 0.41],
  Signal: [null, null, 0.3],
  Hist: [null, -0.2, 0.11],
  equity: [40095.98, 40188.99, 40100.0],
  position: [131.0, 131.0, 0.0],
};

export const CHART_TRADES: ChartTrade[] = [
  {
    side: "long", entry_time: "2026-10-30T15:45:00-04:00", entry_price: 312.33, exit_time: "2026-10-30T15:55:00-04:00",
    exit_price: 312.09, shares: 100, commission: 2, pnl: -26, return_pct: -0.08, bars_held: 2, exit_reason: "flip",
  },
  {
    side: "short", entry_time: "2026-10-30T15:55:00-04:00", entry_price: 312.09, exit_time: "2026-10-31T09:30:00-04:00",
    exit_price: 311.0, shares: 100, commission: 2, pnl: 107, return_pct: 0.35, bars_held: 1, exit_reason: "end of data",
  },
];

export function makeTrades(count: number): Trade[] {
  return Array.from({ length: count }, (_, i) => ({
    symbol: i % 2 ? "MSFT" : "AAPL",
    side: i % 3 ? "long" : "short",
    entry_time: `2026-10-${String(1 + (i % 28)).padStart(2, "0")}T10:${String(i % 60).padStart(2, "0")}:00-04:00`,
    entry_price: 100 + i,
    exit_time: `2026-10-${String(1 + (i % 28)).padStart(2, "0")}T11:${String(i % 60).padStart(2, "0")}:00-04:00`,
    exit_price: 101 + i,
    shares: 10,
    commission: 2,
    pnl: (i % 5) * 10 - 20 + i / 100,
    return_pct: 0.1,
    bars_held: i,
    exit_reason: i % 4 ? "flip" : "session close",
  }));
}
