"""Positions and P&L from a list of fills, with average-cost accounting (pure: no Django).

For each symbol, fills are applied in execution order:

* a fill on the side of the position (or from flat) adds to it, and the average cost becomes
  the quantity-weighted average of the old cost and the fill price;
* a fill against the position closes ``min(fill, open)`` shares and realizes
  ``(price - average cost) * closed`` for a long, ``(average cost - price) * closed`` for a
  short; the average cost of what stays open does not change;
* a fill larger than the position (a flip) closes all of it and opens the remainder on the
  other side at the fill price;
* back at zero the average cost is gone (``None``).

``realized_pnl`` is net of **every** commission paid, including those of fills whose
position is still open, so ``realized_pnl + unrealized_pnl`` is the whole P&L so far;
``commission`` is their sum (add it back for the gross figure). Average cost is the fill
prices' average, commissions not included. Quantities within :data:`EPSILON` of zero count as
flat, so fractional fills that add up to zero (0.1 + 0.2 - 0.3) close the position.

The price used to mark an open position comes from a :data:`PriceSource`, any callable from
symbol to :class:`PriceQuote` (or None when no price is known): today the newest cached
backtest bar (:mod:`.order_prices`), later a live feed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EPSILON",
    "Fill",
    "Position",
    "PriceQuote",
    "PriceSource",
    "SymbolSummary",
    "Totals",
    "positions",
    "summarize",
    "totals",
]

#: Quantities closer to zero than this are zero (float dust from fractional fills).
EPSILON = 1e-9

Side = Literal["BUY", "SELL"]


@dataclass(frozen=True)
class Fill:
    """One execution: ``quantity`` (> 0) shares of ``symbol`` bought or sold at ``price``."""

    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float = 0.0
    executed_at: dt.datetime | None = None

    @property
    def signed_quantity(self) -> float:
        """``+quantity`` for a buy, ``-quantity`` for a sell."""
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass
class Position:
    """One symbol's position after its fills (see the module docstring for the rules)."""

    symbol: str
    quantity: float = 0.0  # signed shares: > 0 long, < 0 short
    average_cost: float | None = None  # of the open position; None when flat
    realized_pnl: float = 0.0  # net of all commissions
    commission: float = 0.0
    fills: int = 0
    first_fill: dt.datetime | None = None
    last_fill: dt.datetime | None = None

    def apply(self, fill: Fill) -> float:
        """Apply one fill; returns the P&L it realized before commission (0 if it only
        added to the position)."""
        if fill.symbol != self.symbol:
            raise ValueError(f"a {fill.symbol} fill applied to the {self.symbol} position")
        if not fill.quantity > 0 or not fill.price > 0 or fill.commission < 0:
            raise ValueError(f"not a fill: {fill}")
        self.fills += 1
        self.commission += fill.commission
        self.realized_pnl -= fill.commission
        if fill.executed_at is not None:
            self.first_fill = self.first_fill or fill.executed_at
            self.last_fill = fill.executed_at
        delta = fill.signed_quantity
        realized = 0.0
        if self.quantity == 0 or (self.quantity > 0) == (delta > 0):  # open or add
            held = abs(self.quantity)
            cost = self.average_cost or 0.0
            self.average_cost = (cost * held + fill.price * fill.quantity) / (held + fill.quantity)
            self.quantity += delta
        else:  # reduce, close or flip
            closed = min(fill.quantity, abs(self.quantity))
            direction = 1.0 if self.quantity > 0 else -1.0
            realized = (fill.price - self.average_cost) * closed * direction
            self.realized_pnl += realized
            remainder = fill.quantity - closed
            if remainder > EPSILON:  # flipped: the rest opens at the fill price
                self.quantity = -direction * remainder
                self.average_cost = fill.price
            else:
                self.quantity += delta
        if abs(self.quantity) < EPSILON:
            self.quantity = 0.0
            self.average_cost = None
        return realized

    @property
    def is_flat(self) -> bool:
        """No shares held either way."""
        return self.quantity == 0

    def unrealized_pnl(self, price: float) -> float:
        """What closing the open position at ``price`` would realize (before commission)."""
        if self.is_flat:
            return 0.0
        return (price - self.average_cost) * self.quantity


def positions(fills: Iterable[Fill]) -> dict[str, Position]:
    """Every symbol's position after ``fills`` (given in execution order), by symbol."""
    book: dict[str, Position] = {}
    for fill in fills:
        book.setdefault(fill.symbol, Position(fill.symbol)).apply(fill)
    return dict(sorted(book.items()))


@dataclass(frozen=True)
class PriceQuote:
    """A price to mark a position with: where it comes from and when it was seen."""

    price: float
    time: dt.datetime
    source: str  # e.g. "backtest cache"
    detail: str = ""  # e.g. which file and bar


#: Symbol -> its latest known price, or None.
PriceSource = Callable[[str], PriceQuote | None]


@dataclass
class SymbolSummary:
    """A position marked to a price: ``unrealized_pnl`` is None (and ``note`` says why)
    when the position is open and no price is known."""

    position: Position
    quote: PriceQuote | None
    unrealized_pnl: float | None
    note: str | None = None
    market_value: float | None = None


def summarize(fills: Iterable[Fill], prices: PriceSource) -> list[SymbolSummary]:
    """Positions from ``fills`` (execution order), each marked with ``prices``; a flat
    position needs no price (its unrealized P&L is 0) and is not looked up."""
    out = []
    for symbol, position in positions(fills).items():
        if position.is_flat:
            out.append(SymbolSummary(position, None, 0.0, market_value=0.0))
            continue
        quote = prices(symbol)
        if quote is None:
            note = f"no price known for {symbol}: the open position is not marked"
            out.append(SymbolSummary(position, None, None, note))
            continue
        out.append(
            SymbolSummary(
                position,
                quote,
                position.unrealized_pnl(quote.price),
                market_value=position.quantity * quote.price,
            )
        )
    return out


@dataclass(frozen=True)
class Totals:
    """Every symbol added up; ``unrealized_pnl`` is None when any open position has no
    price."""

    realized_pnl: float
    unrealized_pnl: float | None
    commission: float
    fills: int


def totals(rows: Iterable[SymbolSummary]) -> Totals:
    """The sums of :func:`summarize`'s rows."""
    rows = list(rows)
    unrealized = [row.unrealized_pnl for row in rows]
    return Totals(
        realized_pnl=sum(row.position.realized_pnl for row in rows),
        unrealized_pnl=None if None in unrealized else sum(unrealized),
        commission=sum(row.position.commission for row in rows),
        fills=sum(row.position.fills for row in rows),
    )
