import { Alert, Button, Select, Space, Spin, Tag, Typography } from "antd";
import { useEffect, useRef, useState } from "react";
import { ApiError, api, withQuery } from "../api/client";
import type { ChartDocument } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { ChartController, PANE_HEIGHT, PRICE_HEIGHT, type ChartState } from "./controller";
import { EQUITY_COLOR, MARKER_LOOKS, cacheIsOtherRun, formatBarTime, indicatorPanels, type MarkerKind } from "./series";

/** Bars per window: about a month of 5-minute bars. */
export const WINDOW_BARS = 2000;

export function chartPath(timeframe: string, symbol: string, query: { end?: string; limit?: number } = {}) {
  return withQuery(`/api/charts/${encodeURIComponent(timeframe)}/${encodeURIComponent(symbol)}/`, query);
}

function Legend({ document }: { document: ChartDocument }) {
  const panels = indicatorPanels(document.indicators);
  return (
    <Space size={[4, 4]} wrap style={{ marginBottom: 6 }} aria-label="Chart legend">
      {(Object.keys(MARKER_LOOKS) as MarkerKind[]).map((kind) => (
        <Tag key={kind} variant="outlined">
          <span style={{ color: MARKER_LOOKS[kind].color, fontWeight: 700 }}>{MARKER_LOOKS[kind].shape === "arrowUp" ? "▲" : "▼"}</span> {kind}
        </Tag>
      ))}
      {panels.flatMap((panel) =>
        panel.lines.map((line) => (
          <Tag key={`${panel.name}.${line.column}`} variant="outlined">
            <span style={{ color: line.drawColor ?? "#26a69a", fontWeight: 700 }}>━</span> {line.label}
            {panel.name !== "price" && <Typography.Text type="secondary"> ({panel.name})</Typography.Text>}
          </Tag>
        )),
      )}
      <Tag variant="outlined"><span style={{ color: EQUITY_COLOR, fontWeight: 700 }}>━</span> equity</Tag>
    </Space>
  );
}

/** Candles, trade arrows, indicators and equity of one symbol's cached backtest, loaded
 * window by window as the user scrolls back (GET /api/charts/<tf>/<symbol>/). */
export function BacktestChart({ timeframe, symbols, cacheWritten = true, windowBars = WINDOW_BARS, expected }: {
  timeframe: string;
  symbols: string[];
  cacheWritten?: boolean;
  windowBars?: number;
  /** The run the chart is shown for: a note says so when the cache holds another one. */
  expected?: { strategy: string; params: Record<string, unknown> };
}) {
  const [symbol, setSymbol] = useState(symbols[0]);
  const [document, setDocument] = useState<ChartDocument | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [state, setState] = useState<ChartState | null>(null);
  const element = useRef<HTMLDivElement>(null);
  const controller = useRef<ChartController | null>(null);

  useEffect(() => {
    if (!symbols.includes(symbol)) setSymbol(symbols[0]);
  }, [symbols, symbol]);

  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    setError(null);
    setDocument(null);
    setState(null);
    api
      .get<ChartDocument>(chartPath(timeframe, symbol, { limit: windowBars }), abort.signal)
      .then((doc) => {
        setDocument(doc);
        setLoading(false);
      })
      .catch((exc: unknown) => {
        if ((exc as Error).name === "AbortError") return;
        setError(exc as ApiError);
        setLoading(false);
      });
    return () => abort.abort();
  }, [timeframe, symbol, windowBars]);

  useEffect(() => {
    if (!document || !element.current) return;
    const chart = new ChartController(
      element.current,
      document,
      (end) => api.get<ChartDocument>(chartPath(timeframe, symbol, { end, limit: windowBars })),
      setState,
    );
    controller.current = chart;
    return () => {
      chart.destroy();
      controller.current = null;
    };
  }, [document, timeframe, symbol, windowBars]);

  const panes = document ? indicatorPanels(document.indicators).length : 1;
  const height = PRICE_HEIGHT + PANE_HEIGHT * panes;
  return (
    <div>
      <Space wrap style={{ marginBottom: 8 }}>
        <Select
          aria-label="Chart symbol"
          value={symbol}
          onChange={setSymbol}
          options={symbols.map((s) => ({ value: s, label: s }))}
          style={{ minWidth: 120 }}
        />
        <Button onClick={() => void controller.current?.loadOlder()} disabled={!state?.canLoadOlder} loading={state?.loadingOlder} data-testid="load-older">
          Load older bars
        </Button>
        <Button onClick={() => controller.current?.fitAll()} disabled={!state}>Show all loaded</Button>
        {state && (
          <Typography.Text type="secondary" data-testid="chart-status">
            {state.bars.toLocaleString()} of {state.totalBars.toLocaleString()} bars
            {state.firstBar !== null && ` from ${formatBarTime(state.firstBar, document?.timezone ?? undefined)}`} · {state.markers} arrows
            {state.canLoadOlder ? " · scroll left for older bars" : ""}
          </Typography.Text>
        )}
      </Space>
      {document && cacheIsOtherRun(document, expected) && (
        <Alert
          type="info"
          showIcon
          style={{ marginBottom: 8 }}
          title={`The chart cache now holds a later run: ${document.strategy.name} ${Object.entries(document.strategy.params).map(([k, v]) => `${k}=${v}`).join(" ")}`}
        />
      )}
      {document && <Legend document={document} />}
      {error && (error.status === 404 && !cacheWritten ? (
        <Alert type="info" showIcon title="No chart cache for this run" description="Run it again with “Write chart cache” on to draw its chart." />
      ) : (
        <ErrorAlert error={error} />
      ))}
      {state?.error && <Alert type="error" showIcon title={`Loading older bars failed: ${state.error}`} />}
      <Spin spinning={loading} description="Loading chart…">
        <div
          ref={element}
          className="chart"
          data-testid="chart"
          data-symbol={symbol}
          data-bars={state?.bars ?? 0}
          data-markers={state?.markers ?? 0}
          style={{ height: error ? 0 : height, width: "100%" }}
        />
      </Spin>
    </div>
  );
}
