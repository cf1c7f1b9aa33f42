"""The fill simulator on small hand-computed series: fills, sizing, costs, flips, exits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_trading.backtesting.engine import Costs, Refused, Sizing, session_last_bars, simulate

TZ = "America/New_York"
NO_COST = Costs(commission_per_share=0)


def bars(opens, closes, start="2024-01-02 09:30", freq="5min", index=None):
    index = (
        index if index is not None else pd.date_range(start, periods=len(opens), freq=freq, tz=TZ)
    )
    opens, closes = np.asarray(opens, float), np.asarray(closes, float)
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes),
            "low": np.minimum(opens, closes),
            "close": closes,
            "volume": 100.0,
        },
        index=index,
    )


OPENS = [10, 11, 12, 13, 14, 15, 16, 17]
CLOSES = [10.5, 11.5, 12.5, 13.5, 14.5, 15.5, 16.5, 17.5]


def test_fills_at_next_open_flip_and_forced_exit():
    result = simulate(bars(OPENS, CLOSES), np.array([0, 1, 1, -1, -1, 0, 1, 1]), capital=1000)
    t = result.trades
    # Long decided at bar 1's close, filled at bar 2's open (12): 1000 // 12 = 83 shares.
    assert list(t.side) == ["long", "short", "long"]
    assert list(t.entry_bar) == [2, 4, 7] and list(t.exit_bar) == [4, 6, 7]
    assert list(t.entry_price) == [12, 14, 17] and list(t.exit_price) == [14, 16, 17.5]
    assert list(t.shares) == [83, 83, 58]
    # IBKR fixed: 83 * 0.005 = 0.415 -> the USD 1.00 minimum, on each order.
    assert list(t.commission) == [2, 2, 2]
    assert list(t.pnl) == [83 * 2 - 2, -83 * 2 - 2, 58 * 0.5 - 2]
    assert list(t.exit_reason) == ["flip", "signal", "end of data"]
    assert t.return_pct.iloc[0] == pytest.approx(164 / (12 * 83) * 100)
    assert result.equity[-1] == pytest.approx(1000 + 164 - 168 + 27)
    # Mark-to-market at each close: bar 2 holds 83 long bought at 12, close 12.5.
    assert result.equity[2] == pytest.approx(1000 - 1 + 83 * 0.5)
    assert list(result.position) == [0, 0, 83, 83, -83, -83, 0, 0]


@pytest.mark.parametrize(
    ("shares", "price", "fee"),
    [
        (100, 10.0, 1.00),  # 0.50 -> minimum 1.00
        (1_000, 10.0, 5.00),  # 0.005 per share
        (100, 0.5, 0.50),  # minimum exceeds 1% of 50 -> capped at 0.50
        (10_000, 0.9, 50.00),  # 1% of 9000 = 90 > 50: per-share fee stands
        (10_000, 0.4, 40.00),  # 1% of 4000 = 40 < 50: capped
    ],
)
def test_ibkr_fixed_commission(shares, price, fee):
    assert Costs().commission(shares, price) == pytest.approx(fee)
    assert Costs(commission_per_share=0).commission(shares, price) == 0


def test_commission_and_slippage_in_fills():
    frame = bars([10] * 4, [10] * 4)
    result = simulate(
        frame,
        np.array([1, 1, 0, 0]),
        capital=100_000,
        costs=Costs(slippage=0.02),
        sizing=Sizing(fixed_shares=1_000),
    )
    t = result.trades.iloc[0]
    assert (t.entry_price, t.exit_price) == (10.02, 9.98)
    assert t.commission == pytest.approx(10.0)  # two orders of 1000 shares at 0.005
    assert t.pnl == pytest.approx(-0.04 * 1000 - 10)
    assert result.equity[-1] == pytest.approx(100_000 - 50)


def test_short_entry_and_sizing_options():
    frame = bars([20, 20, 18, 18], [20, 19, 18, 18])
    short = simulate(frame, np.array([-1, -1, -1, 0]), capital=1000, costs=NO_COST)
    t = short.trades.iloc[0]
    assert (t.side, t.shares, t.entry_price, t.exit_price, t.pnl) == ("short", 50, 20, 18, 100)
    half = simulate(
        frame, np.array([1, 1, 0, 0]), capital=1000, costs=NO_COST, sizing=Sizing(allocation=0.5)
    )
    assert half.trades.shares.iloc[0] == 25
    frac = simulate(
        frame, np.array([1, 1, 0, 0]), capital=1010, costs=NO_COST, sizing=Sizing(fractional=True)
    )
    assert frac.trades.shares.iloc[0] == pytest.approx(50.5)


def test_too_little_cash_for_one_share_opens_nothing():
    result = simulate(bars([500] * 3, [500] * 3), np.array([1, 1, 1]), capital=100)
    assert result.trades.empty and list(result.equity) == [100, 100, 100]
    assert result.refused == Refused(1, result.index[1], shares=1, cost=501, cash=100)


@pytest.mark.parametrize(
    ("capital", "price", "fractional", "shares"),
    [
        (1_000, 10, False, 99),  # 100 x 10 = 1,000 leaves nothing for the 1.00 minimum
        (1_000, 10, True, 99.9),  # 99.9 x 10 + 1.00 = 1,000
        (100_000, 250, False, 399),  # 399 x 250 + 2.00 (0.005/share) = 99,752
        (100_000, 250, True, 399.992),  # x 250.005 per share = 100,000
        (100, 0.5, False, 198),  # the 1% cap: 198 x 0.505 = 99.99
    ],
)
def test_all_equity_entry_leaves_room_for_its_commission(capital, price, fractional, shares):
    """The most shares whose cost plus commission fit the cash; the cash never goes below 0."""
    result = simulate(
        bars([price] * 3, [price] * 3),
        np.array([1, 1, 1]),
        capital=capital,
        sizing=Sizing(fractional=fractional),
    )
    bought = result.trades.shares.iloc[0]
    assert bought == pytest.approx(shares, abs=1e-3)
    assert bought * price + Costs().commission(bought, price) <= capital
    step = 1e-3 if fractional else 1
    assert (bought + step) * price + Costs().commission(bought + step, price) > capital


def test_fixed_size_beyond_the_cash_is_refused_once_per_signal():
    """No leverage: 100 shares at 10 plus 1.00 commission exceed 1,000 of cash. The order is
    tried again at each open while the signal lasts, and counted once per signal."""
    frame = bars([10] * 6, [10] * 6)
    result = simulate(frame, np.array([1, 1, 1, -1, -1, -1]), capital=1_000,
                      sizing=Sizing(fixed_shares=100))  # fmt: skip
    assert result.trades.empty and list(result.position) == [0] * 6
    assert result.refused == Refused(2, frame.index[1], shares=100, cost=1_001, cash=1_000)
    fits = simulate(frame, np.array([1, 1, 1, -1, -1, -1]), capital=1_100,
                    sizing=Sizing(fixed_shares=100))  # fmt: skip
    assert fits.refused is None and len(fits.trades) == 2


@pytest.mark.parametrize("allocation", [0, -0.5, 1.5])
def test_allocation_is_a_fraction_without_leverage(allocation):
    with pytest.raises(ValueError, match=f"allocation {allocation:g}: must be greater than 0"):
        Sizing(allocation=allocation)


def test_trading_starts_at_the_first_change_inside_the_window():
    target = np.array([1, 1, 1, 1, -1, -1, -1, -1])
    result = simulate(bars(OPENS, CLOSES), target, start=2, capital=1000, costs=NO_COST)
    # Long since bar 0 (before the window) is not entered mid-trend; the flip at bar 4 is.
    assert list(result.trades.entry_bar) == [5] and result.trades.side.iloc[0] == "short"
    assert len(result.equity) == 6


def test_flat_at_close_exits_each_session_and_re_enters():
    day1 = pd.date_range("2024-01-02 15:45", periods=3, freq="5min", tz=TZ)
    day2 = pd.date_range("2024-01-03 09:30", periods=3, freq="5min", tz=TZ)
    frame = bars([10, 11, 12, 13, 14, 15], [10, 11, 12.5, 13, 14, 15.5], index=day1.append(day2))
    assert list(session_last_bars(frame.index)) == [False, False, True, False, False, True]
    result = simulate(
        frame, np.array([1, 1, 1, 1, 1, 1]), capital=1000, costs=NO_COST, flat_at_close=True
    )
    t = result.trades
    assert list(t.exit_reason) == ["session close", "session close"]
    assert list(t.entry_price) == [11, 13] and list(t.exit_price) == [12.5, 15.5]
    assert result.position[2] == 0 and result.position[3] > 0


def test_no_look_ahead():
    """Changing bars after t never changes what happened up to t."""
    rng = np.random.default_rng(5)
    closes = 100 + np.cumsum(rng.normal(0, 1, 300))
    opens = np.r_[100, closes[:-1]] + rng.normal(0, 0.2, 300)
    target = np.sign(np.sin(np.arange(300) / 7)).astype(int)
    base = simulate(bars(opens, closes), target, capital=10_000)
    cut = 150
    changed_closes, changed_opens = closes.copy(), opens.copy()
    changed_closes[cut + 1 :] *= 1.5
    changed_opens[cut + 1 :] *= 0.7
    changed_target = target.copy()
    changed_target[cut + 1 :] = -changed_target[cut + 1 :]
    other = simulate(bars(changed_opens, changed_closes), changed_target, capital=10_000)
    before = base.trades[base.trades.exit_bar <= cut]
    pd.testing.assert_frame_equal(before, other.trades.iloc[: len(before)])
    np.testing.assert_array_equal(base.equity[: cut + 1], other.equity[: cut + 1])


def test_bad_arguments():
    frame = bars(OPENS, CLOSES)
    with pytest.raises(ValueError, match="start"):
        simulate(frame, np.zeros(8), start=8)
    with pytest.raises(ValueError, match="one value per bar"):
        simulate(frame, np.zeros(7))


def test_round_trips_give_the_frame_and_statistics_arrays():
    """The arrays a run measures, caches and prints from are the trades frame's numbers."""
    from quant_trading.backtesting.statistics import TradeArrays

    rng = np.random.default_rng(3)
    closes = 50 + np.cumsum(rng.normal(0, 0.5, 400))
    opens = np.r_[50.0, closes[:-1]]
    target = np.sign(np.sin(np.arange(400) / 7)).astype(np.int8)
    result = simulate(bars(opens, closes), target, capital=10_000, flat_at_close=True)
    trips = result.round_trips.named("XYZ")
    frame = trips.frame()
    assert len(trips) == len(frame) > 10
    pd.testing.assert_frame_equal(frame.drop(columns="symbol"), result.trades)
    assert set(frame["symbol"]) == {"XYZ"}
    pd.testing.assert_frame_equal(trips.tail(4).frame(), frame.iloc[-4:].reset_index(drop=True))
    assert trips.tail(0) is trips and trips.tail(len(trips) + 1) is trips
    ours, theirs = TradeArrays.of_round_trips(trips), TradeArrays.of(frame)
    for name in ("pnl", "return_pct", "commission", "long", "entry_ns", "exit_ns"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)


