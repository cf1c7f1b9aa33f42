"""The dashboard's way to the paper TWS: a held connection the user toggles, else a one-off
connection per request.

* :data:`HELD` is the process-wide held connection (a :class:`HeldConnection`): the
  dashboard's connect/disconnect toggle opens and closes it, and while it is open the account
  is read over it (client id ``IBKR_CLIENT_ID``, 21 by default). When TWS drops it, requests
  are refused at once and it reconnects in the background with the trackers' backoff
  (``auto_reconnect``). It is closed when the process exits.
* Without a held connection, :func:`read_account` opens a one-off connection, reads the
  account and disconnects. One-off connections take turns with the client ids just after the
  held one's (22..29 by default), one per request in flight, so they do not clash with it or
  each other; an id another program uses is skipped for the next.

Every wait is bounded by ``IBKR_TIMEOUT`` (``settings.TWS_TIMEOUT``); the settings are read
when a connection is opened, not at import. Paper only: nothing here passes ``allow_live``, the
trackers refuse live-trading ports and logins whose accounts are not paper accounts.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from django.conf import settings

from quant_trading.core.ibkr_connection import (
    CLIENT_ID_IN_USE,
    NOT_CONNECTED,
    ConnectionConfigError,
    ConnectionSettings,
    RequestError,
    RequestTimeout,
    is_paper_account,
    split_error_args,
    troubleshooting,
)
from quant_trading.core.portfolio_tracker import AccountPnL, PortfolioSnapshot, PortfolioTracker

__all__ = [
    "HELD",
    "AccountReading",
    "ConnectionState",
    "HeldConnection",
    "HeldTracker",
    "LiveAccountError",
    "Source",
    "TWSError",
    "TWSProbe",
    "probe",
    "read_account",
]

log = logging.getLogger(__name__)

#: How many one-off connections may be open at once (client ids held + 1 .. held + this).
ONE_OFF_CLIENT_IDS = 8
#: The longest a health check waits for TWS's port to accept a TCP connection.
PROBE_TIMEOUT = 1.0

State = Literal["disconnected", "connecting", "connected", "reconnecting"]


class TWSError(RuntimeError):
    """TWS cannot answer now (not reachable, refused us, too slow, connection lost); the
    message is one line for the user."""


class LiveAccountError(TWSError):
    """TWS is logged into a live account; the dashboard reads paper accounts only."""


@dataclass(frozen=True)
class Source:
    """Where an account reading came from, and when it was taken."""

    connection: Literal["held", "one-off"]
    host: str
    port: int
    client_id: int
    fetched_at: datetime


@dataclass(frozen=True)
class AccountReading:
    """One read of the account: the tracker's snapshot, its P&L (None when TWS did not
    give it in time) and the login's accounts."""

    snapshot: PortfolioSnapshot
    pnl: AccountPnL | None
    accounts: tuple[str, ...]
    source: Source


@dataclass(frozen=True)
class ConnectionState:
    """The held connection as the dashboard shows it. ``since``: when it entered ``state``;
    ``last_error``: why it is not connected (the latest failed attempt while reconnecting)."""

    state: State
    host: str
    port: int
    client_id: int
    accounts: tuple[str, ...]
    since: datetime | None
    last_error: str | None

    @property
    def connected(self) -> bool:
        """True while the held connection is up."""
        return self.state == "connected"


@dataclass(frozen=True)
class TWSProbe:
    """Whether TWS's port accepts connections (health check), and the held connection."""

    host: str
    port: int
    reachable: bool
    error: str | None
    held_connection: ConnectionState


def _now() -> datetime:
    return datetime.now(UTC)


def _left(deadline: float) -> float:
    """Seconds to ``deadline``; a sliver at least, so a late step fails by timing out."""
    return max(0.05, deadline - time.monotonic())


def _where(tws: ConnectionSettings) -> str:
    return f"{tws.host}:{tws.port}"


