// The shapes the backend answers (see /api/schema/); only what the dashboard reads.

export interface Paginated<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface StrategyParameter {
  name: string;
  type: "integer" | "number" | "string";
  default: number | string;
  choices: string[];
  bounds: [number | null, number | null] | null;
  help: string;
}

export interface Strategy {
  name: string;
  description: string;
  parameters: StrategyParameter[];
  default_timeframe: string;
  timeframes: string[] | null;
  default_symbols: string[];
}

/** A statistic: a number, null when undefined, or "Infinity"/"-Infinity". */
export type Statistic = number | string | null;
export type Statistics = Record<string, Statistic>;

export interface SymbolMetrics extends Statistics {
  symbol: string;
  bars: number;
  warning: string | null;
}

export interface Trade {
  symbol: string;
  side: "long" | "short";
  entry_time: string;
  entry_price: number;
  exit_time: string;
  exit_price: number;
  shares: number;
  commission: number;
  pnl: number;
  return_pct: number | null;
  bars_held: number;
  exit_reason: string;
}

export interface MonthlyEquity {
  month: string;
  equity: number;
  month_pct: number;
  max_drawdown_pct: number;
}

export interface DataFile {
  symbol: string;
  file: string;
  sha256: string;
  source_timeframe: string;
  rows: number;
  first_bar: string | null;
  last_bar: string | null;
}

export interface RunSettings {
  start: string | null;
  end: string | null;
  initial_capital: number;
  commission: number;
  slippage: number;
  allocation: number | null;
  size: number | null;
  fractional: boolean;
  flat_at_close: boolean;
  write_cache: boolean;
}

export interface BacktestRunSummary {
  id: number;
  created: string;
  duration_seconds: number;
  requested_by: string;
  strategy: string;
  params: Record<string, number | string>;
  symbols: string[];
  timeframe: string;
  settings: RunSettings;
  summary: Statistics;
  skipped: Record<string, string>;
}

export interface BacktestRun extends BacktestRunSummary {
  symbol_metrics: SymbolMetrics[];
  monthly_equity: MonthlyEquity[];
  trades: Trade[];
  data_files: DataFile[];
  cache_files: string[];
}

export interface BacktestRequest {
  strategy: string;
  symbols: string[];
  timeframe: string;
  start?: string | null;
  end?: string | null;
  initial_capital: number;
  commission: number;
  slippage: number;
  write_cache: boolean;
  params: Record<string, number | string>;
}

export interface ChartLine {
  column: string;
  label: string;
  style: "line" | "histogram";
  color: string | null;
}

export interface ChartIndicator {
  panel: string;
  levels: number[];
  limits: number[] | null;
  lines: ChartLine[];
}

export interface ChartWindow {
  requested: { start: string | null; end: string | null; limit: number };
  start: string | null;
  end: string | null;
  bars: number;
  available: number;
  truncated: boolean;
  previous_end: string | null;
  next_start: string | null;
}

export type ChartTrade = Omit<Trade, "symbol">;

export interface ChartDocument {
  timeframe: string;
  symbol: string;
  timezone: string | null;
  strategy: { name: string; description: string; params: Record<string, number | string> };
  period: { start: string; end: string; bars: number };
  window: ChartWindow;
  indicators: ChartIndicator[];
  /** Column arrays aligned with `time` (epoch seconds, UTC); null where undefined. */
  candles: Record<string, (number | null)[]>;
  trades: ChartTrade[];
  trades_total: number;
}

export interface SimulatedOrder {
  id: number;
  created: string;
  executed_at: string;
  symbol: string;
  side: "BUY" | "SELL";
  quantity: number;
  price: number;
  commission: number;
  strategy: string;
  note: string;
  client_order_id: string | null;
}

export interface NewSimulatedOrder {
  symbol: string;
  side: "BUY" | "SELL";
  quantity: number;
  price: number;
  commission: number;
  strategy: string;
  note: string;
  executed_at?: string;
  client_order_id: string;
}

export interface PositionSummary {
  symbol: string;
  position: number;
  average_cost: number | null;
  realized_pnl: number;
  unrealized_pnl: number | null;
  market_value: number | null;
  price: { value: number; time: string; source: string; detail: string } | null;
  note: string | null;
  commission: number;
  fills: number;
  first_fill: string;
  last_fill: string;
}

export interface OrderSummary {
  strategy: string | null;
  symbol: string | null;
  accounting: string;
  positions: PositionSummary[];
  totals: { realized_pnl: number; unrealized_pnl: number | null; commission: number; fills: number };
}

export type ConnectionStateName = "disconnected" | "connecting" | "connected" | "reconnecting";

export interface ConnectionState {
  state: ConnectionStateName;
  connected: boolean;
  host: string;
  port: number;
  client_id: number;
  accounts: string[];
  since: string | null;
  last_error: string | null;
}

export interface PortfolioPosition {
  symbol: string;
  sec_type: string;
  currency: string;
  quantity: number;
  average_cost: number;
  cost_basis: number;
  market_price: number;
  market_value: number;
  unrealized_pnl: number;
  unrealized_pnl_ratio: number | null;
  realized_pnl: number;
}

export interface Portfolio {
  account: string;
  accounts: string[];
  account_time: string;
  base_currency: string;
  paper: boolean;
  cash_balances: Record<string, number>;
  market_value_by_currency: Record<string, number>;
  totals: {
    net_liquidation: number | null;
    total_cash: number | null;
    market_value: number | null;
    gross_position_value: number | null;
  };
  pnl: {
    daily: number | null;
    unrealized: number | null;
    realized: number | null;
    unrealized_ratio: number | null;
  };
  positions: PortfolioPosition[];
  source: { connection: "held" | "one-off"; host: string; port: number; client_id: number; fetched_at: string };
}
