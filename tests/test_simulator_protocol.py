"""The simulator's wire protocol: framing, handshake, the startApi sequence, client ids, and the
message layouts compared field by field with a real TWS session recorded at server version 176.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import socket
import struct
import time

import pytest

from quant_trading.simulator.messages import Out
from quant_trading.simulator.protocol import (
    FrameDecoder,
    Handshake,
    HandshakeError,
    ProtocolError,
    encode_message,
    parse_handshake,
    split_fields,
)
from quant_trading.simulator.testing import ib_async_client, stock

RECORDING = "tws/ib_insync_request_response_sv176.json"


# --- framing, without a server --------------------------------------------------------------


def test_encode_message_frames_nul_terminated_fields():
    data = encode_message([71, 2, 7, "", None, True, 1.5])
    assert data[:4] == struct.pack(">I", len(data) - 4)
    assert data[4:] == b"71\x002\x007\x00\x00\x001\x001.5\x00"
    assert split_fields(data[4:]) == ["71", "2", "7", "", "", "1", "1.5"]


def test_frame_decoder_handles_split_and_coalesced_reads():
    stream = b"API\0" + encode_message(["v100..176"])[0:] + encode_message([71, 2, 1, ""])
    stream += encode_message([61, 1]) + encode_message([6, 2, 1, "DU1"])
    for chunking in (1, 3, 7, len(stream)):  # byte by byte up to everything in one read
        decoder = FrameDecoder()
        payloads = []
        for i in range(0, len(stream), chunking):
            payloads += decoder.feed(stream[i : i + chunking])
        assert [split_fields(p) for p in payloads] == [
            ["v100..176"], ["71", "2", "1", ""], ["61", "1"], ["6", "2", "1", "DU1"],
        ]  # fmt: skip
        assert decoder.pending == 0


def test_handshake_is_not_nul_terminated_and_may_carry_options():
    # ibapi and ib_async send "v100..157" / "v157..178" without a trailing NUL.
    assert parse_handshake(b"v100..157") == Handshake(100, 157, "")
    assert parse_handshake(b"v157..178 +PACEAPI") == Handshake(157, 178, "+PACEAPI")
    assert parse_handshake(b"v176") == Handshake(176, 176, "")
    with pytest.raises(HandshakeError):
        parse_handshake(b"hello")
    with pytest.raises(HandshakeError):
        FrameDecoder().feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ProtocolError):
        FrameDecoder(expect_handshake=False).feed(struct.pack(">I", 1 << 30))


# --- a raw socket client ------------------------------------------------------------------


class RawClient:
    """Speaks the protocol with plain sockets, to look at the exact fields the server sends."""

    def __init__(self, port: int, versions: str = "v100..176") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.decoder = FrameDecoder(expect_handshake=False)
        self.pending: list[list[str]] = []
        payload = versions.encode()
        self.sock.sendall(b"API\0" + struct.pack(">I", len(payload)) + payload)
        self.hello = self.next()

    def send(self, *fields) -> None:
        self.sock.sendall(encode_message(fields))

    def next(self, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not self.pending:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.pending += [split_fields(p) for p in self.decoder.feed(data)]
        return self.pending.pop(0)

    def until(self, done, timeout: float = 5.0) -> list[list[str]]:
        """Messages up to and including the first for which ``done(msg)`` is true."""
        out = []
        while True:
            msg = self.next(timeout)
            out.append(msg)
            if done(msg):
                return out

    def close(self) -> None:
        self.sock.close()


def _is(msg_id: int):
    return lambda msg: msg[0] == str(msg_id)


def test_handshake_answer_and_start_api_sequence(simulator):
    sim = simulator(server_version=176)
    client = RawClient(sim.port, "v157..178")
    version, stamp = client.hello
    assert version == "176"  # min(client's max, server's)
    assert len(stamp.split(" ")) == 3 and stamp.split(" ")[2] in ("EST", "EDT")
    client.send(Out.START_API, 2, 5, "")
    first = client.until(lambda msg: msg[:4] == ["4", "2", "-1", "2158"])
    assert first[0] == ["15", "1", sim.account.account]
    assert first[1] == ["9", "1", "1"]
    assert [m[3] for m in first[2:]] == ["2104", "2106", "2158"]
    assert all(len(m) == 6 and m[5] == "" for m in first[2:])  # advancedOrderRejectJson
    client.close()


@pytest.mark.parametrize(("offered", "server", "expected"), [
    ("v100..157", 176, "157"),  # ibapi 9.81
    ("v157..178", 176, "176"),  # ib_async
    ("v157..178", 163, "163"),
    ("v157..178", 178, "178"),
])  # fmt: skip
def test_version_negotiation(simulator, offered, server, expected):
    sim = simulator(server_version=server)
    client = RawClient(sim.port, offered)
    assert client.hello[0] == expected
    client.close()


def test_error_message_gains_advanced_reject_field_at_166(simulator):
    for server, fields in ((165, 5), (166, 6)):
        sim = simulator(server_version=server)
        client = RawClient(sim.port, "v157..178")
        client.send(Out.START_API, 2, 1, "")
        notices = client.until(lambda msg: msg[:4] == ["4", "2", "-1", "2158"])
        assert {len(m) for m in notices if m[0] == "4"} == {fields}


def test_client_id_in_use_gets_326_and_is_closed(simulator, ibapi_client):
    sim = simulator()
    first = ibapi_client(sim.port, 7)
    second = ibapi_client(sim.port, 7, wait_ready=False)
    second.wait(lambda: 326 in second.error_codes(-1), 5, "error 326")
    assert second.errors(-1)[0][2].startswith("Unable to connect as the client id is already")
    second.wait(lambda: second.of("connectionClosed"), 5, "connection closed")
    assert not second.of("nextValidId")
    # The first connection is untouched, and the id is free again once it leaves.
    first.app.reqCurrentTime()
    first.wait(lambda: first.of("currentTime"), 5, "currentTime")
    first.disconnect()
    sim.wait_for_clients(lambda ids: 7 not in ids)
    third = ibapi_client(sim.port, 7)
    assert third.of("nextValidId")


# --- the recorded TWS session ----------------------------------------------------------------


def _decode_recording(path) -> dict[str, list[list[str]]]:
    raw = json.loads(path.read_text())
    out = {}
    for key, frames in raw.items():
        out[key] = []
        for b64 in frames:
            data = base64.b64decode(b64)
            (size,) = struct.unpack(">I", data[:4])
            assert size == len(data) - 4
            out[key].append(split_fields(data[4:]))
    return out


def _kind(value: str) -> str:
    return "empty" if value == "" else "value"


def _currency_class(value: str) -> str:
    return {"": "none", "BASE": "BASE"}.get(value, "currency")


def _tag_key(msg: list[str]) -> tuple | None:
    """For account-value style messages: (tag, currency class), to pair rows by meaning."""
    kind = msg[0]
    if kind == "6":
        return (msg[2], _currency_class(msg[4]))
    if kind == "73":
        return (msg[5], _currency_class(msg[7]))
    if kind == "63":
        return (msg[4], _currency_class(msg[6]))
    if kind == "4":
        return (msg[3],)
    return None


def _layout(msg: list[str]) -> tuple:
    """Message id, version (for messages that carry one), field count, empty/non-empty map."""
    return (msg[0], len(msg), tuple(_kind(v) for v in msg))


def _compare(recorded: list[list[str]], ours: list[list[str]], label: str) -> int:
    """Compare every recorded message with our message of the same id (and tag); return how
    many pairs were compared."""
    compared = 0
    ours_by_id: dict[str, list[list[str]]] = {}
    for msg in ours:
        ours_by_id.setdefault(msg[0], []).append(msg)
    for rec in recorded:
        candidates = ours_by_id.get(rec[0])
        assert candidates, f"{label}: we never send message id {rec[0]} ({rec[:4]})"
        key = _tag_key(rec)
        if key is not None:
            candidates = [m for m in candidates if _tag_key(m) == key]
            if not candidates:
                continue  # an account key the simulator does not model (e.g. SegmentTitle-C)
        mine = candidates[0]
        assert len(mine) == len(rec), f"{label}: field count of {rec[:4]}: {mine} vs {rec}"
        if rec[0] not in ("102",) and rec[0] != "5":  # every other message carries a version
            assert mine[1] == rec[1], f"{label}: version of message {rec[0]}: {mine[1]}"
        assert _layout(mine) == _layout(rec), f"{label}: layout of {rec}: ours {mine}"
        compared += 1
    return compared


def test_layouts_match_recorded_tws_session_at_sv176(simulator, shared_data):
    """Decode the recording and the simulator's answers to the same requests; every message
    kind in the recording must have the same id, version, field count and field layout."""
    path = shared_data / RECORDING
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    recorded = _decode_recording(path)
    sim = simulator(server_version=176)
    client = RawClient(sim.port, "v157..176")
    account = sim.account.account

    # The handshake answer: two fields (version, connection time with zone).
    assert len(client.hello) == len(recorded["API_"][0]) == 2

    ours: dict[str, list[list[str]]] = {}
    client.send(Out.START_API, 2, 1, "")
    ours["71_2"] = client.until(lambda m: m[:4] == ["4", "2", "-1", "2158"])
    client.send(Out.REQ_POSITIONS, 1)
    ours["61_1"] = client.until(_is(62))
    client.send(Out.REQ_OPEN_ORDERS, 1)
    ours["5_1"] = client.until(_is(53))
    client.send(Out.REQ_COMPLETED_ORDERS, 0)
    ours["99_0"] = client.until(_is(102))
    client.send(Out.REQ_ACCT_DATA, 2, 1, account)
    ours["6_2"] = client.until(_is(54))
    client.send(Out.REQ_ACCOUNT_UPDATES_MULTI, 1, 217, account, "", 1)
    ours["76_1"] = client.until(_is(74))
    client.send(Out.REQ_EXECUTIONS, 3, 218, 0, "", "", "", "", "", "")
    ours["7_3"] = client.until(_is(55))
    # The simulator is read-only: an order is refused with 321, as a read-only TWS does.
    client.send(Out.PLACE_ORDER, 220, 0, "EUR", "CASH", "", "0.0", "", "", "", "", "USD")
    ours["3_220"] = client.until(_is(4))
    tags = "AccountType,NetLiquidation,TotalCashValue,BuyingPower,AvailableFunds,$LEDGER:ALL"
    client.send(Out.REQ_ACCOUNT_SUMMARY, 1, 221, "All", tags)
    ours["62_1"] = client.until(_is(64))
    client.close()

    # Recorded answers interleave other subscriptions' updates (e.g. 8 and 73 under 62_1),
    # so each recorded message is paired with ours of the same kind from the whole session.
    pool = [m for messages in ours.values() for m in messages]
    total = 0
    for key in ours:
        rec = [m for m in recorded[key] if m[0] != "5"]  # no orders in a read-only simulator
        total += _compare(rec, pool, key)
    assert total >= 60  # a real comparison, not a vacuous one
    # Keys a portfolio tool reads are all present, per currency and BASE.
    acct_rows = {(m[2], m[4]) for m in ours["6_2"] if m[0] == "6"}
    for tag in ("CashBalance", "TotalCashBalance", "UnrealizedPnL", "RealizedPnL",
                "ExchangeRate", "NetLiquidationByCurrency"):  # fmt: skip
        assert {(tag, "USD"), (tag, "EUR"), (tag, "BASE")} <= acct_rows
    for tag in ("TotalCashValue", "NetLiquidation", "GrossPositionValue", "AvailableFunds",
                "BuyingPower"):  # fmt: skip
        assert (tag, "USD") in acct_rows


@pytest.mark.parametrize("server_version", [157, 162, 163, 164, 166, 175, 178])
def test_ib_async_decodes_every_layout_version(simulator, server_version):
    """Each version boundary the simulator encodes (Decimal sizes at 163, size rules in
    contract details at 164, the error's extra field at 166) decodes cleanly in ib_async."""
    from ib_async import Stock

    sim = simulator(server_version=server_version, speed=60)
    ib = ib_async_client()
    errors = []
    ib.errorEvent += lambda *args: errors.append(args[1])
    ib.connect("127.0.0.1", sim.port, clientId=1, timeout=10)
    try:
        assert ib.client.serverVersion() == server_version
        [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
        assert details.contract.conId == 265598 and details.stockType == "COMMON"
        assert details.longName == "APPLE INC"
        # One market rule per valid exchange, as TWS lists them.
        rules = details.marketRuleIds.split(",")
        assert rules == ["26"] * len(details.validExchanges.split(",")) and len(rules) > 1
        bars = ib.reqHistoricalData(details.contract, "", "1800 S", "1 min", "TRADES", True)
        assert bars and all(b.volume > 0 and b.barCount == 12 for b in bars[:-1])
        ticker = ib.reqMktData(details.contract)
        ib.sleep(0.3)
        assert ticker.last > 0 and ticker.volume > 0 and ticker.lastSize > 0
        # Too long for the bar size: 162, which ends the request (ib_async takes 321 for a
        # warning and would wait forever).
        assert not ib.reqHistoricalData(details.contract, "", "1 W", "1 min", "TRADES", True)
        assert errors == [2104, 2106, 2158, 162]
    finally:
        ib.disconnect()


def test_ibapi_981_decodes_contract_details_and_ticks_at_157(simulator, ibapi_client):
    sim = simulator(speed=60)
    client = ibapi_client(sim.port, 1)
    client.app.reqContractDetails(1, stock("MSFT"))
    client.app.reqMktData(2, stock("MSFT"), "", False, False, [])
    client.wait(lambda: client.of("contractDetailsEnd", 1) and client.of("tickSize", 2), 5,
                "details and ticks")  # fmt: skip
    [(_, details)] = client.of("contractDetails", 1)
    assert details.contract.conId == 272093 and details.stockType == "COMMON"
    assert details.mdSizeMultiplier == 1 and details.validExchanges.startswith("SMART")
    assert all(isinstance(a[2], int) for a in client.of("tickSize", 2))  # integer sizes


def test_current_time_is_the_replayed_market_time(simulator, ibapi_client):
    """reqCurrentTime answers with the market clock (clients default download end times to
    it), not the machine's clock: at 3600x it runs an hour per second from the demo start."""
    sim = simulator(speed=3600)
    client = ibapi_client(sim.port, 1)
    before = sim.now()
    client.app.reqCurrentTime()
    client.wait(lambda: client.of("currentTime"), 5, "currentTime")
    after = sim.now()
    [(stamp,)] = client.of("currentTime")
    assert int(before) <= stamp <= after
    assert abs(stamp - time.time()) > 86400  # the demo data's 2026-10-30, not today

    ib = ib_async_client()
    ib.connect("127.0.0.1", sim.port, clientId=2, timeout=10)
    try:
        before = sim.now()
        when = ib.reqCurrentTime()
        assert int(before) <= when.timestamp() <= sim.now()
    finally:
        ib.disconnect()


# --- the keys and orders of a real paper account (recorded TWS session) --------------------


@pytest.fixture
def recording(shared_data):
    path = shared_data / RECORDING
    if not path.is_file():
        pytest.skip(f"the recorded TWS session {path} is absent")
    return _decode_recording(path)


def _recorded_like(simulator):
    """A simulator whose account is shaped like the recorded one: one currency, no
    positions (values differ, keys and orders must not)."""
    from quant_trading.simulator import AccountConfig

    account = AccountConfig(account="DU5509097", cash={"USD": 1_000_000.0},
                            account_type="PARTNERSHIP")  # fmt: skip
    return simulator(speed=0, account=account)


def _shape(rows, key_at, currency_at) -> list[tuple[str, str]]:
    return [(m[key_at], _currency_class(m[currency_at])) for m in rows]


def test_account_updates_carry_every_key_a_paper_account_sends(simulator, recording):
    sim = _recorded_like(simulator)
    client = RawClient(sim.port, "v157..176")
    client.send(Out.START_API, 2, 1, "")
    client.until(lambda m: m[:4] == ["4", "2", "-1", "2158"])
    client.send(Out.REQ_ACCT_DATA, 2, 1, sim.account.account)
    ours = [m for m in client.until(_is(54)) if m[0] == "6"]
    client.close()
    recorded = [m for m in recording["6_2"] if m[0] == "6"]
    assert len({m[2] for m in recorded}) == 129
    # Same keys with the same kinds of currency, in the same (alphabetical) order.
    assert _shape(ours, 2, 4) == _shape(recorded, 2, 4)
    assert [_kind(m[3]) for m in ours] == [_kind(m[3]) for m in recorded]


def test_account_summary_and_multi_updates_in_tws_order(simulator, recording):
    """ib_async's default summary tags come back in TWS's order: account tags without a
    currency, then with one, each alphabetically, then the ledger; accountUpdateMulti sends
    the account's keys alphabetically, then the ledger per currency."""
    import ib_async

    tags = inspect.getsource(ib_async.IB.reqAccountSummaryAsync)
    tags = "".join(re.findall(r'"([^"]*)"', tags.split("tags = (", 1)[1].split(")", 1)[0]))
    assert "DayTradesRemainingT+4" in tags and tags.endswith("$LEDGER:ALL")
    sim = _recorded_like(simulator)
    client = RawClient(sim.port, "v157..176")
    client.send(Out.START_API, 2, 1, "")
    client.until(lambda m: m[:4] == ["4", "2", "-1", "2158"])
    client.send(Out.REQ_ACCOUNT_SUMMARY, 1, 221, "All", tags)
    summary = [m for m in client.until(_is(64)) if m[0] == "63"]
    client.send(Out.REQ_ACCOUNT_UPDATES_MULTI, 1, 217, sim.account.account, "", 1)
    multi = [m for m in client.until(_is(74)) if m[0] == "73"]
    client.close()
    recorded = [m for m in recording["62_1"] if m[0] == "63"]
    assert _shape(summary, 4, 6) == _shape(recorded, 4, 6)
    assert [m[3] for m in summary] == [m[3] for m in recorded]  # account, then "All"
    recorded_multi = [m for m in recording["76_1"] if m[0] == "73"]
    assert _shape(multi, 5, 7) == _shape(recorded_multi, 5, 7)
