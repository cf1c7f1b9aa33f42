"""The optimizer's fast path (shared indicator parts, compiled fill and statistics, no
pandas) gives every row exactly what backtest() gives for the same parameters: on the
bundled bars and on real minute bars, for MACD (its compiled rule: many signal periods of
one MACD line in one call), an EMA cross and RSI (plain positions functions), with windows,
costs, sizing and flat_at_close. MACD's compiled rule gives its positions() to the bar, and
the statistics kernel's shortcuts (a series for the per-bar logs, a drawdown walk that
divides only at new lows) give the plain per-bar formulas' numbers on real equity curves."""

from __future__ import annotations

import math
import shutil
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_trading import backtest
from quant_trading.backtesting import _statistics_jit
from quant_trading.backtesting.engine import simulate
from quant_trading.backtesting.optimize import _IndicatorMemo, optimize
from quant_trading.backtesting.statistics import Statistics, compute_statistics
from quant_trading.csv_store import read_bars, write_bars
from quant_trading.indicators import EMA, MACD
from quant_trading.macd import macd, macd_line, macd_of_line
from quant_trading.signals import MODES
from strategies import macd as macd_strategy

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_rows_are_backtests(result, strategy, symbols, timeframe, data_dir, **options):
    """Every row of ``result`` equals backtest() of its parameters, statistic by statistic."""
    assert len(result.table) > 0
    for _, row in result.table.iterrows():
        chosen = {
            n: row[n].item() if hasattr(row[n], "item") else row[n] for n in result.space.values
        }
        params = result.space.complete(chosen)
        run = backtest(strategy, symbols, timeframe, data_dir=data_dir, params=params, **options)
        stats = run.results[0].statistics if len(symbols) == 1 else run.statistics
        for f in fields(Statistics):
            assert same(row[f.name], getattr(stats, f.name)), (params, f.name)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    """The bundled AAPL and MSFT bars (two years of 5m, a month of 1m)."""
    if not (SAMPLE / "AAPL_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    folder = tmp_path_factory.mktemp("bundled")
    for name in ("AAPL_5m.csv", "MSFT_5m.csv", "AAPL_1m.csv"):
        shutil.copy(SAMPLE / name, folder)
    return folder


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory) -> Path:
    """Real minute bars: a 15,000-bar stretch of lumibot's UPRO file (gaps, both DST
    changes, Saturday bars) and its AMZN file (extended hours), as data files."""
    lumibot = shared_data / "lumibot"
    folder = tmp_path_factory.mktemp("real")
    write_bars(read_bars(lumibot / "UPRO_Minute.csv").iloc[20_000:35_000], folder / "UPRO_1m.csv")
    write_bars(read_bars(lumibot / "AMZN_1M.CSV"), folder / "AMZN_1m.csv")
    return folder


def test_the_macd_line_shared_across_signals_gives_macd_to_the_bit(bundled):
    close = read_bars(bundled / "AAPL_1m.csv")["close"].to_numpy()
    padded = np.r_[np.nan, np.nan, close]  # leading NaNs are skipped as TA-Lib does
    for x in (close, padded, close[:30]):
        line = macd_line(x, 8, 26)
        for signal in (1, 5, 9, 14):
            whole, parts = macd(x, 8, 26, signal), macd_of_line(line, signal)
            for a, b in zip((whole.macd, whole.signal, whole.hist), (parts.macd, parts.signal,
                                                                     parts.hist)):  # fmt: skip
                assert np.array_equal(a, b, equal_nan=True)


def test_the_memo_computes_each_macd_line_once():
    data = {"close": np.cumsum(np.random.default_rng(3).standard_normal(2_000)) + 100}
    memo = _IndicatorMemo()
    made = []
    original = memo.part

    def counting(symbol, key, make):
        return original(symbol, key, lambda: made.append(key) or make())

    memo.part = counting
    for signal in (3, 9, 14):
        for fast in (8, 12):
            shared = memo.columns(0, MACD(fast, 26, signal), data)
            alone = MACD(fast, 26, signal).compute(data)
            assert all(np.array_equal(shared[c], alone[c], equal_nan=True) for c in alone)
    assert made == [("MACD line", "close", 8, 26), ("MACD line", "close", 12, 26)]


@pytest.mark.slow
def test_macd_rows_on_two_years_of_5m_bars(bundled):
    grid = {"FAST": "6,12", "SLOW": "26,40", "SIGNAL": "5,9", "MODE": "long_short,long_only"}
    options = dict(start="2025-11-01", slippage=0.01, fractional=True)
    result = optimize("MACD", ["AAPL"], "5m", data_dir=bundled, grid=grid, **options)
    assert len(result.table) == 16
    assert_rows_are_backtests(result, "MACD", ["AAPL"], "5m", bundled, **options)