def _connect_error(tracker: _Tracker) -> TWSError:
    """Why ``tracker.connect_to_tws()`` failed, as one line with what to check."""
    tws = tracker.settings
    live = [a for a in tracker.accounts if not is_paper_account(a)]
    if live and not tracker.tws_unreachable:
        return LiveAccountError(
            f"TWS at {_where(tws)} is logged into the live account{'s' * (len(live) > 1)} "
            f"{', '.join(live)}; the dashboard reads paper accounts only (ids starting with "
            "D): log TWS into Paper Trading"
        )
    error = str(tracker.last_error or f"cannot connect to TWS at {_where(tws)}")
    if tracker.client_id_taken:
        error += " by another API client: close it, or set IBKR_CLIENT_ID to a free id"
    if tracker.tws_unreachable:
        # The gist of the seed's checklist: running, logged into paper, API on, this port.
        error += "; check that " + "; ".join(troubleshooting(tws.port)[:3])
    return TWSError(error)


def _read(
    tracker: PortfolioTracker, deadline: float, kind: Literal["held", "one-off"]
) -> AccountReading:
    """Snapshot and P&L over a connected ``tracker``, both within ``deadline``."""
    tws = tracker.settings
    try:
        snapshot = tracker.snapshot(timeout=_left(deadline))
    except RequestTimeout:
        raise TWSError(
            f"TWS at {_where(tws)} did not send the account within {settings.TWS_TIMEOUT:g} s"
        ) from None
    except RequestError as exc:
        if exc.code == NOT_CONNECTED:
            raise TWSError(
                f"the connection to TWS at {_where(tws)} was lost while reading the account"
            ) from None
        raise TWSError(f"TWS at {_where(tws)} refused the account request: {exc}") from None
    try:
        pnl = tracker.account_pnl(snapshot.account, timeout=_left(deadline))
    except RequestError as exc:
        if exc.code == NOT_CONNECTED:
            raise TWSError(
                f"the connection to TWS at {_where(tws)} was lost while reading the P&L"
            ) from None
        log.warning("no daily P&L from TWS at %s: %s", _where(tws), exc)
        pnl = None
    except RequestTimeout:
        log.warning("no daily P&L from TWS at %s within the timeout", _where(tws))
        pnl = None
    source = Source(kind, tws.host, tws.port, tws.client_id, _now())
    return AccountReading(snapshot, pnl, tuple(tracker.accounts), source)


class _Tracker(PortfolioTracker):
    """A portfolio tracker that notes TWS refusing its client id (326) as in use."""

    client_id_taken = False

    def error(self, reqId: int, *args) -> None:  # noqa: N803 - ibapi's name
        if split_error_args(args)[0] == CLIENT_ID_IN_USE:
            self.client_id_taken = True
        super().error(reqId, *args)


class HeldTracker(_Tracker):
    """The held connection's tracker: tells its :class:`HeldConnection` when the connection
    drops and when it is back. Tests shorten :attr:`RECONNECT_BACKOFF`."""

    def __init__(self, owner: HeldConnection, **kwargs) -> None:
        super().__init__(**kwargs)
        self._owner = owner

    def on_connection_lost(self, reason: str) -> None:
        super().on_connection_lost(reason)
        if not self.isConnected():  # 1100 (TWS lost IB) keeps the socket: nothing to redo
            self._owner._lost(self, reason)

    def resubscribe(self) -> None:
        super().resubscribe()
        if not self._owner._restored(self):
            # Reconnected after the user disconnected (or connected anew): not wanted.
            self.disconnect_from_tws()


