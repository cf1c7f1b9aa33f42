"""IBKRConnection against the simulator and against bare sockets: TWS's clock, the live-trading
guard, failure messages that say what happened, and a lost connection that fails every
waiting request at once instead of leaving it to time out."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from pathlib import Path

import pandas as pd
import pytest

from quant_trading.bars import EXCHANGE_TZ
from quant_trading.core.ibkr_connection import (
    ConnectionConfigError,
    IBKRConnection,
    RequestError,
    stock,
)
from quant_trading.core.portfolio_tracker import PortfolioTracker
from quant_trading.data.market_data_tracker import MarketDataTracker
from quant_trading.download.downloader import HistoryDownloader
from quant_trading.simulator.account import AccountConfig
from quant_trading.simulator.server import Simulator
from quant_trading.strategy import configure

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"
WAIT = 10.0  # the longest any step here may take; a hang fails instead of blocking the run


@contextlib.contextmanager
def frozen_simulator(**config):
    """The sample data at a frozen market clock (speed 0) on a free port."""
    sim = Simulator(port=0, data_dir=SAMPLE, speed=0.0, **config)
    sim.start_in_thread()
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def connected(cls=IBKRConnection, **kwargs):
    connection = cls(env_file=None, timeout=WAIT, **kwargs)
    assert connection.connect_to_tws(), connection.last_error
    try:
        yield connection
    finally:
        connection.disconnect_from_tws()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- TWS's clock


def test_current_time_is_tws_clock_not_this_machines():
    market_now = pd.Timestamp("2026-06-15 11:00", tz=EXCHANGE_TZ)
    with (
        frozen_simulator(start=market_now.timestamp()) as sim,
        connected(port=sim.port) as connection,
    ):
        assert connection.current_time() == market_now
        # asked twice, from two threads at once: each gets its own answer
        answers = []
        threads = [
            threading.Thread(target=lambda: answers.append(connection.current_time()))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert answers == [market_now, market_now]


# ---------------------------------------------------------------------- live-trading guard


@pytest.mark.parametrize("port, app, paper", [(7496, "TWS", 7497), (4001, "IB Gateway", 4002)])
def test_live_ports_are_refused_unless_allowed(port, app, paper):
    with pytest.raises(ConnectionConfigError) as refused:
        IBKRConnection(port=port, env_file=None)
    message = str(refused.value)
    assert f"port {port} is {app}'s live-trading port" in message
    assert f"paper port {paper}" in message and "--live" in message
    assert IBKRConnection(port=port, env_file=None, allow_live=True).settings.port == port


def test_paper_only_refuses_a_live_account_after_connecting(caplog):
    with frozen_simulator(account=AccountConfig(account="U7654321")) as sim:
        guarded = IBKRConnection(
            client_id=1, port=sim.port, env_file=None, timeout=WAIT, paper_only=True
        )
        assert guarded.connect_to_tws() is False
        assert "is logged into the live account U7654321" in guarded.last_error
        assert "--live" in guarded.last_error and not guarded.tws_unreachable
        assert not guarded.isConnected()

        # The live tools are paper-only by default...
        for tool in (HistoryDownloader, PortfolioTracker, MarketDataTracker):
            extra = {"strategy": configure("MACD", {})} if tool is MarketDataTracker else {}
            if tool is MarketDataTracker:
                extra["symbols"] = ["AAPL"]
            guarded_tool = tool(port=sim.port, env_file=None, timeout=WAIT, **extra)
            assert guarded_tool.connect_to_tws() is False, tool.__name__
            assert "live account U7654321" in guarded_tool.last_error

        # ...a plain connection (your own script) only when it opts in...
        with connected(client_id=2, port=sim.port) as plain:
            assert plain.accounts == ["U7654321"]

        # ...and allow_live (--live) goes ahead, with a warning.
        caplog.clear()
        with (
            caplog.at_level(logging.WARNING),
            connected(client_id=3, port=sim.port, paper_only=True, allow_live=True) as allowed,
        ):
            assert allowed.accounts == ["U7654321"]
        assert "connected to the LIVE account(s) U7654321" in caplog.text


def test_paper_only_accepts_a_paper_account():
    # the simulator's default account is DU1234567
    with frozen_simulator() as sim, connected(port=sim.port, paper_only=True) as connection:
        assert connection.accounts == ["DU1234567"]


# ------------------------------------------------------------------- failure messages


def test_the_checklist_names_the_port_that_was_tried():
    port = free_port()
    connection = IBKRConnection(port=port, env_file=None, timeout=WAIT)
    assert connection.connect_to_tws() is False
    assert connection.tws_unreachable
    assert f"127.0.0.1:{port} (nothing is listening there)" in connection.last_error
    assert f"Port {port} is available" in connection.last_error.checklist
    assert not any("7497" in step for step in connection.last_error.checklist)


def test_a_peer_that_hangs_up_is_not_called_refused():
    """Something accepts the connection and closes it at once (TWS does that to an address
    that is not a trusted IP): say so, not "connection refused"."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(WAIT)
        port = server.getsockname()[1]

        def hang_up() -> None:
            with contextlib.suppress(OSError):
                peer, _ = server.accept()
                peer.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        connection = IBKRConnection(port=port, env_file=None, timeout=WAIT)
        assert connection.connect_to_tws() is False
        thread.join(WAIT)
    assert "refused" not in connection.last_error
    assert "accepted the connection but closed it before the API handshake" in (
        connection.last_error
    )
    assert connection.tws_unreachable  # the checklist applies (API settings, trusted IPs)


