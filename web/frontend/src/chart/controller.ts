// A lightweight-charts chart of one cached backtest, loaded window by window: candles with
// the trade arrows, the strategy's indicators (price overlays and panes below), volume and
// the equity curve. Scrolling near the left edge loads the window before the oldest bar.

import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  LineSeries,
  LineStyle,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type LogicalRange,
  type SeriesType,
  type Time,
} from "lightweight-charts";
import type { ChartDocument, ChartTrade } from "../api/types";
import {
  CANDLE_DOWN,
  CANDLE_UP,
  EQUITY_COLOR,
  LEVEL_COLOR,
  candlestickData,
  columnsFromCandles,
  formatBarTime,
  formatTick,
  histogramData,
  indicatorPanels,
  lineData,
  mergeColumns,
  mergeTrades,
  tradeMarkers,
  volumeData,
  type Columns,
  type Panel,
} from "./series";

/** What the page shows about the chart besides the canvas. */
export interface ChartState {
  bars: number;
  totalBars: number;
  markers: number;
  trades: number;
  canLoadOlder: boolean;
  loadingOlder: boolean;
  error: string | null;
  firstBar: number | null;
  lastBar: number | null;
}

/** Bars shown at first; the rest is a scroll or a zoom away. */
const INITIAL_BARS = 240;
/** Load the previous window when fewer bars than this are left of the view. */
const PREFETCH_MARGIN = 30;
export const PANE_HEIGHT = 100;
export const PRICE_HEIGHT = 320;

type Updater = (series: ISeriesApi<SeriesType>, columns: Columns) => void;

export class ChartController {
  private chart: IChartApi;
  private candles: ISeriesApi<"Candlestick">;
  private markers: ISeriesMarkersPluginApi<Time>;
  private updaters: [ISeriesApi<SeriesType>, Updater][] = [];
  private columns: Columns;
  private trades: ChartTrade[];
  private previousEnd: string | null;
  private loading = false;
  private error: string | null = null;
  private destroyed = false;
  readonly panels: Panel[];

