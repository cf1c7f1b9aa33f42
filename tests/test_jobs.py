"""How many processes a backtest uses: chosen from the cores and the bars, ``--jobs N`` an
upper bound, and the same results in one process or several."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_module

from quant_trading.backtesting.cache import read_cache
from quant_trading.backtesting.jobs import (
    MIN_BARS_PER_WORKER,
    available_cores,
    choose_jobs,
    default_jobs,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
TWO_YEARS_5M = 38_898
TEN_YEARS_1M = 982_800


@pytest.mark.parametrize(
    ("symbols", "bars", "cores", "jobs"),
    [
        (10, TWO_YEARS_5M, 2, 1),  # 390,000 bars: a worker's start would cost more than it saves
        (50, TWO_YEARS_5M, 2, 2),
        (200, TWO_YEARS_5M, 2, 2),  # never more than the cores
        (200, TWO_YEARS_5M, 8, 8),
        (20, TWO_YEARS_5M, 8, 1),
        (40, TWO_YEARS_5M, 8, 3),  # as many as the bars keep busy
        (1, TEN_YEARS_1M, 8, 1),  # one symbol is not split
        (3, TEN_YEARS_1M, 8, 3),  # nor a few big ones held back
        (100, TWO_YEARS_5M, 1, 1),
        (0, 0, 4, 1),
    ],
)
def test_default_jobs(symbols, bars, cores, jobs):
    assert default_jobs(symbols, bars, cores) == jobs


def test_requested_jobs_are_an_upper_bound():
    assert choose_jobs(None, 200, TWO_YEARS_5M, 2) == 2
    assert choose_jobs(1, 200, TWO_YEARS_5M, 2) == 1
    assert choose_jobs(8, 200, TWO_YEARS_5M, 2) == 2  # not more processes than cores
    assert choose_jobs(2, 10, TWO_YEARS_5M, 2) == 1  # nor than the work pays for
    assert choose_jobs(4, 10, TWO_YEARS_5M, 2, min_bars_per_worker=1) == 2
    assert MIN_BARS_PER_WORKER * 2 > 10 * TWO_YEARS_5M


def test_available_cores():
    assert available_cores() >= 1


def run(*args, env=None):
    return run_module("quant_trading.backtesting.run_backtest", *args,
                      drop=("ACTIVE_STRATEGY", "QT_JOBS_"), env=env)  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    for symbol in ("AAPL", "MSFT", "SPY"):
        shutil.copy(SAMPLE / f"{symbol}_5m.csv", folder / f"{symbol}_5m.csv")
    return folder


@pytest.mark.slow
def test_worker_processes_give_the_same_results(tmp_path, data_dir):
    """Forced into two processes (the sample data alone is too small to be given two), the
    run prints and caches exactly what one process does."""
    args = ["--symbols", "AAPL", "MSFT", "SPY", "--timeframe", "5m", "--data-dir", str(data_dir),
            "-v"]  # fmt: skip
    serial = run(*args, "--cache-dir", str(tmp_path / "a"), "--jobs", "1")
    parallel = run(*args, "--cache-dir", str(tmp_path / "b"), "--jobs", "2",
                   env={"QT_JOBS_MIN_BARS": "1"})  # fmt: skip
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    assert "2 process(es) for 3 symbols" in parallel.stderr
    strip = lambda out: [x for x in out.splitlines() if not x.startswith(("Cache:", "  /"))]  # noqa: E731
    assert strip(serial.stdout) == strip(parallel.stdout)
    for symbol in ("AAPL", "MSFT", "SPY"):
        a = read_cache(tmp_path / "a" / "5m" / f"{symbol}_backtest.json")
        b = read_cache(tmp_path / "b" / "5m" / f"{symbol}_backtest.json")
        np.testing.assert_array_equal(a.candles.to_numpy(), b.candles.to_numpy())
        assert a.trades.equals(b.trades) and a.statistics == b.statistics


def test_the_default_keeps_small_runs_in_one_process(data_dir):
    result = run("--symbols", "AAPL", "MSFT", "--timeframe", "5m", "--data-dir", str(data_dir),
                 "--no-cache", "--jobs", "4", "-v")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 process(es) for 2 symbols, about 7" in result.stderr  # ~78,000 bars
    assert "(--jobs 4)" in result.stderr


def test_a_bad_override_is_one_line(data_dir):
    result = run("--symbols", "AAPL", "--data-dir", str(data_dir), "--no-cache",
                 env={"QT_JOBS_MIN_BARS": "lots"})  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "run_backtest: error: QT_JOBS_MIN_BARS='lots': not a whole number"
    )