@pytest.mark.slow
def test_portfolio_rows_with_flat_at_close_and_a_fixed_size(bundled):
    grid = {"FAST": "5,10", "SLOW": "30", "MA": "ema"}
    options = dict(start="2026-06-01", size=50, flat_at_close=True, commission=0.01)
    result = optimize("MA_CROSS", ["AAPL", "MSFT"], "5m", data_dir=bundled, grid=grid, **options)
    assert len(result.table) == 2
    assert_rows_are_backtests(result, "MA_CROSS", ["AAPL", "MSFT"], "5m", bundled, **options)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "symbols", "grid"),
    [
        ("MACD", ["UPRO"], {"FAST": "4,12", "SLOW": "26", "SIGNAL": "3,9"}),
        ("MACD", ["UPRO", "AMZN"], {"FAST": "12", "SLOW": "20,26", "SIGNAL": "9"}),
        ("RSI", ["AMZN"], {"PERIOD": "7,14", "LOWER": "30", "UPPER": "70"}),
        ("MA_CROSS", ["UPRO"], {"FAST": "5,10", "SLOW": "30", "MA": "sma,ema"}),
    ],
)
def test_rows_on_real_minute_bars(real, strategy, symbols, grid):
    options = dict(start="2020-01-01", flat_at_close=strategy == "RSI")
    result = optimize(strategy, symbols, "1m", data_dir=real, grid=grid, **options)
    assert_rows_are_backtests(result, strategy, symbols, "1m", real, **options)


def _bars(real, name):
    return read_bars(real / f"{name}_1m.csv")


