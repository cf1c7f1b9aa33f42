"""Portfolio and account information from TWS: cash by currency, positions, market values, P&L.

    python -m quant_trading.core.portfolio_tracker [--json] [--watch SECONDS]

Library use: ``PortfolioTracker(...).snapshot()`` returns a :class:`PortfolioSnapshot` of
typed records for other tools to reuse, :meth:`PortfolioTracker.account_pnl` the daily,
unrealized and realized P&L (:class:`AccountPnL`); :meth:`PortfolioTracker.watch` refreshes
the snapshot on a schedule and rides out a dropped connection (it notices at once, reconnects
with backoff and goes on). Read-only: nothing here places orders.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from .ibkr_connection import (
    NOT_CONNECTED,
    IBKRConnection,
    RequestError,
    RequestTimeout,
)

__all__ = [
    "AccountPnL",
    "AccountValue",
    "Position",
    "PortfolioItem",
    "PortfolioSnapshot",
    "PortfolioTracker",
]

log = logging.getLogger(__name__)

# reqAccountUpdates and reqPositions carry no request id; these keys stand in for one.
_ACCOUNT_UPDATES = -101
_POSITIONS = -102
#: The first server version that serves reqPnL (ibapi's MIN_SERVER_VER_PNL).
_MIN_SERVER_VERSION_PNL = 127


@dataclass(frozen=True)
class AccountValue:
    """One ``updateAccountValue``: e.g. key CashBalance, value "1000.00", currency USD."""

    key: str
    value: str
    currency: str
    account: str

    @property
    def number(self) -> float | None:
        """The value as a number, or None if it is text."""
        try:
            return float(self.value)
        except ValueError:
            return None


@dataclass(frozen=True)
class Position:
    """A position from ``reqPositions``: quantity and average cost per share."""

    account: str
    symbol: str
    sec_type: str
    currency: str
    exchange: str
    quantity: float
    average_cost: float


@dataclass(frozen=True)
class PortfolioItem:
    """A holding from ``updatePortfolio``: valued at TWS's current market price."""

    account: str
    symbol: str
    sec_type: str
    currency: str
    quantity: float
    market_price: float
    market_value: float
    average_cost: float
    unrealized_pnl: float
    realized_pnl: float


@dataclass
class PortfolioSnapshot:
    """Everything the account reported in one download."""

    account: str
    account_time: str
    values: list[AccountValue] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    items: list[PortfolioItem] = field(default_factory=list)

    def value(self, key: str, currency: str = "BASE") -> float | None:
        """A numeric account value, e.g. ``value("NetLiquidation", "USD")``."""
        for item in self.values:
            if item.key == key and item.currency == currency:
                return item.number
        return None

    def total(self, key: str) -> float | None:
        """An account-wide number: the BASE-currency record if TWS sends one (UnrealizedPnL,
        CashBalance), else the record in the base currency (NetLiquidation, BuyingPower)."""
        records = [v for v in self.values if v.key == key and v.number is not None]
        chosen = next((v for v in records if v.currency == "BASE"), records[0] if records else None)
        return chosen.number if chosen else None

    @property
    def base_currency(self) -> str:
        """The account's base currency (the currency TWS reports NetLiquidation in)."""
        return next(
            (v.currency for v in self.values if v.key == "NetLiquidation" and v.currency != "BASE"),
            "",
        )

    def by_currency(self, key: str) -> dict[str, float]:
        """``{currency: value}`` for one key, BASE last (e.g. CashBalance)."""
        found = {v.currency: v.number for v in self.values if v.key == key and v.number is not None}
        return dict(sorted(found.items(), key=lambda kv: (kv[0] == "BASE", kv[0])))

    @property
    def is_paper(self) -> bool:
        """Paper accounts are named DU... (or DF... for advisors)."""
        return self.account.upper().startswith("D")

    def market_value_by_currency(self) -> dict[str, float]:
        """Sum of the holdings' market values per currency."""
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.currency] = totals.get(item.currency, 0.0) + item.market_value
        return dict(sorted(totals.items()))

    def as_dict(self) -> dict:
        """A JSON-ready document (the ``--json`` output)."""
        return {
            "account": self.account,
            "account_time": self.account_time,
            "paper": self.is_paper,
            "cash_balances": self.by_currency("CashBalance"),
            "net_liquidation": self.by_currency("NetLiquidationByCurrency")
            or self.by_currency("NetLiquidation"),
            "market_value_by_currency": self.market_value_by_currency(),
            "base_currency": self.base_currency,
            "totals": {
                key: self.total(key)
                for key in (
                    "NetLiquidation",
                    "TotalCashValue",
                    "GrossPositionValue",
                    "UnrealizedPnL",
                    "RealizedPnL",
                    "AvailableFunds",
                    "BuyingPower",
                )
            },  # fmt: skip
            "positions": [asdict(p) for p in self.positions],
            "holdings": [asdict(i) for i in self.items],
            "account_values": [asdict(v) for v in self.values],
        }


