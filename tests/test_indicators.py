"""Every indicator equals TA-Lib to 1e-9 with the same NaN positions, streaming equals batch,
and the signal helpers follow their documented definitions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import talib

from quant_trading.csv_store import read_bars
from quant_trading.indicators import EMA, MACD, RSI, SMA, Highest, Lowest
from quant_trading.signals import MODES, crosses, hold, limit_sides

TOL = 1e-9
OHLCV = ("open", "high", "low", "close", "volume")

# The real files the comparisons run on (paths inside ../shared/data).
REAL_FILES = (
    "lumibot/AAPL_Minute.csv",
    "lumibot/UPRO_Minute.csv",
    "lumibot/AMZN_1M.CSV",
    "lumibot/spy_test.csv",
    "mplfinance/SP500_NOV2019_IDay.csv",
    "backtrader/2006-min-005.txt",
    "pyalgotrade/ib-spy-5min-20120627.csv",
    "pyalgotrade/nt-spy-minute-2011-03.csv",
)


def read_data(path: Path) -> dict[str, np.ndarray]:
    """OHLCV arrays of a real file. The NinjaTrader export has no header row, which
    read_bars refuses by design, so its five price columns are read directly."""
    if path.name.startswith("nt-spy"):
        table = np.loadtxt(path, delimiter=";", usecols=(1, 2, 3, 4, 5))
        return {c: np.ascontiguousarray(table[:, k]) for k, c in enumerate(OHLCV)}
    bars = read_bars(path)
    return {c: bars[c].to_numpy(np.float64) for c in OHLCV}


def random_bars(n: int, seed: int, flat: float = 0.0) -> dict[str, np.ndarray]:
    """A random walk as OHLCV; ``flat`` is the share of bars that repeat the last close
    exactly (no move: RSI's zero-average case, ties of the extremes)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, rng.uniform(0.05, 2.0), n)
    steps[rng.random(n) < flat] = 0.0
    close = 100 * np.exp(np.cumsum(steps) / 100)
    open_ = np.r_[close[:1], close[:-1]]
    spread = np.abs(rng.normal(0, 0.3, n))
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.integers(0, 10_000, n).astype(float)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def talib_values(indicator, data) -> dict[str, np.ndarray]:
    """TA-Lib's output for ``indicator``, by our column names."""
    if isinstance(indicator, MACD):
        line, signal, hist = talib.MACD(
            data[indicator.source], indicator.fast, indicator.slow, indicator.signal
        )
        return dict(zip(indicator.names, (line, signal, hist)))
    function = {SMA: talib.SMA, EMA: talib.EMA, RSI: talib.RSI, Highest: talib.MAX,
                Lowest: talib.MIN}[type(indicator)]  # fmt: skip
    return {indicator.columns[0]: function(data[indicator.source], timeperiod=indicator.period)}


def assert_matches_talib(indicator, data) -> None:
    ours = indicator.compute(data)
    assert set(ours) == set(indicator.columns)
    for column, reference in talib_values(indicator, data).items():
        mine = ours[column]
        assert mine.shape == reference.shape, column
        if isinstance(indicator, MACD) and column == indicator.names[0]:
            # TA-Lib blanks the MACD line until Signal exists; ours keeps it from index
            # slow-1, where TA-Lib's own EMAs already start (documented in the README).
            defined = ~np.isnan(reference)
            n_nan = min(len(mine), indicator.slow - 1)
            assert np.isnan(mine[:n_nan]).all() and not np.isnan(mine[n_nan:]).any()
            np.testing.assert_allclose(mine[defined], reference[defined], rtol=0, atol=TOL)
            continue
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(reference), err_msg=column)
        np.testing.assert_allclose(mine, reference, rtol=0, atol=TOL, equal_nan=True)


