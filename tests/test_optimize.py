"""optimize() as a script calls it: every combination equals its own backtest(), the ranking,
the strategy's checks, random draws, Ctrl-C, bad ranges and the heatmap."""

from __future__ import annotations

import math
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from quant_trading import Parameter, Strategy, backtest
from quant_trading.backtesting.optimize import (
    MAX_GRID,
    OptimizeError,
    heatmap,
    optimize,
    parse_values,
    search_space,
)
from quant_trading.backtesting.statistics import Statistics
from quant_trading.indicators import EMA
from quant_trading.signals import crosses, hold
from quant_trading.strategy import get_strategy

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"
GRID = {"FAST": "8:12:4", "SLOW": "20,26", "SIGNAL": [9]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A folder with the bundled one-minute AAPL and MSFT files (about 8,600 bars each)."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    folder = tmp_path_factory.mktemp("bars")
    for symbol in ("AAPL", "MSFT"):
        shutil.copy(SAMPLE / f"{symbol}_1m.csv", folder)
    return folder


def same(a, b) -> bool:
    """Equal, NaN equal to NaN (a statistic undefined in both)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_same_statistics(row, stats: Statistics) -> None:
    for f in fields(Statistics):
        assert same(row[f.name], getattr(stats, f.name)), f.name


def test_every_combination_equals_its_own_backtest(data_dir):
    result = optimize("MACD", ["AAPL", "MSFT"], "1m", data_dir=data_dir, grid=GRID)
    table = result.table
    assert len(table) == result.planned == 4 and result.rejected == 0
    assert list(table.index) == [1, 2, 3, 4]
    for _, row in table.iterrows():
        params = {"FAST": int(row["FAST"]), "SLOW": int(row["SLOW"]), "SIGNAL": 9}
        run = backtest("MACD", ["AAPL", "MSFT"], "1m", data_dir=data_dir, params=params)
        assert_same_statistics(row, run.statistics)
    assert table["sharpe"].is_monotonic_decreasing
    best = table.iloc[0]
    assert result.best_params == {
        "FAST": int(best["FAST"]),
        "SLOW": int(best["SLOW"]),
        "SIGNAL": 9,
        "MODE": "long_short",
    }
    assert result.env_lines()[0] == f"MACD_FAST={int(best['FAST'])}"
    assert result.symbols == ("AAPL", "MSFT")


def test_window_costs_and_minimize_are_the_backtests(data_dir):
    options = dict(start="2026-10-05", end="2026-10-20", commission=0.0, slippage=0.01, size=10)
    result = optimize(
        "MACD",
        "AAPL",
        "1m",
        data_dir=data_dir,
        grid=GRID,
        objective="max_drawdown_pct",
        maximize=False,
        **options,
    )
    assert result.table["max_drawdown_pct"].is_monotonic_increasing
    run = backtest("MACD", "AAPL", "1m", data_dir=data_dir, params=result.best_params, **options)
    own = run.results[0].statistics  # one symbol: its own statistics, as its cache file has
    assert_same_statistics(result.table.iloc[0], own)
    assert all(same(getattr(result.best, f.name), getattr(own, f.name)) for f in fields(Statistics))


def test_combinations_the_strategy_refuses_are_counted_not_run(data_dir):
    result = optimize(
        "MACD", "AAPL", "1m", data_dir=data_dir, grid={"FAST": "10,20,30", "SLOW": "15,26"}
    )
    # fast >= slow: (20, 15), (30, 15), (30, 26)
    assert result.planned == 6 and result.rejected == 3 and len(result.table) == 3
    assert (result.table["FAST"] < result.table["SLOW"]).all()


def test_min_trades_ranks_thin_combinations_last(data_dir):
    result = optimize("MACD", "AAPL", "1m", data_dir=data_dir, grid=GRID, min_trades=10**9)
    assert not result.table["eligible"].any()
    assert result.best_params is None and result.best is None and result.env_lines() == []


def test_random_draws_are_reproducible_and_distinct(data_dir):
    grid = {"FAST": "2:30", "SLOW": "31:60", "SIGNAL": "5:15"}

    def draw(seed):
        return optimize(
            "MACD",
            "AAPL",
            "1m",
            data_dir=data_dir,
            grid=grid,
            method="random",
            trials=4,
            seed=seed,
            start="2026-10-25",
        )

    def keys(result):
        return sorted(map(tuple, result.table[["FAST", "SLOW", "SIGNAL"]].to_numpy().tolist()))

    first, again, other = draw(7), draw(7), draw(8)
    assert first.planned == 4 and len(first.table) == 4
    assert keys(first) == keys(again) and keys(first) != keys(other)
    assert len(set(keys(first))) == 4
    assert first.table.equals(again.table)


def test_the_default_space_is_the_declared_bounds():
    macd = get_strategy("MACD")
    space = search_space(macd, macd.defaults(), None)
    assert space.values["FAST"] == tuple(range(1, 201))
    assert space.values["SLOW"] == tuple(range(2, 401))
    assert space.fixed == {"MODE": "long_short"}
    assert space.size > MAX_GRID
    with pytest.raises(OptimizeError, match="use --method random"):
        optimize("MACD", "AAPL", "1m", data_dir="nowhere")


@pytest.mark.parametrize(
    ("name", "text", "values"),
    [
        ("FAST", "5:9", (5, 6, 7, 8, 9)),
        ("SLOW", "20:26:3", (20, 23, 26)),
        ("SIGNAL", "5,9,13,9", (5, 9, 13)),
        ("MODE", "long_only,SHORT_ONLY", ("long_only", "short_only")),
    ],
)
def test_parse_values(name, text, values):
    parameter = {p.name: p for p in get_strategy("MACD").parameters}[name]
    assert parse_values(parameter, text) == values


def test_float_ranges_are_rounded_as_typed():
    lower = {p.name: p for p in get_strategy("RSI").parameters}["LOWER"]
    assert parse_values(lower, "20:21:0.1")[:4] == (20.0, 20.1, 20.2, 20.3)
    assert len(parse_values(lower, "20:21:0.1")) == 11


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"FASTER": "5:9"}, "MACD has no parameter FASTER; its parameters: FAST, SLOW"),
        ({"FAST": "9:5"}, "--param FAST=9:5: empty range (start > stop)"),
        ({"FAST": "0:5"}, "--param FAST=0:5: 0 must be between 1 and 200"),
        ({"SLOW": "20:400:0"}, "the step must be positive"),
        ({"FAST": "5.5:9"}, "'5.5': need whole numbers"),
        ({"FAST": ""}, "--param FAST=: no values"),
        ({"MODE": "1:3"}, "a range needs a numeric parameter"),
        ({"MODE": "sideways"}, "choose one of"),
        ({"FAST": "1:200", "SLOW": "2:400", "SIGNAL": "1:200"}, "more than 10,000,000"),
    ],
)
def test_bad_ranges_name_the_problem(grid, message):
    with pytest.raises(OptimizeError, match=None) as caught:
        optimize("MACD", "AAPL", "1m", data_dir="nowhere", grid=grid)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_objective():
    with pytest.raises(OptimizeError, match="unknown objective 'sharp'; choose one of"):
        optimize("MACD", "AAPL", "1m", data_dir="nowhere", grid=GRID, objective="sharp")


def _counting_strategy(stop_after: int) -> Strategy:
    calls = []

    def positions(data, params):
        calls.append(1)
        if len(calls) > stop_after:
            raise KeyboardInterrupt
        return hold(crosses(data["fast"], data["slow"]))

    return Strategy(
        name="EMA_TEST",
        description="EMA cross",
        parameters=(
            Parameter("FAST", 5, int, bounds=(2, 50)),
            Parameter("SLOW", 20, int, bounds=(3, 100)),
        ),
        indicators=lambda p: [EMA(p["FAST"], name="fast"), EMA(p["SLOW"], name="slow")],
        positions=positions,
        validate=lambda p: None if p["FAST"] < p["SLOW"] else _refuse(),
    )


def _refuse():
    raise ValueError("FAST must be below SLOW")


def test_ctrl_c_keeps_what_is_done(data_dir):
    strategy = _counting_strategy(stop_after=3)
    result = optimize(
        strategy, "AAPL", "1m", data_dir=data_dir, grid={"FAST": "5,10", "SLOW": "20,30,40"}
    )
    assert result.interrupted and result.planned == 6 and len(result.table) == 3
    assert result.best_params is not None


def test_heatmap_png(data_dir, tmp_path):
    strategy = _counting_strategy(stop_after=10**9)
    result = optimize(
        strategy, "AAPL", "1m", data_dir=data_dir, grid={"FAST": "5:15:5", "SLOW": "10:30:10"}
    )
    assert result.rejected == 2  # (10, 10), (15, 10)
    path = heatmap(result, "FAST", "SLOW", tmp_path / "map.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2_000
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]  # no temporary file left
    with pytest.raises(OptimizeError, match="not a searched parameter"):
        heatmap(result, "FAST", "MODE", tmp_path / "other.png")


def test_each_indicator_is_computed_once_per_symbol(data_dir, monkeypatch):
    computed = []
    original = EMA.compute

    def counting(self, data):
        computed.append(self.period)
        return original(self, data)

    monkeypatch.setattr(EMA, "compute", counting)
    strategy = _counting_strategy(stop_after=10**9)
    result = optimize(
        strategy,
        ["AAPL", "MSFT"],
        "1m",
        data_dir=data_dir,
        grid={"FAST": "5,10", "SLOW": "20,30,40"},
    )
    assert len(result.table) == 6
    assert sorted(computed) == sorted([5, 10, 20, 30, 40] * 2)
    assert np.isfinite(result.table["return_pct"]).all()


@pytest.mark.parametrize("symbols", [["AAPL"], ["AAPL", "MSFT"]])
def test_processes_give_the_same_table(data_dir, symbols):
    grid = {"FAST": "4:12:2", "SLOW": "10,20,26", "SIGNAL": "9"}
    one = optimize("MACD", symbols, "1m", data_dir=data_dir, grid=grid, start="2026-10-20")
    two = optimize("MACD", symbols, "1m", data_dir=data_dir, grid=grid, start="2026-10-20", jobs=2)
    assert one.rejected == two.rejected == 2  # (10, 10), (12, 10)
    assert one.table.equals(two.table) and one.best_params == two.best_params


def test_the_indicator_memo_keeps_to_its_budget():
    from quant_trading.backtesting.optimize import _IndicatorMemo

    data = {"close": np.arange(1000, dtype=np.float64)}
    memo = _IndicatorMemo(budget=3 * 8000)  # three columns of 1,000 floats
    first = memo.columns(0, EMA(5), data)
    assert memo.columns(0, EMA(5), data) is first  # reused, not recomputed
    for period in (6, 7, 8):
        memo.columns(0, EMA(period), data)
    assert memo.columns(0, EMA(5), data) is not first  # the least recently used went first
    assert memo._bytes <= memo.budget


def test_optuna_tpe_is_seeded_and_runs_each_combination_once(data_dir):
    pytest.importorskip("optuna")
    grid = {"FAST": "2:20", "SLOW": "21:40", "SIGNAL": "9"}

    def search(seed):
        return optimize(
            "MACD",
            "AAPL",
            "1m",
            data_dir=data_dir,
            grid=grid,
            method="optuna",
            trials=12,
            seed=seed,
            start="2026-10-25",
        )

    first, again = search(5), search(5)
    assert first.planned == 12 and first.table.equals(again.table)
    keys = first.table[["FAST", "SLOW"]].apply(tuple, axis=1)
    assert keys.is_unique and len(first.table) + first.rejected <= 12
    best = first.best_params
    run = backtest("MACD", "AAPL", "1m", data_dir=data_dir, params=best, start="2026-10-25")
    assert_same_statistics(first.table.iloc[0], run.results[0].statistics)
