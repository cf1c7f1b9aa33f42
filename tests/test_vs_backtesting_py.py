"""Same rules, same bars: the same trades, prices, sizes and P&L as backtesting.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from quant_trading.backtesting.engine import Costs, Sizing, simulate
from quant_trading.csv_store import read_bars
from quant_trading.macd import macd
from strategies.macd import positions as macd_positions

backtesting = pytest.importorskip("backtesting", reason="backtesting.py is a test dependency")

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS = {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}


def positions(close):
    """The MACD strategy's target for these closes (its own rule over the core's MACD)."""
    return macd_positions({"Hist": macd(close).hist}, PARAMS)


SIZE = 100


def ibkr(size, price):
    return Costs().commission(abs(size), price)


class TargetFollower(backtesting.Strategy):
    """Trades a precomputed target position: the MACD rule, decided at each bar's close.
    ``size``: shares per entry, or None for backtesting.py's all-equity default."""

    size = SIZE

    def init(self):
        self.target = self.I(
            lambda close: positions(close).astype(float),
            self.data.Close,
        )

    def next(self):
        want = int(self.target[-1])
        have = int(np.sign(self.position.size))
        if want == have:
            return
        sizing = {} if self.size is None else {"size": self.size}
        if want > 0:
            self.buy(**sizing)
        elif want < 0:
            self.sell(**sizing)
        else:
            self.position.close()


