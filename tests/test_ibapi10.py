"""The live tools with IB's official 10.x API (Decimal sizes, extra callback arguments,
toStr instead of to_str), against the simulator. CI sets QT_IBAPI10_PYTHON to a Python that
has ``ibapi-latest`` installed; elsewhere these tests are skipped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading.csv_store import read_bars
from quant_trading.simulator.server import Simulator

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
PYTHON = os.environ.get("QT_IBAPI10_PYTHON")

pytestmark = pytest.mark.skipif(
    not PYTHON, reason="QT_IBAPI10_PYTHON (a Python with ibapi 10.x) is not set"
)


def run(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_module(
        module, *args, python=PYTHON, env={"PYTHONPATH": str(REPO_ROOT)}, timeout=timeout
    )


@pytest.fixture(scope="module")
def simulator():
    sim = Simulator(port=0, data_dir=SAMPLE, speed=0.0)
    sim.start_in_thread()
    yield sim
    sim.stop()


def test_it_is_really_ibapi_10():
    version = subprocess.run([PYTHON, "-c", "import ibapi; print(ibapi.get_version_string())"],
                             capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert int(version.split(".")[0]) >= 10


def test_portfolio_tracker_with_ibapi_10(simulator):
    result = run("quant_trading.core.portfolio_tracker", "--port", str(simulator.port), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = simulator.account_snapshot()
    assert doc["totals"]["NetLiquidation"] == pytest.approx(expected.net_liquidation)
    assert {p["symbol"]: p["quantity"] for p in doc["positions"]} == {
        p.symbol: p.quantity for p in simulator.account.positions
    }


def test_downloader_and_tracker_with_ibapi_10(simulator, tmp_path):
    fetched = run("quant_trading.tools.fetch_historical_data", "--port", str(simulator.port),
                  "--symbols", "MSFT", "--duration", "2 W", "--end-datetime", "20261030 10:30:00",
                  "--output-dir", str(tmp_path))  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    got = read_bars(tmp_path / "MSFT_5m_bars_macd.csv")
    want = read_bars(SAMPLE / "MSFT_5m.csv").loc["2026-10-16 10:30":"2026-10-30 10:25"]
    assert got.index.equals(want.index) and (got["close"] == want["close"]).all()
    tracked = run("quant_trading.data.market_data_tracker", "--port", str(simulator.port),
                  "--symbols", "MSFT", "--timeframes", "1", "--duration", "2")  # fmt: skip
    assert tracked.returncode == 0, tracked.stderr
    assert "MSFT 1m: " in tracked.stdout and "Price Update - ReqID: " in tracked.stdout
    assert "Traceback" not in tracked.stderr


def test_default_end_and_paper_guard_with_ibapi_10(simulator, tmp_path):
    """reqCurrentTime's answer (TWS's clock) is the default end; managedAccounts feeds the
    paper-account check (the simulator's account is a paper one)."""
    fetched = run("quant_trading.tools.fetch_historical_data", "--port", str(simulator.port),
                  "--symbols", "SPY", "--duration", "2 D", "--client-id", "21",
                  "--output-dir", str(tmp_path))  # fmt: skip
    assert fetched.returncode == 0, fetched.stderr
    got = read_bars(tmp_path / "SPY_5m_bars_macd.csv")
    assert str(got.index[-1]) == "2026-10-30 10:25:00-04:00"  # the simulator's clock: 10:30


def test_paper_trader_with_ibapi_10(tmp_path):
    """Live bars from 10.x's callbacks (Decimal volumes) make the same fills as the
    backtest on the bars seen."""
    from quant_trading.simulator.pacing import PacingLimits
    from quant_trading.simulator.testing import running_simulator

    (tmp_path / "strategy.env").write_text("MACD_FAST=5\nMACD_SLOW=13\nMACD_SIGNAL=4\n")
    folder = tmp_path / "paper"
    start = pd.Timestamp("2026-10-29 10:00", tz="America/New_York").timestamp()
    with running_simulator(data_dir=SAMPLE, speed=600.0, start=start,
                           pacing=PacingLimits(enabled=False)) as sim:  # fmt: skip
        traded = run("quant_trading.trading.paper_trader", "--port", str(sim.port),
                     "--symbols", "AAPL", "MSFT", "--timeframe", "1m", "--quiet",
                     "--env-file", str(tmp_path / "strategy.env"), "--dir", str(folder),
                     "--duration", "8")  # fmt: skip
    assert traded.returncode == 0, traded.stderr
    assert "FILL " in traded.stdout and "Traceback" not in traded.stderr
    report = run_module("quant_trading.trading.paper_trader", "--compare", str(folder))
    assert report.returncode == 0, report.stdout + report.stderr
    assert report.stdout.strip().splitlines()[-1].startswith("identical (2 books, ")