# ------------------------------------------------------------------- a lost connection


class _Watched(IBKRConnection):
    """Records the connection-lost hook."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lost = threading.Event()

    def on_connection_lost(self, reason: str) -> None:
        self.lost.set()


def test_a_dropped_connection_fails_waiting_requests_at_once():
    """A request in flight when the socket drops, and every request made afterwards, fails
    with 504 straight away; none waits for its timeout and then says "no answer"."""
    with frozen_simulator() as sim, connected(_Watched, port=sim.port) as connection:
        sim.set_latency(WAIT)  # the answer to the next request cannot arrive in time
        outcome: list[BaseException] = []

        def in_flight() -> None:
            try:
                connection.historical_bars(
                    stock("AAPL"), "20261029-20:00:00", "1 D", "5 mins", timeout=3 * WAIT
                )
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=in_flight, daemon=True)
        thread.start()
        sim.wait_for_clients(lambda ids: ids, timeout=WAIT)
        sim.drop_connections()  # the simulator's socket-drop fault, on demand
        assert connection.lost.wait(WAIT)
        thread.join(WAIT)
        assert not thread.is_alive(), "the request in flight kept waiting"
        assert isinstance(outcome[0], RequestError) and outcome[0].code == 504

        # Requests after the loss: ibapi answers each with 504 (some with no request
        # id); each must fail now, well before its (long) timeout.
        for ask in (
            lambda: connection.head_timestamp(stock("AAPL"), timeout=3 * WAIT),
            lambda: connection.current_time(timeout=3 * WAIT),
            lambda: connection.contract_details(stock("AAPL"), timeout=3 * WAIT),
        ):
            with pytest.raises(RequestError) as failed:
                _within(WAIT, ask)
            assert failed.value.code == 504

        # The low-level form the portfolio tracker uses: a fixed key, a request
        # without a request id (reqAccountUpdates), then wait.
        pending = connection.start_request(-101)
        connection.reqAccountUpdates(True, "")
        with pytest.raises(RequestError) as failed:
            _within(WAIT, lambda: connection.wait(pending, timeout=3 * WAIT))
        assert failed.value.code == 504


def _within(seconds: float, call):
    """Run ``call`` in a thread; its result or exception, or AssertionError if it is still
    running after ``seconds`` (so a request that waits for its timeout fails the test)."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"still waiting after {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_a_client_id_is_free_again_as_soon_as_disconnect_returns():
    # TWS refuses a client id that is still connected (error 326); a tool that reconnects at
    # once (the dashboard's toggle, a restarted script) must not race its own old session.
    with frozen_simulator() as sim:
        for _ in range(3):
            connection = IBKRConnection(client_id=7, port=sim.port, env_file=None, timeout=WAIT)
            assert connection.connect_to_tws(), connection.last_error
            connection.disconnect_from_tws()
