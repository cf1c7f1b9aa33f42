"""Portfolio and account information from TWS: cash by currency, positions, market values, P&L.

    python -m quant_trading.core.portfolio_tracker [--json] [--watch SECONDS]

Library use: ``PortfolioTracker(...).snapshot()`` returns a :class:`PortfolioSnapshot` of
typed records for other tools to reuse. Read-only: nothing here places orders.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal

import orjson

from ..cli import (
    ArgumentParser,
    add_connection_arguments,
    connection_failed,
    fail,
    positive_float,
    setup_logging,
)
from .ibkr_connection import (
    TROUBLESHOOTING,
    ConnectionConfigError,
    IBKRConnection,
    RequestError,
    RequestTimeout,
)

__all__ = [
    "AccountValue",
    "Position",
    "PortfolioItem",
    "PortfolioSnapshot",
    "PortfolioTracker",
    "format_snapshot",
]

PROG = "portfolio_tracker"
log = logging.getLogger(__name__)

# reqAccountUpdates and reqPositions carry no request id; these keys stand in for one.
_ACCOUNT_UPDATES = -101
_POSITIONS = -102
RULE = "=" * 60
SUBRULE = "-" * 30


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


def _money(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.2f}"


def _qty(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0")


def _label(record: Position | PortfolioItem) -> str:
    return f"{record.symbol} ({record.currency}):"


def format_snapshot(snap: PortfolioSnapshot) -> str:
    """The seed README's layout, with aligned columns and thousands separators."""
    kind = "PAPER" if snap.is_paper else "LIVE"
    lines = [RULE, f"IBKR {kind} TRADING PORTFOLIO SUMMARY", RULE]
    lines.append(
        f"Account: {snap.account}"
        + (f"   (as of {snap.account_time})" if snap.account_time else "")
    )
    lines += ["", "Cash Balances:", SUBRULE, "", "CashBalance:"]
    cash = snap.by_currency("CashBalance")
    width = max((len(_money(v)) for v in cash.values()), default=0)
    lines += [f"  {cur + ':':<6}{_money(v):>{width}}" for cur, v in cash.items()] or ["  (none)"]

    lines += ["", "Current Positions:", SUBRULE]
    if snap.positions:
        name_w = max(len(_label(p)) for p in snap.positions)
        qty_w = max(len(_qty(p.quantity)) for p in snap.positions)
        cost_w = max(len(_money(p.average_cost)) for p in snap.positions)
        for p in snap.positions:
            lines.append(
                f"{_label(p):<{name_w}} {_qty(p.quantity):>{qty_w}} shares, "
                f"Avg Cost: {_money(p.average_cost):>{cost_w}}"
            )
    else:
        lines.append("(no positions)")

    lines += ["", "Portfolio Details:", SUBRULE, "", "Market Value by Currency:"]
    market = snap.market_value_by_currency()
    width = max((len(_money(v)) for v in market.values()), default=0)
    lines += [f"  {cur + ':':<6}{_money(v):>{width}}" for cur, v in market.items()] or ["  (none)"]

    lines += ["", "Detailed Holdings:"]
    if snap.items:
        name_w = max(len(_label(i)) for i in snap.items)
        qty_w = max(len(_qty(i.quantity)) for i in snap.items)
        mv_w = max(len(_money(i.market_value)) for i in snap.items)
        pnl_w = max(len(_money(i.unrealized_pnl)) for i in snap.items)
        for i in snap.items:
            lines.append(
                f"  {_label(i):<{name_w}} Position {_qty(i.quantity):>{qty_w}}, "
                f"Market Value {_money(i.market_value):>{mv_w}}, "
                f"Unrealized P&L {_money(i.unrealized_pnl):>{pnl_w}}"
            )
    else:
        lines.append("  (none)")

    totals = [
        (label, snap.total(key))
        for label, key in (
            ("Net Liquidation", "NetLiquidation"),
            ("Total Cash Value", "TotalCashValue"),
            ("Gross Position Value", "GrossPositionValue"),
            ("Unrealized P&L", "UnrealizedPnL"),
            ("Realized P&L", "RealizedPnL"),
            ("Available Funds", "AvailableFunds"),
            ("Buying Power", "BuyingPower"),
        )
    ]
    width = max(len(_money(v)) for _, v in totals)
    base = f" ({snap.base_currency})" if snap.base_currency else ""
    lines += ["", f"Account Totals{base}:", SUBRULE]
    lines += [f"  {label + ':':<22}{_money(v):>{width}}" for label, v in totals]
    lines.append(RULE)
    return "\n".join(lines)


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description="Show the account's cash, positions and P&L from TWS."
    )
    p.add_argument("--account", help="account id (default: the first managed account)")
    p.add_argument("--json", action="store_true", help="print one JSON document, not the summary")
    p.add_argument(
        "--watch", type=positive_float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C"
    )
    add_connection_arguments(p, PortfolioTracker.DEFAULT_CLIENT_ID)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, live_tool=True)
    try:
        tracker = PortfolioTracker(
            client_id=args.client_id, host=args.host, port=args.port,
            timeout=args.timeout, allow_live=args.live, account=args.account,
        )  # fmt: skip
    except ConnectionConfigError as exc:
        return fail(PROG, str(exc), 2)
    if not tracker.connect_to_tws():
        return connection_failed(PROG, tracker.last_error, tracker.tws_unreachable, TROUBLESHOOTING)
    try:
        while True:
            snap = tracker.snapshot(timeout=args.timeout)
            if args.json:
                print(orjson.dumps(snap.as_dict(), option=orjson.OPT_INDENT_2).decode())
            else:
                print(format_snapshot(snap))
            if not args.watch:
                return 0
            sys.stdout.flush()
            time.sleep(args.watch)
    except (RequestError, RequestTimeout) as exc:
        return fail(PROG, str(exc), 1)
    except KeyboardInterrupt:
        return 0
    finally:
        tracker.disconnect_from_tws()


if __name__ == "__main__":
    sys.exit(main())
