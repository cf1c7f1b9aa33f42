"""walk_forward() as a script calls it: the windows, no look-ahead (changing the future leaves
the past's choices alone), each out-of-sample window equal to its own backtest from the
equity carried in, and the stitched statistics."""

from __future__ import annotations

import math
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_trading import backtest, walk_forward
from quant_trading.backtesting.optimize import OptimizeError
from quant_trading.backtesting.statistics import Statistics, compute_statistics
from quant_trading.backtesting.walk_forward import Span, parse_walk_forward, windows

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"
GRID = {"FAST": "6,12", "SLOW": "20,26", "SIGNAL": [9]}
NY = "America/New_York"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A folder with the bundled one-minute AAPL and MSFT files (October 2026)."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    folder = tmp_path_factory.mktemp("bars")
    for symbol in ("AAPL", "MSFT"):
        shutil.copy(SAMPLE / f"{symbol}_1m.csv", folder)
    return folder


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_same_statistics(mine: Statistics, theirs: Statistics) -> None:
    for f in fields(Statistics):
        assert same(getattr(mine, f.name), getattr(theirs, f.name)), f.name


def test_parse_walk_forward():
    assert parse_walk_forward("6M:1M") == (Span(6, "M"), Span(1, "M"))
    assert parse_walk_forward("10d:2w") == (Span(10, "D"), Span(2, "W"))
    for bad in ("6M", "6M:1M:1M", "6X:1M", "0M:1M", "M:1M", "6M:-1M", ""):
        with pytest.raises(OptimizeError, match="use IN:OUT"):
            parse_walk_forward(bad)


def test_windows_roll_or_anchor_and_months_do_not_drift():
    start, end = pd.Timestamp("2025-01-31", tz=NY), pd.Timestamp("2025-06-15", tz=NY)
    rolling = windows(start, end, Span(2, "M"), Span(1, "M"))
    days = [(f"{w.in_start:%m-%d}", f"{w.in_end:%m-%d}", f"{w.out_end:%m-%d}") for w in rolling]
    assert days == [
        ("01-31", "03-31", "04-30"),
        ("02-28", "04-30", "05-31"),
        ("03-31", "05-31", "06-15"),  # the last out-of-sample window is cut at the end
    ]
    assert all(w.out_start == w.in_end for w in rolling)
    anchored = windows(start, end, Span(2, "M"), Span(1, "M"), anchored=True)
    assert {w.in_start for w in anchored} == {start}
    assert [w.in_end for w in anchored] == [w.in_end for w in rolling]
    assert windows(start, end, Span(5, "M"), Span(1, "M")) == []
    assert rolling[0].label("in") == "2025-01-31..2025-03-30"
    # Oct 31 + 6M is Apr 30, but + 7M is May 31, not Apr 30 + 1M.
    october = windows(pd.Timestamp("2024-10-31", tz=NY), end, Span(6, "M"), Span(1, "M"))
    assert [f"{w.out_end:%m-%d}" for w in october] == ["05-31", "06-15"]


def test_each_window_trades_its_choice_from_the_carried_equity(data_dir):
    walk = walk_forward(
        "MACD", "AAPL", "1m", in_sample="5D", out_of_sample="3D", data_dir=data_dir, grid=GRID
    )
    assert len(walk.windows) == 9
    carried = 100_000.0
    for w in walk.windows:
        assert w.params == w.search.best_params and w.in_sample == w.search.best
        # The in-sample search is optimize()'s on that window.
        assert w.search.table.iloc[0]["start"] >= w.window.in_start.isoformat()
        assert w.search.table.iloc[0]["end"] < w.window.in_end.isoformat()
        # The out-of-sample window is a plain backtest of the chosen parameters.
        run = backtest(
            "MACD",
            "AAPL",
            "1m",
            data_dir=data_dir,
            params=w.params,
            start=w.window.out_start,
            end=w.window.out_end,
            capital=carried,
        )
        # One symbol: its own statistics, as its cache file has them (optimize's rule).
        assert_same_statistics(w.out_of_sample, run.results[0].statistics)
        carried = w.out_of_sample.equity_final
    stats = walk.statistics
    assert stats.equity_initial == 100_000.0 and stats.equity_final == carried
    assert walk.equity.iloc[-1] == carried and walk.equity.index.is_monotonic_increasing
    assert stats.trades == len(walk.trades) == sum(w.out_of_sample.trades for w in walk.windows)
    assert stats.start == walk.windows[0].out_of_sample.start
    table = walk.table()
    assert list(table.index) == list(range(1, 10))
    assert list(table["FAST"]) == [w.params["FAST"] for w in walk.windows]


