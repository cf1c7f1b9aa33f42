import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import type { BacktestRun } from "../api/types";
import { MACD, RSI } from "../test/fixtures";
import { BacktestForm } from "./BacktestForm";

function renderForm(props: Partial<Parameters<typeof BacktestForm>[0]> = {}) {
  const onRun = vi.fn();
  const view = render(<BacktestForm strategies={[MACD, RSI]} running={false} error={null} onRun={onRun} {...props} />);
  return { onRun, ...view };
}

describe("BacktestForm", () => {
  it("shows the strategy's parameters with their defaults, help and bounds", async () => {
    renderForm();
    await waitFor(() => expect(screen.getByLabelText("FAST")).toHaveValue("12"));
    expect(screen.getByLabelText("SLOW")).toHaveValue("26");
    expect(screen.getByText("fast EMA period (1 to 200; default 12)")).toBeInTheDocument();
    for (const symbol of ["AAPL", "MSFT", "SPY"]) expect(screen.getByTitle(symbol)).toBeInTheDocument();
  });

  it("runs with the defaults", async () => {
    const { onRun } = renderForm();
    await waitFor(() => expect(screen.getByLabelText("FAST")).toHaveValue("12"));
    fireEvent.click(screen.getByTestId("run-backtest"));
    await waitFor(() => expect(onRun).toHaveBeenCalledTimes(1));
    expect(onRun.mock.calls[0][0]).toMatchObject({
      strategy: "MACD", symbols: ["AAPL", "MSFT", "SPY"], timeframe: "5m", start: null, end: null,
      initial_capital: 100000, commission: 0.005, slippage: 0, write_cache: true,
      params: { FAST: 12, SLOW: 26, SIGNAL: 9, MODE: "long_short" },
    });
  });

  it("refuses a parameter out of its bounds, next to it, and does not run", async () => {
    const { onRun } = renderForm();
    await waitFor(() => expect(screen.getByLabelText("FAST")).toHaveValue("12"));
    fireEvent.change(screen.getByLabelText("FAST"), { target: { value: "500" } });
    fireEvent.click(screen.getByTestId("run-backtest"));
    expect(await screen.findByText("must be at most 200")).toBeInTheDocument();
    expect(onRun).not.toHaveBeenCalled();
  });

  it("refuses a negative initial capital", async () => {
    const { onRun } = renderForm();
    await waitFor(() => expect(screen.getByLabelText("FAST")).toHaveValue("12"));
    fireEvent.change(screen.getByLabelText("Initial capital ($ per symbol)"), { target: { value: "-5" } });
    fireEvent.click(screen.getByTestId("run-backtest"));
    expect(await screen.findByText("must be greater than 0")).toBeInTheDocument();
    expect(onRun).not.toHaveBeenCalled();
  });

  it("shows the server's field errors next to their fields", async () => {
    const error = new ApiError(400, "invalid", "symbols: no data", {
      symbols: ["no 5m (or finer) data file for ZZZZ"],
      "params.SIGNAL": ["must be at most 200"],
    });
    renderForm({ error });
    expect(await screen.findByText("no 5m (or finer) data file for ZZZZ")).toBeInTheDocument();
    expect(screen.getByText("must be at most 200")).toBeInTheDocument();
  });

  it("takes a re-opened run's settings, switching strategy if need be", async () => {
    const run = {
      id: 7, strategy: "RSI", symbols: ["MSFT"], timeframe: "15m", params: { PERIOD: 21 },
      settings: { start: null, end: null, initial_capital: 5000, commission: 0.01, slippage: 0, write_cache: true },
    } as unknown as BacktestRun;
    renderForm({ preset: run });
    await waitFor(() => expect(screen.getByLabelText("PERIOD")).toHaveValue("21"));
    expect(screen.getByLabelText("Initial capital ($ per symbol)")).toHaveValue("5000");
    expect(screen.getByTitle("MSFT")).toBeInTheDocument();
    expect(screen.queryByLabelText("FAST")).not.toBeInTheDocument();
  });

  it("shows a run in progress", () => {
    renderForm({ running: true });
    expect(screen.getByTestId("run-backtest")).toHaveTextContent("Running backtest…");
  });
});
