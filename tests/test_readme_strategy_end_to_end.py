"""The README's "Adding a strategy" example, copied as it stands into a project's
``strategies/`` folder, goes through every tool a user would run next: backtest -> cache ->
visualizer (--export PNG) -> live market data tracker against the simulator. Each step
exits 0 and shows the strategy's own indicators."""

from __future__ import annotations

import re
import shutil

import orjson
import pytest
from cli_runner import REPO_ROOT, run_module

from quant_trading.backtesting.cache import read_cache
from quant_trading.simulator.testing import running_simulator
from quant_trading.visualization.chart import render_png

README = (REPO_ROOT / "README.md").read_text()
BREAKOUT = re.search(r"`strategies/breakout.py`:\n\n```python\n(.*?)```", README, re.S).group(1)
SAMPLE = REPO_ROOT / "market_data"


@pytest.fixture
def project(tmp_path):
    """A project folder whose strategies/ holds the bundled strategies and the README's file;
    the commands run from it, as from a checkout where the user added the file."""
    folder = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "strategies", folder / "strategies",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (folder / "strategies" / "breakout.py").write_text(BREAKOUT)
    return folder


def test_readme_strategy_through_every_tool(project, tmp_path):
    cache = tmp_path / "cache"
    backtest = run_module(
        "quant_trading.backtesting.run_backtest",
        "--strategy", "breakout", "--symbols", "SPY", "--timeframe", "5m",
        "--data-dir", str(SAMPLE), "--start", "2026-08-03", "--cache-dir", str(cache),
        cwd=project,
    )  # fmt: skip
    assert backtest.returncode == 0, backtest.stderr
    assert backtest.stdout.startswith("BREAKOUT backtest on 5m bars: n=20")

    # The cache says how to draw the channel, so no reader needs the strategy's code.
    path = cache / "5m" / "SPY_backtest.json"
    declared = orjson.loads(path.read_bytes())["indicators"]
    assert [line["column"] for entry in declared for line in entry["lines"]] == ["upper", "lower"]
    assert {entry["panel"] for entry in declared} == {"price"}
    cached = read_cache(path)
    assert cached.statistics.trades > 0 and {"upper", "lower"} <= set(cached.candles.columns)

    png = tmp_path / "breakout.png"
    export = run_module(
        "quant_trading.visualization.trade_visualizer",
        "--timeframe", "5m", "--cache-dir", str(cache), "--export", str(png), "--symbol", "SPY",
        cwd=project,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith(f"Wrote {png}: SPY 5m") and png.stat().st_size > 20_000
    # The same chart, inspected: the channel is drawn over the candles with its labels.
    chart = render_png(cached, tmp_path / "again.png")
    labels = [line.get_label() for line, _ in chart.overlay_lines]
    assert labels == ["highest high(20)", "lowest low(20)"]
    assert chart.indicator_panels == []  # overlays only: no panel below volume

    with running_simulator(data_dir=SAMPLE, speed=120.0) as sim:
        live = run_module(
            "quant_trading.data.market_data_tracker",
            "--port", str(sim.port), "--symbols", "SPY", "--timeframes", "1", "5",
            "--strategy", "breakout", "--duration", "4", "--quiet",
            cwd=project, timeout=90,
        )  # fmt: skip
    assert live.returncode == 0, live.stderr
    bars = [line for line in live.stdout.splitlines() if line.startswith("Bar ")]
    assert bars and "MACD" not in live.stdout
    channel = re.compile(r"\| highest high\(20\) \d+\.\d{4} lowest low\(20\) \d+\.\d{4}")
    assert all(channel.search(line) for line in bars)
    own = [line for line in bars if line.startswith("Bar  5m")]  # the strategy's timeframe
    assert own and all(re.search(r"\[BREAKOUT: (LONG|SHORT|FLAT)\]$", line) for line in own)
