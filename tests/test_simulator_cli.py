"""``python -m quant_trading.simulator`` as a user runs it: one line saying where it listens,
real clients served, a clean stop on Ctrl-C or SIGTERM, and one-line errors for bad flags."""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from cli_runner import REPO_ROOT

from quant_trading.simulator import PacingLimits, SimulatorConfig
from quant_trading.simulator.__main__ import build_parser
from quant_trading.simulator.testing import DEMO_START, stock, write_long_history


def _lines(stream, out: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        out.put(line)
    out.put(None)


@pytest.fixture
def run_cli():
    procs = []

    def start(*args, cwd=None):
        proc = subprocess.Popen(
            [sys.executable, "-m", "quant_trading.simulator", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        )  # fmt: skip
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
        procs.append(proc)
        return proc, lines

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_serves_clients_and_stops_on_ctrl_c(run_cli, sim_data, ibapi_client, tmp_path):
    account = tmp_path / "acct.json"
    account.write_text(json.dumps({"account": "DU1111111", "cash": {"USD": 5000}}))
    proc, lines = run_cli(
        "--port", "0", "--data-dir", str(sim_data[0]), "--speed", "0",
        "--start", "2026-10-30 10:00", "--account-file", str(account),
    )  # fmt: skip
    first = lines.get(timeout=30)
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", first or "")
    assert match, first
    assert "AAPL, MSFT, SPY" in first and "2026-10-30 10:00" in first
    client = ibapi_client(int(match.group(1)), 1)
    assert client.of("managedAccounts") == [("DU1111111",)]
    client.app.reqCurrentTime()
    client.wait(lambda: client.of("currentTime"), 5, "currentTime")
    assert client.of("currentTime") == [(int(DEMO_START.timestamp()),)]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert "stopped" in lines.get(timeout=5)
    client.wait(lambda: client.of("connectionClosed"), 5, "connection closed by the server")
    assert "Traceback" not in proc.stderr.read()


def test_the_readme_banner_names_the_folder_as_given_and_the_documented_start(run_cli):
    """Started from the checkout without --data-dir (the README's way, clock frozen): the
    bundled market_data as the user knows it, one hour after the last session's open."""
    if not (REPO_ROOT / "market_data" / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    proc, lines = run_cli("--port", "0", "--speed", "0", cwd=REPO_ROOT)
    first = lines.get(timeout=60) or ""
    port = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
    assert port, first
    assert first == (
        f"TWS simulator listening on 127.0.0.1:{port[1]} (server version 176, account "
        "DU1234567, symbols AAPL, MSFT, SPY from market_data, market time 2026-10-30 10:30 "
        "New York at 0x); Ctrl-C to stop\n"
    )
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0


@pytest.mark.parametrize(("args", "message"), [
    (("--host", "10.1.2.3"), "not a loopback address; pass --allow-remote"),
    (("--server-version", "201"), "--server-version must be 157..178"),
    (("--account-file", "/nonexistent/acct.json"), "acct.json: account file not found"),
])  # fmt: skip
def test_cli_errors_are_one_line(run_cli, args, message):
    proc, _ = run_cli("--port", "0", *args)
    assert proc.wait(30) == 2
    err = proc.stderr.read()
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_flags_map_onto_the_library_defaults():
    """The command line's defaults are the library's: IB's pacing scope, no loop."""
    default = build_parser().parse_args([])
    assert not default.pace_all_bar_sizes and not default.loop
    assert SimulatorConfig().pacing == PacingLimits() and not PacingLimits().all_bar_sizes
    assert not SimulatorConfig().loop
    strict = build_parser().parse_args(["--pace-all-bar-sizes", "--loop"])
    assert strict.pace_all_bar_sizes and strict.loop


def test_sigterm_stops_within_a_second_while_serving_history(run_cli, ibapi_client, tmp_path):
    write_long_history(tmp_path, "LONG", years=2)
    proc, lines = run_cli("--port", "0", "--data-dir", str(tmp_path), "--no-pacing",
                          "--start", "2026-10-30 10:00")  # fmt: skip
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", lines.get(timeout=60) or "")
    assert match
    client = ibapi_client(int(match.group(1)), 1)
    client.app.reqMktData(1, stock("LONG"), "", False, False, [])
    for req_id in range(10, 20):  # years of bars to aggregate, one request after the other
        client.app.reqHistoricalData(req_id, stock("LONG"), "", "1 Y", "1 day", "TRADES", 1, 1,
                                     False, [])  # fmt: skip
    client.wait(lambda: client.of("historicalDataEnd", 10), 30, "the first answer")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - sent < 1.0
    assert "stopped" in lines.get(timeout=5)
    assert "Traceback" not in proc.stderr.read()
