import { Card, Col, Empty, Row, Skeleton, Spin } from "antd";
import { useCallback, useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { ApiError, api } from "../api/client";
import type { BacktestRequest, BacktestRun, Strategy } from "../api/types";
import { useApi } from "../api/useApi";
import { ErrorAlert } from "../components/ErrorAlert";
import { BacktestForm } from "./BacktestForm";
import { PastRuns } from "./PastRuns";
import { RunResults } from "./RunResults";

/** The backtest workspace: settings and past runs on the left, a run's results on the
 * right. The open run is in the URL (/?run=12), so a reload shows it again. */
export function BacktestPage() {
  const strategies = useApi<Strategy[]>("/api/strategies/");
  const [params, setParams] = useSearchParams();
  const runId = Number(params.get("run")) || null;
  const [run, setRun] = useState<BacktestRun | null>(null);
  const [running, setRunning] = useState(false);
  const [loadingRun, setLoadingRun] = useState(false);
  const [runError, setRunError] = useState<ApiError | null>(null);
  const [openError, setOpenError] = useState<ApiError | null>(null);
  const [version, setVersion] = useState(0);

  const open = useCallback(
    (id: number) => {
      setRunError(null);
      setParams({ run: String(id) });
    },
    [setParams],
  );

  useEffect(() => {
    if (runId === null || run?.id === runId) return;
    const abort = new AbortController();
    setLoadingRun(true);
    setOpenError(null);
    api
      .get<BacktestRun>(`/api/backtests/${runId}/`, abort.signal)
      .then((r) => setRun(r))
      .catch((exc: unknown) => {
        if ((exc as Error).name !== "AbortError") setOpenError(exc as ApiError);
      })
      .finally(() => setLoadingRun(false));
    return () => abort.abort();
  }, [runId, run?.id]);

  const start = async (request: BacktestRequest) => {
    setRunning(true);
    setRunError(null);
    try {
      const result = await api.post<BacktestRun>("/api/backtests/", request);
      setRun(result);
      setVersion((v) => v + 1);
      setParams({ run: String(result.id) });
    } catch (exc) {
      setRunError(exc as ApiError);
    } finally {
      setRunning(false);
    }
  };

  let results;
  if (running) {
    results = <Spin size="large" description="Running backtest…" data-testid="running"><div style={{ height: 240 }} /></Spin>;
  } else if (runError && runError.status !== 400) {
    results = <ErrorAlert error={runError} />;
  } else if (loadingRun) {
    results = <Skeleton active paragraph={{ rows: 10 }} />;
  } else if (openError) {
    results = <ErrorAlert error={openError} />;
  } else if (run) {
    results = <RunResults run={run} />;
  } else {
    results = <Empty description="Run a backtest or open a past run to see its results" />;
  }

  return (
    <Row gutter={[16, 16]}>
      <Col xs={24} lg={9} xxl={7}>
        <Card title="Backtest" size="small">
          {strategies.error ? (
            <ErrorAlert error={strategies.error} onRetry={strategies.reload} />
          ) : strategies.data ? (
            strategies.data.length ? (
              <BacktestForm strategies={strategies.data} running={running} error={runError} onRun={start} preset={run} />
            ) : (
              <Empty description="No strategies are registered on the server" />
            )
          ) : (
            <Skeleton active paragraph={{ rows: 8 }} />
          )}
        </Card>
        <Card title="Past runs" size="small" style={{ marginTop: 16 }}>
          <PastRuns version={version} selected={run?.id ?? null} onOpen={open} />
        </Card>
      </Col>
      <Col xs={24} lg={15} xxl={17}>
        <Card size="small" title="Results">{results}</Card>
      </Col>
    </Row>
  );
}
