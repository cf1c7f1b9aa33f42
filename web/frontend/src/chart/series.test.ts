import { describe, expect, it } from "vitest";
import { CANDLES, CHART_TRADES, MACD_INDICATORS, MA_CROSS_INDICATORS, RSI_INDICATORS } from "../test/fixtures";
import {
  MARKER_LOOKS,
  PALETTE,
  cacheIsOtherRun,
  candlestickData,
  columnsFromCandles,
  formatBarTime,
  formatTick,
  histogramData,
  indicatorPanels,
  isoToEpoch,
  lineData,
  mergeColumns,
  mergeTrades,
  tradeMarkers,
  volumeData,
} from "./series";

const columns = columnsFromCandles(CANDLES);

describe("candles", () => {
  it("splits time from the value columns", () => {
    expect(columns.time).toEqual(CANDLES.time);
    expect(Object.keys(columns.values)).not.toContain("time");
    expect(columns.values.close).toEqual(CANDLES.close);
  });

  it("maps OHLC columns to candlestick bars keyed by epoch seconds", () => {
    expect(candlestickData(columns)[0]).toEqual({ time: 1793389500, open: 312.33, high: 312.75, low: 312.2, close: 312.48 });
  });

  it("leaves a bar with a missing price as whitespace", () => {
    const gap = columnsFromCandles({ ...CANDLES, open: [null, 1, 2] });
    expect(candlestickData(gap)[0]).toEqual({ time: 1793389500 });
  });

  it("colours volume like its candle", () => {
    const [up, down] = volumeData(columns) as { color: string; value: number }[];
    expect(up.value).toBe(370531);
    expect(up.color).toContain("38,166,154");
    expect(down.color).toContain("239,83,80");
  });
});

describe("indicator series", () => {
  it("turns nulls into gaps in a line", () => {
    expect(lineData(columns, "MACD")).toEqual([
      { time: 1793389500 },
      { time: 1793389800, value: 0.49532 },
      { time: 1793390100, value: 0.41 },
    ]);
  });

  it("colours a histogram without a colour by sign", () => {
    const bars = histogramData(columns, "Hist", null) as { value?: number; color?: string }[];
    expect(bars[0]).toEqual({ time: 1793389500 });
    expect(bars[1].color).toContain("239,83,80");
    expect(bars[2].color).toContain("38,166,154");
    expect((histogramData(columns, "Hist", "#123456")[1] as { color: string }).color).toBe("#123456");
  });

  it("puts MACD in its own pane after the price pane, with its zero level", () => {
    const panels = indicatorPanels(MACD_INDICATORS);
    expect(panels.map((p) => p.name)).toEqual(["price", "MACD"]);
    expect(panels[0].lines).toEqual([]);
    expect(panels[1].levels).toEqual([0]);
    expect(panels[1].lines.map((l) => [l.column, l.style, l.drawColor])).toEqual([
      ["MACD", "line", "#1f77b4"],
      ["Signal", "line", "#ff7f0e"],
      ["Hist", "histogram", null],
    ]);
  });

  it("overlays price-panel lines on the candles and gives an uncoloured line a palette colour", () => {
    const panels = indicatorPanels(MA_CROSS_INDICATORS);
    expect(panels).toHaveLength(1);
    expect(panels[0].lines.map((l) => l.label)).toEqual(["SMA(10)", "SMA(30)"]);
    expect(panels[0].lines[0].drawColor).toBe("#f08c00");
    expect(panels[0].lines[1].drawColor).toBe(PALETTE[0]);
  });

  it("keeps an oscillator's levels and limits", () => {
    const [, rsi] = indicatorPanels(RSI_INDICATORS);
    expect(rsi).toMatchObject({ name: "RSI", levels: [30, 70], limits: [0, 100] });
  });
});

describe("trade markers", () => {
  it("draws the desktop visualizer's arrows at the fill bars", () => {
    const markers = tradeMarkers(CHART_TRADES);
    const at = (kind: string) => markers.find((m) => m.kind === kind)!;
    expect(at("long entry")).toMatchObject({ time: 1793389500, shape: "arrowUp", color: "#00b140", position: "belowBar" });
    expect(at("long exit")).toMatchObject({ time: 1793390100, shape: "arrowDown", color: "#1e4fff", position: "aboveBar" });
    expect(at("short entry")).toMatchObject({ time: 1793390100, shape: "arrowDown", color: "#e8000b", position: "aboveBar" });
    expect(at("short exit")).toMatchObject({ shape: "arrowUp", color: "#ff8c00", position: "belowBar" });
    expect(MARKER_LOOKS["short exit"].color).toBe("#ff8c00");
  });

  it("keeps only arrows on loaded bars, sorted by time, exit before entry on a flip", () => {
    const markers = tradeMarkers(CHART_TRADES, new Set(CANDLES.time));
    expect(markers.map((m) => m.kind)).toEqual(["long entry", "long exit", "short entry"]);
    const times = markers.map((m) => m.time as number);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it("reads ISO times with an offset as epoch seconds", () => {
    expect(isoToEpoch("2026-10-30T15:45:00-04:00")).toBe(1793389500);
  });
});

describe("windows", () => {
  it("prepends an older window, ordered by time, without duplicating a shared bar", () => {
    const newer = columnsFromCandles(CANDLES);
    const older = columnsFromCandles({ time: [1793389200, 1793389500], close: [1, 2], equity: [5, 6] });
    const merged = mergeColumns(older, newer);
    expect(merged.time).toEqual([1793389200, ...CANDLES.time]);
    expect(merged.values.close).toEqual([1, ...CANDLES.close]);
    expect(merged.values.MACD[0]).toBeNull();
    expect(merged.values.equity).toEqual([5, ...CANDLES.equity]);
  });

  it("keeps a trade that two windows share once", () => {
    expect(mergeTrades(CHART_TRADES, [CHART_TRADES[1], CHART_TRADES[0]])).toEqual(CHART_TRADES);
  });
});

describe("time labels in New York time", () => {
  it("formats a bar's start in the exchange's zone, across daylight saving", () => {
    expect(formatBarTime(1793389500)).toBe("2026-10-30 15:45");
    expect(formatBarTime(Date.parse("2026-01-02T14:30:00Z") / 1000)).toBe("2026-01-02 09:30");
  });

  it("labels day ticks with the date and time ticks with the time", () => {
    expect(formatTick(1793389500, 2)).toBe("10-30");
    expect(formatTick(1793389500, 3)).toBe("15:45");
  });
});

describe("the cache and the run shown", () => {
  const cached = { strategy: { name: "MACD", description: "", params: { FAST: 12, SLOW: 26 } } };
  it("match when strategy and parameters agree", () => {
    expect(cacheIsOtherRun(cached, { strategy: "MACD", params: { FAST: 12, SLOW: 26 } })).toBe(false);
    expect(cacheIsOtherRun(cached)).toBe(false);
  });
  it("differ when a later run rewrote the cache", () => {
    expect(cacheIsOtherRun(cached, { strategy: "MACD", params: { FAST: 10, SLOW: 26 } })).toBe(true);
    expect(cacheIsOtherRun(cached, { strategy: "RSI", params: {} })).toBe(true);
  });
});
