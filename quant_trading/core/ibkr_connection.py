"""The base of every live tool: one connection to TWS / IB Gateway over IB's ``ibapi``.

Use it as the seed README shows::

    class MyTrader(IBKRConnection):
        def on_connection_established(self):
            ...  # request what you need here

    trader = MyTrader(client_id=123)
    if trader.connect_to_tws():
        ...
        trader.disconnect_from_tws()

What it adds to ``EClient``/``EWrapper``: settings from arguments, the environment or
``.env`` (``IBKR_HOST``, ``IBKR_PORT``, ``IBKR_CLIENT_ID``); a refusal of the live ports
(TWS 7496, IB Gateway 4001) unless asked for, and with ``paper_only=True`` of a login whose
accounts are not paper accounts; a connect that never hangs (bounded by ``timeout``) and says
why it failed; the reader loop in a daemon thread; thread-safe request ids; errors routed to
the request they belong to; blocking request-and-wait helpers; a lost connection that fails
every waiting request at once and, with ``auto_reconnect=True``, reconnection with backoff and
a :meth:`resubscribe` hook.

It works with ibapi 9.81 (PyPI) and IB's 10.x API, whose callbacks pass extra arguments
(``error``'s leading error time and trailing ``advancedOrderRejectJson``) and Decimal sizes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from dotenv import dotenv_values
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

from ..bars import EXCHANGE_TZ, OHLCV

__all__ = [
    "IBKRConnection",
    "ConnectionSettings",
    "ib_bars_to_frame",
    "stock",
    "ConnectionConfigError",
    "RequestError",
    "RequestTimeout",
    "TROUBLESHOOTING",
    "troubleshooting",
    "ConnectionFailure",
    "is_paper_account",
    "PAPER_PORT",
    "LIVE_PORT",
    "LIVE_PORTS",
]

log = logging.getLogger(__name__)
#: Live-trading notices have their own logger: the live tools keep the connection's own log
#: quiet (they report failures themselves) but must still show these.
live_log = logging.getLogger("quant_trading.core.live_trading")

PAPER_PORT = 7497
LIVE_PORT = 7496
#: The live-trading ports (TWS, IB Gateway) and the paper port that goes with each.
LIVE_PORTS = {7496: ("TWS", 7497), 4001: ("IB Gateway", 4002)}
DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 30.0


def troubleshooting(port: int = PAPER_PORT) -> tuple[str, ...]:
    """The seed README's checklist, shown when a connection fails, naming ``port``."""
    return (
        "TWS is running and logged into Paper Trading account",
        "API settings are properly configured (Enable ActiveX and Socket Clients)",
        f"Port {port} is available",
        "Windows firewall allows TWS connections",
        "No other API connections are occupying TWS",
        "Each script uses a different client ID to avoid conflicts",
    )


#: The checklist for the default port (see :func:`troubleshooting` for another port).
TROUBLESHOOTING = troubleshooting()


def is_paper_account(account: str) -> bool:
    """IB's paper-trading account ids start with "D" (DU..., DF...); live ones do not."""
    return account.strip().upper().startswith("D")


#: Notices TWS sends as "errors" that are not: farm status, market data type changes, etc.
INFO_CODES = frozenset({2100, 2104, 2106, 2107, 2108, 2119, 2150, 2158, 2168, 2169, 10167})
#: TWS lost / regained its link to IB (the socket to us stays up).
LINK_LOST, LINK_RESTORED_DATA_LOST, LINK_RESTORED = 1100, 1101, 1102
CLIENT_ID_IN_USE = 326
CONNECT_FAIL, NOT_CONNECTED = 502, 504  # raised by ibapi itself, not by TWS
#: The pending-request key of reqCurrentTime, whose answer carries no request id.
_CURRENT_TIME = -201


class ConnectionConfigError(ValueError):
    """Bad connection settings (e.g. a live-trading port without ``allow_live``)."""


class RequestError(RuntimeError):
    """TWS answered a request with an error."""

    def __init__(self, req_id: int, code: int, message: str) -> None:
        super().__init__(f"error {code}: {message}")
        self.req_id, self.code, self.message = req_id, code, message


class RequestTimeout(TimeoutError):
    """No complete answer within the timeout."""


