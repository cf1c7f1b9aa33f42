import { afterEach, describe, expect, it, vi } from "vitest";
import { errorTitle } from "../components/ErrorAlert";
import { ApiError, errorFromBody, request, requestHeaders, withQuery } from "./client";

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("reads the API's error shape", () => {
    const error = errorFromBody(400, { error: { status: 400, code: "invalid", message: "symbols: bad", fields: { symbols: ["bad"] } } });
    expect(error).toMatchObject({ status: 400, code: "invalid", message: "symbols: bad", fields: { symbols: ["bad"] } });
    expect(errorFromBody(500, "<html>", "Internal Server Error").message).toBe("HTTP 500 Internal Server Error");
  });

  it("sends the token when one is configured", () => {
    expect(requestHeaders(true, "s3cret")).toEqual({ Accept: "application/json", "Content-Type": "application/json", Authorization: "Bearer s3cret" });
    expect(requestHeaders(false, undefined)).toEqual({ Accept: "application/json" });
  });

  it("drops empty query values", () => {
    expect(withQuery("/api/x/", { symbol: "", page: 2, end: null })).toBe("/api/x/?page=2");
  });

  it("turns a refused connection into a network error", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    const error = (await request("GET", "/api/health/").catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.isNetwork).toBe(true);
    expect(errorTitle(error)).toBe("Backend unreachable");
  });

  it("names TWS being down", async () => {
    const body = { error: { status: 503, code: "tws_unavailable", message: "TWS at 127.0.0.1:7497 is not reachable" } };
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(new Response(JSON.stringify(body), { status: 503 })));
    const error = (await request("GET", "/api/portfolio/").catch((e: unknown) => e)) as ApiError;
    expect(error.isTwsUnavailable).toBe(true);
    expect(errorTitle(error)).toBe("TWS unavailable");
    expect(error.message).toBe("TWS at 127.0.0.1:7497 is not reachable");
  });
});
