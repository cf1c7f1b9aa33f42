"""The paper account over the API, against the TWS simulator: ``/api/portfolio/`` shows what
the simulated account holds, ``/api/connection/`` toggles the held connection, a TWS that is
down or drops the connection is a prompt 503 (and the held connection comes back by itself),
and ``/api/health/`` tells whether TWS is reachable."""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import datetime

import pandas as pd
import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

import quant_trading
from quant_trading.bars import EXCHANGE_TZ
from quant_trading.core.ibkr_connection import ConnectionSettings
from quant_trading.simulator.account import AccountConfig

pytestmark = pytest.mark.usefixtures("held_tws")  # no test leaves a held connection behind

CHECKLIST = (
    "check that TWS is running and logged into Paper Trading account; API settings are "
    "properly configured (Enable ActiveX and Socket Clients); Port {port} is available"
)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def money(value: float):
    """A value as TWS sends it: the simulator rounds to cents on the wire."""
    return pytest.approx(value, abs=0.006)


def market_time(sim) -> pd.Timestamp:
    return pd.Timestamp(sim.now(), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)


def expected_portfolio(sim) -> dict:
    """``/api/portfolio/``'s document for the simulator's account, ``source`` aside."""
    account, snap = sim.account, sim.account_snapshot()
    market_value = sum(h.market_value for h in snap.holdings)  # all in USD, the base currency
    return {
        "account": account.account,
        "accounts": [account.account],
        "account_time": market_time(sim).strftime("%H:%M"),
        "base_currency": account.base_currency,
        "paper": True,
        "cash_balances": account.cash,
        "market_value_by_currency": {"USD": money(market_value)},
        "totals": {
            "net_liquidation": money(snap.net_liquidation),
            "total_cash": money(sum(v * account.rate(c) for c, v in account.cash.items())),
            "market_value": money(market_value),
            "gross_position_value": money(snap.gross_position_value),
        },
        "pnl": {
            "daily": money(snap.daily_pnl),
            "unrealized": money(snap.unrealized_pnl),
            "realized": money(snap.realized_pnl),
            "unrealized_ratio": pytest.approx(snap.unrealized_pnl / snap.net_liquidation, abs=1e-6),
        },
        "positions": [
            {
                "symbol": h.symbol,
                "sec_type": "STK",
                "currency": "USD",
                "quantity": h.quantity,
                "average_cost": h.average_cost,
                "cost_basis": abs(h.quantity * h.average_cost),
                "market_price": money(h.market_price),
                "market_value": money(h.market_value),
                "unrealized_pnl": money(h.unrealized_pnl),
                "unrealized_pnl_ratio": pytest.approx(
                    h.unrealized_pnl / abs(h.quantity * h.average_cost), abs=1e-6
                ),
                "realized_pnl": 0.0,
            }
            for h in snap.holdings
        ],
    }


def get_portfolio(api, max_seconds: float) -> tuple[int, dict]:
    """``GET /api/portfolio/``: status and document; fails if it took ``max_seconds``."""
    started = time.monotonic()
    response = api.get("/api/portfolio/")
    took = time.monotonic() - started
    assert took < max_seconds, f"/api/portfolio/ took {took:.1f} s"
    return response.status_code, response.json()


def poll(what: str, check, timeout: float = 10.0):
    """``check()``'s first truthy value; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)
    return value


def connections_seen(caplog) -> list[str]:
    """The connections the simulator logged accepting (within ``caplog.at_level(INFO)``)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "quant_trading.simulator.server"
        and r.getMessage().startswith("client connected")
    ]


def toggle(api, connected) -> tuple[int, dict]:
    response = api.post("/api/connection/", {"connected": connected}, format="json")
    return response.status_code, response.json()


def tws_error(status: int, message: str, code: str = "tws_unavailable") -> dict:
    return {"error": {"status": status, "code": code, "message": message}}


# ---------------------------------------------------------------------------- portfolio


def test_portfolio_over_a_one_off_connection_is_the_simulated_account(api, paper_tws):
    before = datetime.now().astimezone()
    status, doc = get_portfolio(api, 5)
    assert status == 200, doc
    source = doc.pop("source")
    assert doc == expected_portfolio(paper_tws)
    fetched_at = datetime.fromisoformat(source.pop("fetched_at"))
    assert before <= fetched_at <= datetime.now().astimezone()
    # A client id beside the held one's (21: IBKR_CLIENT_ID), and it disconnected afterwards.
    client_id = source.pop("client_id")
    assert source == {"connection": "one-off", "host": "127.0.0.1", "port": paper_tws.port}
    assert 22 <= client_id <= 29
    paper_tws.wait_for_clients(lambda ids: not ids)


