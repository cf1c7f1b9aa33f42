// The one way the dashboard talks to the backend: JSON over fetch, errors as ApiError.
//
// Requests go to /api on the page's own origin: the Django server that serves the built
// dashboard, or the Vite dev server, whose proxy forwards them (VITE_API_BASE_URL).

/** A failed request, in the API's error shape ({"error": {status, code, message, fields}}). */
export class ApiError extends Error {
  /** 0 when the backend could not be reached at all. */
  readonly status: number;
  /** The API's code: invalid, not_found, tws_unavailable, ...; "network" when unreachable. */
  readonly code: string;
  /** Validation errors by field ("params.FAST"), for 400 answers. */
  readonly fields: Record<string, string[]>;

  constructor(status: number, code: string, message: string, fields?: Record<string, string[]>) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields ?? {};
  }

  get isNetwork(): boolean {
    return this.status === 0;
  }

  get isTwsUnavailable(): boolean {
    return this.status === 503 && this.code === "tws_unavailable";
  }
}

const TOKEN = import.meta.env.VITE_API_TOKEN as string | undefined;

/** Headers every request carries: JSON, and the API token when VITE_API_TOKEN is set. */
export function requestHeaders(hasBody: boolean, token = TOKEN): Record<string, string> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (hasBody) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

/** `path` with the query's non-empty values appended. */
export function withQuery(path: string, query?: Record<string, string | number | null | undefined>) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** An error answer's body as an ApiError (bodies that are not the API's shape included). */
export function errorFromBody(status: number, body: unknown, statusText = ""): ApiError {
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (error && typeof error.message === "string") {
    return new ApiError(
      status,
      typeof error.code === "string" ? error.code : "error",
      error.message,
      (error.fields as Record<string, string[]> | undefined) ?? undefined,
    );
  }
  return new ApiError(status, "error", `HTTP ${status}${statusText ? ` ${statusText}` : ""}`);
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: requestHeaders(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (exc) {
    if ((exc as Error).name === "AbortError") throw exc;
    throw new ApiError(0, "network", "The backend is not reachable (is the Django server running?)");
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    // A proxy in front of a stopped backend answers 502/504 with no JSON: that is "down" too.
    if (parsed === null && [502, 503, 504].includes(response.status)) {
      throw new ApiError(0, "network", "The backend is not reachable (is the Django server running?)");
    }
    throw errorFromBody(response.status, parsed, response.statusText);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string, signal?: AbortSignal) => request<T>("GET", path, undefined, signal),
  post: <T>(path: string, body: unknown) => request<T>("POST", path, body),
};