def talib_cases():
    """Indicators with the periods TA-Lib accepts (RSI, MAX, MIN and MACD need >= 2)."""
    cases = []
    for period in (1, 2, 3, 14, 30, 200):
        cases += [SMA(period), EMA(period)]
    for period in (2, 3, 14, 30, 200):
        cases += [RSI(period), Highest(period), Lowest(period)]
    cases += [MACD(), MACD(3, 10, 16), MACD(2, 3, 2), MACD(5, 35, 5)]
    # Other sources and column names.
    cases += [
        SMA(10, name="fast", source="open"),
        EMA(7, source="volume"),
        RSI(9, source="high"),
        Highest(20, source="close"),
        Lowest(20, source="close"),
        MACD(names=("m", "s", "h"), source="low"),
    ]
    return cases


CASES = talib_cases()


def case_id(indicator) -> str:
    return repr(indicator).split("(")[0] + "-" + "-".join(map(str, _periods(indicator)))


def _periods(indicator):
    if isinstance(indicator, MACD):
        return (indicator.fast, indicator.slow, indicator.signal, indicator.source)
    return (indicator.period, indicator.source)


@pytest.mark.parametrize("indicator", CASES, ids=case_id)
@pytest.mark.parametrize(
    ("n", "seed", "flat"), [(3_000, 1, 0.0), (2_000, 2, 0.3), (1_000, 3, 0.6), (500, 4, 0.9)]
)
def test_random_series_match_talib(indicator, n, seed, flat):
    assert_matches_talib(indicator, random_bars(n, seed, flat))


def test_constant_series_match_talib():
    data = {c: np.full(300, 42.5) for c in OHLCV}
    for indicator in CASES:
        assert_matches_talib(indicator, data)


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_series_match_talib(shared_data, name):
    data = read_data(shared_data / name)
    assert len(data["close"]) > 100
    for indicator in CASES:
        assert_matches_talib(indicator, data)


@pytest.mark.parametrize("period", [2, 14])
def test_rsi_after_a_long_flat_stretch_matches_talib(period):
    """RSI is 0 only when there was no move at all, as the TA-Lib compared against (C 0.8);
    TA-Lib 0.4 also zeroed sums below 1e-14, which dropped RSI from 100 to 0 here."""
    # A rise, then no move for 1,000 bars: the average gain decays geometrically below 1e-14
    # (after ~45 bars at period 2, ~420 at period 14) but is not zero, and no loss ever came.
    rng = np.random.default_rng(period)
    close = np.r_[100 + np.cumsum(np.abs(rng.normal(0, 1, 50))), np.full(1_000, 200.0)]
    assert_matches_talib(RSI(period), {c: close for c in OHLCV})


# -- streaming equals batch ----------------------------------------------------------------


def stream_cases():
    cases = []
    for period in (1, 2, 3, 14, 50):
        cases += [SMA(period), EMA(period), RSI(period), Highest(period), Lowest(period)]
    cases += [MACD(), MACD(1, 2, 1), MACD(2, 3, 2), MACD(3, 10, 16)]
    cases += [SMA(5, source="volume"), RSI(5, source="open"), Highest(3, source="close")]
    return cases


STREAM_CASES = stream_cases()


def streamed(indicator, data) -> dict[str, np.ndarray]:
    """Feed ``data`` bar by bar to a fresh stream; the values per column."""
    state = indicator.stream()
    n = len(data["close"])
    rows = [state.update({c: data[c][i] for c in OHLCV}) for i in range(n)]
    assert all(len(row) == len(indicator.columns) for row in rows)
    table = np.array(rows, dtype=np.float64).reshape(n, len(indicator.columns))
    return {column: table[:, k] for k, column in enumerate(indicator.columns)}


def assert_stream_equals_batch(indicator, data) -> None:
    batch = indicator.compute(data)
    for column, values in streamed(indicator, data).items():
        np.testing.assert_array_equal(np.isnan(values), np.isnan(batch[column]), err_msg=column)
        np.testing.assert_allclose(values, batch[column], rtol=0, atol=TOL, equal_nan=True)


@pytest.mark.parametrize("indicator", STREAM_CASES, ids=case_id)
def test_stream_equals_batch_on_random_bars(indicator):
    assert_stream_equals_batch(indicator, random_bars(1_500, 11, flat=0.2))


