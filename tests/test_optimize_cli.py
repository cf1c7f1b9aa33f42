"""``python -m quant_trading.backtesting.optimize`` as a user runs it: the ranked table, the
files it writes, the best combination re-run through run_backtest, and bad input."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading.backtesting.cache import read_cache

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"
MODULE = "quant_trading.backtesting.optimize"
# The developer's strategy.env and environment must not decide what runs.
DROP = ("ACTIVE_STRATEGY", "MACD_", "IBKR_")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder with AAPL's one-minute bars, an empty settings file)."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    root = tmp_path_factory.mktemp("optimize_cli")
    (root / "data").mkdir()
    shutil.copy(SAMPLE / "AAPL_1m.csv", root / "data")
    (root / "strategy.env").write_text("")
    return root / "data", root / "strategy.env"


def common(folders) -> list[str]:
    data, env = folders
    return [
        "--strategy",
        "MACD",
        "--symbols",
        "AAPL",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data),
        "--env-file",
        str(env),
    ]


@pytest.mark.slow
def test_best_combination_reruns_identically_through_run_backtest(folders, tmp_path):
    out = tmp_path / "optimize"
    result = run_module(
        MODULE,
        *common(folders),
        "--param",
        "FAST=6:12:2",
        "--param",
        "SLOW=20,26",
        "--param",
        "SIGNAL=9",
        "--top",
        "3",
        "--heatmap",
        "FAST,SLOW",
        "--out-dir",
        str(out),
        drop=DROP,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "MACD optimization on 1m bars of AAPL: grid of 8 combinations"
    assert "  8 run, 0 refused by MACD's checks, 0 with fewer than 1 trade(s)" in lines
    assert "Top 3 by Sharpe Ratio (max):" in lines
    header = lines.index("Top 3 by Sharpe Ratio (max):") + 1
    assert lines[header].split()[:5] == ["Rank", "FAST", "SLOW", "SIGNAL", "Sharpe"]
    assert [line.split()[0] for line in lines[header + 1 : header + 4]] == ["1", "2", "3"]
    assert max(map(len, lines[: header + 4])) <= 100

    csv_files = list(out.glob("MACD_1m_*.csv"))
    assert len(csv_files) == 1
    stem = csv_files[0].with_suffix("")
    png = Path(f"{stem}_heatmap_FAST_SLOW.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [csv_files[0].name, f"{stem.name}.json", png.name]
    )
    table = pd.read_csv(csv_files[0], index_col="rank")
    document = json.loads(Path(f"{stem}.json").read_text())
    assert len(table) == len(document["results"]) == 8
    assert document["best_params"]["FAST"] == table.iloc[0]["FAST"]

    env_lines = lines[lines.index("Best parameters (paste into strategy.env):") + 1 :]
    assert [line.split("=")[0] for line in env_lines] == [
        "MACD_FAST",
        "MACD_SLOW",
        "MACD_SIGNAL",
        "MACD_MODE",
    ]
    env = dict(line.split("=", 1) for line in env_lines)

    cache = tmp_path / "cache"
    data, settings = folders
    rerun = run_module(
        "quant_trading.backtesting.run_backtest",
        "--symbols",
        "AAPL",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data),
        "--env-file",
        str(settings),
        "--cache-dir",
        str(cache),
        drop=DROP,
        env={"ACTIVE_STRATEGY": "MACD", **env},
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"fast={env['MACD_FAST']} slow={env['MACD_SLOW']}" in rerun.stdout
    cached = read_cache(cache / "1m" / "AAPL_backtest.json").statistics.as_dict()
    best = document["results"][0]
    assert best["rank"] == 1
    for name, value in cached.items():
        mine = best[name]
        if isinstance(value, float) and math.isnan(value):
            assert mine is None, name
        elif isinstance(value, float) and math.isinf(value):
            assert mine == ("Infinity" if value > 0 else "-Infinity"), name
        else:
            assert mine == value, name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "FASTER=5:9"], "MACD has no parameter FASTER"),
        (["--param", "FAST=9:5"], "--param FAST=9:5: empty range (start > stop)"),
        (["--param", "FAST=0:5"], "--param FAST=0:5: 0 must be between 1 and 200"),
        (["--param", "FAST"], "--param 'FAST': use NAME=start:stop[:step] or NAME=a,b,c"),
        ([], "the grid has 15,960,000 combinations (more than 10,000,000)"),
        (["--param", "FAST=5:9", "--objective", "sharp"], "unknown objective 'sharp'"),
        (["--param", "FAST=5:9", "--heatmap", "FAST,SLOW"], "--heatmap FAST,SLOW: SLOW is not"),
        (["--param", "FAST=5:9", "--trials", "5"], "--trials needs --method random"),
        (["--param", "FAST=5,6", "--start", "2030-01-01"], "AAPL_1m.csv"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(folders, tmp_path, args, message):
    out = tmp_path / "optimize"
    result = run_module(MODULE, *common(folders), *args, "--out-dir", str(out), drop=DROP)
    assert result.returncode in (1, 2) if "csv" in message else result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("optimize: error: ") and result.stderr.count("\n") == 1
    assert result.stdout == "" and not out.exists()


def test_random_search_prints_its_seed(folders, tmp_path):
    out = tmp_path / "optimize"
    result = run_module(
        MODULE,
        *common(folders),
        "--param",
        "FAST=5:12",
        "--param",
        "SLOW=20:30",
        "--method",
        "random",
        "--trials",
        "3",
        "--seed",
        "4",
        "--start",
        "2026-10-20",
        "--out-dir",
        str(out),
        drop=DROP,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(": random 3 of 88 combinations (seed 4)")
    assert len(list(out.glob("*.json"))) == 1


@pytest.mark.slow
def test_ctrl_c_writes_what_is_done(folders, tmp_path):
    import queue
    import signal
    import subprocess
    import sys
    import threading
    import time

    out = tmp_path / "optimize"
    data, env = folders
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            MODULE,
            *common(folders),
            "--param",
            "FAST=2:60",
            "--param",
            "SLOW=61:100",
            "--param",
            "SIGNAL=9",
            "--out-dir",
            str(out),
            "-v",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    # Interrupted once the first combinations are done (-v logs it), however long the
    # start-up (imports, compiling the kernels on a fresh machine) took.
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True)
    reader.start()
    seen, deadline = [], time.monotonic() + 180
    while not any("first combinations done" in line for line in seen):
        assert time.monotonic() < deadline and process.poll() is None, "".join(seen)
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=1))
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)  # its report is small: the pipe cannot fill before it exits
    stdout = process.stdout.read()
    reader.join(timeout=10)
    stderr = "".join(seen) + "".join(lines.queue)
    assert process.returncode == 130, stderr
    assert "combinations done" in stderr and "INTERRUPTED, results so far" in stdout
    document = json.loads(next(out.glob("*.json")).read_text())
    assert document["interrupted"] and 0 < len(document["results"]) < 59 * 40
    assert not list(out.glob(".*.tmp"))


def test_nothing_eligible_exits_1_but_keeps_the_table(folders, tmp_path):
    out = tmp_path / "optimize"
    result = run_module(
        MODULE,
        *common(folders),
        "--param",
        "FAST=8,12",
        "--param",
        "SLOW=26",
        "--min-trades",
        "100000",
        "--out-dir",
        str(out),
        drop=DROP,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "No best parameters: no combination has 100000+ trade(s) and a defined sharpe."
    )
    assert any(line.startswith("  1*  ") for line in result.stdout.splitlines())
    assert "  * fewer than 100000 trade(s): ranked last" in result.stdout
    assert len(pd.read_csv(next(out.glob("*.csv")))) == 2
