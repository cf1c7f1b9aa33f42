"""The market data tracker against the simulator: its finished bars and MACD values on every
timeframe equal the shared core applied to the simulator's source data, also across a
dropped connection and reconnect; and its errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading.bars import aggregate
from quant_trading.csv_store import read_bars
from quant_trading.data.market_data_tracker import MarketDataTracker
from quant_trading.macd import macd
from quant_trading.simulator.server import Simulator

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
TIMEFRAMES = ["1m", "3m", "5m", "10m"]


def expected_bars(symbol: str, tf: str) -> pd.DataFrame:
    """What the simulator's source data says the bars are (same files it replays)."""
    source = "1m" if tf in ("1m", "3m") else "5m"
    return aggregate(read_bars(SAMPLE / f"{symbol}_{source}.csv"), tf)


def assert_matches_source(tracker: MarketDataTracker, symbol: str) -> None:
    for tf in TIMEFRAMES:
        got = tracker.live[symbol].timeframes[tf].frame()
        assert len(got) > 400 if tf != "1m" else len(got) > 390
        want = expected_bars(symbol, tf).loc[got.index[0] : got.index[-1]]
        # every bar, once, in order: nothing lost or doubled across the reconnect
        pd.testing.assert_index_equal(got.index, want.index, check_names=False)
        np.testing.assert_allclose(
            got[["open", "high", "low", "close"]],
            want[["open", "high", "low", "close"]],
            rtol=0,
            atol=1e-9,
        )
        np.testing.assert_allclose(got["volume"], want["volume"], rtol=0, atol=1e-6)
        reference = macd(want["close"].to_numpy())
        np.testing.assert_allclose(got["MACD"], reference.macd, rtol=0, atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(
            got["Signal"], reference.signal, rtol=0, atol=1e-9, equal_nan=True
        )
        np.testing.assert_allclose(got["Hist"], reference.hist, rtol=0, atol=1e-9, equal_nan=True)


@pytest.fixture
def simulator():
    sim = Simulator(port=0, data_dir=SAMPLE, speed=120.0)
    sim.start_in_thread()
    yield sim
    sim.stop()


def test_live_bars_equal_the_source_across_a_reconnect(simulator, tmp_path):
    lines: list[str] = []
    tracker = MarketDataTracker(
        ["AAPL"],
        TIMEFRAMES,
        quiet=True,
        port=simulator.port,
        csv_dir=tmp_path,
        output=lines.append,
        env_file=None,
        timeout=10,
    )
    assert tracker.connect_to_tws()
    try:
        assert tracker.resolve_symbols() == []
        tracker.backfill()
        tracker.subscribe()
        tracker.track(duration=4)
        live_before = sum(1 for f in tracker.finished if f.source == "live")
        assert live_before > 3
        threading.Timer(0.2, simulator.drop_connections).start()
        tracker.track(duration=8)
    finally:
        tracker.disconnect_from_tws()
    assert any("Connection lost" in line for line in lines)
    assert any("Reconnected" in line for line in lines)
    after = [f for f in tracker.finished[-20:] if f.source == "live"]
    assert after, "no live bars after the reconnect"
    assert_matches_source(tracker, "AAPL")
    # --csv-dir: the same bars with their MACD, written atomically
    stored = read_bars(tmp_path / "AAPL_5m_bars_macd.csv")
    frame = tracker.live["AAPL"].timeframes["5m"].frame()
    pd.testing.assert_frame_equal(stored, frame, check_freq=False, check_index_type=False)
    bar_lines = [line for line in lines if line.startswith("Bar ")]
    assert bar_lines and all("MACD" in line and "Signal" in line for line in bar_lines)


def tracker_cli(*args, timeout=60):
    return run_module("quant_trading.data.market_data_tracker", *args, timeout=timeout)


def test_cli_prints_quotes_in_the_seed_format_and_bars(simulator):
    result = tracker_cli(
        "--port", str(simulator.port), "--symbols", "MSFT", "--timeframes", "1", "--duration", "3"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MSFT 1m: " in out and " bars of history through " in out
    assert "Price Update - ReqID: " in out and "(MSFT), LAST: " in out
    assert "Size Update - ReqID: " in out and "Bar  1m MSFT" in out


def test_unknown_symbol_and_live_port(simulator):
    result = tracker_cli("--port", str(simulator.port), "--symbols", "NOPE", "--duration", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == "market_data_tracker: error: unknown symbol: NOPE"
    live = tracker_cli("--port", "7496", "--symbols", "AAPL")
    assert live.returncode == 2 and len(live.stderr.strip().splitlines()) == 1
    assert "live-trading port" in live.stderr