@pytest.mark.parametrize(
    "name", ["lumibot/UPRO_Minute.csv", "pyalgotrade/nt-spy-minute-2011-03.csv"]
)
def test_stream_equals_batch_on_real_bars(shared_data, name):
    full = read_data(shared_data / name)
    data = {c: a[:3_000] for c, a in full.items()}
    for indicator in STREAM_CASES:
        assert_stream_equals_batch(indicator, data)


def test_streams_are_independent():
    # Two states of one indicator must not share anything (the same frozen settings object).
    data = random_bars(200, 5)
    indicator = EMA(10)
    first, second = indicator.stream(), indicator.stream()
    for i in range(100):
        first.update({c: data[c][i] for c in OHLCV})
    values = [second.update({c: data[c][i] for c in OHLCV})[0] for i in range(100)]
    np.testing.assert_allclose(values, indicator.compute(data)["EMA"][:100], atol=TOL)


# -- short series and bad periods ----------------------------------------------------------


def bars_needed(indicator) -> int:
    """Bars before the first value: ``period`` for the averages and extremes, one more for
    RSI (it needs ``period`` moves), ``slow`` for MACD's first value."""
    if isinstance(indicator, MACD):
        return indicator.slow
    return indicator.period + 1 if isinstance(indicator, RSI) else indicator.period


@pytest.mark.parametrize("indicator", CASES, ids=case_id)
def test_fewer_bars_than_the_period_give_nan(indicator):
    needed = bars_needed(indicator)
    for n in sorted({0, 1, needed - 1} & set(range(needed))):
        data = {c: a[:n] for c, a in random_bars(max(n, 1), 4).items()}
        values = indicator.compute(data)
        assert all(v.shape == (n,) and np.isnan(v).all() for v in values.values())
        state = indicator.stream()
        for i in range(n):
            assert all(math.isnan(v) for v in state.update({c: data[c][i] for c in OHLCV}))
        if n:  # TA-Lib agrees (it cannot take an empty array)
            assert_matches_talib(indicator, data)
    # One more bar gives the first value.
    data = random_bars(needed, 4)
    assert not np.isnan(indicator.compute(data)[indicator.columns[0]][-1])


@pytest.mark.parametrize("indicator", CASES, ids=case_id)
def test_declared_warmup_is_when_every_column_has_a_value(indicator):
    values = indicator.compute(random_bars(indicator.warmup + 5, 6))
    first = max(int(np.flatnonzero(~np.isnan(v))[0]) for v in values.values())
    assert indicator.warmup == first + 1


@pytest.mark.parametrize("kind", [SMA, EMA, RSI, Highest, Lowest])
@pytest.mark.parametrize("period", [0, -3, 2.5, "14", None])
def test_bad_periods_are_refused(kind, period):
    with pytest.raises(ValueError, match=rf"{kind.__name__} period must be an integer >= 1"):
        kind(period)


@pytest.mark.parametrize(
    "periods", [(26, 12, 9), (12, 12, 9), (0, 26, 9), (12, 26, 0), (2.5, 26, 9)]
)
def test_bad_macd_periods_are_refused(periods):
    with pytest.raises(ValueError, match="MACD"):
        MACD(*periods)


def test_numpy_integer_periods_are_accepted():
    data = random_bars(100, 8)
    assert_matches_talib(SMA(np.int64(10)), data)


def test_drawing_hints():
    assert SMA(10, name="fast").lines[0].label == "SMA(10)"
    assert EMA(20).lines[0].label == "EMA(20)"
    assert SMA(5).plot.overlay and EMA(5).plot.overlay and Highest(5).plot.overlay
    rsi = RSI(14, levels=(25, 75.5))
    assert (rsi.plot.panel, rsi.plot.levels, rsi.plot.limits) == ("RSI", (25.0, 75.5), (0, 100))
    assert not rsi.plot.overlay
    assert MACD().columns == ("MACD", "Signal", "Hist") and MACD().plot.levels == (0.0,)