def test_back_to_back_one_off_requests(api, paper_tws):
    """The next request comes before TWS has noticed the last one's disconnect: it must not
    trip over a client id TWS still thinks in use."""
    ids = []
    for _ in range(9):  # round the eight one-off ids once
        status, doc = get_portfolio(api, 5)
        assert status == 200, doc
        ids.append(doc["source"]["client_id"])
    assert all(22 <= i <= 29 for i in ids) and all(a != b for a, b in zip(ids, ids[1:]))


def test_concurrent_one_off_requests_use_their_own_client_ids(paper_tws, settings):
    results: list[tuple[int, dict]] = []

    def ask() -> None:
        results.append(get_portfolio(APIClient(), 10))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 4 and all(status == 200 for status, _ in results), results
    sources = [doc.pop("source") for _, doc in results]
    assert all(doc == expected_portfolio(paper_tws) for _, doc in results)
    assert {s["connection"] for s in sources} == {"one-off"}
    assert all(22 <= s["client_id"] <= 29 for s in sources)


def test_tws_not_running_is_a_503_within_the_timeout(api, settings):
    port = free_port()
    settings.TWS = ConnectionSettings("127.0.0.1", port, 21)
    settings.TWS_TIMEOUT = 2.0
    status, doc = get_portfolio(api, 2.0)
    message = (
        f"cannot connect to TWS at 127.0.0.1:{port} (nothing is listening there); "
        + CHECKLIST.format(port=port)
    )
    assert (status, doc) == (503, tws_error(503, message))


def test_tws_that_does_not_answer_is_a_503_after_the_timeout(api, settings):
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        settings.TWS = ConnectionSettings("127.0.0.1", port, 21)
        settings.TWS_TIMEOUT = 1.0
        started = time.monotonic()
        status, doc = get_portfolio(api, 1.0 + 3.0)  # + closing the unanswered socket
    assert time.monotonic() - started >= 1.0
    message = (
        f"TWS at 127.0.0.1:{port} accepted the connection but did not answer; "
        + CHECKLIST.format(port=port)
    )
    assert (status, doc) == (503, tws_error(503, message))


def test_a_live_account_is_refused(api, simulator, settings):
    sim = simulator(speed=0.0, account=AccountConfig(account="U7654321"))
    settings.TWS = ConnectionSettings("127.0.0.1", sim.port, 21)
    message = (
        f"TWS at 127.0.0.1:{sim.port} is logged into the live account U7654321; the "
        "dashboard reads paper accounts only (ids starting with D): log TWS into Paper Trading"
    )
    assert get_portfolio(api, 5) == (403, tws_error(403, message, "live_account"))
    assert toggle(api, True) == (403, tws_error(403, message, "live_account"))
    state = api.get("/api/connection/").json()
    assert (state["state"], state["last_error"]) == ("disconnected", message)
    sim.wait_for_clients(lambda ids: not ids)


# --------------------------------------------------------------------- held connection


def test_toggle_the_held_connection_and_read_the_account_over_it(api, paper_tws, caplog):
    state = api.get("/api/connection/").json()
    assert state.pop("since") is None or state["state"] == "disconnected"
    assert state == {"state": "disconnected", "connected": False, "host": "127.0.0.1",
                     "port": paper_tws.port, "client_id": 21, "accounts": [],
                     "last_error": None}  # fmt: skip

    before = datetime.now().astimezone()
    status, state = toggle(api, True)
    assert status == 200, state
    assert before <= datetime.fromisoformat(state.pop("since")) <= datetime.now().astimezone()
    assert state == {"state": "connected", "connected": True, "host": "127.0.0.1",
                     "port": paper_tws.port, "client_id": 21, "accounts": ["DU1234567"],
                     "last_error": None}  # fmt: skip
    assert paper_tws.client_ids() == {21}
    assert toggle(api, True)[1]["state"] == "connected"  # connecting again changes nothing

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="quant_trading.simulator.server"):
        for _ in range(3):
            status, doc = get_portfolio(api, 5)
            assert status == 200, doc
            source = doc.pop("source")
            assert doc == expected_portfolio(paper_tws)
            assert (source["connection"], source["client_id"]) == ("held", 21)
    # The simulator saw no new connection: every answer came over the held one.
    assert not connections_seen(caplog)
    assert paper_tws.client_ids() == {21}

    status, state = toggle(api, False)
    assert (status, state["state"], state["connected"]) == (200, "disconnected", False)
    # On again at once, before TWS has let go of client id 21, and off again.
    assert toggle(api, True)[1]["state"] == "connected"
    assert toggle(api, False)[1]["state"] == "disconnected"
    paper_tws.wait_for_clients(lambda ids: not ids)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="quant_trading.simulator.server"):
        status, doc = get_portfolio(api, 5)
    assert (status, doc["source"]["connection"]) == (200, "one-off")
    assert len(connections_seen(caplog)) == 1  # what the held connection spared


