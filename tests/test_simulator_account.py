"""The simulated account as ibapi and ib_async see it: values, positions, portfolio, summary and
P&L must be what the account file and the data folder say, field by field.

The replay clock is frozen (speed 0) at 10:00 New York, so the current price of each symbol is
the close of the last bar that ended by then, and the previous close is the last bar of the
session before.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from quant_trading.simulator import load_account
from quant_trading.simulator.account import AccountError
from quant_trading.simulator.testing import DEMO_START, ib_async_client

ACCOUNT = {
    "account": "DU7654321",
    "base_currency": "USD",
    "cash": {"USD": 50000.0, "EUR": 10000.0},
    "exchange_rates": {"EUR": 1.1},
    "realized_pnl": {"USD": 125.5},
    "positions": [
        {"symbol": "AAPL", "quantity": 100, "average_cost": 290.0},
        {"symbol": "MSFT", "quantity": -20, "average_cost": 510.0},
        {"symbol": "SPY", "quantity": 10, "average_cost": 600.0},
    ],
}
CON_IDS = {"AAPL": 265598, "MSFT": 272093, "SPY": 756733}


@pytest.fixture
def account_file(tmp_path):
    path = tmp_path / "account.json"
    path.write_text(json.dumps(ACCOUNT))
    return path


def _finest(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return frames["1m"] if "1m" in frames else frames["5m"]


def expected_prices(sim_data) -> dict[str, tuple[float, float]]:
    """(price now, previous session's close) per symbol, straight from the CSV frames."""
    out = {}
    for symbol, frames in sim_data[1].items():
        frame = _finest(frames)
        width = pd.Timedelta(minutes=1 if "1m" in frames else 5)
        done = frame[frame.index + width <= DEMO_START]
        today = done[done.index.normalize() == DEMO_START.normalize()]
        before = done[done.index.normalize() < DEMO_START.normalize()]
        out[symbol] = (float(today["close"].iloc[-1]), float(before["close"].iloc[-1]))
    return out


def expected_account(sim_data) -> dict[str, float]:
    prices = expected_prices(sim_data)
    mv = {p["symbol"]: p["quantity"] * prices[p["symbol"]][0] for p in ACCOUNT["positions"]}
    cash = 50000.0 + 10000.0 * 1.1
    return {
        "cash": cash,
        "stock": sum(mv.values()),
        "gross": sum(abs(v) for v in mv.values()),
        "net_liq": cash + sum(mv.values()),
        "unrealized": sum(
            p["quantity"] * (prices[p["symbol"]][0] - p["average_cost"])
            for p in ACCOUNT["positions"]
        ),
        "daily": sum(
            p["quantity"] * (prices[p["symbol"]][0] - prices[p["symbol"]][1])
            for p in ACCOUNT["positions"]
        ),
    }


def test_ibapi_account_updates_positions_and_portfolio(simulator, ibapi_client, account_file,
                                                        sim_data):  # fmt: skip
    sim = simulator(speed=0, account=load_account(account_file))
    client = ibapi_client(sim.port, 3)
    assert client.of("managedAccounts") == [("DU7654321",)]
    client.app.reqAccountUpdates(True, "DU7654321")
    client.wait(lambda: client.of("accountDownloadEnd"), 5, "accountDownloadEnd")
    values = {(k, ccy): v for k, v, ccy, acct in client.of("updateAccountValue")}
    exp = expected_account(sim_data)
    prices = expected_prices(sim_data)

    def money(key, ccy):
        return float(values[(key, ccy)])

    assert values[("AccountCode", "")] == "DU7654321"
    assert money("CashBalance", "USD") == 50000.0
    assert money("CashBalance", "EUR") == 10000.0
    assert money("CashBalance", "BASE") == pytest.approx(exp["cash"], abs=0.005)
    assert money("TotalCashValue", "USD") == pytest.approx(exp["cash"], abs=0.005)
    assert money("ExchangeRate", "EUR") == 1.1
    assert money("ExchangeRate", "BASE") == 1.0
    assert money("NetLiquidation", "USD") == pytest.approx(exp["net_liq"], abs=0.005)
    assert money("GrossPositionValue", "USD") == pytest.approx(exp["gross"], abs=0.005)
    assert money("StockMarketValue", "BASE") == pytest.approx(exp["stock"], abs=0.005)
    assert money("UnrealizedPnL", "BASE") == pytest.approx(exp["unrealized"], abs=0.005)
    assert money("RealizedPnL", "USD") == 125.5
    # Margin figures move with the market and agree with each other.
    available = exp["net_liq"] - 0.25 * exp["gross"]
    assert money("AvailableFunds", "USD") == pytest.approx(available, abs=0.005)
    assert money("BuyingPower", "USD") == pytest.approx(4 * available, abs=0.02)
    assert money("NetLiquidationByCurrency", "EUR") == 10000.0

    portfolio = {c.symbol: rest for c, *rest in client.of("updatePortfolio")}
    for pos in ACCOUNT["positions"]:
        qty, price, value, avg, unreal, realized, acct = portfolio[pos["symbol"]]
        assert (qty, avg, acct) == (pos["quantity"], pos["average_cost"], "DU7654321")
        assert price == prices[pos["symbol"]][0]
        assert value == pytest.approx(pos["quantity"] * price, abs=0.005)
        assert unreal == pytest.approx(pos["quantity"] * (price - avg), abs=0.005)
    contracts = {c.symbol: c for c, *_ in client.of("updatePortfolio")}
    assert {s: c.conId for s, c in contracts.items()} == CON_IDS
    assert contracts["SPY"].primaryExchange == "ARCA"
    assert client.of("updateAccountTime") == [("10:00",)]

    client.app.reqPositions()
    client.wait(lambda: client.of("positionEnd"), 5, "positionEnd")
    positions = {c.symbol: (acct, qty, avg, c.conId, c.secType, c.currency)
                 for acct, c, qty, avg in client.of("position")}  # fmt: skip
    assert positions == {
        p["symbol"]: ("DU7654321", p["quantity"], p["average_cost"], CON_IDS[p["symbol"]],
                      "STK", "USD")
        for p in ACCOUNT["positions"]
    }  # fmt: skip


def test_ibapi_account_summary_and_pnl(simulator, ibapi_client, account_file, sim_data):
    sim = simulator(speed=0, account=load_account(account_file))
    client = ibapi_client(sim.port, 4)
    exp = expected_account(sim_data)
    client.app.reqAccountSummary(9, "All", "NetLiquidation,TotalCashValue,GrossPositionValue,"
                                 "AccountType,$LEDGER:EUR")  # fmt: skip
    client.wait(lambda: client.of("accountSummaryEnd"), 5, "accountSummaryEnd")
    rows = {(tag, ccy): value for _, acct, tag, value, ccy in client.of("accountSummary", 9)}
    assert float(rows[("NetLiquidation", "USD")]) == pytest.approx(exp["net_liq"], abs=0.005)
    assert float(rows[("TotalCashValue", "USD")]) == pytest.approx(exp["cash"], abs=0.005)
    assert float(rows[("GrossPositionValue", "USD")]) == pytest.approx(exp["gross"], abs=0.005)
    assert rows[("AccountType", "")] == "INDIVIDUAL"
    assert float(rows[("CashBalance", "EUR")]) == 10000.0
    # Account-level rows are the account's; ledger rows the group's, as TWS labels them.
    accounts = {(tag, acct) for _, acct, tag, _, _ in client.of("accountSummary", 9)}
    assert ("NetLiquidation", "DU7654321") in accounts and ("CashBalance", "All") in accounts

    client.app.reqPnL(11, "DU7654321", "")
    client.app.reqPnLSingle(12, "DU7654321", "", CON_IDS["AAPL"])
    client.wait(lambda: client.of("pnl", 11) and client.of("pnlSingle", 12), 5, "pnl")
    _, daily, unrealized, realized = client.of("pnl", 11)[0]
    assert daily == pytest.approx(exp["daily"], abs=0.005)
    assert unrealized == pytest.approx(exp["unrealized"], abs=0.005)
    assert realized == 125.5
    price, prev = expected_prices(sim_data)["AAPL"]
    _, pos, daily, unrealized, realized, value = client.of("pnlSingle", 12)[0]
    assert (pos, realized) == (100, 0.0)
    assert daily == pytest.approx(100 * (price - prev), abs=0.005)
    assert unrealized == pytest.approx(100 * (price - 290.0), abs=0.005)
    assert value == pytest.approx(100 * price, abs=0.005)


def test_ib_async_sees_the_same_account(simulator, account_file, sim_data):
    sim = simulator(speed=0, account=load_account(account_file))
    ib = ib_async_client()
    ib.connect("127.0.0.1", sim.port, clientId=5, timeout=10)  # its defaults must complete
    try:
        exp = expected_account(sim_data)
        prices = expected_prices(sim_data)
        assert ib.managedAccounts() == ["DU7654321"]
        positions = {p.contract.symbol: (p.position, p.avgCost) for p in ib.positions()}
        assert positions == {p["symbol"]: (p["quantity"], p["average_cost"])
                             for p in ACCOUNT["positions"]}  # fmt: skip
        portfolio = {p.contract.symbol: p for p in ib.portfolio()}
        assert portfolio["AAPL"].marketPrice == prices["AAPL"][0]
        assert portfolio["MSFT"].marketValue == pytest.approx(-20 * prices["MSFT"][0], abs=0.005)
        values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
        assert float(values[("NetLiquidation", "USD")]) == pytest.approx(exp["net_liq"], abs=0.005)
        assert float(values[("CashBalance", "EUR")]) == 10000.0
        summary = {(v.tag, v.currency): v.value for v in ib.accountSummary()}
        assert float(summary[("NetLiquidation", "USD")]) == pytest.approx(exp["net_liq"],
                                                                         abs=0.005)  # fmt: skip
        pnl = ib.reqPnL("DU7654321")
        ib.sleep(0.2)
        assert pnl.dailyPnL == pytest.approx(exp["daily"], abs=0.005)
        assert ib.openTrades() == [] and ib.fills() == []
    finally:
        ib.disconnect()


def test_account_values_follow_the_replayed_price(simulator, ibapi_client, account_file):
    """With the clock running, the portfolio pushes new prices and the values stay
    consistent: market value = quantity x price, net liquidation = cash + market values."""
    sim = simulator(speed=120, account=load_account(account_file), account_refresh=0.2)
    client = ibapi_client(sim.port, 6)
    client.app.reqAccountUpdates(True, "")
    client.wait(lambda: client.of("accountDownloadEnd"), 5, "accountDownloadEnd")
    first = len(client.of("updatePortfolio"))
    client.wait(lambda: len(client.of("updatePortfolio")) >= first + 6, 10, "portfolio updates")
    latest = {}
    for contract, qty, price, value, avg, unreal, *_ in client.of("updatePortfolio"):
        assert value == pytest.approx(qty * price, abs=0.005)
        assert unreal == pytest.approx(qty * (price - avg), abs=0.005)
        latest[contract.symbol] = value
    assert len({a[2] for a in client.of("updatePortfolio") if a[0].symbol == "AAPL"}) > 1


def test_account_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AccountError, match="bad.json: not a readable JSON file"):
        load_account(bad)
    missing_rate = tmp_path / "rate.json"
    missing_rate.write_text(json.dumps({"cash": {"USD": 1, "JPY": 5}}))
    with pytest.raises(AccountError, match="no exchange rate for JPY"):
        load_account(missing_rate)
    with pytest.raises(AccountError, match="not found"):
        load_account(tmp_path / "nope.json")


def test_account_summary_keeps_streaming_changes(simulator, ibapi_client, account_file):
    sim = simulator(speed=120, account=load_account(account_file), account_refresh=0.2)
    client = ibapi_client(sim.port, 6)
    client.app.reqAccountSummary(3, "All", "NetLiquidation,TotalCashValue")
    client.wait(lambda: client.of("accountSummaryEnd", 3), 5, "accountSummaryEnd")
    client.wait(lambda: len(client.of("accountSummary", 3)) >= 4, 10, "an update after the end")
    updates = client.of("accountSummary", 3)[2:]
    assert {u[2] for u in updates} == {"NetLiquidation"}  # cash does not move, NLV does
    client.app.cancelAccountSummary(3)