class HeldConnection:
    """The held paper-TWS connection (see the module doc); safe to use from any thread.

    ``_lock`` guards the fields and is never held while waiting for TWS, so the tracker's
    hooks (called from its reader and reconnect threads) never wait for a request;
    ``_switch`` lets one connect or disconnect run at a time; ``_fetch`` one account read
    (the tracker's account download is one subscription at a time).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switch = threading.Lock()
        self._fetch = threading.Lock()
        self._tracker: HeldTracker | None = None
        self._settings: ConnectionSettings | None = None
        self._state: State = "disconnected"
        self._since: datetime | None = None
        self._last_error: str | None = None

    # ------------------------------------------------------------------- state
    def state(self) -> ConnectionState:
        """The state, the address and client id (the connection's own, else the settings'),
        the accounts while connected, since when, and the last error."""
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> ConnectionState:
        tws = self._settings or settings.TWS
        tracker, state, error = self._tracker, self._state, self._last_error
        if state == "reconnecting" and tracker is not None and tracker.last_error:
            error = str(tracker.last_error)  # the latest attempt says more than the drop
        accounts = tuple(tracker.accounts) if tracker and state == "connected" else ()
        return ConnectionState(
            state, tws.host, tws.port, tws.client_id, accounts, self._since, error
        )

    def _set(self, state: State, error: str | None) -> None:
        """Enter ``state`` (caller holds ``_lock``)."""
        if state != self._state:
            self._state, self._since = state, _now()
        self._last_error = error

    @contextlib.contextmanager
    def _switching(self) -> Iterator[None]:
        # A connect takes at most the timeout plus the aborted reader's join (2 s).
        if not self._switch.acquire(timeout=float(settings.TWS_TIMEOUT) + 5.0):
            raise TWSError("another connect or disconnect of TWS is still in progress")
        try:
            yield
        finally:
            self._switch.release()

    # ---------------------------------------------------------------- toggling
    def connect(self) -> ConnectionState:
        """Open the held connection to ``settings.TWS`` (nothing to do when it is up; while
        it is reconnecting, the background attempts give way to one made now). Raises
        :class:`TWSError` with the reason when TWS cannot be reached within the timeout."""
        with self._switching():
            with self._lock:
                current = self._tracker
                if self._state == "connected" and current is not None and current.isConnected():
                    return self._state_locked()
                self._tracker = None
            if current is not None:  # reconnecting, or dropped and not noticed yet
                current.disconnect_from_tws()
            tws = settings.TWS
            deadline = time.monotonic() + float(settings.TWS_TIMEOUT)
            log.info("connecting the held connection to TWS at %s", _where(tws))
            tracker, connected = self._open(tws, deadline)
            if connected:
                state = self.state()
                log.info("held connection to TWS at %s (client %d): %s", _where(tws),
                         tws.client_id, state.state)  # fmt: skip
                return state
            error = _connect_error(tracker)
            with self._lock:
                if self._tracker is tracker:
                    self._tracker, self._settings = None, None
                    self._set("disconnected", str(error))
            raise error

    def _open(self, tws: ConnectionSettings, deadline: float) -> tuple[HeldTracker, bool]:
        """One attempt to connect a new held tracker (state connecting, then connected):
        the tracker and whether it connected."""
        try:
            tracker = HeldTracker(self, client_id=tws.client_id, host=tws.host, port=tws.port,
                                  timeout=_left(deadline), env_file=None,
                                  auto_reconnect=True)  # fmt: skip
        except ConnectionConfigError as exc:
            with self._lock:
                self._settings = None
                self._set("disconnected", str(exc))
            raise TWSError(str(exc)) from None
        with self._lock:
            self._tracker, self._settings = tracker, tws
            self._set("connecting", None)
        if not tracker.connect_to_tws():
            return tracker, False
        with self._lock:
            # A drop since the handshake was not taken for one (it was not "connected"
            # yet): the tracker is reconnecting, and _restored says when it is back.
            if tracker.isConnected():
                self._set("connected", None)
            else:
                self._set("reconnecting", f"the connection to TWS at {_where(tws)} was lost")
        return tracker, True

    def disconnect(self) -> ConnectionState:
        """Close the held connection (and stop reconnecting); requests use one-off
        connections again."""
        with self._switching():
            with self._lock:
                tracker, self._tracker, self._settings = self._tracker, None, None
                self._set("disconnected", None)
            if tracker is not None:
                tracker.disconnect_from_tws()
                log.info("held connection to TWS at %s closed", _where(tracker.settings))
        return self.state()

    def close(self) -> None:
        """Disconnect at process exit; never raises."""
        try:
            self.disconnect()
        except Exception:  # at exit there is nobody left to tell
            log.exception("closing the held connection to TWS failed")

    # ---------------------------------------------------------- tracker hooks
    def _lost(self, tracker: HeldTracker, reason: str) -> None:
        with self._lock:
            if self._tracker is not tracker or self._state != "connected":
                return
            self._set(
                "reconnecting",
                f"the connection to TWS at {_where(tracker.settings)} was lost ({reason})",
            )
        log.warning("held connection to TWS at %s lost (%s); reconnecting",
                    _where(tracker.settings), reason)  # fmt: skip

    def _restored(self, tracker: HeldTracker) -> bool:
        """The tracker reconnected (or TWS regained IB with data lost): True when it is still
        the held one."""
        with self._lock:
            if self._tracker is not tracker:
                return False
            if self._state == "reconnecting":
                self._set("connected", None)
                log.warning("held connection to TWS at %s is back", _where(tracker.settings))
            return True

    # ---------------------------------------------------------------- reading
    def read_account(self, deadline: float) -> AccountReading | None:
        """Read the account over the held connection, or None when none is held (not
        connected or still connecting: the caller goes one-off). Raises :class:`TWSError`
        at once while it is reconnecting."""
        with self._lock:
            tracker, state = self._tracker, self._state
        if tracker is None or state not in ("connected", "reconnecting"):
            return None
        tws = tracker.settings
        if state == "reconnecting":
            attempt = f" (last attempt: {tracker.last_error})" if tracker.last_error else ""
            raise TWSError(
                f"the held connection to TWS at {_where(tws)} was lost; reconnecting{attempt}"
            )
        if not self._fetch.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TWSError(
                f"TWS at {_where(tws)} is still answering other portfolio requests; try again"
            )
        try:
            return _read(tracker, deadline, "held")
        finally:
            self._fetch.release()


class _OneOffClientIds:
    """Client ids for one-off connections: ``held + 1 .. held + ONE_OFF_CLIENT_IDS``, each
    used by one request at a time, in turn (so TWS has had time to free an id before it is
    used again)."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._busy: set[int] = set()
        self._turn = 0

    @contextlib.contextmanager
    def take(self, held: int, deadline: float) -> Iterator[int]:
        """The next free id (waiting until ``deadline`` for one)."""
        with self._free:
            while True:
                order = [(self._turn + k) % ONE_OFF_CLIENT_IDS for k in range(ONE_OFF_CLIENT_IDS)]
                slot = next((k for k in order if held + 1 + k not in self._busy), None)
                if slot is not None:
                    break
                if not self._free.wait(deadline - time.monotonic()):
                    raise TWSError(
                        f"{ONE_OFF_CLIENT_IDS} portfolio requests are already waiting for "
                        "TWS; try again"
                    )
            self._turn = slot + 1
            client_id = held + 1 + slot
            self._busy.add(client_id)
        try:
            yield client_id
        finally:
            with self._free:
                self._busy.discard(client_id)
                self._free.notify()


