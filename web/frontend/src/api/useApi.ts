import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, api } from "./client";

export interface ApiState<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/** GET `path` (null: nothing yet), again on `reload()` and every `refreshMs` when given.
 * A failed read clears the data: a stale account must not look current. */
export function useApi<T>(path: string | null, refreshMs?: number): ApiState<T> {
  const [state, setState] = useState<Omit<ApiState<T>, "reload">>({ data: null, error: null, loading: path !== null });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  const inFlight = useRef(false);

  useEffect(() => {
    if (path === null) {
      setState({ data: null, error: null, loading: false });
      return;
    }
    const abort = new AbortController();
    inFlight.current = true;
    setState((s) => ({ ...s, loading: true }));
    api
      .get<T>(path, abort.signal)
      .then((data) => setState({ data, error: null, loading: false }))
      .catch((exc: unknown) => {
        if ((exc as Error).name === "AbortError") return;
        const error = exc instanceof ApiError ? exc : new ApiError(0, "error", String((exc as Error).message ?? exc));
        setState({ data: null, error, loading: false });
      })
      .finally(() => {
        inFlight.current = false;
      });
    return () => abort.abort();
  }, [path, tick]);

  useEffect(() => {
    if (!refreshMs || path === null) return;
    const id = window.setInterval(() => {
      if (!inFlight.current) reload();
    }, refreshMs);
    return () => window.clearInterval(id);
  }, [refreshMs, path, reload]);

  return { ...state, reload };
}