class ConnectionFailure(str):
    """:attr:`IBKRConnection.last_error`: the one-line reason, which also carries the
    troubleshooting checklist for the port that was tried (so a caller that only has the
    message can still show the right port)."""

    checklist: tuple[str, ...]

    def __new__(cls, message: str, checklist: tuple[str, ...]) -> ConnectionFailure:
        text = super().__new__(cls, message)
        text.checklist = checklist
        return text


@dataclass(frozen=True)
class ConnectionSettings:
    """Where to connect and as whom."""

    host: str
    port: int
    client_id: int

    @classmethod
    def resolve(
        cls,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        default_client_id: int = 1,
        env_file: str | os.PathLike | None = ".env",
    ) -> ConnectionSettings:
        """Arguments first, then ``IBKR_HOST``/``IBKR_PORT``/``IBKR_CLIENT_ID`` from the
        environment, then from ``env_file`` (``.env``), then the defaults."""
        file_values = (
            dotenv_values(env_file) if env_file is not None and os.path.isfile(env_file) else {}
        )

        def pick(value, name, default, kind):
            if value is not None:
                return kind(value)
            text = os.environ.get(name) or file_values.get(name)
            if text is None or not str(text).strip():
                return default
            try:
                return kind(str(text).strip())
            except ValueError:
                raise ConnectionConfigError(f"{name}={text!r} is not valid") from None

        return cls(
            host=pick(host, "IBKR_HOST", DEFAULT_HOST, str),
            port=pick(port, "IBKR_PORT", PAPER_PORT, int),
            client_id=pick(client_id, "IBKR_CLIENT_ID", default_client_id, int),
        )


@dataclass
class _Pending:
    """A request waiting for its answer: items collected until ``done`` is set."""

    req_id: int
    items: list[Any] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    error: RequestError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def stock(symbol: str, exchange: str = "SMART", currency: str = "USD", primary: str = ""):
    """An ibapi ``Contract`` for a stock."""
    contract = Contract()
    contract.symbol, contract.secType = symbol.upper(), "STK"
    contract.exchange, contract.currency = exchange, currency
    contract.primaryExchange = primary
    return contract


def ib_bars_to_frame(rows: list) -> pd.DataFrame:
    """ibapi ``BarData`` rows into the canonical bars frame (New York time). Intraday dates
    are epoch seconds (formatDate 2); daily ones ``yyyymmdd``."""
    if not rows:
        return pd.DataFrame({c: np.empty(0) for c in OHLCV},
                            index=pd.DatetimeIndex([], tz=EXCHANGE_TZ, name="time"))  # fmt: skip
    dates = [str(r.date).strip() for r in rows]
    if all(len(d) == 8 and d.isdigit() for d in dates):
        index = pd.to_datetime(dates, format="%Y%m%d").tz_localize(EXCHANGE_TZ)
    else:
        index = pd.to_datetime([int(d.split()[0]) for d in dates], unit="s", utc=True)
        index = index.tz_convert(EXCHANGE_TZ)
    frame = pd.DataFrame(
        {
            "open": [float(r.open) for r in rows],
            "high": [float(r.high) for r in rows],
            "low": [float(r.low) for r in rows],
            "close": [float(r.close) for r in rows],
            "volume": [max(float(r.volume), 0.0) for r in rows],  # IB sends -1 for "none"
        },
        index=pd.DatetimeIndex(index, name="time").as_unit("ns"),
    )
    return frame[~frame.index.duplicated(keep="last")].sort_index()


def split_error_args(args: tuple) -> tuple[int, str, str]:
    """``error`` callback arguments after reqId, for every API version:
    9.81 ``(code, msg)``, 10.19+ ``(code, msg, advancedOrderRejectJson)``,
    10.30+ ``(errorTime, code, msg, advancedOrderRejectJson)``."""
    if len(args) >= 3 and isinstance(args[2], str) and not isinstance(args[1], str):
        _time, code, message, *rest = args
    else:
        code, message, *rest = args
    return int(code), str(message), str(rest[0]) if rest and rest[0] else ""