def test_the_toggle_wants_a_boolean(api):
    response = api.post("/api/connection/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "connected: This field is required."
    response = api.post("/api/connection/", {"connected": "perhaps"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


def test_connecting_to_a_tws_that_is_not_running_says_why(api, settings):
    port = free_port()
    settings.TWS = ConnectionSettings("127.0.0.1", port, 21)
    settings.TWS_TIMEOUT = 2.0
    started = time.monotonic()
    status, doc = toggle(api, True)
    assert time.monotonic() - started < 2.0
    message = (
        f"cannot connect to TWS at 127.0.0.1:{port} (nothing is listening there); "
        + CHECKLIST.format(port=port)
    )
    assert (status, doc) == (503, tws_error(503, message))
    state = api.get("/api/connection/").json()
    assert (state["state"], state["port"], state["last_error"]) == ("disconnected", port, message)


def test_concurrent_requests_on_the_held_connection_agree(api, paper_tws):
    assert toggle(api, True)[0] == 200
    results: list[tuple[int, dict]] = []

    def ask() -> None:
        results.append(get_portfolio(APIClient(), 10))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 6 and all(status == 200 for status, _ in results), results
    sources = [doc.pop("source") for _, doc in results]
    assert all(doc == expected_portfolio(paper_tws) for _, doc in results)
    assert {(s["connection"], s["client_id"]) for s in sources} == {("held", 21)}
    assert paper_tws.client_ids() == {21}


def test_a_dropped_held_connection_reconnects_by_itself(api, paper_tws):
    assert toggle(api, True)[0] == 200
    connected_since = api.get("/api/connection/").json()["since"]
    paper_tws.drop_connections()

    def answered_again():
        # Until it is back, each request is refused at once (no waiting for a timeout).
        status, doc = get_portfolio(api, 1.0)
        if status == 503:
            assert doc["error"]["code"] == "tws_unavailable", doc
            return None
        return doc

    doc = poll("the portfolio over the reconnected held connection", answered_again)
    assert (doc["source"]["connection"], doc["source"]["client_id"]) == ("held", 21)
    state = api.get("/api/connection/").json()
    assert state["state"] == "connected" and state["since"] > connected_since
    assert paper_tws.client_ids() == {21}


def test_tws_gone_is_a_503_at_once_and_the_held_connection_returns_with_it(
    api, simulator, settings
):
    sim = simulator(speed=0.0)
    port = sim.port
    settings.TWS = ConnectionSettings("127.0.0.1", port, 21)
    settings.TWS_TIMEOUT = 5.0
    assert toggle(api, True)[0] == 200
    sim.stop()  # TWS quits: the socket closes, and nothing listens any more

    poll("the held connection to notice",
         lambda: api.get("/api/connection/").json()["state"] == "reconnecting")  # fmt: skip
    status, doc = get_portfolio(api, 1.0)  # at once, not after IBKR_TIMEOUT
    assert status == 503
    message = doc["error"]["message"]
    assert message.startswith(
        f"the held connection to TWS at 127.0.0.1:{port} was lost; reconnecting"
    )
    health = api.get("/api/health/").json()["tws"]
    assert (health["reachable"], health["held_connection"]["state"]) == (False, "reconnecting")
    state = poll("a failed reconnect attempt",
                 lambda: (s := api.get("/api/connection/").json())["last_error"].startswith(
                     "cannot connect") and s)  # fmt: skip
    assert state["last_error"] == (
        f"cannot connect to TWS at 127.0.0.1:{port} (nothing is listening there)"
    )

    restarted = simulator(speed=0.0, port=port)  # TWS is back on its port
    doc = poll("the portfolio once TWS is back",
               lambda: (r := get_portfolio(api, 1.0))[0] == 200 and r[1])  # fmt: skip
    assert (doc["source"]["connection"], doc["source"]["client_id"]) == ("held", 21)
    assert api.get("/api/connection/").json()["state"] == "connected"
    assert restarted.client_ids() == {21}


def test_a_connection_lost_while_the_toggle_connects_shows_as_reconnecting(
    api, simulator, settings, monkeypatch
):
    """TWS goes away between the held connection's handshake and the toggle's answer: the
    state says reconnecting (not connected over a closed socket), and it comes back."""
    from dashboard.api import tws

    sim = simulator(speed=0.0)
    port = sim.port
    settings.TWS = ConnectionSettings("127.0.0.1", port, 21)
    settings.TWS_TIMEOUT = 5.0
    handshake = tws.HeldTracker.connect_to_tws

    def connect_then_lose_tws(tracker):
        connected = handshake(tracker)
        sim.stop()  # TWS quits right after the handshake
        poll("the socket to close", lambda: not tracker.isConnected())
        return connected

    monkeypatch.setattr(tws.HeldTracker, "connect_to_tws", connect_then_lose_tws)
    status, state = toggle(api, True)
    assert status == 200
    assert state["state"] == "reconnecting"
    assert state["last_error"].startswith(f"the connection to TWS at 127.0.0.1:{port} was lost")
    status, doc = get_portfolio(api, 1.0)  # refused at once, not tried on a closed socket
    assert status == 503 and "was lost; reconnecting" in doc["error"]["message"]

    restarted = simulator(speed=0.0, port=port)
    doc = poll("the portfolio once TWS is back",
               lambda: (r := get_portfolio(api, 1.0))[0] == 200 and r[1])  # fmt: skip
    assert (doc["source"]["connection"], api.get("/api/connection/").json()["state"]) == (
        "held",
        "connected",
    )
    assert restarted.client_ids() == {21}


# ------------------------------------------------------------------------------- health


def test_health_with_tws_up_held_and_down(api, paper_tws, settings, caplog):
    version = quant_trading.__version__
    response = api.get("/api/health/")
    assert response.status_code == 200
    doc = response.json()
    held = doc["tws"].pop("held_connection")
    assert doc == {
        "status": "ok", "version": version, "database": {"ok": True, "error": None},
        "tws": {"host": "127.0.0.1", "port": paper_tws.port, "reachable": True, "error": None},
    }  # fmt: skip
    assert held == api.get("/api/connection/").json() and held["state"] == "disconnected"

    assert toggle(api, True)[0] == 200
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="quant_trading.simulator.server"):
        tws = api.get("/api/health/").json()["tws"]
    assert not connections_seen(caplog)  # the held connection's word: TWS sees no probe
    assert (tws["reachable"], tws["error"]) == (True, None)
    assert tws["held_connection"] == api.get("/api/connection/").json()
    assert tws["held_connection"]["state"] == "connected"
    assert toggle(api, False)[0] == 200

    port = free_port()
    settings.TWS = ConnectionSettings("127.0.0.1", port, 21)
    started = time.monotonic()
    response = api.get("/api/health/")
    assert time.monotonic() - started < 1.5
    doc = response.json()
    assert (response.status_code, doc["status"]) == (200, "degraded")
    assert doc["tws"] | {"held_connection": None} == {
        "host": "127.0.0.1", "port": port, "reachable": False,
        "error": f"nothing answers at 127.0.0.1:{port} (Connection refused)",
        "held_connection": None,
    }  # fmt: skip
    assert doc["tws"]["held_connection"]["state"] == "disconnected"


def test_health_is_a_503_when_the_database_is_not_usable(api, settings):
    settings.TWS = ConnectionSettings("127.0.0.1", free_port(), 21)

    def broken(execute, sql, params, many, context):
        raise OperationalError("disk I/O error")

    with connection.execute_wrapper(broken):
        response = api.get("/api/health/")
    assert response.status_code == 503
    doc = response.json()
    assert (doc["status"], doc["database"]) == (
        "error",
        {"ok": False, "error": "OperationalError: disk I/O error"},
    )
    assert doc["tws"]["reachable"] is False


# ------------------------------------------------------------------------------- schema


def test_the_schema_describes_the_account_endpoints(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    portfolio = schema["paths"]["/api/portfolio/"]["get"]["responses"]
    assert set(portfolio) == {"200", "403", "503"}
    component = schema["components"]["schemas"]["Portfolio"]
    assert set(component["properties"]) == {
        "account", "accounts", "account_time", "base_currency", "paper", "cash_balances",
        "market_value_by_currency", "totals", "pnl", "positions", "source",
    }  # fmt: skip
    toggle_body = schema["paths"]["/api/connection/"]["post"]["requestBody"]
    assert toggle_body["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ConnectionToggleRequest"
    )
    assert set(schema["paths"]["/api/health/"]["get"]["responses"]) == {"200", "503"}


def test_health_is_a_503_in_the_error_shape_when_the_database_is_unusable(api, settings):
    settings.TWS = ConnectionSettings("127.0.0.1", free_port(), 21)
    with connection.cursor() as cursor:  # rolled back with the test's transaction
        cursor.execute("DROP TABLE api_backtestrun")
    response = api.get("/api/health/")
    assert response.status_code == 503
    doc = response.json()
    assert doc["error"]["status"] == 503
    assert doc["error"]["code"] == "database_unavailable"
    assert doc["error"]["message"].startswith("the database is not usable: OperationalError")
    assert doc["status"] == "error" and doc["database"]["ok"] is False
