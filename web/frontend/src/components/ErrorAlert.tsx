import { Alert, Button } from "antd";
import { ApiError } from "../api/client";

/** The title an error is shown under: backend down, TWS down, bad input, or the status. */
export function errorTitle(error: ApiError): string {
  if (error.isNetwork) return "Backend unreachable";
  if (error.isTwsUnavailable) return "TWS unavailable";
  if (error.status === 400) return "Invalid request";
  if (error.status === 401) return "API token required";
  if (error.status === 404) return "Not found";
  if (error.status === 429) return "Too many requests";
  return `Error ${error.status}`;
}

export function ErrorAlert({ error, onRetry, compact = false }: { error: unknown; onRetry?: () => void; compact?: boolean }) {
  if (!error) return null;
  const apiError = error instanceof ApiError ? error : new ApiError(0, "error", String((error as Error).message ?? error));
  const title = errorTitle(apiError);
  const hint = apiError.isNetwork
    ? " Start it with: python web/backend/manage.py runserver"
    : apiError.status === 401
      ? " Set VITE_API_TOKEN to the server's DJANGO_API_TOKEN."
      : "";
  return (
    <Alert
      type={apiError.isTwsUnavailable ? "warning" : "error"}
      showIcon
      role="alert"
      data-testid={apiError.isNetwork ? "error-network" : apiError.isTwsUnavailable ? "error-tws" : "error-api"}
      title={compact ? `${title}: ${apiError.message}` : title}
      description={compact ? undefined : apiError.message + hint}
      action={onRetry ? <Button size="small" onClick={onRetry}>Retry</Button> : undefined}
      style={{ marginBottom: 12 }}
    />
  );
}