_ONE_OFF_IDS = _OneOffClientIds()

#: The process's held connection.
HELD = HeldConnection()
atexit.register(HELD.close)


def read_account() -> AccountReading:
    """The account, over the held connection if there is one, else over a one-off
    connection (connect, read, disconnect). Raises :class:`TWSError` (or
    :class:`LiveAccountError`) within ``settings.TWS_TIMEOUT`` when TWS cannot answer."""
    timeout = float(settings.TWS_TIMEOUT)
    deadline = time.monotonic() + timeout
    reading = HELD.read_account(deadline)
    if reading is not None:
        return reading
    tws = settings.TWS
    for _attempt in range(ONE_OFF_CLIENT_IDS):
        with _ONE_OFF_IDS.take(tws.client_id, deadline) as client_id:
            try:
                tracker = _Tracker(client_id=client_id, host=tws.host, port=tws.port,
                                   timeout=_left(deadline), env_file=None)  # fmt: skip
            except ConnectionConfigError as exc:
                raise TWSError(str(exc)) from None
            if tracker.connect_to_tws():
                try:
                    return _read(tracker, deadline, "one-off")
                finally:
                    tracker.disconnect_from_tws()
        if not tracker.client_id_taken or time.monotonic() >= deadline:
            break
        log.info("client id %d is in use at %s; trying the next", client_id, _where(tws))
    raise _connect_error(tracker)


def probe() -> TWSProbe:
    """Is TWS reachable? The held connection's word when it is up, else a plain TCP connect
    to its port (no API session), at most :data:`PROBE_TIMEOUT` seconds."""
    state = HELD.state()
    if state.connected:
        return TWSProbe(state.host, state.port, True, None, state)
    error = None
    timeout = min(PROBE_TIMEOUT, float(settings.TWS_TIMEOUT))
    try:
        with socket.create_connection((state.host, state.port), timeout=timeout):
            pass
    except OSError as exc:
        error = f"nothing answers at {state.host}:{state.port} ({exc.strerror or exc})"
    return TWSProbe(state.host, state.port, error is None, error, state)
