"""A paper book's fills as a broker shows them: one row per order, with a client order id
that the same decision always gets.

Pure (no I/O). The engine (:func:`~quant_trading.backtesting.engine.simulate`) reports round
trips; :func:`fills_from_trades` turns them into the orders that made them: the entry at its
bar's open, the exit at its bar's open (a signal or a flip) or at the close of a session's
last bar (``--session-close``). A position still open at the end of the bars is not closed:
the engine's "end of data" exit is a backtest convention, not an order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..backtesting.engine import Costs
from ..bars import EXCHANGE_TZ
from ..timeframes import Timeframe

__all__ = ["PaperFill", "book_tag", "client_order_id", "fills_from_trades", "ROLES"]

#: The one-letter role that ends a client order id: an entry at the open, an exit at the
#: open, a close at a session's last bar.
ROLES = {"entry": "E", "exit": "X", "session close": "C"}
_MAX_ID = 64  # the dashboard's client_order_id column


@dataclass(frozen=True)
class PaperFill:
    """One simulated order, filled."""

    client_order_id: str
    strategy: str  # the book's tag: strategy name and parameter digest (see book_tag)
    symbol: str
    timeframe: str
    bar_time: pd.Timestamp  # start of the bar it filled in
    time: pd.Timestamp  # when it filled: the bar's open, or its end for a session close
    action: str  # BUY or SELL
    shares: float
    price: float
    commission: float
    reason: str  # entry, exit (a signal), flip, session close
    position: float  # signed shares held after it

    @property
    def role(self) -> str:
        """``entry``, ``exit`` or ``session close`` (a flip's closing order is an exit)."""
        return _role(self.reason)


def book_tag(name: str, params: Mapping[str, Any]) -> str:
    """``MACD.3f9a1c``: the strategy's name and a digest of its parameters, so that two
    paper traders with other settings never share an order id."""
    text = json.dumps({k: params[k] for k in sorted(params)}, default=str)
    return f"{name}.{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def client_order_id(
    tag: str, timeframe: str, symbol: str, bar_time: pd.Timestamp, role: str
) -> str:
    """``MACD.3f9a1c-5m-AAPL-20261030-1005-E``: the same for the same decision, every run
    (at most 64 characters: a long tag is shortened to a digest)."""
    stamp = bar_time.tz_convert(EXCHANGE_TZ).strftime("%Y%m%d-%H%M")
    tail = f"-{timeframe}-{symbol}-{stamp}-{ROLES[role]}"
    if len(tag) + len(tail) > _MAX_ID:
        tag = hashlib.sha256(tag.encode()).hexdigest()[: max(8, _MAX_ID - len(tail))]
    return (tag + tail)[:_MAX_ID]


def fills_from_trades(
    trades: Mapping[str, Any],
    *,
    tag: str,
    symbol: str,
    timeframe: Timeframe,
    costs: Costs,
) -> list[PaperFill]:
    """The orders behind the engine's round ``trades`` (its ``SimResult.trades`` frame, or
    a mapping with its columns side, entry_time, entry_price, exit_time, exit_price, shares,
    exit_reason), in the order they filled. Each order's commission is the engine's formula
    for that order alone (the trades frame holds the round trip's total)."""
    width = pd.Timedelta(seconds=timeframe.seconds)
    events: list[tuple[pd.Timestamp, int, PaperFill]] = []
    for side_name, entry_time, entry_price, exit_time, exit_price, shares, exit_reason in zip(
        *(trades[c] for c in _TRADE_COLUMNS), strict=True
    ):
        side = 1 if side_name == "long" else -1
        shares = float(shares)
        entry = _fill(tag, symbol, timeframe.name, entry_time, entry_time,
                      "BUY" if side > 0 else "SELL", shares, float(entry_price), costs,
                      "entry", side * shares)  # fmt: skip
        events.append((entry.time, 1, entry))
        if exit_reason == "end of data":
            continue  # still held: nothing was sold
        closing = exit_reason == "session close"
        when = exit_time + width if closing else exit_time
        reason = "exit" if exit_reason == "signal" else str(exit_reason)
        exit_ = _fill(tag, symbol, timeframe.name, exit_time, when,
                      "SELL" if side > 0 else "BUY", shares, float(exit_price), costs,
                      reason, 0.0)  # fmt: skip
        events.append((exit_.time, 0, exit_))
    # A flip closes before it opens: at one time, exits first.
    events.sort(key=lambda e: (e[0], e[1]))
    return [fill for _, _, fill in events]


_TRADE_COLUMNS = ("side", "entry_time", "entry_price", "exit_time", "exit_price", "shares",
                  "exit_reason")  # fmt: skip


def _fill(tag, symbol, tf, bar_time, when, action, shares, price, costs, reason, position):
    return PaperFill(
        client_order_id=client_order_id(tag, tf, symbol, bar_time, _role(reason)),
        strategy=tag,
        symbol=symbol,
        timeframe=tf,
        bar_time=bar_time,
        time=when,
        action=action,
        shares=shares,
        price=price,
        commission=costs.commission(shares, price),
        reason=reason,
        position=position,
    )


def _role(reason: str) -> str:
    return reason if reason in ("entry", "session close") else "exit"
