"""Fault injection: TWS losing its link to IB (1100/1101/1102), a dropped socket and reconnect,
added latency, and faults on a schedule."""

from __future__ import annotations

import socket
import struct
import time

import pandas as pd

from quant_trading.simulator import FaultPlan, PacingLimits
from quant_trading.simulator.protocol import encode_message
from quant_trading.simulator.testing import DEMO_START, ib_async_client, stock

LAST = 4


def ticks_for(client, req_id):
    return [a for a in client.of("tickPrice", req_id) if a[1] == LAST]


def test_link_lost_then_restored_with_data_lost(simulator, ibapi_client, sim_data):
    sim = simulator(speed=120)
    client = ibapi_client(sim.port, 1)
    client.app.reqMktData(1, stock("AAPL"), "", False, False, [])
    client.wait(lambda: len(ticks_for(client, 1)) > 3, 5, "ticks")
    lost_at = sim.now()
    sim.lose_link()
    client.wait(lambda: 2105 in client.error_codes(-1), 5, "1100 and the farm notices")
    lost = client.error_codes(-1)
    assert lost.index(1100) < lost.index(2103) < lost.index(2105)
    # No market data while the link is down: the count stops moving.
    count = len(ticks_for(client, 1))
    client.app.reqCurrentTime()  # a round trip proves the socket itself is still up
    client.wait(lambda: client.of("currentTime"), 5, "currentTime")
    assert len(ticks_for(client, 1)) == count
    deadline = time.monotonic() + 5
    while sim.now() < lost_at + 150 and time.monotonic() < deadline:  # let the market move on
        time.sleep(0.05)
    assert len(ticks_for(client, 1)) == count
    sim.restore_link(data_lost=True)
    client.wait(lambda: 1101 in client.error_codes(-1), 5, "1101")
    assert "data lost" in [e for e in client.errors(-1) if e[1] == 1101][0][2]
    # Data lost: the old subscription is gone; a renewed one streams again.
    restored_count = len(ticks_for(client, 1))
    client.app.reqMktData(2, stock("AAPL"), "", False, False, [])
    client.wait(lambda: len(ticks_for(client, 2)) > 3, 5, "ticks after renewal")
    assert len(ticks_for(client, 1)) == restored_count
    # What the client missed while down is still served by a historical request.
    client.app.reqHistoricalData(3, stock("AAPL"), "", "1800 S", "1 min", "TRADES", 1, 2,
                                 False, [])  # fmt: skip
    client.wait(lambda: client.of("historicalDataEnd", 3), 5, "history")
    dates = {int(a[1].date) for a in client.of("historicalData", 3)}
    first_missed = (int(lost_at) // 60 + 1) * 60
    assert {first_missed, first_missed + 60} <= dates  # minutes entirely inside the outage
    source = sim_data[1]["AAPL"]["1m"]
    for _, bar in client.of("historicalData", 3)[:-1]:
        row = source.loc[pd.Timestamp(int(bar.date), unit="s", tz="UTC")]
        assert (bar.open, bar.close) == (row["open"], row["close"])


def test_link_restored_with_data_maintained_resumes_streams(simulator, ibapi_client):
    sim = simulator(speed=120)
    client = ibapi_client(sim.port, 1)
    client.app.reqMktData(1, stock("MSFT"), "", False, False, [])
    client.wait(lambda: len(ticks_for(client, 1)) > 2, 5, "ticks")
    sim.lose_link()
    client.wait(lambda: 1100 in client.error_codes(-1), 5, "1100")
    count = len(ticks_for(client, 1))
    sim.restore_link(data_lost=False)
    client.wait(lambda: 1102 in client.error_codes(-1), 5, "1102")
    client.wait(lambda: len(ticks_for(client, 1)) > count + 2, 5, "ticks resume on the same id")


def test_dropped_socket_is_reported_and_reconnect_works(simulator, ibapi_client):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    ib = ib_async_client()
    ib.connect("127.0.0.1", sim.port, clientId=2, timeout=10)
    dropped = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    try:
        sim.drop_connections()
        client.wait(lambda: client.of("connectionClosed"), 5, "connectionClosed")
        deadline = time.monotonic() + 5
        try:
            while not dropped and time.monotonic() < deadline:
                ib.sleep(0.05)
        except ConnectionError:
            pass  # ib_async also reports the lost socket by raising from its event loop
        assert dropped and not ib.isConnected()
        sim.wait_for_clients(lambda ids: not ids)
        again = ibapi_client(sim.port, 1)  # the same client id is free again
        again.app.reqPositions()
        again.wait(lambda: again.of("positionEnd"), 5, "positions after reconnect")
        ib.connect("127.0.0.1", sim.port, clientId=2, timeout=10)
        assert ib.isConnected() and ib.positions()
    finally:
        ib.disconnect()


def test_added_latency_delays_answers_in_order(simulator, ibapi_client):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    sim.set_latency(0.3)
    started = time.monotonic()
    client.app.reqCurrentTime()
    client.app.reqPositions()
    client.wait(lambda: client.of("positionEnd"), 5, "positions")
    assert time.monotonic() - started >= 0.3
    names = [n for n, _ in client.events if n in ("currentTime", "position", "positionEnd")]
    assert names[0] == "currentTime" and names[-1] == "positionEnd"
    assert client.of("currentTime") == [(int(DEMO_START.timestamp()),)]
    sim.set_latency(0)


def test_faults_on_a_schedule(simulator, ibapi_client):
    sim = simulator(speed=0, faults=FaultPlan(link_loss_at=0.3, link_loss_for=0.3,
                                              link_loss_data_lost=False))  # fmt: skip
    client = ibapi_client(sim.port, 1)
    client.wait(lambda: 1102 in client.error_codes(-1), 5, "scheduled loss and restore")
    codes = client.error_codes(-1)
    assert codes.index(1100) < codes.index(1102)


def test_history_during_a_link_loss_fails_as_with_tws(simulator, ibapi_client):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    sim.lose_link()
    client.wait(lambda: 1100 in client.error_codes(-1), 5, "1100")
    client.app.reqHistoricalData(1, stock("AAPL"), "", "1800 S", "1 min", "TRADES", 1, 1,
                                 False, [])  # fmt: skip
    client.wait(lambda: client.errors(1), 5, "an answer to the request")
    # TWS cannot look the contract up without IB: 200, and no bars.
    assert client.error_codes(1) == [200] and not client.of("historicalData", 1)
    sim.restore_link(data_lost=True)
    client.wait(lambda: 1101 in client.error_codes(-1), 5, "1101")
    client.app.reqHistoricalData(2, stock("AAPL"), "", "1800 S", "1 min", "TRADES", 1, 1,
                                 False, [])  # fmt: skip
    client.wait(lambda: client.of("historicalDataEnd", 2), 5, "bars once the link is back")
    assert len(client.of("historicalData", 2)) == 30


def test_latency_does_not_let_a_client_that_stops_reading_grow_the_server(simulator):
    """Messages held back by --latency count towards the backlog cap like unsent ones: a
    client that asks for a lot and never reads is dropped, not buffered without limit."""
    sim = simulator(speed=0, max_backlog_bytes=64 * 1024, pacing=PacingLimits(enabled=False))
    sim.set_latency(2.0)
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    try:
        sock.sendall(b"API\0" + struct.pack(">I", 9) + b"v100..176")
        sock.sendall(encode_message([71, 2, 7, ""]))
        sim.wait_for_clients(lambda ids: 7 in ids)
        # Ten days of minute bars, about 30 kB each, and the client reads none of it.
        for req_id in range(10):
            sock.sendall(encode_message([20, req_id, 0, "AAPL", "STK", "", "0.0", "", "",
                                         "SMART", "", "USD", "", "", 0,
                                         "20261029 16:00:00 US/Eastern", "1 min", "1 D", 1,
                                         "TRADES", 1, 0, ""]))  # fmt: skip
        sim.wait_for_clients(lambda ids: 7 not in ids, timeout=5)
    finally:
        sock.close()
