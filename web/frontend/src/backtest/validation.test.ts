import { describe, expect, it } from "vitest";
import { MACD } from "../test/fixtures";
import {
  backtestRequest,
  boundsText,
  defaultValues,
  normalizeSymbols,
  parameterError,
  serverFieldErrors,
  symbolsError,
  validateBacktest,
  valuesFromRun,
} from "./validation";
import type { BacktestRun } from "../api/types";

const [FAST, , , MODE] = MACD.parameters;

describe("parameters", () => {
  it("checks type, bounds and choices", () => {
    expect(parameterError(FAST, 12)).toBeNull();
    expect(parameterError(FAST, 0)).toBe("must be at least 1");
    expect(parameterError(FAST, 201)).toBe("must be at most 200");
    expect(parameterError(FAST, 2.5)).toBe("must be a whole number");
    expect(parameterError(FAST, null)).toBe("required");
    expect(parameterError(MODE, "long_only")).toBeNull();
    expect(parameterError(MODE, "sideways")).toBe("one of long_short, long_only, short_only");
  });

  it("needs a positive number when there are no bounds", () => {
    const open = { ...FAST, type: "number" as const, bounds: null };
    expect(parameterError(open, 0.5)).toBeNull();
    expect(parameterError(open, -1)).toBe("must be greater than 0");
  });

  it("says the bounds in words", () => {
    expect(boundsText(FAST)).toBe("1 to 200");
    expect(boundsText({ ...FAST, bounds: [2, null] })).toBe("at least 2");
    expect(boundsText(MODE)).toBe("");
  });
});

describe("symbols", () => {
  it("upper-cases, splits and de-duplicates", () => {
    expect(normalizeSymbols(["aapl msft", "AAPL,spy"])).toEqual(["AAPL", "MSFT", "SPY"]);
  });

  it("refuses what is no ticker", () => {
    expect(symbolsError(["AAPL", "BRK.B"])).toBeNull();
    expect(symbolsError([])).toBe("pick at least one symbol");
    expect(symbolsError(["../etc/passwd"])).toBe("not a ticker symbol: ../ETC/PASSWD");
  });
});

describe("the whole form", () => {
  it("accepts the strategy's defaults", () => {
    expect(validateBacktest(defaultValues(MACD), MACD)).toEqual({});
  });

  it("names every bad field", () => {
    const values = { ...defaultValues(MACD), symbols: [], initial_capital: 0, commission: -1, start: "2026-02-01", end: "2026-01-01" };
    values.params = { ...values.params, SLOW: 1000 };
    expect(validateBacktest(values, MACD)).toEqual({
      symbols: "pick at least one symbol",
      initial_capital: "must be greater than 0",
      commission: "must be 0 or more",
      start: "must not be after the end",
      "params.SLOW": "must be at most 400",
    });
  });

  it("builds the request the API takes", () => {
    const values = { ...defaultValues(MACD), symbols: ["aapl"], start: "2026-10-01", params: { ...defaultValues(MACD).params, FAST: "10" as unknown as number } };
    expect(backtestRequest(values, MACD)).toEqual({
      strategy: "MACD", symbols: ["AAPL"], timeframe: "5m", start: "2026-10-01", end: null,
      initial_capital: 100000, commission: 0.005, slippage: 0, write_cache: true,
      params: { FAST: 10, SLOW: 26, SIGNAL: 9, MODE: "long_short" },
    });
  });

  it("puts the server's errors next to their fields and the rest above the form", () => {
    const { byField, general } = serverFieldErrors(
      { symbols: ["no data for ZZZZ"], "params.FAST": ["must be at most 200"], non_field_errors: ["bad strategy"], params: ["FAST must be below SLOW"] },
      ["symbols", "timeframe"],
    );
    expect(byField).toEqual([
      { name: ["symbols"], errors: ["no data for ZZZZ"] },
      { name: ["params", "FAST"], errors: ["must be at most 200"] },
    ]);
    expect(general).toEqual(["bad strategy", "params: FAST must be below SLOW"]);
  });
});

describe("a past run's settings", () => {
  it("fill the form to run it again", () => {
    const run = {
      id: 3, strategy: "MACD", symbols: ["AAPL"], timeframe: "15m", params: { FAST: 10, SLOW: 26, SIGNAL: 9, MODE: "long_only" },
      settings: { start: "2026-01-02", end: "2026-03-31 16:00", initial_capital: 50000, commission: 0, slippage: 0.01, allocation: 1, size: null, fractional: false, flat_at_close: false, write_cache: false },
    } as unknown as BacktestRun;
    const values = valuesFromRun(run, MACD);
    expect(values).toEqual({
      strategy: "MACD", symbols: ["AAPL"], timeframe: "15m", start: "2026-01-02", end: "2026-03-31",
      initial_capital: 50000, commission: 0, slippage: 0.01, write_cache: false,
      params: { FAST: 10, SLOW: 26, SIGNAL: 9, MODE: "long_only" },
    });
    expect(validateBacktest(values, MACD)).toEqual({});
  });
});
