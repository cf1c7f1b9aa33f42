// The backtest form's rules and its request, as pure functions (the server checks again).

import type { BacktestRequest, BacktestRun, Strategy, StrategyParameter } from "../api/types";

/** A ticker as the backend accepts it in a backtest: AAPL, BRK.B, BF-B. */
export const TICKER = /^[A-Z][A-Z0-9]*(?:[.-][A-Z0-9]+)*$/;
export const MAX_SYMBOLS = 50;
export const COMMON_TIMEFRAMES = ["1m", "3m", "5m", "10m", "15m", "30m", "1h", "1d"];

/** Why `value` is not a valid value of `parameter`, or null when it is. */
export function parameterError(parameter: StrategyParameter, value: unknown): string | null {
  if (value === null || value === undefined || value === "") return "required";
  if (parameter.choices.length) {
    return parameter.choices.includes(String(value)) ? null : `one of ${parameter.choices.join(", ")}`;
  }
  if (parameter.type === "string") return null;
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(number)) return "must be a number";
  if (parameter.type === "integer" && !Number.isInteger(number)) return "must be a whole number";
  const [low, high] = parameter.bounds ?? [null, null];
  if (parameter.bounds === null && number <= 0) return "must be greater than 0";
  if (low !== null && number < low) return `must be at least ${low}`;
  if (high !== null && number > high) return `must be at most ${high}`;
  return null;
}

/** "1 to 200", "at least 2", or "" for a parameter without bounds. */
export function boundsText(parameter: StrategyParameter): string {
  if (parameter.choices.length || !parameter.bounds) return "";
  const [low, high] = parameter.bounds;
  if (low !== null && high !== null) return `${low} to ${high}`;
  if (low !== null) return `at least ${low}`;
  if (high !== null) return `at most ${high}`;
  return "";
}

/** Symbols as typed: upper case, split on spaces and commas, duplicates dropped. */
export function normalizeSymbols(values: string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const part of value.toUpperCase().split(/[\s,]+/)) {
      if (part && !out.includes(part)) out.push(part);
    }
  }
  return out;
}

export function symbolsError(values: string[] | undefined): string | null {
  const symbols = normalizeSymbols(values ?? []);
  if (!symbols.length) return "pick at least one symbol";
  const bad = symbols.filter((s) => s.length > 12 || !TICKER.test(s));
  if (bad.length) return `not a ticker symbol: ${bad.join(", ")}`;
  if (symbols.length > MAX_SYMBOLS) return `at most ${MAX_SYMBOLS} symbols per backtest`;
  return null;
}

export function timeframeError(value: string | undefined, strategy: Strategy | undefined): string | null {
  if (!value || !value.trim()) return "pick a timeframe";
  if (strategy?.timeframes && !strategy.timeframes.includes(value)) {
    return `${strategy.name} runs on ${strategy.timeframes.join(", ")} only`;
  }
  return null;
}

/** What the form holds. Dates are "YYYY-MM-DD" strings (or null). */
export interface BacktestFormValues {
  strategy: string;
  symbols: string[];
  timeframe: string;
  start: string | null;
  end: string | null;
  initial_capital: number;
  commission: number;
  slippage: number;
  write_cache: boolean;
  params: Record<string, number | string>;
}

/** The form's starting values for a strategy: its defaults. */
export function defaultValues(strategy: Strategy): BacktestFormValues {
  return {
    strategy: strategy.name,
    symbols: [...strategy.default_symbols],
    timeframe: strategy.default_timeframe,
    start: null,
    end: null,
    initial_capital: 100000,
    commission: 0.005,
    slippage: 0,
    write_cache: true,
    params: Object.fromEntries(strategy.parameters.map((p) => [p.name, p.default])),
  };
}

/** Every client-side error by form field ("params.FAST"), empty when the form is valid. */
export function validateBacktest(values: BacktestFormValues, strategy: Strategy | undefined): Record<string, string> {
  const errors: Record<string, string> = {};
  if (!strategy) errors.strategy = "pick a strategy";
  const symbols = symbolsError(values.symbols);
  if (symbols) errors.symbols = symbols;
  const timeframe = timeframeError(values.timeframe, strategy);
  if (timeframe) errors.timeframe = timeframe;
  if (values.start && values.end && values.start > values.end) errors.start = "must not be after the end";
  if (!(values.initial_capital > 0)) errors.initial_capital = "must be greater than 0";
  if (!(values.commission >= 0)) errors.commission = "must be 0 or more";
  if (!(values.slippage >= 0)) errors.slippage = "must be 0 or more";
  for (const parameter of strategy?.parameters ?? []) {
    const problem = parameterError(parameter, values.params?.[parameter.name]);
    if (problem) errors[`params.${parameter.name}`] = problem;
  }
  return errors;
}

/** The POST /api/backtests/ body for the form's values. */
export function backtestRequest(values: BacktestFormValues, strategy: Strategy): BacktestRequest {
  const params: Record<string, number | string> = {};
  for (const parameter of strategy.parameters) {
    const value = values.params?.[parameter.name];
    if (value !== undefined && value !== null && value !== "") {
      params[parameter.name] = parameter.type === "string" ? String(value) : Number(value);
    }
  }
  return {
    strategy: strategy.name,
    symbols: normalizeSymbols(values.symbols),
    timeframe: values.timeframe.trim(),
    start: values.start || null,
    end: values.end || null,
    initial_capital: values.initial_capital,
    commission: values.commission,
    slippage: values.slippage,
    write_cache: values.write_cache,
    params,
  };
}

/** The server's validation errors split into form fields (antd name paths) and the rest
 * (non_field_errors, or a rule across parameters), shown above the form. */
export function serverFieldErrors(fields: Record<string, string[]>, known: string[]): {
  byField: { name: (string | number)[]; errors: string[] }[];
  general: string[];
} {
  const byField: { name: (string | number)[]; errors: string[] }[] = [];
  const general: string[] = [];
  for (const [key, messages] of Object.entries(fields)) {
    const path = key.split(".");
    const top = path[0];
    const isParam = top === "params" && path.length === 2;
    if (key !== "non_field_errors" && (isParam || (path.length === 1 && known.includes(top)))) {
      byField.push({ name: path, errors: messages });
    } else {
      general.push(...messages.map((m) => (key === "non_field_errors" ? m : `${key}: ${m}`)));
    }
  }
  return { byField, general };
}

/** The form's values that ran `run` (to run it again, or a variation of it). */
export function valuesFromRun(run: BacktestRun, strategy: Strategy): BacktestFormValues {
  const defaults = defaultValues(strategy);
  const day = (text: string | null) => (text ? text.trim().slice(0, 10) : null);
  return {
    ...defaults,
    symbols: [...run.symbols],
    timeframe: run.timeframe,
    start: day(run.settings.start),
    end: day(run.settings.end),
    initial_capital: run.settings.initial_capital,
    commission: run.settings.commission,
    slippage: run.settings.slippage,
    write_cache: run.settings.write_cache,
    params: { ...defaults.params, ...run.params },
  };
}
