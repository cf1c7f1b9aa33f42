"""The connection class and the portfolio tracker against the TWS simulator, run as a user
would: the CLI's text and JSON must show what the simulator's account says."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_runner import read_one_line_and_hang_up, run_module

from quant_trading.core.ibkr_connection import ConnectionConfigError, IBKRConnection, RequestError
from quant_trading.core.portfolio_tracker import AccountPnL, PortfolioTracker
from quant_trading.simulator.server import Simulator
from quant_trading.simulator.testing import running_simulator

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"


@pytest.fixture(scope="module")
def simulator():
    """A simulator on a free loopback port with the market clock frozen (speed 0), so the
    prices the tracker sees are the ones the simulator values the account at."""
    sim = Simulator(port=0, data_dir=SAMPLE, speed=0.0)
    sim.start_in_thread()
    yield sim
    sim.stop()


def tracker(*args, timeout=60):
    return run_module("quant_trading.core.portfolio_tracker", *args, timeout=timeout)


def test_json_equals_the_simulated_account(simulator):
    result = tracker("--port", str(simulator.port), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = simulator.account_snapshot()
    account = simulator.account
    assert doc["account"] == account.account and doc["paper"] is True
    assert doc["base_currency"] == expected.base_currency
    for currency, amount in account.cash.items():
        assert doc["cash_balances"][currency] == pytest.approx(amount)
    assert {p["symbol"]: (p["quantity"], p["average_cost"]) for p in doc["positions"]} == {
        p.symbol: (p.quantity, p.average_cost) for p in account.positions
    }
    holdings = {h["symbol"]: h for h in doc["holdings"]}
    for held in expected.holdings:
        got = holdings[held.symbol]
        assert got["market_price"] == pytest.approx(held.market_price)
        assert got["market_value"] == pytest.approx(held.market_value)
        assert got["unrealized_pnl"] == pytest.approx(held.unrealized_pnl)
        # and the price is the simulator's source data at its (frozen) clock
        price = simulator.market.data(held.symbol).price(simulator.now())
        assert got["market_value"] == pytest.approx(price * held.quantity)
    totals = doc["totals"]
    assert totals["NetLiquidation"] == pytest.approx(expected.net_liquidation)
    assert totals["GrossPositionValue"] == pytest.approx(expected.gross_position_value)
    assert totals["UnrealizedPnL"] == pytest.approx(expected.unrealized_pnl)
    assert totals["NetLiquidation"] == pytest.approx(
        doc["cash_balances"]["BASE"] + totals["GrossPositionValue"]
    )


def test_account_pnl_equals_the_simulated_account(simulator):
    tracker = PortfolioTracker(port=simulator.port, env_file=None, timeout=10)
    with pytest.raises(RequestError) as failure:
        tracker.account_pnl()  # before connecting: at once, not after the timeout
    assert failure.value.code == 504
    assert tracker.connect_to_tws(), tracker.last_error
    try:
        first = tracker.account_pnl(timeout=10)
        again = tracker.account_pnl(timeout=10)  # the first was cancelled; a new one answers
    finally:
        tracker.disconnect_from_tws()
    expected = simulator.account_snapshot()
    assert first == again
    assert first == AccountPnL(
        account=simulator.account.account,
        daily=pytest.approx(expected.daily_pnl, abs=0.005),
        unrealized=pytest.approx(expected.unrealized_pnl, abs=0.005),
        realized=pytest.approx(expected.realized_pnl, abs=0.005),
    )
    assert first.daily != 0  # the sample data has a previous close to compare with


def test_text_summary_in_the_seed_layout(simulator):
    result = tracker("--port", str(simulator.port))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["=" * 60, "IBKR PAPER TRADING PORTFOLIO SUMMARY", "=" * 60]
    headings = ["Cash Balances:", "CashBalance:", "Current Positions:", "Portfolio Details:"]
    headings += ["Market Value by Currency:", "Detailed Holdings:", "Account Totals (USD):"]
    assert all(heading in lines for heading in headings)
    expected = simulator.account_snapshot()
    text = result.stdout
    for held in expected.holdings:
        assert f"{held.market_value:,.2f}" in text and f"{held.unrealized_pnl:,.2f}" in text
    for position in simulator.account.positions:
        assert any(
            line.startswith(f"{position.symbol} (USD):")
            and f"Avg Cost: {position.average_cost:,.2f}" in line
            for line in lines
        )
    assert "Net Liquidation:" in text and f"{expected.net_liquidation:,.2f}" in text
    assert f"USD: {simulator.account.cash['USD']:,.2f}".replace(" ", "") in text.replace(" ", "")
    # columns line up: every holding's "Market Value" starts in the same column
    holdings = [line for line in lines if "Market Value " in line and "Position" in line]
    assert len({line.index("Market Value") for line in holdings}) == 1


def test_tws_not_running_fails_fast_with_the_checklist():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = tracker("--port", str(port), "--timeout", "5")
    assert time.monotonic() - started < 20
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    where = f"127.0.0.1:{port}"
    assert (
        lines[0]
        == f"portfolio_tracker: error: cannot connect to TWS at {where} "
        + "(nothing is listening there)"
    )
    assert (
        lines[1] == "Check that:"
        and "TWS is running" in lines[2]
        and "Traceback" not in result.stderr
    )


def test_silent_peer_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        connection = IBKRConnection(port=port, timeout=1.0, env_file=None)
        started = time.monotonic()
        assert connection.connect_to_tws() is False
        assert time.monotonic() - started < 5
        assert "accepted the connection but did not answer" in connection.last_error


def test_duplicate_client_id_and_live_port(simulator):
    first = IBKRConnection(client_id=77, port=simulator.port, timeout=10, env_file=None)
    assert first.connect_to_tws()
    try:
        result = tracker("--port", str(simulator.port), "--client-id", "77", "--timeout", "10")
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"portfolio_tracker: error: TWS at 127.0.0.1:{simulator.port} refused the session: "
            "client id 77 is already in use"
        )
    finally:
        first.disconnect_from_tws()
    live = tracker("--port", "7496")
    assert live.returncode == 2 and live.stderr.count("\n") == 1
    assert "port 7496 is TWS's live-trading port" in live.stderr and "--live" in live.stderr
    with pytest.raises(ConnectionConfigError):
        IBKRConnection(port=7496, env_file=None)


def test_settings_come_from_arguments_then_environment_then_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("IBKR_HOST=127.0.0.2\nIBKR_PORT=4002\nIBKR_CLIENT_ID=9\n")
    for name in ("IBKR_HOST", "IBKR_PORT", "IBKR_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    settings = IBKRConnection(env_file=env_file).settings
    assert (settings.host, settings.port, settings.client_id) == ("127.0.0.2", 4002, 9)
    monkeypatch.setenv("IBKR_PORT", "7498")
    assert IBKRConnection(env_file=env_file).settings.port == 7498
    assert IBKRConnection(port=7497, client_id=5, env_file=env_file).settings.client_id == 5
    assert IBKRConnection(env_file=None).settings.client_id == IBKRConnection.DEFAULT_CLIENT_ID


def test_seed_usage_example(simulator):
    """The README's "Usage in Your Own Scripts", with the connection hook and accounts."""
    from ibkr_connection import IBKRConnection as SeedName
    from quant_trading import IBKRConnection as PackageName

    assert SeedName is PackageName is IBKRConnection

    seen = []

    class MyTrader(SeedName):
        def on_connection_established(self):
            seen.append(self.accounts)

    trader = MyTrader(client_id=123, port=simulator.port, env_file=None)
    assert trader.connect_to_tws()
    trader.disconnect_from_tws()
    assert seen == [[simulator.account.account]]
    assert not trader.isConnected()