# -- signals -------------------------------------------------------------------------------


def reference_crosses(diff) -> list[int]:
    """The docstring's definition, bar by bar: a cross at t when diff[t] has the opposite
    sign of the last non-zero (and non-NaN) difference before t."""
    out, last = [], 0
    for d in diff:
        sign = 0 if math.isnan(d) or d == 0 else (1 if d > 0 else -1)
        out.append(sign if sign != 0 and last == -sign else 0)
        last = sign or last
    return out


def reference_hold(events) -> list[int]:
    out, side = [], 0
    for e in events:
        side = e or side
        out.append(side)
    return out


def noisy_diff(n: int, seed: int) -> np.ndarray:
    """Small integers with many zeros (ties) and NaNs (warm-up and gaps)."""
    rng = np.random.default_rng(seed)
    diff = rng.integers(-2, 3, n).astype(float)
    diff[rng.random(n) < 0.15] = np.nan
    diff[: rng.integers(0, 10)] = np.nan
    return diff


@pytest.mark.parametrize("seed", range(20))
def test_crosses_follow_the_definition(seed):
    diff = noisy_diff(300, seed)
    ours = crosses(diff)
    assert ours.dtype == np.int8 and ours.shape == diff.shape
    assert ours.tolist() == reference_crosses(diff)
    # Against a second series: the same as the difference, and symmetric.
    rng = np.random.default_rng(seed + 100)
    b = rng.normal(size=300)
    a = b + diff
    assert crosses(a, b).tolist() == ours.tolist()
    assert crosses(b, a).tolist() == (-ours).tolist()
    # A scalar level is the same as a constant series.
    level = 0.5
    assert crosses(a, level).tolist() == crosses(a, np.full(300, level)).tolist()


def test_cross_edge_cases():
    nan = np.nan
    assert crosses([]).tolist() == []
    assert crosses([nan, nan]).tolist() == [0, 0]
    assert crosses([1.0]).tolist() == [0]  # the first sign seen is no cross
    assert crosses([-1, 0, 0, 1]).tolist() == [0, 0, 0, 1]  # through a tie: crosses
    assert crosses([-1, 0, -1, 0, -2]).tolist() == [0] * 5  # touching: no cross
    assert crosses([1, nan, -1]).tolist() == [0, 0, -1]  # a gap does not reset the side
    assert crosses([1, 2, 3], [2, 2, 2]).tolist() == [0, 0, 1]


@pytest.mark.parametrize("seed", range(10))
def test_hold_keeps_the_latest_event(seed):
    events = np.random.default_rng(seed).choice([-1, 0, 0, 0, 1], 200).astype(np.int8)
    events[: seed + 1] = 0
    held = hold(events)
    assert held.dtype == np.int8 and held.tolist() == reference_hold(events.tolist())
    assert hold(crosses(noisy_diff(100, seed))).tolist() == reference_hold(
        reference_crosses(noisy_diff(100, seed))
    )


def test_hold_edge_cases():
    assert hold([]).tolist() == [] and hold([]).dtype == np.int8
    assert hold([0, 0, 0]).tolist() == [0, 0, 0]
    assert hold([0, -1, 0, 1, 1, 0, -1]).tolist() == reference_hold([0, -1, 0, 1, 1, 0, -1])


def test_limit_sides():
    position = hold(np.random.default_rng(1).choice([-1, 0, 1], 100))
    assert limit_sides(position, "long_short").tolist() == position.tolist()
    assert limit_sides(position, "long_only").tolist() == [max(p, 0) for p in position]
    assert limit_sides(position, "short_only").tolist() == [min(p, 0) for p in position]
    for mode in MODES:
        assert limit_sides(position, mode).dtype == np.int8
        assert limit_sides([], mode).tolist() == []


@pytest.mark.parametrize("mode", ["both", "LONG_ONLY", ""])
def test_limit_sides_refuses_an_unknown_mode(mode):
    with pytest.raises(ValueError, match="unknown mode .*long_short, long_only, short_only"):
        limit_sides([1, 0, -1], mode)