def run_backtesting_py(bars, cash, commission, size):
    """backtesting.py's trades for the MACD target on ``bars``, and how many of its orders
    its broker cancelled for insufficient margin."""
    frame = bars.rename(columns=str.title).tz_localize(None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bt = backtesting.Backtest(
            frame,
            TargetFollower,
            cash=cash,
            commission=commission,
            exclusive_orders=True,
            finalize_trades=True,
        )
        trades = bt.run(size=size)._trades
    cancelled = sum("insufficient margin" in str(w.message) for w in caught)
    return trades, cancelled


def assert_same_trades(ours, theirs):
    """Every trade equal; the last one's exit is the documented difference (see below)."""
    assert len(ours) == len(theirs) > 50
    np.testing.assert_array_equal(ours.entry_bar, theirs.EntryBar)
    np.testing.assert_array_equal(ours.exit_bar[:-1], theirs.ExitBar[:-1])
    np.testing.assert_allclose(ours.entry_price, theirs.EntryPrice, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.shares * np.where(ours.side == "long", 1, -1), theirs.Size)
    closed = slice(0, -1)
    np.testing.assert_allclose(ours.commission[closed], theirs.Commission[closed], atol=1e-9)
    np.testing.assert_allclose(ours.exit_price[closed], theirs.ExitPrice[closed], atol=1e-9)
    np.testing.assert_allclose(ours.pnl[closed], theirs.PnL[closed], rtol=0, atol=1e-6)


def cash_before_each_entry(sim, capital):
    """The cash (= equity, flat) just before each entry: the previous exit's result."""
    trades = sim.trades
    return capital + np.r_[0.0, np.cumsum(trades.pnl.to_numpy())[:-1]]


@pytest.mark.parametrize("symbol", ["AAPL", "SPY"])
def test_same_trades_as_backtesting_py(symbol):
    path = REPO_ROOT / "market_data" / f"{symbol}_5m.csv"
    if not path.exists():
        pytest.skip(f"{path} missing")
    bars = read_bars(path).iloc[:4000]
    frame = bars.rename(columns=str.title).tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtesting.Backtest(
            frame,
            TargetFollower,
            cash=1_000_000,
            commission=ibkr,
            exclusive_orders=True,
            finalize_trades=True,
        )
        theirs = bt.run()._trades
    ours = simulate(
        bars, positions(bars["close"]), capital=1_000_000, sizing=Sizing(fixed_shares=SIZE)
    ).trades

    assert len(ours) == len(theirs) > 50
    np.testing.assert_array_equal(ours.entry_bar, theirs.EntryBar)
    np.testing.assert_array_equal(ours.exit_bar, theirs.ExitBar)
    np.testing.assert_allclose(ours.entry_price, theirs.EntryPrice, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.shares * np.where(ours.side == "long", 1, -1), theirs.Size)
    np.testing.assert_allclose(ours.commission, theirs.Commission, rtol=0, atol=1e-9)
    # The one documented difference: the position still open at the end. We close it at the
    # last bar's close; backtesting.py's finalize_trades fills it at the last bar's open.
    closed = slice(0, -1)
    np.testing.assert_allclose(ours.exit_price[closed], theirs.ExitPrice[closed], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.pnl[closed], theirs.PnL[closed], rtol=0, atol=1e-6)
    assert ours.exit_reason.iloc[-1] == "end of data"
    assert ours.exit_price.iloc[-1] == bars.close.iloc[-1]
    assert theirs.ExitPrice.iloc[-1] == bars.open.iloc[-1]


@pytest.fixture(scope="module")
def upro(shared_data):
    """Real UPRO minute bars, 2020 (59,121 bars; both DST changes; many gaps)."""
    return read_bars(shared_data / "lumibot" / "UPRO_Minute.csv")


def test_all_equity_sizing_with_commission_same_as_backtesting_py(upro):
    """All-equity entries leave room for their commission: the same sizes, trade for trade,
    as backtesting.py's ``buy()`` on real data with a per-share commission (no minimum, so its
    sizing rule is exact too). Each entry's cost plus commission fits the cash, and one share
    more would not."""
    costs = Costs(commission_min=0.0)
    theirs, cancelled = run_backtesting_py(
        upro, 100_000, lambda size, price: costs.commission(abs(size), price), size=None
    )
    sim = simulate(upro, positions(upro["close"]), capital=100_000, costs=costs)
    ours = sim.trades
    assert_same_trades(ours, theirs)
    assert cancelled == 0 and sim.refused is None
    cash = cash_before_each_entry(sim, 100_000)
    price, shares = ours.entry_price.to_numpy(), ours.shares.to_numpy()
    cost = shares * price + [costs.commission(n, p) for n, p in zip(shares, price)]
    more = (shares + 1) * price + [costs.commission(n + 1, p) for n, p in zip(shares, price)]
    assert (cost <= cash).all() and (more > cash).all()


def test_with_a_per_order_minimum_we_buy_what_backtesting_py_keeps_in_cash(upro):
    """The one sizing difference, documented in the README: with IBKR's USD 1.00 minimum
    backtesting.py prices every share at ``price + commission(fraction, price) / fraction``,
    i.e. with a one-share order's commission, and keeps that much cash idle; we buy the most
    shares whose cost plus the order's real commission fit."""
    costs = Costs()
    theirs, _ = run_backtesting_py(
        upro, 100_000, lambda size, price: costs.commission(abs(size), price), size=None
    )
    sim = simulate(upro, positions(upro["close"]), capital=100_000, costs=costs)
    first, price = sim.trades.iloc[0], sim.trades.entry_price.iloc[0]
    fraction = 1 - np.finfo(float).eps  # backtesting.py's default size: all equity
    per_share = price + costs.commission(fraction, price) / fraction
    assert abs(theirs.Size.iloc[0]) == 100_000 * fraction // per_share
    assert first.shares * price + costs.commission(first.shares, price) <= 100_000
    assert (first.shares + 1) * price + costs.commission(first.shares + 1, price) > 100_000
    assert first.shares > abs(theirs.Size.iloc[0])


def test_fixed_size_beyond_the_cash_is_refused_like_backtesting_py(shared_data):
    """``--size`` shares that cost more than the cash are not bought (no leverage): the same
    trades as backtesting.py, whose broker cancels such orders, on real AMZN minute bars
    where 450 shares fit the cash at some prices and not at others."""
    bars = read_bars(shared_data / "lumibot" / "AMZN_1M.CSV")
    theirs, cancelled = run_backtesting_py(bars, 100_000, ibkr, size=450)
    sim = simulate(bars, positions(bars["close"]), capital=100_000, sizing=Sizing(fixed_shares=450))
    assert_same_trades(sim.trades, theirs)
    assert cancelled > 0 and sim.refused is not None
    first = sim.refused
    assert first.shares == 450 and first.cost > first.cash