# --- a dropped connection: snapshot() fails fast, --watch rides it out -------------------


class Lines:
    """A running process's stdout and stderr lines, read in threads so a test can wait for
    a line with a timeout instead of blocking on the pipe."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue()
        for name, stream in (("out", process.stdout), ("err", process.stderr)):
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream) -> None:
        for line in stream:
            self.queue.put((name, line.rstrip("\n")))

    def next(self, timeout: float = 20.0) -> tuple[str, str]:
        """The next line as (stream, text); fails after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s") from None

    def json_document(self, timeout: float = 20.0) -> dict:
        """The next JSON document on stdout (skipping stderr lines)."""
        text = []
        while True:
            stream, line = self.next(timeout)
            if stream == "out":
                text.append(line)
                if line == "}":
                    return json.loads("\n".join(text))


def test_snapshot_without_a_connection_fails_at_once(simulator):
    never = PortfolioTracker(port=simulator.port, env_file=None, timeout=5)
    with pytest.raises(RequestError) as failure:
        never.snapshot()  # before connecting
    assert (failure.value.code, failure.value.message) == (504, "not connected to TWS")

    with running_simulator(data_dir=SAMPLE, speed=0.0) as sim:
        dropped = PortfolioTracker(port=sim.port, env_file=None, timeout=5)
        assert dropped.connect_to_tws()
        try:
            assert dropped.snapshot().account == sim.account.account
            sim.drop_connections()
            deadline = time.monotonic() + 5
            while dropped.isConnected():  # the reader thread sees the socket close
                assert time.monotonic() < deadline, "the drop was not seen"
                time.sleep(0.01)
            with pytest.raises(RequestError) as failure:
                dropped.snapshot()
        finally:
            dropped.disconnect_from_tws()
    assert (failure.value.code, failure.value.message) == (504, "not connected to TWS")


