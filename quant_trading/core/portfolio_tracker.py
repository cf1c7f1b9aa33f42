"""Portfolio and account information from TWS: cash by currency, positions, market values, P&L.

    python -m quant_trading.core.portfolio_tracker [--json] [--watch SECONDS]

Library use: ``PortfolioTracker(...).snapshot()`` returns a :class:`PortfolioSnapshot` of
typed records for other tools to reuse. Read-only: nothing here places orders.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from .ibkr_connection import (
    IBKRConnection,
    RequestError,
)

__all__ = [
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


def _number(value) -> float:
    """ibapi 10.x passes Decimal sizes; 9.81 floats."""
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


class PortfolioTracker(IBKRConnection):
    """Reads the account: :meth:`snapshot` downloads values, positions and holdings."""

    DEFAULT_CLIENT_ID = 11

    def __init__(self, *args, account: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self._lock = threading.Lock()
        self._snapshot: PortfolioSnapshot | None = None

    def snapshot(
        self, account: str | None = None, timeout: float | None = None
    ) -> PortfolioSnapshot:
        """Download the account (``reqAccountUpdates`` until ``accountDownloadEnd``) and
        its positions (``reqPositions`` until ``positionEnd``). Needs a connection."""
        account = account or self.account or (self.accounts[0] if self.accounts else "")
        if self.accounts and account not in self.accounts:
            raise RequestError(-1, 321, f"account {account!r} is not managed by this login "
                                        f"({', '.join(self.accounts)})")  # fmt: skip
        with self._lock:
            self._snapshot = PortfolioSnapshot(account=account, account_time="")
            updates = self.start_request(_ACCOUNT_UPDATES)
            self.reqAccountUpdates(True, account)
            try:
                self.wait(updates, timeout)
            finally:
                self.reqAccountUpdates(False, account)
            positions = self.start_request(_POSITIONS)
            self.reqPositions()
            try:
                self.wait(positions, timeout)
            finally:
                self.cancelPositions()
            snap, self._snapshot = self._snapshot, None
        snap.positions = [p for p in positions.items if p.account == account and p.quantity != 0]
        return snap

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


if __name__ == "__main__":  # the seed's `python -m quant_trading.core.portfolio_tracker`
    from quant_trading.cli.portfolio import main

    sys.exit(main())
