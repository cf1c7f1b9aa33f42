// The chart endpoint's column arrays as lightweight-charts data: pure functions, no DOM.
//
// GET /api/charts/<tf>/<symbol>/ answers `candles` as column arrays aligned with `time`
// (epoch seconds, UTC, a bar labelled by its start), `indicators` saying how to draw the
// indicator columns, and the round trips overlapping the window. Windows are merged as the
// user scrolls back in time; everything here rebuilds series data from the merged columns.

import type {
  CandlestickData,
  HistogramData,
  LineData,
  SeriesMarkerBar,
  Time,
  UTCTimestamp,
  WhitespaceData,
} from "lightweight-charts";
import type { ChartDocument, ChartIndicator, ChartLine, ChartTrade } from "../api/types";

/** The desktop visualizer's colours (quant_trading/visualization). */
export const CANDLE_UP = "#26a69a";
export const CANDLE_DOWN = "#ef5350";
export const LEVEL_COLOR = "#888888";
export const EQUITY_COLOR = "#3b5bdb";
export const PALETTE = ["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#ff7f0e"];

export type MarkerKind = "long entry" | "long exit" | "short entry" | "short exit";

/** Trade arrows as the desktop visualizer draws them. */
export const MARKER_LOOKS: Record<MarkerKind, { color: string; shape: "arrowUp" | "arrowDown"; position: "belowBar" | "aboveBar" }> = {
  "long entry": { color: "#00b140", shape: "arrowUp", position: "belowBar" },
  "long exit": { color: "#1e4fff", shape: "arrowDown", position: "aboveBar" },
  "short entry": { color: "#e8000b", shape: "arrowDown", position: "aboveBar" },
  "short exit": { color: "#ff8c00", shape: "arrowUp", position: "belowBar" },
};

/** Candles as received: `time` plus any number of value columns. */
export interface Columns {
  time: number[];
  values: Record<string, (number | null)[]>;
}

export function columnsFromCandles(candles: Record<string, (number | null)[]>): Columns {
  const { time, ...values } = candles;
  return { time: (time ?? []) as number[], values };
}

/** Two windows as one, ordered by time; a bar in both is taken from `b` (the later read). */
export function mergeColumns(a: Columns, b: Columns): Columns {
  const names = [...new Set([...Object.keys(a.values), ...Object.keys(b.values)])];
  const rows = new Map<number, [Columns, number]>();
  a.time.forEach((t, i) => rows.set(t, [a, i]));
  b.time.forEach((t, i) => rows.set(t, [b, i]));
  const time = [...rows.keys()].sort((x, y) => x - y);
  const values: Columns["values"] = {};
  for (const name of names) {
    values[name] = time.map((t) => {
      const [source, i] = rows.get(t)!;
      return source.values[name]?.[i] ?? null;
    });
  }
  return { time, values };
}

const asTime = (t: number) => t as UTCTimestamp;

export function candlestickData(columns: Columns): (CandlestickData | WhitespaceData)[] {
  const { open, high, low, close } = columns.values;
  return columns.time.map((t, i) => {
    const o = open?.[i], h = high?.[i], l = low?.[i], c = close?.[i];
    if (o == null || h == null || l == null || c == null) return { time: asTime(t) };
    return { time: asTime(t), open: o, high: h, low: l, close: c };
  });
}

/** Volume bars, coloured like their candle (faded). */
export function volumeData(columns: Columns): (HistogramData | WhitespaceData)[] {
  const { open, close, volume } = columns.values;
  return columns.time.map((t, i) => {
    const v = volume?.[i];
    if (v == null) return { time: asTime(t) };
    const up = (close?.[i] ?? 0) >= (open?.[i] ?? 0);
    return { time: asTime(t), value: v, color: up ? "rgba(38,166,154,0.35)" : "rgba(239,83,80,0.35)" };
  });
}

/** A column as a line; null values leave a gap (whitespace). */
export function lineData(columns: Columns, column: string): (LineData | WhitespaceData)[] {
  const values = columns.values[column];
  return columns.time.map((t, i) => {
    const v = values?.[i];
    return v == null ? { time: asTime(t) } : { time: asTime(t), value: v };
  });
}

/** A column as histogram bars: in `color`, or by sign (candle colours) when it has none. */
export function histogramData(columns: Columns, column: string, color: string | null): (HistogramData | WhitespaceData)[] {
  const values = columns.values[column];
  return columns.time.map((t, i) => {
    const v = values?.[i];
    if (v == null) return { time: asTime(t) };
    return { time: asTime(t), value: v, color: color ?? (v >= 0 ? "rgba(38,166,154,0.6)" : "rgba(239,83,80,0.6)") };
  });
}

export interface PanelLine extends ChartLine {
  /** The colour to draw a line in (declared, else from the palette); null: by sign. */
  drawColor: string | null;
}

