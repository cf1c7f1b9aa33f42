"""``optimize --walk-forward IN:OUT`` as a user runs it: the window table, the stitched
out-of-sample statistics beside the in-sample ones, the files written, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_module

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"
MODULE = "quant_trading.backtesting.optimize"
DROP = ("ACTIVE_STRATEGY", "MACD_", "IBKR_")
SEARCH = ["--param", "FAST=6,12", "--param", "SLOW=20,26", "--param", "SIGNAL=9"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder with AAPL's one-minute bars, an empty settings file)."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    root = tmp_path_factory.mktemp("walk_forward_cli")
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


def test_the_windows_the_gap_and_the_files(folders, tmp_path):
    out = tmp_path / "optimize"
    result = run_module(
        MODULE,
        *common(folders),
        *SEARCH,
        "--walk-forward",
        "10D:1W",
        "--out-dir",
        str(out),
        drop=DROP,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "MACD walk-forward on 1m bars of AAPL: 10D in-sample, 1W out-of-sample, rolling; "
        "3 window(s)"
    )
    assert lines[1] == (
        "  each window: grid of 4 combinations, best by Sharpe Ratio (max, at least 1 trade(s))"
    )
    header = lines.index(next(line for line in lines if line.startswith("Win ")))
    # SIGNAL, searched over one value, is the same in every window: not a column.
    assert lines[header].split() == [
        "Win",
        "In-sample",
        "Out-of-sample",
        "FAST",
        "SLOW",
        "IS",
        "Sharpe",
        "OOS",
        "Sharpe",
        "OOS",
        "Ret%",
        "Trades",
    ]
    windows = [line.split() for line in lines[header + 1 : header + 4]]
    assert [w[:3] for w in windows] == [
        ["1", "2026-10-01..10-10", "2026-10-11..10-17"],
        ["2", "2026-10-08..10-17", "2026-10-18..10-24"],
        ["3", "2026-10-15..10-24", "2026-10-25..10-30"],
    ]
    summary = [line for line in lines if line.startswith(("In-sample (mean", "Out-of-sample ("))]
    assert [s.split("  ")[0] for s in summary] == [
        "In-sample (mean of 3 windows' best)",
        "Out-of-sample (stitched)",
    ]
    assert max(map(len, lines[: lines.index(next(x for x in lines if "Results:" in x))])) <= 100

    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3 and files[0].startswith("MACD_1m_walkforward_")
    stem = out / files[0].removesuffix(".csv")
    table = pd.read_csv(f"{stem}.csv", index_col="window")
    document = json.loads(Path(f"{stem}.json").read_text())
    equity = pd.read_csv(f"{stem}_equity.csv", index_col="time")
    assert list(table.index) == [1, 2, 3] and len(document["windows"]) == 3
    assert [str(int(f)) for f in table["FAST"]] == [w[3] for w in windows]
    stitched = document["out_of_sample"]
    assert equity["equity"].iloc[-1] == stitched["equity_final"]
    assert stitched["trades"] == table["oos_trades"].sum()
    assert f"\n  equity 100,000.00 -> {stitched['equity_final']:,.2f} (" in result.stdout
    assert document["walk_forward"] == {
        "in_sample": "10D",
        "out_of_sample": "1W",
        "anchored": False,
    }
    last = document["windows"][-1]["params"]
    assert lines[-4:] == [f"MACD_{k}={v}" for k, v in last.items()]


def test_anchored_windows_all_start_at_the_start(folders, tmp_path):
    out = tmp_path / "optimize"
    result = run_module(
        MODULE,
        *common(folders),
        *SEARCH,
        "--walk-forward",
        "2W:1W",
        "--anchored",
        "--out-dir",
        str(out),
        drop=DROP,
    )
    assert result.returncode == 0, result.stderr
    assert ", anchored; 3 window(s)" in result.stdout.splitlines()[0]
    table = pd.read_csv(next(out.glob("*walkforward_*[0-9].csv")), index_col="window")
    assert table["in_start"].nunique() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--walk-forward", "6X:1M"], "--walk-forward 6X:1M: use IN:OUT, each a positive"),
        (["--walk-forward", "6M"], "--walk-forward 6M: use IN:OUT"),
        (["--walk-forward", "0D:1D"], "--walk-forward 0D:1D: use IN:OUT"),
        (
            ["--walk-forward", "6M:1M"],
            "--walk-forward 6M:1M: the data from 2026-10-01 to "
            "2026-10-30 is too short for a 6M in-sample window",
        ),
        (
            ["--walk-forward", "10D:1W", "--start", "2026-10-25"],
            "--walk-forward 10D:1W: the data from 2026-10-26 to 2026-10-30 is too short",
        ),
        (["--anchored"], "--anchored needs --walk-forward IN:OUT"),
        (["--walk-forward", "10D:1W", "--heatmap", "FAST,SLOW"], "--heatmap draws one search"),
    ],
)
def test_bad_walk_forward_is_one_line_exit_2_nothing_written(folders, tmp_path, args, message):
    out = tmp_path / "optimize"
    result = run_module(MODULE, *common(folders), *SEARCH, *args, "--out-dir", str(out), drop=DROP)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("optimize: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert result.stdout == "" and not out.exists()