def test_watch_notices_a_drop_at_once_reconnects_and_goes_on():
    events: queue.Queue[tuple[str, object]] = queue.Queue()
    stop = threading.Event()
    with running_simulator(data_dir=SAMPLE, speed=0.0) as sim:
        tracker = PortfolioTracker(port=sim.port, env_file=None, timeout=10, auto_reconnect=True)
        tracker.RECONNECT_BACKOFF = (0.05, 0.5)
        watching = threading.Thread(
            target=lambda: tracker.watch(
                3600,  # refreshes an hour apart: whatever follows the drop is the drop's doing
                lambda snap: events.put(("snapshot", snap)),
                lambda text: events.put(("notice", text)),
                stop=stop,
                timeout=10,
            ),
            daemon=True,
        )
        try:
            assert tracker.connect_to_tws()
            watching.start()
            assert events.get(timeout=10)[0] == "snapshot"
            sim.drop_connections()
            assert events.get(timeout=10) == ("notice", "connection to TWS lost; reconnecting...")
            assert events.get(timeout=10) == ("notice", "reconnected to TWS")
            kind, snap = events.get(timeout=10)
        finally:
            stop.set()
            if watching.is_alive():
                watching.join(10)
            tracker.disconnect_from_tws()
    assert not watching.is_alive()
    assert kind == "snapshot" and snap.account == sim.account.account
    assert {p.symbol for p in snap.positions} == {p.symbol for p in sim.account.positions}


def test_cli_watch_goes_on_after_a_dropped_connection():
    with running_simulator(data_dir=SAMPLE, speed=0.0) as sim:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("IBKR_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "quant_trading.core.portfolio_tracker", "--port",
             str(sim.port), "--json", "--watch", "3600", "--timeout", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
            env=environment,
        )  # fmt: skip
        try:
            output = Lines(process)
            assert output.json_document()["account"] == sim.account.account
            sim.drop_connections()
            assert output.next() == (
                "err",
                "portfolio_tracker: connection to TWS lost; reconnecting...",
            )
            assert output.next() == ("err", "portfolio_tracker: reconnected to TWS")
            assert output.json_document()["account"] == sim.account.account
            process.send_signal(signal.SIGINT)  # Ctrl-C ends a watch cleanly
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)


def test_watch_into_a_closed_pipe_ends_quietly(simulator):
    """``--json --watch 1 | head -1``: once head has its line, the next snapshot finds the
    pipe closed; the tracker ends as a shell tool does (141), without a traceback."""
    line, code, err = read_one_line_and_hang_up(
        "quant_trading.core.portfolio_tracker", "--port", str(simulator.port), "--json",
        "--watch", "1", timeout=60,
    )  # fmt: skip
    assert (line, code, err) == ("{\n", 141, "")
