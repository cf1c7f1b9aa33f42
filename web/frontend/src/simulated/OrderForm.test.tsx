import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OrderForm } from "./OrderForm";

afterEach(() => vi.unstubAllGlobals());

function fill(label: string, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

const stored = { id: 1, created: "", executed_at: "2026-12-01T14:04:47-05:00", symbol: "AAPL", side: "BUY", quantity: 100, price: 310.5, commission: 1, strategy: "", note: "", client_order_id: "x" };

describe("OrderForm", () => {
  it("says what is missing next to each field", async () => {
    const onLogged = vi.fn();
    render(<OrderForm strategies={["MACD"]} onLogged={onLogged} />);
    fireEvent.click(screen.getByTestId("log-order"));
    expect(await screen.findByText("enter a ticker")).toBeInTheDocument();
    expect(screen.getByText("enter the shares")).toBeInTheDocument();
    expect(screen.getByText("enter the fill price")).toBeInTheDocument();
    expect(onLogged).not.toHaveBeenCalled();
  });

  it("sends one client order id for one order, however often it is clicked; a new one for the next", async () => {
    let answer: (r: Response) => void = () => {};
    const fetch = vi
      .fn()
      .mockImplementationOnce(() => new Promise<Response>((resolve) => (answer = resolve)))
      .mockImplementation(() => Promise.resolve(new Response(JSON.stringify(stored), { status: 200 })));
    vi.stubGlobal("fetch", fetch);
    const onLogged = vi.fn();
    render(<OrderForm strategies={[]} onLogged={onLogged} />);
    fill("Symbol", "aapl");
    fill("Quantity", "100");
    fill("Price", "310.5");
    fireEvent.click(screen.getByTestId("log-order"));
    fireEvent.click(screen.getByTestId("log-order"));
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(1));
    fireEvent.click(screen.getByTestId("log-order"));
    answer(new Response(JSON.stringify(stored), { status: 201 }));
    await waitFor(() => expect(onLogged).toHaveBeenCalled());
    // A click whose check finished after the answer re-sends the same id (the server then
    // returns the stored fill): never a second order.
    await new Promise((r) => setTimeout(r, 300));
    const bodies = fetch.mock.calls.map((call) => JSON.parse(call[1].body));
    expect(new Set(bodies.map((b) => b.client_order_id)).size).toBe(1);
    expect(bodies[0]).toMatchObject({ symbol: "AAPL", side: "BUY", quantity: 100, price: 310.5, commission: 1 });
    expect(bodies[0].client_order_id).toMatch(/^web-/);

    const calls = fetch.mock.calls.length;
    fill("Quantity", "100");
    fill("Price", "310.5");
    fireEvent.click(screen.getByTestId("log-order"));
    await waitFor(() => expect(fetch.mock.calls.length).toBe(calls + 1), { timeout: 10_000 });
    expect(JSON.parse(fetch.mock.calls[calls][1].body).client_order_id).not.toBe(bodies[0].client_order_id);
  });

  it("puts the server's validation errors next to their fields", async () => {
    const error = { error: { status: 400, code: "invalid", message: "price: too high", fields: { price: ["price looks wrong"] } } };
    vi.stubGlobal("fetch", vi.fn().mockResolvedValue(new Response(JSON.stringify(error), { status: 400 })));
    render(<OrderForm strategies={[]} onLogged={vi.fn()} />);
    fill("Symbol", "AAPL");
    fill("Quantity", "1");
    fill("Price", "1");
    fireEvent.click(screen.getByTestId("log-order"));
    expect(await screen.findByText("price looks wrong")).toBeInTheDocument();
  });

  it("says when the backend is down", async () => {
    vi.stubGlobal("fetch", vi.fn().mockRejectedValue(new TypeError("Failed to fetch")));
    render(<OrderForm strategies={[]} onLogged={vi.fn()} />);
    fill("Symbol", "AAPL");
    fill("Quantity", "1");
    fill("Price", "1");
    fireEvent.click(screen.getByTestId("log-order"));
    expect(await screen.findByText("Backend unreachable")).toBeInTheDocument();
  });
});