@pytest.mark.parametrize("flat_at_close", [False, True])
@pytest.mark.parametrize("fixed_shares", [None, 40.0])
def test_the_fill_loop_counts_exposure_as_the_statistics_do(flat_at_close, fixed_shares):
    """A parameter search takes the exposed bars from the fill loop, a backtest counts them
    from the positions and exits: on targets that flip, pause, refuse entries (too little
    cash for 40 shares) and hold through sessions, the two counts agree."""
    from quant_trading.backtesting._statistics_jit import _exposed_bars
    from quant_trading.backtesting.engine import _simulate_kernel

    rng = np.random.default_rng(11)
    index = pd.date_range("2024-01-02 09:30", periods=400, freq="30min", tz=TZ)
    index = index[(index.hour >= 9) & (index.hour < 16)]
    closes = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(index))))
    frame = bars(closes * (1 + rng.normal(0, 0.003, len(index))), closes, index=index)
    flags = session_last_bars(frame.index) if flat_at_close else np.zeros(len(index), bool)
    times = frame.index.as_unit("ns").asi8
    refused = 0
    for trial in range(40):
        runs = rng.integers(1, 12, len(index))  # targets held for 1 to 11 bars
        sides = rng.integers(-1, 2, len(index)).astype(np.int8)
        target = np.repeat(sides, runs)[: len(index)]
        start = int(rng.integers(0, 30))
        capital = float(rng.choice([2500.0, 1e5]))
        sizing = Sizing(fixed_shares=fixed_shares)
        result = simulate(frame, target, start=start, capital=capital, sizing=sizing,
                          flat_at_close=flat_at_close)  # fmt: skip
        costs = Costs()
        *_, exposed = _simulate_kernel(
            frame["open"].to_numpy(), frame["close"].to_numpy(), target, flags, start, capital,
            costs.commission_per_share, costs.commission_min, costs.commission_max_pct / 100,
            costs.slippage, sizing.allocation, fixed_shares or 0.0, False, flat_at_close,
        )  # fmt: skip
        refused += result.refused is not None
        exits = result.records["exit_bar"]
        counted = _exposed_bars(result.position, times[start:], times[exits], exits - start)
        assert exposed == counted, trial
    assert refused > 0 if fixed_shares else refused == 0