class IBKRConnection(EWrapper, EClient):
    """A connection to TWS / IB Gateway; subclass it and override the hooks.

    ``allow_live=False`` (the default) refuses the live-trading ports 7496 (TWS) and 4001
    (IB Gateway); with ``paper_only=True`` it also refuses, right after connecting, a login
    whose managed accounts are not all paper accounts (ids starting with "D"), whatever the
    port. The toolkit's live tools are paper-only (their :attr:`PAPER_ONLY` is True);
    ``allow_live=True`` (``--live``) lifts both refusals and logs a warning instead.
    """

    #: Each tool has its own default client id so several can run side by side.
    DEFAULT_CLIENT_ID = 1
    #: Seconds between reconnection attempts, doubling up to the maximum.
    RECONNECT_BACKOFF = (1.0, 30.0)
    #: ``paper_only``'s default for this class: the live tools set it, a plain connection
    #: (your own scripts) opts in by passing ``paper_only=True``.
    PAPER_ONLY = False

    def __init__(
        self,
        client_id: int | None = None,
        host: str | None = None,
        port: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        allow_live: bool = False,
        auto_reconnect: bool = False,
        env_file: str | os.PathLike | None = ".env",
        paper_only: bool | None = None,
    ) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.settings = ConnectionSettings.resolve(
            host, port, client_id, self.DEFAULT_CLIENT_ID, env_file
        )
        live_port = LIVE_PORTS.get(self.settings.port)
        if live_port and not allow_live:
            app, paper_port = live_port
            raise ConnectionConfigError(
                f"port {self.settings.port} is {app}'s live-trading port; use the paper port "
                f"{paper_port}, or pass --live (allow_live=True) if you really mean it"
            )
        if live_port:
            live_log.warning("connecting to the LIVE trading port %d", self.settings.port)
        self.timeout = timeout
        self.auto_reconnect = auto_reconnect
        self.allow_live = allow_live
        self.paper_only = self.PAPER_ONLY if paper_only is None else paper_only
        self.last_error: str | None = None
        #: True when the last failure was not reaching TWS at all (vs. TWS refusing us).
        self.tws_unreachable = False
        self.next_order_id: int | None = None
        self.accounts: list[str] = []
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ready = threading.Event()
        self._accounts_known = threading.Event()
        self._clock_lock = threading.Lock()  # reqCurrentTime's answer carries no request id
        self._reader: threading.Thread | None = None
        self._closing = False
        self._reconnecting = threading.Lock()
        self._connect_failure: str | None = None

    # ----------------------------------------------------------------- hooks
    def on_connection_established(self) -> None:
        """Called once connected and TWS has sent ``nextValidId``. Override it."""

    def on_connection_lost(self, reason: str) -> None:
        """Called when the socket drops or TWS loses its link to IB. Override to react."""

    def on_connection_restored(self, data_lost: bool) -> None:
        """Called when TWS's link to IB is back: 1102 (data maintained) or 1101
        (``data_lost``). By default a data loss calls :meth:`resubscribe`."""
        if data_lost:
            self.resubscribe()

    def resubscribe(self) -> None:
        """Called after a reconnect (or, by default, a 1101 "data lost") to restore
        subscriptions."""

    # ------------------------------------------------------------ connecting
    def connect_to_tws(self) -> bool:
        """Connect, start the reader thread and wait for ``nextValidId`` (up to
        ``timeout`` seconds), then call :meth:`on_connection_established`. Returns True when
        ready; False with :attr:`last_error` set (and logged, with the troubleshooting
        checklist) otherwise. Never hangs."""
        self._closing = False
        if not self._open():
            return False
        self.on_connection_established()
        return True

    def _open(self) -> bool:
        self._ready.clear()
        self._accounts_known.clear()
        self.accounts = []
        self._connect_failure = None
        self.last_error = None
        host, port, client_id = self.settings.host, self.settings.port, self.settings.client_id
        deadline = time.monotonic() + self.timeout

        # ibapi's connect() loops until TWS answers the handshake; run it where a silent
        # peer cannot block the caller, and close the socket if it takes too long.
        handshake = threading.Thread(
            target=self._handshake, args=(host, port, client_id), daemon=True, name="ibkr-connect"
        )
        handshake.start()
        handshake.join(max(0.0, deadline - time.monotonic()))
        if handshake.is_alive():
            self._abort()
            handshake.join(2.0)
            return self._fail(
                f"TWS at {host}:{port} accepted the connection but did not answer", True
            )
        if self.connState != EClient.CONNECTED:  # the handshake never completed
            if self._connect_failure:  # ibapi's 502: the socket could not be opened
                return self._fail(
                    f"cannot connect to TWS at {host}:{port} ({self._connect_failure})", True
                )
            # No 502, so the socket was opened: the peer hung up before the API handshake
            # (TWS does this to an address that is not a trusted IP; or it is not TWS).
            return self._fail(
                f"{host}:{port} accepted the connection but closed it before the API "
                "handshake (is it TWS / IB Gateway, with API connections allowed from this "
                "address?)",
                True,
            )

        # Start the message loop even if TWS already closed the socket: what it sent first
        # (e.g. error 326, client id in use) is still queued and says why.
        self._guard_callbacks()
        reader = self._reader = threading.Thread(target=self.run, daemon=True, name="ibkr-reader")
        reader.start()
        while not self._ready.wait(0.05):
            if self._connect_failure or not reader.is_alive() or time.monotonic() > deadline:
                reason = self._connect_failure or (
                    "it closed the connection without saying why"
                    if not reader.is_alive()
                    else f"no answer within {self.timeout:g} s"
                )
                self._abort()
                return self._fail(f"TWS at {host}:{port} refused the session: {reason}")
        refusal = self._check_accounts(deadline)
        if refusal:
            self._abort()
            return self._fail(f"TWS at {host}:{port} {refusal}")
        log.info("connected to %s:%d as client %d (server version %s)",
                 host, port, client_id, self.serverVersion())  # fmt: skip
        return True

    def _check_accounts(self, deadline: float) -> str | None:
        """Why the session must not be used (live accounts under ``paper_only``), or None.
        Warns when it goes ahead with a live account."""
        if self.paper_only and not self._accounts_known.is_set():
            # TWS sends managedAccounts before nextValidId; ask once more if it has not.
            self._accounts_known.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            if not self._accounts_known.is_set():
                self.reqManagedAccts()
                self._accounts_known.wait(max(0.0, deadline - time.monotonic()))
        live = [a for a in self.accounts if not is_paper_account(a)]
        if self.paper_only and not self.allow_live:
            if not self._accounts_known.is_set():
                return (
                    f"did not say which accounts it manages within {self.timeout:g} s, so "
                    "it cannot be checked to be a paper account (pass --live / "
                    "allow_live=True to skip the check)"
                )
            if live:
                return (
                    f"is logged into the live account{'s' if len(live) > 1 else ''} "
                    f"{', '.join(live)}; this tool runs on paper accounts only (ids starting "
                    "with D): log TWS into Paper Trading, or pass --live (allow_live=True) if "
                    "you really mean it"
                )
        if live:
            live_log.warning("connected to the LIVE account(s) %s", ", ".join(live))
        return None

    def _guard_callbacks(self) -> None:
        # ibapi's reader loop dies on the first exception a callback raises, which would
        # look like a lost connection; log the bug and keep the connection instead.
        interpret = self.decoder.interpret

        def guarded(fields, *more) -> None:  # 10.x passes the message id as well
            try:
                interpret(fields, *more)
            except Exception:
                log.exception("error while handling TWS message %s", list(fields)[:2])

        self.decoder.interpret = guarded

    def _handshake(self, host: str, port: int, client_id: int) -> None:
        try:
            self.connect(host, port, client_id)
        except (AttributeError, OSError) as exc:  # we closed the socket under it (timeout)
            log.debug("handshake ended: %r", exc)

    def disconnect_from_tws(self) -> None:
        """Close the connection and stop the reader thread (waits for it briefly)."""
        self._closing = True
        self._abort()

    def _abort(self) -> None:
        closing, self._closing = self._closing, True
        sock = getattr(self.conn, "socket", None)
        if sock is not None:
            # close() alone leaves the socket open while the reader thread sits in recv()
            # (up to ibapi's 1 s receive timeout), so TWS would hold our client id that long;
            # shutdown() ends the session at once and wakes the reader.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        try:
            if self.conn is not None:
                self.disconnect()
        except OSError:  # the socket may already be gone
            pass
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(2.0)
        self._reader = None
        self._closing = closing
        self._fail_pending("disconnected")

    def troubleshooting(self) -> tuple[str, ...]:
        """The troubleshooting checklist for this connection's port."""
        return troubleshooting(self.settings.port)

    def _fail(self, message: str, unreachable: bool = False) -> bool:
        self.last_error = ConnectionFailure(message, self.troubleshooting())
        self.tws_unreachable = unreachable
        log.error("%s", message)
        if unreachable:
            log.info("check that: %s", "; ".join(self.troubleshooting()))
        return False

    # ------------------------------------------------------------- requests
    def next_request_id(self) -> int:
        """A request id unique within this connection (safe from any thread)."""
        with self._ids_lock:
            return next(self._ids)

    def request(
        self,
        send: Callable[[int], None],
        timeout: float | None = None,
        req_id: int | None = None,
    ) -> list[Any]:
        """Send a request with a fresh id and wait until its end callback; return the items
        its data callbacks collected. Raises RequestError (code 504 at once when the
        connection is or gets lost) or RequestTimeout."""
        if not self.isConnected():  # fail now, before registering anything
            raise RequestError(-1, NOT_CONNECTED, "not connected to TWS")
        pending = self.start_request(req_id)
        self._send(pending, lambda: send(pending.req_id))
        return self.wait(pending, timeout)

    def _send(self, pending: _Pending, send: Callable[[], None]) -> None:
        """Send ``pending``'s request. A socket that died under ibapi's send (9.81 lets the
        OSError through) fails the request at once instead of leaving it to time out."""
        try:
            send()
        except OSError as exc:
            self._pending.pop(pending.req_id, None)
            raise RequestError(pending.req_id, NOT_CONNECTED, f"connection lost ({exc})") from None

    def start_request(self, req_id: int | None = None) -> _Pending:
        """Register a request so its callbacks collect into it (see :meth:`wait`)."""
        pending = _Pending(req_id if req_id is not None else self.next_request_id())
        self._pending[pending.req_id] = pending
        return pending

    def wait(self, pending: _Pending, timeout: float | None = None) -> list[Any]:
        """Block (without busy waiting) until ``pending`` completes or fails."""
        limit = self.timeout if timeout is None else timeout
        finished = pending.done.wait(limit)
        self._pending.pop(pending.req_id, None)
        if pending.error is not None:
            raise pending.error
        if not finished:
            raise RequestTimeout(f"request {pending.req_id}: no answer within {limit:g} s")
        return pending.items

    def _collect(self, req_id: int, item: Any) -> None:
        pending = self._pending.get(req_id)
        if pending is not None:
            pending.items.append(item)

    def _finish(self, req_id: int) -> None:
        pending = self._pending.get(req_id)
        if pending is not None:
            pending.done.set()

    def _fail_pending(self, why: str) -> None:
        for pending in list(self._pending.values()):
            pending.error = RequestError(pending.req_id, NOT_CONNECTED, why)
            pending.done.set()

    def current_time(self, timeout: float | None = None) -> pd.Timestamp:
        """``reqCurrentTime``: TWS's clock, New York time to the second. Use it as "now" for
        anything TWS serves: the simulator answers with its (replayed) market clock, and a
        real TWS with the exchange's time, whatever this machine's clock says."""
        with self._clock_lock:
            (epoch,) = self.request(lambda _rid: self.reqCurrentTime(), timeout, _CURRENT_TIME)
        return pd.Timestamp(int(epoch), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)

    def contract_details(self, contract, timeout: float | None = None) -> list:
        """``reqContractDetails`` and wait: the ContractDetails records."""
        return self.request(lambda rid: self.reqContractDetails(rid, contract), timeout)

    def head_timestamp(
        self, contract, what_to_show: str = "TRADES", use_rth: bool = True, timeout=None
    ) -> pd.Timestamp:
        """``reqHeadTimeStamp``: when the earliest available data starts (New York time)."""
        sent: list[int] = []

        def send(req_id: int) -> None:
            sent.append(req_id)
            self.reqHeadTimeStamp(req_id, contract, what_to_show, int(use_rth), 2)

        try:
            (text,) = self.request(send, timeout)
        finally:
            if sent and self.isConnected():  # a lost connection has nothing to cancel
                self.cancelHeadTimeStamp(sent[0])
        text = str(text).strip()
        if text.isdigit() and len(text) != 8:
            return pd.Timestamp(int(text), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
        return pd.Timestamp(text.replace("  ", " ")).tz_localize(EXCHANGE_TZ)

    def historical_bars(
        self,
        contract,
        end: str,
        duration: str,
        bar_size: str,
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        timeout: float | None = None,
    ) -> pd.DataFrame:
        """``reqHistoricalData`` (epoch times, formatDate 2) and wait; returns the canonical
        bars frame in New York time. ``end`` is "" (now) or ``yyyymmdd-hh:mm:ss`` UTC."""
        rows = self.request(
            lambda rid: self.reqHistoricalData(rid, contract, end, duration, bar_size,
                                               what_to_show, int(use_rth), 2, False, []),
            timeout,
        )  # fmt: skip
        return ib_bars_to_frame(rows)

    # ------------------------------------------------------------ callbacks
    def nextValidId(self, orderId: int) -> None:  # noqa: N802 - ibapi's name
        self.next_order_id = orderId
        self._ready.set()

    def managedAccounts(self, accountsList: str) -> None:  # noqa: N802, N803
        self.accounts = [a.strip() for a in accountsList.split(",") if a.strip()]
        self._accounts_known.set()

    def currentTime(self, epoch: int, *_more) -> None:  # noqa: N802 - ibapi's name
        self._collect(_CURRENT_TIME, epoch)
        self._finish(_CURRENT_TIME)

    def connectionClosed(self) -> None:  # noqa: N802
        was_ready = self._ready.is_set()
        self._ready.clear()
        self._fail_pending("the connection to TWS was closed")
        if self._closing or not was_ready:  # our own close, or a connect that failed
            return
        log.warning("connection to TWS lost")
        self.on_connection_lost("socket closed")
        if self.auto_reconnect:
            threading.Thread(
                target=self._reconnect_loop, daemon=True, name="ibkr-reconnect"
            ).start()

    def headTimestamp(self, reqId: int, headTimestamp: str) -> None:  # noqa: N802, N803
        self._collect(reqId, headTimestamp)
        self._finish(reqId)

    def historicalData(self, reqId: int, bar) -> None:  # noqa: N802, N803
        self._collect(reqId, bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:  # noqa: N802, N803
        self._finish(reqId)

    def contractDetails(self, reqId: int, contractDetails) -> None:  # noqa: N802, N803
        self._collect(reqId, contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802, N803
        self._finish(reqId)

    def error(self, reqId: int, *args) -> None:  # noqa: N803
        """Route TWS errors: informational notices to debug, connection events to the hooks,
        request errors to the request waiting for them, the rest to the log."""
        code, message, _reject_json = split_error_args(args)
        if code in INFO_CODES:
            log.debug("TWS notice %d: %s", code, message)
            return
        if 2100 <= code < 3000:  # IB's warnings (e.g. 2174 about time zones) end no request
            log.warning("TWS warning %d (request %d): %s", code, reqId, message)
            return
        if code == CLIENT_ID_IN_USE:
            self._connect_failure = f"client id {self.settings.client_id} is already in use"
            return
        if code == LINK_LOST:
            log.warning("TWS lost its connection to IB (1100): %s", message)
            self.on_connection_lost("TWS lost its link to IB")
            return
        if code in (LINK_RESTORED_DATA_LOST, LINK_RESTORED):
            log.warning("TWS connection to IB restored (%d): %s", code, message)
            self.on_connection_restored(data_lost=code == LINK_RESTORED_DATA_LOST)
            return
        if code == CONNECT_FAIL:  # ibapi's own: the socket could not be opened
            self._connect_failure = "nothing is listening there"
            return
        if code == NOT_CONNECTED:
            # ibapi's own: something was sent on a closed socket. Nothing that is waiting
            # will be answered any more, so fail it now rather than after its timeout.
            log.debug("not connected (504): %s", message)
            if not self.isConnected():
                self._fail_pending("not connected to TWS (the connection was lost)")
            elif (pending := self._pending.get(reqId)) is not None:
                pending.error = RequestError(reqId, code, message)
                pending.done.set()
            return
        pending = self._pending.get(reqId)
        if pending is not None:
            pending.error = RequestError(reqId, code, message)
            pending.done.set()
            return
        self.on_error(reqId, code, message)

    def on_error(self, req_id: int, code: int, message: str) -> None:
        """An error no pending request claimed. Default: log it. Override to handle."""
        log.error("TWS error %d (request %d): %s", code, req_id, message)

    # ------------------------------------------------------------ reconnect
    def _reconnect_loop(self) -> None:
        if not self._reconnecting.acquire(blocking=False):
            return
        try:
            delay, longest = self.RECONNECT_BACKOFF
            while not self._closing:
                time.sleep(delay)
                if self._closing:
                    return
                log.info("reconnecting to %s:%d", self.settings.host, self.settings.port)
                self._reader = None
                self.reset()
                if self._open():
                    log.warning("reconnected to TWS")
                    self.resubscribe()
                    return
                delay = min(delay * 2, longest)
        finally:
            self._reconnecting.release()