@pytest.mark.parametrize(("fast", "slow"), [(12, 26), (4, 10), (2, 3), (30, 90)])
def test_the_compiled_macd_rule_gives_positions_on_real_bars(real, fast, slow):
    for name in ("UPRO", "AMZN"):
        bars = _bars(real, name)
        data = {c: bars[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")}
        combos = [{"FAST": fast, "SLOW": slow, "SIGNAL": signal, "MODE": mode}
                  for signal in (1, 2, 3, 9, 14, 40) for mode in MODES]  # fmt: skip
        out = np.full((len(combos), len(bars)), 7, np.int8)
        macd_strategy.COMPILED.positions(data, lambda key, make: make(), combos, out)
        for row, params in zip(out, combos):
            columns = MACD(fast, slow, params["SIGNAL"]).compute(data)
            assert np.array_equal(row, macd_strategy.positions(columns, params)), params


def test_the_compiled_macd_rule_on_too_few_bars():
    close = np.linspace(100, 101, 30)
    data = {"close": close}
    combos = [{"FAST": 12, "SLOW": 26, "SIGNAL": s, "MODE": "long_short"} for s in (3, 9)]
    out = np.full((2, 30), 7, np.int8)
    macd_strategy.COMPILED.positions(data, lambda k, m: m(), combos, out)
    expected = [macd_strategy.positions(MACD(12, 26, c["SIGNAL"]).compute(data), c) for c in combos]
    assert np.array_equal(out, np.array(expected))


@pytest.mark.slow
def test_macd_rows_the_same_with_and_without_its_compiled_rule(real):
    grid = {"FAST": "5,12", "SLOW": "26", "SIGNAL": "3:6", "MODE": "long_short,short_only"}
    plain = replace(macd_strategy.STRATEGY, compiled=None)
    fast = optimize("MACD", ["UPRO"], "1m", data_dir=real, grid=grid)
    slow = optimize(plain, ["UPRO"], "1m", data_dir=real, grid=grid)
    assert len(fast.table) == 16
    pd.testing.assert_frame_equal(fast.table, slow.table)


def _above_ema(data, params):
    above = data["close"] > data["EMA"]
    return np.where(np.isnan(data["EMA"]), 0, np.where(above, 1, -1)).astype(np.int8)


def _above_ema_compiled(data, shared, combos, out):
    # The same rule for every period at once; each EMA through the search's memo.
    for r, combo in enumerate(combos):
        period = combo["PERIOD"]
        columns = shared(("EMA", period), lambda p=period: EMA(p).compute(data))
        out[r] = _above_ema({"close": data["close"], **columns}, combo)


def test_a_strategy_of_ones_own_with_a_compiled_rule(bundled):
    """A user's strategy declares a CompiledRule (imported from the facade): the search
    uses it, and its rows equal the search without it and each row's backtest."""
    from quant_trading import CompiledRule, Parameter, Strategy

    calls = []

    def group(params):
        calls.append(params["PERIOD"])
        return None

    strategy = Strategy(
        name="ABOVE_EMA",
        description="long above the EMA, short below",
        parameters=(Parameter("PERIOD", 20, int, bounds=(2, 500)),),
        indicators=lambda params: [EMA(params["PERIOD"])],
        positions=_above_ema,
        compiled=CompiledRule(group=group, positions=_above_ema_compiled),
    )
    grid = {"PERIOD": "10,40,90"}
    options = dict(start="2026-06-01")
    fast = optimize(strategy, ["AAPL"], "5m", data_dir=bundled, grid=grid, **options)
    slow = optimize(replace(strategy, compiled=None), ["AAPL"], "5m", data_dir=bundled,
                    grid=grid, **options)  # fmt: skip
    assert sorted(calls) == [10, 40, 90]
    pd.testing.assert_frame_equal(fast.table, slow.table)
    assert_rows_are_backtests(fast, strategy, ["AAPL"], "5m", bundled, **options)


def _plain_statistics(values, times, capital, held, exit_ns):
    """Drawdowns and exposure by their per-bar definitions, as numpy computes them."""
    peak = np.maximum.accumulate(np.r_[capital, values])[1:]
    dd = 1.0 - values / peak
    trough = int(np.argmax(dd))
    depths, lengths = [], []
    i = 0
    while i < len(dd):
        if dd[i] > 0:
            start = i
            while i < len(dd) and dd[i] > 0:
                i += 1
            depths.append(dd[start:i].max())
            lengths.append((times[min(i, len(dd) - 1)] - times[max(start - 1, 0)]) / 1e9)
        else:
            i += 1
    exposed = (held != 0) | np.r_[False, held[:-1] != 0] | np.isin(times, exit_ns)
    return {
        "max_drawdown_pct": dd[trough] * 100,
        "avg_drawdown_pct": np.mean(depths) * 100 if depths else 0.0,
        "max_drawdown_usd": max(capital, values[: trough + 1].max()) - values[trough]
        if dd[trough] > 0
        else 0.0,
        "max_drawdown_duration_s": max(lengths) if lengths else 0.0,
        "equity_peak": max(capital, values.max()),
        "exposure_pct": exposed.sum() / len(values) * 100,
        "peak": int(np.argmax(values[: trough + 1])) if dd[trough] > 0 else -1,
        "trough": trough if dd[trough] > 0 else -1,
    }


@pytest.mark.parametrize("capital", [100_000.0, 1_000_000.0])  # the second: below it throughout
def test_the_statistics_kernel_equals_the_per_bar_formulas_on_real_curves(real, capital):
    for name in ("UPRO", "AMZN"):
        bars = _bars(real, name)
        target = macd_strategy.positions({"Hist": macd(bars["close"], 4, 10, 3).hist},
                                         {"MODE": "long_only"})  # fmt: skip
        sim = simulate(bars, target, capital=100_000.0)
        values, trades = sim.equity, sim.trades
        stats = compute_statistics(
            pd.Series(values, index=bars.index), trades, bars["close"], capital, sim.position
        )
        exits = pd.DatetimeIndex(trades["exit_time"]).as_unit("ns").asi8
        plain = _plain_statistics(values, bars.index.as_unit("ns").asi8, capital, sim.position,
                                  exits)  # fmt: skip
        for field in plain.keys() - {"peak", "trough"}:
            assert getattr(stats, field) == plain[field], (name, field)
        for field, slot in (("peak", "max_drawdown_peak"), ("trough", "max_drawdown_trough")):
            at = plain[field]
            assert getattr(stats, slot) == (bars.index[at].isoformat() if at >= 0 else None)
        # The logs: within a few ulps of numpy's log of the ratio (the series rounds less).
        ours = _statistics_jit.log_returns(values)
        theirs = np.log(values[1:] / values[:-1])
        assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_the_portfolio_orders_trades_as_combine_sorts_them():
    """A portfolio's trades come in order of exit bar, then symbol name, ties kept in order
    (a stable sort of the symbols' trades one after the other): the compiled counting sort
    that combine() and the parameter search use gives that order, for symbols with no, one,
    tied or many exits."""
    from quant_trading.backtesting._statistics_jit import exit_order

    rng = np.random.default_rng(3)
    for _ in range(300):
        count = int(rng.integers(1, 9))
        runs = [np.sort(rng.integers(0, 25, rng.integers(0, 12))) for _ in range(count)]
        bars = np.concatenate(runs).astype(np.int64)
        edges = np.cumsum([0] + [len(run) for run in runs]).astype(np.int64)
        ranks = rng.permutation(count)  # each symbol's name's rank
        keys = bars * count + np.repeat(ranks, [len(run) for run in runs])
        order = exit_order(bars, edges, np.argsort(ranks), 25)
        assert np.array_equal(order, np.argsort(keys, kind="stable"))
