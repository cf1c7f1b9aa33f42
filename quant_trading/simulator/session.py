"""One API client connection: handshake, dispatch, connection, account and contract requests.

The :class:`Session` reads the client's byte stream, answers each request with the messages
TWS would send at the negotiated server version (see :mod:`.messages`) and keeps the
connection's subscriptions. The account side (account updates, summary, P&L) is fed by the
server through :meth:`Session.on_account_refresh`; market data, real-time bars and historical
bars live in :mod:`.streams` (mixed in), fed through ``on_market``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from ..bars import EXCHANGE_TZ
from . import messages as m
from .account import AccountSnapshot
from .faults import FARM_OK
from .market import SymbolData, UnknownSymbol
from .messages import Out
from .protocol import (
    FrameDecoder,
    HandshakeError,
    ProtocolError,
    encode_message,
    parse_handshake,
    split_fields,
)
from .requests import (
    AccountSummaryRequest,
    AccountUpdatesMultiRequest,
    AccountUpdatesRequest,
    ContractDetailsRequest,
    ContractSpec,
    HeadTimestampRequest,
    HistoricalRequest,
    IdsRequest,
    MarketDataRequest,
    MarketDataTypeRequest,
    PnLRequest,
    PositionsMultiRequest,
    RealTimeBarsRequest,
    ReqIdOnly,
    RequestError,
    StartApi,
    Unhandled,
    parse_request,
)
from .streams import (
    NO_SECURITY,
    BarSubscription,
    HistorySubscription,
    MarketSubscription,
    StreamingMixin,
)

if TYPE_CHECKING:
    from .server import Simulator

__all__ = ["Session"]

log = logging.getLogger(__name__)

CLIENT_ID_IN_USE = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
READ_ONLY = (
    "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
)
_EXCHANGES = {"", "SMART", "NASDAQ", "ISLAND", "NYSE", "ARCA", "BATS", "IEX", "AMEX", "EDGX"}
VALID_EXCHANGES = "SMART,AMEX,NYSE,ARCA,BATS,EDGX,IEX,ISLAND,NASDAQ"


@dataclass(slots=True)
class _Subscriptions:
    market: dict[int, MarketSubscription] = field(default_factory=dict)
    bars: dict[int, BarSubscription] = field(default_factory=dict)
    history: dict[int, HistorySubscription] = field(default_factory=dict)
    account_updates: bool = False
    account_sent: dict = field(default_factory=dict)
    pnl: dict[int, PnLRequest] = field(default_factory=dict)
    pnl_sent: dict[int, tuple] = field(default_factory=dict)
    summary: dict[int, tuple] = field(default_factory=dict)

    def symbols(self) -> set[str]:
        out = {s.symbol for s in self.market.values()}
        out.update(s.symbol for s in self.bars.values())
        out.update(s.symbol for s in self.history.values())
        return out


class Session(StreamingMixin):
    """A client connection; created by the server for each accepted socket."""

    def __init__(
        self, sim: Simulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.sv: int | None = None
        self.client_id: int | None = None
        self.data_type = 1
        self.subs = _Subscriptions()
        self.closed = False
        self._out: asyncio.Queue | None = None
        self._writer_task: asyncio.Task | None = None
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self._delayed_bytes = 0  # held back by the latency fault, not yet written

    # -- I/O ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client leaves or the server closes it."""
        decoder = FrameDecoder(expect_handshake=True)
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                for payload in decoder.feed(data):
                    if self.sv is None:
                        self._handshake(payload)
                    else:
                        self._dispatch(split_fields(payload))
                    if self.closed:
                        break
                    # A client that sends many requests at once must not hold up the market
                    # pump and the other clients until all of them are answered.
                    await asyncio.sleep(0)
        except HandshakeError as exc:
            log.warning("client %s: %s; closing", self.peer, exc)
        except ProtocolError as exc:
            log.warning("client %s: protocol error: %s; closing", self.peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()

    def send(self, fields: list) -> None:
        """Frame and send one message (after the configured latency, order kept).

        Messages produced in one turn of the event loop leave in one write: a market step
        sends thousands of small messages, and a system call per message would not keep up.
        """
        if self.closed:
            return
        data = encode_message(fields)
        latency = self.sim.latency
        if latency > 0 or (self._out is not None and not self._out.empty()):
            self._flush()
            if self._out is None:
                self._out = asyncio.Queue()
                self._writer_task = asyncio.get_running_loop().create_task(self._delayed_writer())
            self._out.put_nowait((asyncio.get_running_loop().time() + latency, data))
            self._delayed_bytes += len(data)
            self._check_backlog()
            return
        self._pending.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self.writer.is_closing():
            return
        self.writer.write(data)
        self._check_backlog()

    def _check_backlog(self) -> None:
        """Drop a client with more than ``max_backlog_bytes`` waiting for it (unsent, or held
        back by latency): one that stops reading would make the server buffer without bound,
        and TWS drops such a connection too."""
        transport = self.writer.transport
        unsent = transport.get_write_buffer_size() if transport is not None else 0
        queued = unsent + self._delayed_bytes
        if queued > self.sim.config.max_backlog_bytes and not self.closed:
            log.warning("client %s is not reading (%d bytes queued): dropping it", self.peer,
                        queued)  # fmt: skip
            self.abort()

    async def _delayed_writer(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._out is not None
        while True:
            due, data = await self._out.get()
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._delayed_bytes -= len(data)
            if self.writer.is_closing():
                return
            self.writer.write(data)
            self._check_backlog()

    def error(self, req_id: int, code: int, message: str) -> None:
        """Send TWS's error message (also used for warnings and notices)."""
        self.send(m.error(self.sv or m.MIN_SERVER_VERSION, req_id, code, message))

    async def close(self) -> None:
        """Close the socket and forget the subscriptions."""
        if self.closed and self.writer.is_closing():
            return
        self.closed = True
        self.subs = _Subscriptions()
        if self._writer_task is not None:
            self._writer_task.cancel()
        self.sim._session_ended(self)
        self._flush()  # e.g. error 326 goes out before the socket closes
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (TimeoutError, ConnectionError, OSError):
            pass

    def abort(self) -> None:
        """Drop the socket at once (fault injection: the connection is lost)."""
        self.closed = True
        self._pending.clear()
        self.subs = _Subscriptions()
        if self._writer_task is not None:
            self._writer_task.cancel()
        self.sim._session_ended(self)
        transport = self.writer.transport
        if transport is not None:
            transport.abort()

    # -- handshake and dispatch -----------------------------------------------------------

    def _handshake(self, payload: bytes) -> None:
        offer = parse_handshake(payload)
        server = self.sim.server_version
        if offer.max_version < m.MIN_SERVER_VERSION or offer.min_version > server:
            log.warning(
                "client %s offers versions %d..%d; simulator speaks %d..%d: closing",
                self.peer, offer.min_version, offer.max_version, m.MIN_SERVER_VERSION, server,
            )  # fmt: skip
            self.closed = True
            return
        self.sv = min(offer.max_version, server)
        now = pd.Timestamp(self.sim.now(), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
        stamp = now.strftime("%Y%m%d %H:%M:%S ") + now.tzname()
        self.send([self.sv, stamp])
        log.info("client %s: server version %d", self.peer, self.sv)

    def _dispatch(self, fields: list[str]) -> None:
        assert self.sv is not None
        try:
            request = parse_request(fields, self.sv)
        except RequestError as exc:
            log.warning("client %s: unreadable request %s: %s", self.peer, fields[:3], exc)
            self.error(-1, 320, f"Error reading request. {exc}")
            return
        if self.client_id is None and not isinstance(request, StartApi):
            log.debug("client %s: request before startApi: %s", self.peer, fields[:2])
        handler = _HANDLERS.get(type(request))
        if handler is None:
            return
        try:
            handler(self, request)
        except Exception:  # one bad request must not take the connection down
            log.exception("client %s: failed to answer %s", self.peer, fields[:3])

    # -- connection -----------------------------------------------------------------------

    def _start_api(self, req: StartApi) -> None:
        if not self.sim._claim_client_id(req.client_id, self):
            self.error(-1, 326, CLIENT_ID_IN_USE)
            self.closed = True  # the read loop ends and closes the socket after the flush
            return
        self.client_id = req.client_id
        self.send(m.managed_accounts(self.sv, [self.sim.account.account]))
        self.send(m.next_valid_id(self.sv, self.sim.next_order_id))
        for code, text in FARM_OK:
            self.error(-1, code, text)
        if self.sim.link_down:
            self.error(-1, 1100, "Connectivity between IB and Trader Workstation has been lost.")

    def _ids(self, req: IdsRequest) -> None:
        self.send(m.next_valid_id(self.sv, self.sim.next_order_id))

    def _simple(self, req: ReqIdOnly) -> None:
        sv = self.sv
        msg_id = req.msg_id
        if msg_id == Out.REQ_CURRENT_TIME:
            self.send(m.current_time(sv, int(self.sim.now())))
        elif msg_id in (Out.REQ_OPEN_ORDERS, Out.REQ_ALL_OPEN_ORDERS):
            self.send(m.open_order_end(sv))
        elif msg_id == Out.REQ_COMPLETED_ORDERS:
            self.send(m.completed_orders_end(sv))
        elif msg_id == Out.REQ_EXECUTIONS:
            self.send(m.exec_details_end(sv, req.req_id))
        elif msg_id == Out.REQ_MANAGED_ACCTS:
            self.send(m.managed_accounts(sv, [self.sim.account.account]))
        elif msg_id == Out.REQ_POSITIONS:
            self._positions()
        elif msg_id == Out.CANCEL_MKT_DATA:
            self.subs.market.pop(req.req_id, None)
        elif msg_id == Out.CANCEL_REAL_TIME_BARS:
            self.subs.bars.pop(req.req_id, None)
        elif msg_id == Out.CANCEL_HISTORICAL_DATA:
            self.subs.history.pop(req.req_id, None)
        elif msg_id in (Out.CANCEL_PNL, Out.CANCEL_PNL_SINGLE):
            self.subs.pnl.pop(req.req_id, None)
            self.subs.pnl_sent.pop(req.req_id, None)
        elif msg_id == Out.CANCEL_ACCOUNT_SUMMARY:
            self.subs.summary.pop(req.req_id, None)
        # cancelPositions, cancel*Multi, cancelHeadTimestamp, reqAutoOpenOrders: nothing is
        # streaming for them, so nothing to do.

    def _unhandled(self, req: Unhandled) -> None:
        if req.msg_id == Out.PLACE_ORDER:
            order_id = int(req.fields[1]) if len(req.fields) > 1 else -1
            self.error(order_id, 321, READ_ONLY)
            return
        log.info("client %s: request %d not simulated; ignored", self.peer, req.msg_id)

    # -- account --------------------------------------------------------------------------

    def _snapshot(self) -> AccountSnapshot:
        return self.sim.account_snapshot()

    def _account_updates(self, req: AccountUpdatesRequest) -> None:
        if not req.subscribe:
            self.subs.account_updates = False
            return
        snap = self._snapshot()
        sv, acct = self.sv, snap.account
        for row in sorted(snap.values, key=lambda r: (r.key, r.currency)):
            self.send(m.account_value(sv, row.key, row.value, row.currency, acct))
            self.subs.account_sent[(row.key, row.currency)] = row.value
        self._send_portfolio(snap)
        self.send(m.account_time(sv, self._account_time()))
        self.send(m.account_download_end(sv, acct))
        self.subs.account_updates = True

    def _account_time(self) -> str:
        now = pd.Timestamp(self.sim.now(), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
        return now.strftime("%H:%M")

    def _send_portfolio(self, snap: AccountSnapshot) -> None:
        for h in snap.holdings:
            contract = self.sim.contract(h.symbol)
            self.send(
                m.portfolio_value(
                    self.sv, contract, h.quantity, h.market_price, round(h.market_value, 2),
                    h.average_cost, round(h.unrealized_pnl, 2), h.realized_pnl, snap.account,
                )
            )  # fmt: skip

    def _positions(self) -> None:
        snap = self._snapshot()
        for h in snap.holdings:
            contract = self.sim.contract(h.symbol)
            self.send(m.position(self.sv, snap.account, contract, h.quantity, h.average_cost))
        self.send(m.position_end(self.sv))

    def _positions_multi(self, req: PositionsMultiRequest) -> None:
        snap = self._snapshot()
        for h in snap.holdings:
            contract = self.sim.contract(h.symbol)
            self.send(m.position_multi(self.sv, req.req_id, snap.account, contract, h.quantity,
                                       h.average_cost, req.model_code))  # fmt: skip
        self.send(m.position_multi_end(self.sv, req.req_id))

    def _account_updates_multi(self, req: AccountUpdatesMultiRequest) -> None:
        snap = self._snapshot()
        if req.account and req.account not in (snap.account, "All"):
            self.error(req.req_id, 321, f"Error validating request.-'bH' : cause - "
                       f"Invalid account code: {req.account}")  # fmt: skip
            return
        # As recorded from TWS: the account-level values by key, then the ledger per currency.
        rows = sorted(snap.account_rows, key=lambda r: (r.key, r.currency)) + list(snap.ledger)
        for row in rows:
            self.send(m.account_update_multi(self.sv, req.req_id, snap.account, req.model_code,
                                             row.key, row.value, row.currency))  # fmt: skip
        self.send(m.account_update_multi_end(self.sv, req.req_id))

    def _account_summary(self, req: AccountSummaryRequest) -> None:
        snap = self._snapshot()
        sent = {}
        for account, key, value, currency in _summary_rows(req, snap):
            sent[(key, currency)] = value
            self.send(m.account_summary(self.sv, req.req_id, account, key, value, currency))
        self.send(m.account_summary_end(self.sv, req.req_id))
        self.subs.summary[req.req_id] = (req, sent)  # TWS keeps streaming changes

    def _pnl(self, req: PnLRequest) -> None:
        self.subs.pnl[req.req_id] = req
        self._send_pnl(req, self._snapshot())

    def _send_pnl(self, req: PnLRequest, snap: AccountSnapshot) -> None:
        sv = self.sv
        if req.con_id == 0:
            fields = m.pnl(sv, req.req_id, round(snap.daily_pnl, 2),
                           round(snap.unrealized_pnl, 2), round(snap.realized_pnl, 2))  # fmt: skip
        else:
            holding = next(
                (h for h in snap.holdings if self.sim.contract(h.symbol).con_id == req.con_id),
                None,
            )
            if holding is None:
                return  # TWS stays silent for a conId the account does not hold
            fields = m.pnl_single(
                sv, req.req_id, holding.quantity, round(holding.daily_pnl, 2),
                round(holding.unrealized_pnl, 2), holding.realized_pnl,
                round(holding.market_value, 2),
            )  # fmt: skip
        key = tuple(fields[2:])
        if self.subs.pnl_sent.get(req.req_id) != key:
            self.subs.pnl_sent[req.req_id] = key
            self.send(fields)

    def on_account_refresh(self, snap: AccountSnapshot) -> None:
        """Periodic account push: changed values, portfolio rows and P&L, as TWS streams them."""
        if self.subs.account_updates:
            changed = False
            for row in sorted(snap.values, key=lambda r: (r.key, r.currency)):
                key = (row.key, row.currency)
                if self.subs.account_sent.get(key) != row.value:
                    self.subs.account_sent[key] = row.value
                    self.send(m.account_value(self.sv, row.key, row.value, row.currency,
                                              snap.account))  # fmt: skip
                    changed = True
            if changed:
                self._send_portfolio(snap)
                self.send(m.account_time(self.sv, self._account_time()))
        for req in list(self.subs.pnl.values()):
            self._send_pnl(req, snap)
        for req, sent in list(self.subs.summary.values()):
            for account, key, value, currency in _summary_rows(req, snap):
                if sent.get((key, currency)) != value:
                    sent[(key, currency)] = value
                    self.send(m.account_summary(self.sv, req.req_id, account, key, value,
                                                currency))  # fmt: skip

    # -- contracts ------------------------------------------------------------------------

    def _resolve(self, req_id: int, spec: ContractSpec) -> SymbolData | None:
        """The data of a requested stock, or None after sending error 200 as TWS does."""
        ok = (
            spec.sec_type in ("STK", "")
            and spec.currency in ("USD", "")
            and spec.exchange in _EXCHANGES
            and (spec.symbol or spec.local_symbol or spec.con_id)
        )
        symbol = spec.symbol or spec.local_symbol
        if not symbol and spec.con_id:
            symbol = self.sim.symbol_for_con_id(spec.con_id) or ""
        if ok and symbol and self.sim.market.has(symbol):
            data = self.sim.market.data(symbol)
            if spec.con_id and spec.con_id != data.contract.con_id:
                ok = False
            if ok:
                try:
                    data.ensure_loaded()
                    return data
                except UnknownSymbol:
                    pass
        self.error(req_id, 200, NO_SECURITY)
        return None

    def _contract_details(self, req: ContractDetailsRequest) -> None:
        data = self._resolve(req.req_id, req.contract)
        if data is None:
            return
        hours, liquid = self.sim.trading_hours(data)
        exchange = req.contract.exchange or "SMART"
        self.send(m.contract_data(self.sv, req.req_id, data.contract, exchange, VALID_EXCHANGES,
                                  hours, liquid))  # fmt: skip
        self.send(m.contract_data_end(self.sv, req.req_id))

    def _head_timestamp(self, req: HeadTimestampRequest) -> None:
        data = self._resolve(req.req_id, req.contract)
        if data is None:
            return
        first = data.first_time
        if req.format_date == 2:
            text = str(int(first))
        else:  # TWS writes the head timestamp in UTC with a dash: 19801212-14:30:00
            text = pd.Timestamp(first, unit="s", tz="UTC").strftime("%Y%m%d-%H:%M:%S")
        self.send(m.head_timestamp(self.sv, req.req_id, text))

    # -- link faults ----------------------------------------------------------------------

    def drop_market_subscriptions(self) -> None:
        """After "1101 data lost" the client must renew: forget every streaming request."""
        self.subs.market.clear()
        self.subs.bars.clear()
        self.subs.history.clear()


def _summary_rows(req: AccountSummaryRequest, snap: AccountSnapshot) -> list[tuple]:
    """(account, tag, value, currency) rows a reqAccountSummary asks for, in TWS's order
    (as recorded): the account-level tags without a currency, then those in the base
    currency, each alphabetically whatever order they were asked in; then for ``$LEDGER``
    (``BASE``), ``$LEDGER:ALL`` or ``$LEDGER:<CCY>`` the ledger keys per currency. Ledger
    rows are the group's (TWS labels them with the group name, "All"), the others the
    account's. Tags the account does not have (SettledCash, HighestSeverity...) are left
    out, as TWS leaves them out."""
    tags = [t.strip() for t in req.tags.split(",") if t.strip()]
    wanted = set(tags)
    level = [r for r in snap.summary() if r.key in wanted]
    rows = [(snap.account, r.key, r.value, r.currency)
            for r in sorted(level, key=lambda r: (r.currency != "", r.key))]  # fmt: skip
    group = req.group or snap.account
    for tag in tags:
        if not tag.startswith("$LEDGER"):
            continue
        which = tag.partition(":")[2] or "BASE"
        for row in snap.ledger:
            if which == "ALL" or row.currency == which:
                value = group if row.key == "AccountOrGroup" else row.value
                rows.append((group, row.key, value, row.currency))
    return rows


_HANDLERS = {
    StartApi: Session._start_api,
    IdsRequest: Session._ids,
    ReqIdOnly: Session._simple,
    Unhandled: Session._unhandled,
    AccountUpdatesRequest: Session._account_updates,
    AccountUpdatesMultiRequest: Session._account_updates_multi,
    PositionsMultiRequest: Session._positions_multi,
    AccountSummaryRequest: Session._account_summary,
    PnLRequest: Session._pnl,
    ContractDetailsRequest: Session._contract_details,
    HeadTimestampRequest: Session._head_timestamp,
    MarketDataTypeRequest: Session._market_data_type,
    MarketDataRequest: Session._market_data,
    RealTimeBarsRequest: Session._real_time_bars,
    HistoricalRequest: Session._historical,
}
