"""The optimizer's fast per-combination path (shared indicator parts, compiled fill and
statistics, no pandas) gives every row exactly what backtest() gives for the same
parameters: on the bundled bars and on real minute bars, for MACD (whose line is shared
across signal periods), an EMA cross and RSI (plain positions functions), with windows,
costs, sizing and flat_at_close."""

from __future__ import annotations

import math
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from quant_trading import backtest
from quant_trading.backtesting.optimize import _IndicatorMemo, optimize
from quant_trading.backtesting.statistics import Statistics
from quant_trading.csv_store import read_bars, write_bars
from quant_trading.indicators import MACD
from quant_trading.macd import macd, macd_line, macd_of_line

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
