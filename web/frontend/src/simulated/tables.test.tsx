import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { OrderSummary, SimulatedOrder } from "../api/types";
import { Blotter } from "./Blotter";
import { PositionsSummary } from "./PositionsSummary";

afterEach(() => vi.unstubAllGlobals());

const order = (id: number, symbol: string, side: "BUY" | "SELL"): SimulatedOrder => ({
  id, created: "2026-12-01T14:04:47-05:00", executed_at: `2026-12-01T14:0${id}:00-05:00`, symbol, side,
  quantity: 10 * id, price: 100 + id, commission: 1, strategy: "MACD", note: "", client_order_id: null,
});

function serve(routes: (url: URL) => unknown) {
  const fetch = vi.fn().mockImplementation(async (path: string) => {
    const url = new URL(path, "http://test");
    return new Response(JSON.stringify(routes(url)), { status: 200 });
  });
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

describe("Blotter", () => {
  it("shows the server's page of fills and filters by symbol on the server", async () => {
    const fetch = serve((url) => {
      const symbol = url.searchParams.get("symbol");
      const results = symbol ? [order(2, symbol, "SELL")] : [order(3, "MSFT", "BUY"), order(2, "AAPL", "SELL")];
      return { count: symbol ? 1 : 23, next: null, previous: null, results };
    });
    render(<Blotter version={0} />);
    expect(await screen.findByText("23 fills")).toBeInTheDocument();
    expect(screen.getByText("MSFT")).toBeInTheDocument();
    expect(fetch.mock.calls[0][0]).toBe("/api/simulated-orders/?page=1&page_size=10");
    fireEvent.change(screen.getByLabelText("Filter by symbol"), { target: { value: "aapl" } });
    fireEvent.keyDown(screen.getByLabelText("Filter by symbol"), { key: "Enter", code: "Enter", keyCode: 13 });
    expect(await screen.findByText("1 fills of AAPL")).toBeInTheDocument();
    expect(fetch.mock.calls.at(-1)![0]).toBe("/api/simulated-orders/?symbol=AAPL&page=1&page_size=10");
    expect(screen.queryByText("MSFT")).not.toBeInTheDocument();
  });

  it("says when there is nothing yet", async () => {
    serve(() => ({ count: 0, next: null, previous: null, results: [] }));
    render(<Blotter version={0} />);
    expect(await screen.findByText("No simulated orders yet")).toBeInTheDocument();
  });
});

describe("PositionsSummary", () => {
  it("shows each symbol's position, average cost and P&L, with totals", async () => {
    const summary: OrderSummary = {
      strategy: null, symbol: null, accounting: "average cost",
      positions: [{
        symbol: "AAPL", position: 60, average_cost: 310.5, realized_pnl: 58, unrealized_pnl: 43.8, market_value: 18673.8,
        price: { value: 311.23, time: "2026-10-30T15:55:00-04:00", source: "backtest cache", detail: "close of the 5m bar" },
        note: null, commission: 2, fills: 2, first_fill: "", last_fill: "",
      }],
      totals: { realized_pnl: 58, unrealized_pnl: 43.8, commission: 2, fills: 2 },
    };
    serve(() => summary);
    render(<PositionsSummary version={0} />);
    expect(await screen.findByText("$310.50")).toBeInTheDocument();
    expect(screen.getByText("60")).toBeInTheDocument();
    expect(screen.getByText("$311.23")).toBeInTheDocument();
    expect(screen.getAllByText("$58.00")).toHaveLength(2);
    expect(screen.getAllByText("$43.80")).toHaveLength(2);
    expect(screen.getByText("Total")).toBeInTheDocument();
  });

  it("reloads when an order was logged", async () => {
    const fetch = serve(() => ({ strategy: null, symbol: null, accounting: "", positions: [], totals: { realized_pnl: 0, unrealized_pnl: 0, commission: 0, fills: 0 } }));
    const { rerender } = render(<PositionsSummary version={0} />);
    expect(await screen.findByText("No simulated positions yet")).toBeInTheDocument();
    rerender(<PositionsSummary version={1} />);
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(2));
  });
});
