"""Many symbols in one run: memory does not grow with their bars (each symbol is reduced to
its trades and statistics as soon as it is computed), the portfolio added up symbol by symbol
is the frame of all symbols summed row by row, to the bit, and worker processes change no
number."""

from __future__ import annotations

import gc
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from quant_trading.backtesting.runner import BacktestOptions, SymbolResult, run_symbols
from quant_trading.backtesting.statistics import compute_statistics
from quant_trading.csv_store import read_bars, write_bars
from quant_trading.strategy import configure

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
SYMBOLS = [f"S{i:02d}" for i in range(16)]


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """16 symbols of a month of 1-minute bars each (copies of the bundled files)."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    folder = tmp_path_factory.mktemp("many")
    for symbol, source in zip(SYMBOLS, ["AAPL", "MSFT", "SPY"] * 6):
        shutil.copy(SAMPLE / f"{source}_1m.csv", folder / f"{symbol}_1m.csv")
    return folder


def run(folder: Path, symbols, **kwargs):
    config = configure("MACD", {}, timeframe="1m", symbols=symbols)
    return run_symbols(config, str(folder), BacktestOptions(), progress=False, **kwargs)


def peak_memory(folder: Path, count: int, keep_series: bool) -> int:
    """Peak bytes Python allocated during a run of ``count`` symbols, caching included."""
    cache = folder / "cache"
    tracemalloc.start()
    try:
        result = run(folder, SYMBOLS[:count], cache_dir=cache, keep_series=keep_series)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


@pytest.mark.slow
def test_memory_does_not_grow_with_the_symbols(many):
    peak_memory(many, 16, keep_series=False)  # first run: parsed-bars cache, compiled code
    few, lots = (peak_memory(many, n, keep_series=False) for n in (4, 16))
    # Four times the symbols: only their trades and statistics are added.
    assert lots / few < 2, (few, lots)
    # The same run keeping every symbol's candles and equity grows with them: the check sees
    # per-bar arrays when they are kept.
    few, lots = (peak_memory(many, n, keep_series=True) for n in (4, 16))
    assert lots / few > 2.5, (few, lots)


def reference_portfolio(results: list[SymbolResult]):
    """The portfolio as one frame of every symbol's columns, summed row by row (how it was
    computed before symbols were added one at a time)."""
    frame = pd.concat({r.symbol: r.equity for r in results}, axis=1, sort=True).ffill()
    for r in results:  # before a symbol's first bar its capital sits in cash
        frame[r.symbol] = frame[r.symbol].fillna(r.options.capital)
    equity = frame.sum(axis=1).rename("portfolio")
    held = pd.concat(
        {r.symbol: pd.Series(np.abs(r.position), index=r.equity.index) for r in results},
        axis=1,
        sort=True,
    )
    held = held.reindex(equity.index).ffill().fillna(0).sum(axis=1).to_numpy()
    basket = pd.concat(
        {
            r.symbol: r.candles["close"] / r.candles["close"].iloc[0] * r.options.capital
            for r in results
        },
        axis=1,
        sort=True,
    ).reindex(equity.index)
    for r in results:
        basket[r.symbol] = basket[r.symbol].ffill().fillna(r.options.capital)
    trades = pd.concat([r.trades for r in results], ignore_index=True)
    trades = trades.sort_values(["exit_time", "symbol"], kind="stable", ignore_index=True)
    capital = sum(r.options.capital for r in results)
    return equity, trades, compute_statistics(equity, trades, basket.sum(axis=1), capital, held)


def test_the_portfolio_is_the_row_sum_of_all_symbols(tmp_path):
    """Symbols whose bars start, stop and pause at different times: between its bars a
    symbol's last equity carries on, before its first its capital sits in cash."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    bars = read_bars(SAMPLE / "AAPL_1m.csv")
    write_bars(bars, tmp_path / "AAPL_1m.csv")
    write_bars(read_bars(SAMPLE / "MSFT_1m.csv").iloc[3_000:-2_000], tmp_path / "MSFT_1m.csv")
    spy = read_bars(SAMPLE / "SPY_1m.csv")
    write_bars(spy.drop(spy.index[1_000:1_400]).iloc[::2], tmp_path / "SPY_1m.csv")
    symbols = ["MSFT", "AAPL", "SPY"]
    got = run(tmp_path, symbols, keep_series=True)
    equity, trades, statistics = reference_portfolio(got.results)
    assert len(set(len(r.equity) for r in got.results)) == 3  # three different indexes
    pd.testing.assert_series_equal(got.portfolio.equity, equity, check_exact=True)
    pd.testing.assert_frame_equal(got.portfolio.trades, trades, check_exact=True)
    assert got.portfolio.statistics.as_dict() == statistics.as_dict()
    # Reduced as the run goes, the same numbers, in one process or two.
    for jobs in (1, 2):
        reduced = run(tmp_path, symbols, keep_series=False, jobs=jobs)
        pd.testing.assert_series_equal(reduced.portfolio.equity, equity, check_exact=True)
        pd.testing.assert_frame_equal(reduced.portfolio.trades, trades, check_exact=True)
        assert reduced.portfolio.statistics.as_dict() == statistics.as_dict()
        assert reduced.report(0) == got.report(0)


@pytest.mark.parametrize("jobs", [2, 3])
def test_worker_processes_change_no_number(many, tmp_path, jobs):
    """Several processes (this one and workers) give the report, the portfolio and the cache
    files of one, byte for byte: the symbols are added in the order asked for, whichever
    process computed them and whenever it finished."""
    one = run(many, SYMBOLS[:7], jobs=1, cache_dir=tmp_path / "one", keep_series=False)
    two = run(many, SYMBOLS[:7], jobs=jobs, cache_dir=tmp_path / "two", keep_series=False)
    assert two.report(0) == one.report(0)
    assert [r.symbol for r in two.results] == SYMBOLS[:7]
    pd.testing.assert_series_equal(two.portfolio.equity, one.portfolio.equity, check_exact=True)
    pd.testing.assert_frame_equal(two.portfolio.trades, one.portfolio.trades, check_exact=True)
    assert two.portfolio.statistics.as_dict() == one.portfolio.statistics.as_dict()
    assert [p.name for p in two.cache_files] == [p.name for p in one.cache_files]
    for a, b in zip(one.cache_files, two.cache_files):
        doc_a, doc_b = orjson.loads(a.read_bytes()), orjson.loads(b.read_bytes())
        doc_a.pop("created"), doc_b.pop("created")
        assert doc_a == doc_b, a.name
    assert gc.get_freeze_count() == 0  # what was frozen for the workers' sake is thawed