def test_several_symbols_stitch_a_portfolio(data_dir):
    walk = walk_forward(
        "MACD",
        ["AAPL", "MSFT"],
        "1m",
        in_sample="10D",
        out_of_sample="1W",
        anchored=True,
        data_dir=data_dir,
        grid=GRID,
    )
    assert [w.window.in_start for w in walk.windows] == [walk.windows[0].window.in_start] * 3
    assert walk.statistics.equity_initial == walk.capital == 200_000.0
    final = sum(w.out_of_sample.equity_final - w.out_of_sample.equity_initial for w in walk.windows)
    assert walk.statistics.net_profit == pytest.approx(final, abs=1e-6)
    assert set(walk.trades["symbol"]) == {"AAPL", "MSFT"}


def _changed_after(source: Path, folder: Path, cut: pd.Timestamp) -> None:
    """``source``'s bars with every price from ``cut`` on moved by a random walk."""
    bars = pd.read_csv(source)
    times = pd.to_datetime(bars["time"], utc=True)
    later = (times >= cut.tz_convert("UTC")).to_numpy()
    walk = np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.004, later.sum())))
    for column in ("open", "high", "low", "close"):
        bars.loc[later, column] = (bars.loc[later, column] * walk).round(4)
    folder.mkdir()
    bars.to_csv(folder / source.name, index=False)


def test_changing_the_future_leaves_the_past_choices_alone(data_dir, tmp_path):
    """No out-of-sample bar leaks into an in-sample search: with every bar from a cut on
    changed, every window whose in-sample part ends by the cut chooses, and scores, the same;
    those out-of-sample windows that end by the cut trade the same."""
    cut = pd.Timestamp("2026-10-16", tz=NY)
    _changed_after(data_dir / "AAPL_1m.csv", tmp_path / "changed", cut)
    settings = dict(in_sample="5D", out_of_sample="3D", grid=GRID, start="2026-10-01")
    before = walk_forward("MACD", "AAPL", "1m", data_dir=data_dir, **settings)
    after = walk_forward("MACD", "AAPL", "1m", data_dir=tmp_path / "changed", **settings)

    past = [(a, b) for a, b in zip(before.windows, after.windows) if a.window.in_end <= cut]
    assert len(past) == 4 and len(before.windows) == len(after.windows)
    for a, b in past:
        assert a.window == b.window and a.params == b.params
        pd.testing.assert_frame_equal(a.search.table, b.search.table)
        if a.window.out_end <= cut:
            assert_same_statistics(a.out_of_sample, b.out_of_sample)
    # The change is real: the searches that saw it score differently.
    later = [(a, b) for a, b in zip(before.windows, after.windows) if a.window.in_end > cut]
    assert later and all(not a.search.table.equals(b.search.table) for a, b in later)


def test_windows_that_do_not_fit_are_refused(data_dir):
    with pytest.raises(
        OptimizeError,
        match=r"--walk-forward 6M:1M: the data from 2026-10-01 "
        r"to 2026-10-30 is too short for a 6M in-sample window",
    ):
        walk_forward(
            "MACD", "AAPL", "1m", in_sample="6M", out_of_sample="1M", data_dir=data_dir, grid=GRID
        )


def test_a_window_without_an_eligible_combination_stays_in_cash(data_dir):
    walk = walk_forward(
        "MACD",
        "AAPL",
        "1m",
        in_sample="10D",
        out_of_sample="10D",
        data_dir=data_dir,
        grid=GRID,
        min_trades=10**6,
    )
    assert walk.windows and all(w.params is None for w in walk.windows)
    assert all(w.out_of_sample is None for w in walk.windows)
    assert walk.statistics is None and walk.equity.empty


def test_stitched_statistics_are_the_statistics_module_s(data_dir):
    walk = walk_forward(
        "MACD", "AAPL", "1m", in_sample="1W", out_of_sample="1W", data_dir=data_dir, grid=GRID
    )
    close = pd.read_csv(data_dir / "AAPL_1m.csv", index_col="time")["close"]
    close.index = pd.to_datetime(close.index, utc=True).tz_convert(NY)
    held = None  # exposure aside, every statistic follows from equity, trades and prices
    stats = compute_statistics(
        walk.equity, walk.trades, close.loc[walk.equity.index], 100_000.0, held
    )
    for f in fields(Statistics):
        if f.name != "exposure_pct":
            assert same(getattr(stats, f.name), getattr(walk.statistics, f.name)), f.name