  constructor(
    element: HTMLElement,
    private document: ChartDocument,
    private fetchOlder: (end: string) => Promise<ChartDocument>,
    private onState: (state: ChartState) => void,
  ) {
    const timeZone = document.timezone ?? "America/New_York";
    this.columns = columnsFromCandles(document.candles);
    this.trades = document.trades;
    this.previousEnd = document.window.previous_end;
    this.panels = indicatorPanels(document.indicators);

    this.chart = createChart(element, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: "#333", fontSize: 12, panes: { separatorColor: "#d9d9d9" } },
      grid: { vertLines: { color: "#f0f0f0" }, horzLines: { color: "#f0f0f0" } },
      localization: { timeFormatter: (time: Time) => formatBarTime(time as number, timeZone) },
      timeScale: {
        timeVisible: true,
        secondsVisible: false,
        rightOffset: 4,
        tickMarkFormatter: (time: Time, type: number) => formatTick(time as number, type, timeZone),
      },
      crosshair: { mode: 0 },
    });

    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: CANDLE_UP, downColor: CANDLE_DOWN, borderVisible: false,
      wickUpColor: CANDLE_UP, wickDownColor: CANDLE_DOWN, title: document.symbol,
    });
    this.updaters.push([this.candles, (s, c) => s.setData(candlestickData(c))]);
    const volume = this.chart.addSeries(HistogramSeries, { priceScaleId: "volume", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    this.updaters.push([volume, (s, c) => s.setData(volumeData(c))]);

    this.panels.forEach((panel, index) => this.addPanel(panel, index));
    const equityPane = this.panels.length;
    const equity = this.chart.addSeries(LineSeries, { color: EQUITY_COLOR, lineWidth: 2, title: "Equity", priceLineVisible: false }, equityPane);
    this.updaters.push([equity, (s, c) => s.setData(lineData(c, "equity"))]);

    this.markers = createSeriesMarkers(this.candles, []);
    this.render();
    const panes = this.chart.panes();
    // Heights as shares of the container (sized later, by autoSize): price first.
    panes.forEach((pane, i) => pane.setStretchFactor(i === 0 ? PRICE_HEIGHT : PANE_HEIGHT));
    const n = this.columns.time.length;
    this.chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, n - INITIAL_BARS), to: n + 4 });
    this.chart.timeScale().subscribeVisibleLogicalRangeChange(this.onRange);
    this.emit();
  }

  /** The pane's lines and histograms, and its levels as dashed lines (0 solid). */
  private addPanel(panel: Panel, pane: number) {
    let first: ISeriesApi<SeriesType> | null = null;
    const limits = panel.limits;
    const autoscale = limits ? () => ({ priceRange: { minValue: limits[0], maxValue: limits[1] } }) : undefined;
    for (const line of panel.lines) {
      const common = { title: line.label, priceLineVisible: false, lastValueVisible: true, autoscaleInfoProvider: autoscale };
      const series: ISeriesApi<SeriesType> =
        line.style === "histogram"
          ? this.chart.addSeries(HistogramSeries, { ...common, color: line.drawColor ?? CANDLE_UP }, pane)
          : this.chart.addSeries(LineSeries, { ...common, color: line.drawColor ?? PANE_FALLBACK, lineWidth: 1 }, pane);
      const column = line.column;
      this.updaters.push([
        series,
        line.style === "histogram"
          ? (s, c) => s.setData(histogramData(c, column, line.color))
          : (s, c) => s.setData(lineData(c, column)),
      ]);
      first = first ?? series;
    }
    if (first) {
      for (const level of panel.levels) {
        first.createPriceLine({ price: level, color: LEVEL_COLOR, lineWidth: 1, lineStyle: level === 0 ? LineStyle.Solid : LineStyle.Dashed, axisLabelVisible: level !== 0, title: "" });
      }
    }
  }

  private render() {
    for (const [series, update] of this.updaters) update(series, this.columns);
    this.markers.setMarkers(tradeMarkers(this.trades, new Set(this.columns.time)));
  }

  private onRange = (range: LogicalRange | null) => {
    if (range && range.from < PREFETCH_MARGIN) void this.loadOlder();
  };

  /** Load the window before the oldest bar and keep the view on the same bars. */
  async loadOlder(): Promise<void> {
    if (this.loading || !this.previousEnd || this.destroyed) return;
    this.loading = true;
    this.error = null;
    this.emit();
    try {
      const older = await this.fetchOlder(this.previousEnd);
      if (this.destroyed) return;
      const before = this.columns.time.length;
      this.columns = mergeColumns(columnsFromCandles(older.candles), this.columns);
      this.trades = mergeTrades(older.trades, this.trades);
      const added = this.columns.time.length - before;
      const range = this.chart.timeScale().getVisibleLogicalRange();
      this.render();
      if (range) this.chart.timeScale().setVisibleLogicalRange({ from: range.from + added, to: range.to + added });
      this.previousEnd = added > 0 ? older.window.previous_end : null;
    } catch (exc) {
      this.error = (exc as Error).message;
    } finally {
      this.loading = false;
      if (!this.destroyed) this.emit();
    }
  }

  /** Show every loaded bar. */
  fitAll() {
    this.chart.timeScale().fitContent();
  }

  private emit() {
    const time = this.columns.time;
    this.onState({
      bars: time.length,
      totalBars: this.document.period.bars,
      markers: this.markers.markers().length,
      trades: this.trades.length,
      canLoadOlder: this.previousEnd !== null,
      loadingOlder: this.loading,
      error: this.error,
      firstBar: time.length ? time[0] : null,
      lastBar: time.length ? time[time.length - 1] : null,
    });
  }

  destroy() {
    this.destroyed = true;
    this.chart.timeScale().unsubscribeVisibleLogicalRangeChange(this.onRange);
    this.chart.remove();
  }
}

const PANE_FALLBACK = "#1f77b4";
