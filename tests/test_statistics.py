"""Every statistic against backtesting.py on the same trades of real minute bars: the ones
that agree exactly, the durations it rounds up to the bar's resolution, and the two whose
convention differs on purpose (Profit Factor in dollars, Kelly on returns), each checked
against its own formula. The README's "Statistics conventions" lists the same split."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from quant_trading.backtesting.engine import Costs, Sizing, simulate
from quant_trading.backtesting.statistics import compute_statistics
from quant_trading.csv_store import read_bars
from quant_trading.macd import macd
from strategies.macd import positions as macd_positions

backtesting = pytest.importorskip("backtesting", reason="backtesting.py is a test dependency")

PARAMS = {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}
CAPITAL = 100_000

# Our field -> backtesting.py's label, equal to 1e-9 (relative) on the same trades.
EXACT = {
    "exposure_pct": "Exposure Time [%]",
    "equity_final": "Equity Final [$]",
    "equity_peak": "Equity Peak [$]",
    "commissions": "Commissions [$]",
    "return_pct": "Return [%]",
    "buy_hold_return_pct": "Buy & Hold Return [%]",
    "return_ann_pct": "Return (Ann.) [%]",
    "volatility_ann_pct": "Volatility (Ann.) [%]",
    "cagr_pct": "CAGR [%]",
    "sharpe": "Sharpe Ratio",
    "sortino": "Sortino Ratio",
    "calmar": "Calmar Ratio",
    "alpha_pct": "Alpha [%]",
    "beta": "Beta",
    "trades": "# Trades",
    "win_rate_pct": "Win Rate [%]",
    "best_trade_pct": "Best Trade [%]",
    "worst_trade_pct": "Worst Trade [%]",
    "avg_trade_pct": "Avg. Trade [%]",
    "expectancy_pct": "Expectancy [%]",
    "sqn": "SQN",
}
# Drawdowns: the same magnitude; backtesting.py shows them as negative numbers.
NEGATED = {"max_drawdown_pct": "Max. Drawdown [%]", "avg_drawdown_pct": "Avg. Drawdown [%]"}
# Durations: ours in seconds; backtesting.py rounds its Timedelta up to the bars' resolution
# (here a minute).
DURATIONS = {
    "duration_s": "Duration",
    "max_drawdown_duration_s": "Max. Drawdown Duration",
    "avg_drawdown_duration_s": "Avg. Drawdown Duration",
    "max_trade_duration_s": "Max. Trade Duration",
    "avg_trade_duration_s": "Avg. Trade Duration",
}


def macd_target(bars: pd.DataFrame) -> np.ndarray:
    """The MACD strategy's target, flat for the last 30 bars so that both engines close the
    last trade the same way (at a signal, not at the end of the data)."""
    target = macd_positions({"Hist": macd(bars["close"]).hist}, PARAMS)
    target[-30:] = 0
    return target


def both(bars: pd.DataFrame, target: np.ndarray, costs: Costs, size: float | None):
    """(ours, theirs): our Statistics and backtesting.py's stats for ``target`` on ``bars``
    (``size`` shares per entry, or all equity), with our commission rule in both."""

    class Follow(backtesting.Strategy):
        def init(self):
            self.target = self.I(lambda close: target.astype(float), self.data.Close)

        def next(self):
            want, have = int(self.target[-1]), int(np.sign(self.position.size))
            if want == have:
                return
            sizing = {} if size is None else {"size": size}
            if want > 0:
                self.buy(**sizing)
            elif want < 0:
                self.sell(**sizing)
            else:
                self.position.close()

    # Time-zone aware, like ours: days are New York days, and durations across a DST change
    # are the real elapsed time.
    frame = bars.rename(columns=str.title)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = backtesting.Backtest(
            frame,
            Follow,
            cash=CAPITAL,
            commission=lambda shares, price: costs.commission(abs(shares), price),
            exclusive_orders=True,
        ).run()
    sizing = Sizing() if size is None else Sizing(fixed_shares=size)
    sim = simulate(bars, target, capital=CAPITAL, costs=costs, sizing=sizing)
    equity = pd.Series(sim.equity, index=bars.index)
    # Same trades, same equity curve: what follows compares conventions only.
    assert len(sim.trades) == len(theirs._trades) > 0
    np.testing.assert_allclose(sim.equity, theirs._equity_curve["Equity"], rtol=1e-12)
    ours = compute_statistics(equity, sim.trades, bars["close"], CAPITAL, sim.position)
    return ours, theirs, sim.trades


@pytest.fixture(scope="module", params=["UPRO all equity", "AMZN 100 shares"])
def run(request, shared_data):
    """Real minute bars run both ways: UPRO 2020 (both DST changes) all-equity with a
    per-share commission; AMZN 2025 (extended hours) 100 shares with IBKR's USD 1.00 minimum."""
    if request.param == "UPRO all equity":
        bars = read_bars(shared_data / "lumibot" / "UPRO_Minute.csv")
        return both(bars, macd_target(bars), Costs(commission_min=0), None)
    bars = read_bars(shared_data / "lumibot" / "AMZN_1M.CSV")
    return both(bars, macd_target(bars), Costs(), 100)