export interface Panel {
  /** "price" for the candles' pane, else the indicator panel's name. */
  name: string;
  lines: PanelLine[];
  levels: number[];
  limits: number[] | null;
}

/** The indicators grouped into panes: the price pane first (its lines overlay the candles),
 * then each other panel in declaration order; entries naming one panel are merged. Lines
 * without a colour get the next palette colour no line of that panel declares. */
export function indicatorPanels(indicators: ChartIndicator[]): Panel[] {
  const panels = new Map<string, Panel>([["price", { name: "price", lines: [], levels: [], limits: null }]]);
  for (const indicator of indicators) {
    let panel = panels.get(indicator.panel);
    if (!panel) {
      panel = { name: indicator.panel, lines: [], levels: [], limits: null };
      panels.set(indicator.panel, panel);
    }
    panel.lines.push(...indicator.lines.map((line) => ({ ...line, drawColor: line.color })));
    for (const level of indicator.levels) if (!panel.levels.includes(level)) panel.levels.push(level);
    panel.limits = panel.limits ?? indicator.limits;
  }
  for (const panel of panels.values()) {
    const taken = new Set(panel.lines.map((line) => line.color).filter(Boolean));
    const free = PALETTE.filter((c) => !taken.has(c));
    const palette = free.length ? free : PALETTE;
    let next = 0;
    for (const line of panel.lines) {
      if (line.style === "line" && !line.drawColor) line.drawColor = palette[next++ % palette.length];
    }
  }
  return [...panels.values()];
}

/** An ISO 8601 time with offset as epoch seconds. */
export function isoToEpoch(iso: string): number {
  return Math.round(Date.parse(iso) / 1000);
}

export type TradeMarker = SeriesMarkerBar<Time> & { kind: MarkerKind };

/** An entry and an exit arrow per round trip, at the bars they filled on; only those whose
 * bar is loaded (`barTimes`), sorted by time as lightweight-charts wants them. */
export function tradeMarkers(trades: ChartTrade[], barTimes: Set<number> | null = null): TradeMarker[] {
  const markers: TradeMarker[] = [];
  const add = (kind: MarkerKind, iso: string, price: number) => {
    const time = isoToEpoch(iso);
    if (barTimes && !barTimes.has(time)) return;
    const look = MARKER_LOOKS[kind];
    markers.push({ kind, time: asTime(time), position: look.position, shape: look.shape, color: look.color, size: 1, text: "", id: `${kind}@${time}@${price}` });
  };
  for (const trade of trades) {
    add(`${trade.side} entry` as MarkerKind, trade.entry_time, trade.entry_price);
    add(`${trade.side} exit` as MarkerKind, trade.exit_time, trade.exit_price);
  }
  const order: MarkerKind[] = ["long exit", "short exit", "long entry", "short entry"];
  return markers.sort((a, b) => (a.time as number) - (b.time as number) || order.indexOf(a.kind) - order.indexOf(b.kind));
}

/** Round trips from several windows, each once (a trade overlaps neighbouring windows). */
export function mergeTrades(a: ChartTrade[], b: ChartTrade[]): ChartTrade[] {
  const seen = new Map<string, ChartTrade>();
  for (const trade of [...a, ...b]) seen.set(`${trade.side}|${trade.entry_time}|${trade.exit_time}`, trade);
  return [...seen.values()].sort((x, y) => isoToEpoch(x.entry_time) - isoToEpoch(y.entry_time));
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${timeZone}|${JSON.stringify(options)}`;
  let format = formatters.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat("en-CA", { timeZone, hourCycle: "h23", ...options });
    formatters.set(key, format);
  }
  return format;
}

/** Epoch seconds as "2026-10-30 15:55" in the bars' time zone (the crosshair's label). */
export function formatBarTime(epoch: number, timeZone = "America/New_York"): string {
  const parts = formatter(timeZone, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).formatToParts(new Date(epoch * 1000));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}`;
}

/** A time-axis label in the bars' time zone: the time of day, or the date at a new day
 * (lightweight-charts' TickMarkType: 0 year, 1 month, 2 day, 3 time, 4 time with seconds). */
export function formatTick(epoch: number, tickMarkType: number, timeZone = "America/New_York"): string {
  const full = formatBarTime(epoch, timeZone);
  if (tickMarkType === 0) return full.slice(0, 4);
  if (tickMarkType === 1 || tickMarkType === 2) return full.slice(5, 10);
  return full.slice(11, 16);
}

/** Whether the cache file holds another run than the one shown (the cache keeps the latest
 * run per timeframe and symbol): another strategy, or a parameter of another value. */
export function cacheIsOtherRun(
  document: Pick<ChartDocument, "strategy">,
  expected?: { strategy: string; params: Record<string, unknown> },
): boolean {
  if (!expected) return false;
  if (document.strategy.name !== expected.strategy) return true;
  return Object.entries(expected.params).some(([k, v]) => document.strategy.params?.[k] !== v);
}