@dataclass(frozen=True)
class AccountPnL:
    """``reqPnL``'s answer for one account, in its base currency: today's P&L (against the
    previous close), unrealized and realized P&L. None where TWS has no value (it sends
    ``Double.MAX_VALUE`` until it knows one, e.g. right after TWS started)."""

    account: str
    daily: float | None
    unrealized: float | None
    realized: float | None


def _number(value) -> float:
    """ibapi 10.x passes Decimal sizes; 9.81 floats."""
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _pnl_value(value) -> float | None:
    """A P&L figure, or None for IB's "unset" (``Double.MAX_VALUE``) and NaN."""
    number = float(value)
    return number if math.isfinite(number) and abs(number) < 1e300 else None


class PortfolioTracker(IBKRConnection):
    """Reads the account: :meth:`snapshot` downloads values, positions and holdings;
    :meth:`watch` does it every few seconds (pass ``auto_reconnect=True`` to ride out a
    dropped connection)."""

    DEFAULT_CLIENT_ID = 11
    PAPER_ONLY = True  # read-only, but a live account still needs --live

    def __init__(self, *args, account: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self._lock = threading.Lock()
        self._snapshot: PortfolioSnapshot | None = None
        # Connections so far (bumped by every reconnect) and whether the socket is down:
        # watch() waits on this condition, so a drop or a reconnect wakes it at once.
        self._state = threading.Condition()
        self._generation = 0
        self._dropped = False

    def snapshot(
        self, account: str | None = None, timeout: float | None = None
    ) -> PortfolioSnapshot:
        """Download the account (``reqAccountUpdates`` until ``accountDownloadEnd``) and
        its positions (``reqPositions`` until ``positionEnd``). Needs a connection: without
        one it raises :class:`RequestError` (504) at once instead of waiting for an answer
        that cannot come."""
        account = self._account_for(account)
        with self._lock:
            self._snapshot = PortfolioSnapshot(account=account, account_time="")
            try:
                updates = self.start_request(_ACCOUNT_UPDATES)
                self.reqAccountUpdates(True, account)
                try:
                    self.wait(updates, timeout)
                finally:
                    if self.isConnected():  # nothing to cancel on a lost connection
                        self.reqAccountUpdates(False, account)
                positions = self.start_request(_POSITIONS)
                self.reqPositions()
                try:
                    self.wait(positions, timeout)
                finally:
                    if self.isConnected():
                        self.cancelPositions()
                snap = self._snapshot
            finally:
                self._snapshot = None
        snap.positions = [p for p in positions.items if p.account == account and p.quantity != 0]
        return snap

    def account_pnl(self, account: str | None = None, timeout: float | None = None) -> AccountPnL:
        """The account's daily, unrealized and realized P&L: ``reqPnL``, its first answer,
        then ``cancelPnL``. Like :meth:`snapshot` it raises :class:`RequestError` (504) at
        once without a connection, and :class:`RequestTimeout` after ``timeout``."""
        account = self._account_for(account)
        if self.serverVersion() < _MIN_SERVER_VERSION_PNL:  # ibapi would only log it
            raise RequestError(-1, 503, f"TWS server version {self.serverVersion()} does not "
                                        "serve reqPnL; update TWS")  # fmt: skip
        sent: list[int] = []

        def send(req_id: int) -> None:
            sent.append(req_id)
            self.reqPnL(req_id, account, "")

        try:
            first = self.request(send, timeout)[0]
        finally:
            if sent and self.isConnected():  # TWS streams P&L until cancelled
                self.cancelPnL(sent[0])
        daily, unrealized, realized = first
        return AccountPnL(account, daily, unrealized, realized)

    def _account_for(self, account: str | None) -> str:
        """The account a request is for (the given one, the tracker's, or the login's first);
        raises :class:`RequestError` at once for an account the login does not manage (321)
        or without a connection (504): nothing would answer."""
        account = account or self.account or (self.accounts[0] if self.accounts else "")
        if self.accounts and account not in self.accounts:
            raise RequestError(-1, 321, f"account {account!r} is not managed by this login "
                                        f"({', '.join(self.accounts)})")  # fmt: skip
        if not self.isConnected():  # nothing would answer: say so now, not after a timeout
            raise RequestError(-1, NOT_CONNECTED, "not connected to TWS")
        return account

    def watch(
        self,
        every: float,
        show: Callable[[PortfolioSnapshot], None],
        notice: Callable[[str], None] = print,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Call ``show(snapshot)`` every ``every`` seconds until ``stop`` is set (or
        Ctrl-C). A dropped connection is noticed at once, also between refreshes, and told
        through ``notice``; with ``auto_reconnect`` it waits for the reconnect (made with
        backoff by the connection), says so, and refreshes right away. Without
        ``auto_reconnect`` the loss is raised as :class:`RequestError`. Other request errors
        are raised."""
        stop = stop or threading.Event()
        while not stop.is_set():
            generation = self._generation
            try:
                snap = self.snapshot(timeout=timeout)
            except (RequestError, RequestTimeout) as exc:
                if self.isConnected() and not (
                    isinstance(exc, RequestError) and exc.code == NOT_CONNECTED
                ):
                    raise
                self._ride_out(generation, notice, stop)
                continue
            show(snap)
            due = time.monotonic() + every
            with self._state:
                # Wake early for a drop (told and ridden out next), even one already
                # reconnected (a newer generation), or for stop.
                while not stop.is_set() and self._up(generation):
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    self._state.wait(min(left, 0.25))
            if not stop.is_set() and not self._up(generation):
                self._ride_out(generation, notice, stop)

    def _up(self, generation: int) -> bool:
        """The connection of ``generation`` is still up."""
        return not self._dropped and self._generation == generation and self.isConnected()

    def _ride_out(
        self, generation: int, notice: Callable[[str], None], stop: threading.Event
    ) -> None:
        """The connection dropped: say so, and wait until it is back (a reconnect newer
        than ``generation``) or ``stop``."""
        if not self.auto_reconnect:
            raise RequestError(-1, NOT_CONNECTED, "the connection to TWS was lost")
        notice("connection to TWS lost; reconnecting...")
        with self._state:
            while not stop.is_set() and not (self._generation > generation and self.isConnected()):
                self._state.wait(0.25)
        if not stop.is_set():
            notice("reconnected to TWS")

    # ----------------------------------------------------- connection hooks
    def on_connection_lost(self, reason: str) -> None:
        """Wake :meth:`watch` when the socket drops (a link loss inside TWS, 1100, keeps the
        socket and the account data)."""
        if self.isConnected():
            return
        with self._state:
            self._dropped = True
            self._state.notify_all()

    def resubscribe(self) -> None:
        """After a reconnect: wake :meth:`watch` (it subscribes anew with every refresh).
        Also called for TWS's "link restored, data lost" (1101), where the socket never
        dropped: that is no new connection."""
        with self._state:
            if self._dropped:  # set by on_connection_lost before any reconnect starts
                self._generation += 1
                self._dropped = False
                self._state.notify_all()

    # ------------------------------------------------------------ callbacks
    def updateAccountValue(self, key: str, val: str, currency: str, accountName: str) -> None:  # noqa: N802, N803
        snap = self._snapshot
        if snap is not None and accountName == snap.account:
            snap.values.append(AccountValue(key, val, currency or "", accountName))

    def updatePortfolio(self, contract, position, marketPrice, marketValue, averageCost,  # noqa: N802, N803
                        unrealizedPNL, realizedPNL, accountName) -> None:  # noqa: N803  # fmt: skip
        snap = self._snapshot
        if snap is None or accountName != snap.account:
            return
        snap.items.append(
            PortfolioItem(
                account=accountName,
                symbol=contract.localSymbol or contract.symbol,
                sec_type=contract.secType,
                currency=contract.currency,
                quantity=_number(position),
                market_price=float(marketPrice),
                market_value=float(marketValue),
                average_cost=float(averageCost),
                unrealized_pnl=float(unrealizedPNL),
                realized_pnl=float(realizedPNL),
            )
        )

    def updateAccountTime(self, timeStamp: str) -> None:  # noqa: N802, N803
        if self._snapshot is not None:
            self._snapshot.account_time = timeStamp

    def accountDownloadEnd(self, accountName: str) -> None:  # noqa: N802, N803
        self._finish(_ACCOUNT_UPDATES)

    def position(self, account: str, contract, position, avgCost: float) -> None:  # noqa: N803
        self._collect(
            _POSITIONS,
            Position(
                account=account,
                symbol=contract.localSymbol or contract.symbol,
                sec_type=contract.secType,
                currency=contract.currency,
                exchange=contract.primaryExchange or contract.exchange,
                quantity=_number(position),
                average_cost=float(avgCost),
            ),
        )

    def positionEnd(self) -> None:  # noqa: N802
        self._finish(_POSITIONS)

    def pnl(self, reqId: int, dailyPnL, unrealizedPnL, realizedPnL, *_more) -> None:  # noqa: N803
        # ibapi's callback (hence :meth:`account_pnl` for the request): the first answer is
        # the one asked for; TWS goes on streaming until cancelled.
        self._collect(reqId, (_pnl_value(dailyPnL), _pnl_value(unrealizedPnL),
                              _pnl_value(realizedPnL)))  # fmt: skip
        self._finish(reqId)


if __name__ == "__main__":  # the seed's `python -m quant_trading.core.portfolio_tracker`
    from quant_trading.cli import exit_with
    from quant_trading.cli.portfolio import main

    exit_with(main)
