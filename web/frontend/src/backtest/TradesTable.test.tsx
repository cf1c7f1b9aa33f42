import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { makeTrades } from "../test/fixtures";
import { TradesTable } from "./TradesTable";

const bodyRows = () => screen.getByTestId("trades-table").querySelectorAll("tbody tr.ant-table-row");

describe("TradesTable", () => {
  it("pages the trades", () => {
    render(<TradesTable trades={makeTrades(45)} pageSize={20} />);
    expect(bodyRows()).toHaveLength(20);
    expect(screen.getByText("45 trades")).toBeInTheDocument();
    fireEvent.click(screen.getByTitle("3"));
    expect(bodyRows()).toHaveLength(5);
  });

  it("sorts by P&L", () => {
    const trades = makeTrades(6);
    render(<TradesTable trades={trades} />);
    const header = [...screen.getByTestId("trades-table").querySelectorAll("th")].find((th) => th.textContent === "P&L")!;
    fireEvent.click(header);
    const shown = [...bodyRows()].map((row) => within(row as HTMLElement).getAllByRole("cell")[7].textContent);
    const expected = [...trades].sort((a, b) => a.pnl - b.pnl).map((t) => (t.pnl < 0 ? `-$${Math.abs(t.pnl).toFixed(2)}` : `$${t.pnl.toFixed(2)}`));
    expect(shown).toEqual(expected);
  });

  it("shows sides and exit reasons, and says when there are no trades", () => {
    const { unmount } = render(<TradesTable trades={makeTrades(3)} />);
    expect(screen.getAllByText("short").length).toBeGreaterThan(0);
    expect(screen.getAllByText("session close").length).toBeGreaterThan(0);
    unmount();
    render(<TradesTable trades={[]} />);
    expect(screen.getByText("No trades in this run")).toBeInTheDocument();
  });
});