def test_statistics_equal_to_backtesting_py(run):
    ours, theirs, trades = run
    assert len(trades) > 300
    mine = ours.as_dict()
    for key, label in EXACT.items():
        assert mine[key] == pytest.approx(float(theirs[label]), rel=1e-9, abs=1e-9), label
    for key, label in NEGATED.items():
        assert mine[key] == pytest.approx(-float(theirs[label]), rel=1e-9), label
    for key, label in DURATIONS.items():
        seconds = theirs[label].total_seconds()
        assert seconds - 60 < mine[key] <= seconds, label
    assert pd.Timestamp(mine["start"]) == theirs["Start"]
    assert pd.Timestamp(mine["end"]) == theirs["End"]


def test_profit_factor_and_kelly_differ_by_their_documented_convention(run):
    ours, theirs, trades = run
    pnl, returns = trades["pnl"].to_numpy(), trades["return_pct"].to_numpy()
    win_rate = (pnl > 0).mean()
    # Profit Factor: ours in dollars (> 1 exactly when the trades made money), theirs on
    # percent returns.
    assert ours.profit_factor == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert (ours.profit_factor > 1) == (pnl.sum() > 0)
    assert theirs["Profit Factor"] == pytest.approx(
        returns[returns > 0].sum() / -returns[returns < 0].sum()
    )
    # Kelly: ours from the payoff per dollar staked (trade returns), theirs from dollar P&L.
    assert ours.kelly == pytest.approx(
        win_rate - (1 - win_rate) / (returns[returns > 0].mean() / -returns[returns < 0].mean())
    )
    assert theirs["Kelly Criterion"] == pytest.approx(
        win_rate - (1 - win_rate) / (pnl[pnl > 0].mean() / -pnl[pnl < 0].mean())
    )


def test_our_extra_statistics_agree_with_the_trades_and_equity(run):
    ours, theirs, trades = run
    equity = theirs._equity_curve["Equity"].to_numpy()
    assert ours.net_profit == pytest.approx(trades["pnl"].sum())
    assert ours.long_trades + ours.short_trades == ours.trades
    assert ours.long_trades == (theirs._trades.Size > 0).sum()
    peak = np.maximum.accumulate(equity)
    trough = int(np.argmax(1 - equity / peak))
    assert ours.max_drawdown_usd == pytest.approx(peak[trough] - equity[trough])
    assert pd.Timestamp(ours.max_drawdown_trough) == theirs._equity_curve.index[trough]


def test_sortino_is_infinite_without_a_losing_day_as_in_backtesting_py(shared_data):
    """One winning long trade on real bars, flat otherwise: no day lost, so the downside
    deviation is zero and Sortino unbounded (it was NaN, shown as n/a)."""
    bars = read_bars(shared_data / "lumibot" / "AAPL_Minute.csv")
    full = macd_positions({"Hist": macd(bars["close"]).hist}, PARAMS)
    trades = simulate(bars, full, capital=CAPITAL, sizing=Sizing(fixed_shares=100)).trades
    best = trades[trades.side == "long"].sort_values("pnl").iloc[-1]
    target = np.zeros(len(bars), np.int8)
    # Decided one bar before each fill: long from the entry bar to the exit bar.
    target[best.entry_bar - 1 : best.exit_bar - 1] = 1
    ours, theirs, _ = both(bars, target, Costs(), 100)
    assert ours.trades == 1 and ours.return_pct > 0
    assert ours.sortino == math.inf == theirs["Sortino Ratio"]
