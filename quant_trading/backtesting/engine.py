"""The fill simulator: target positions per bar in, trades and a per-bar equity curve out.

Pure (no I/O). The rules, which the README repeats:

* the target decided at bar t's close is filled at bar t+1's open (no look-ahead);
* trading starts at the first change of the target inside the window (a position held from
  before the window is not entered mid-trend);
* a flip is two orders at the same open: close the old side, then open the new one;
* entries are sized from the equity at the fill (``allocation`` of it, whole shares unless
  ``fractional``) or a fixed number of shares; shorts are sized the same way, no borrow fee;
* costs per order: ``commission_per_share`` with IBKR fixed pricing's minimum and a maximum
  of a fraction of the trade value, plus ``slippage`` per share against the trader;
* ``flat_at_close`` closes at the close of each session's last bar; the next session's first
  open re-enters if the target still holds a side;
* a position still open at the end is closed at the last close (exit reason "end of data").

The per-bar loop runs compiled (numba), which is what makes it fast; the inputs and outputs
are plain arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

__all__ = ["Costs", "Sizing", "EXIT_REASONS", "SimResult", "simulate", "session_last_bars"]

EXIT_REASONS = ("signal", "flip", "session close", "end of data")
_SIGNAL, _FLIP, _SESSION, _END = range(4)


@dataclass(frozen=True)
class Costs:
    """Trading costs. Defaults are IBKR's fixed pricing for US stocks."""

    commission_per_share: float = 0.005
    commission_min: float = 1.00
    commission_max_pct: float = 1.0  # percent of trade value
    slippage: float = 0.0  # USD per share, against the trader on every fill

    def commission(self, shares: float, price: float) -> float:
        """Commission for one order (same formula as the compiled loop)."""
        return _commission(shares, price, self.commission_per_share, self.commission_min,
                           self.commission_max_pct / 100)  # fmt: skip


@dataclass(frozen=True)
class Sizing:
    """How many shares an entry buys or sells short."""

    allocation: float = 1.0  # fraction of current equity
    fixed_shares: float | None = None  # overrides allocation when set
    fractional: bool = False


@dataclass
class SimResult:
    """What :func:`simulate` returns. Arrays cover the bars from ``start`` on."""

    equity: np.ndarray  # mark-to-market at each bar's close
    position: np.ndarray  # signed shares held at each bar's close
    trades: pd.DataFrame  # one row per round trip (see simulate)
    start: int


@njit(cache=True, nogil=True)
def _commission(shares, price, per_share, minimum, max_fraction):  # pragma: no cover
    if per_share <= 0.0 or shares <= 0.0:
        return 0.0
    fee = shares * per_share
    if fee < minimum:
        fee = minimum
    cap = max_fraction * shares * price
    if max_fraction > 0.0 and fee > cap:
        fee = cap
    return fee


@njit(cache=True, nogil=True)
def _simulate_kernel(  # pragma: no cover - compiled
    open_, close, target, session_last, start, capital, per_share, minimum, max_fraction,
    slippage, allocation, fixed_shares, fractional, flat_at_close,
):  # fmt: skip
    n = len(close)
    m = n - start
    equity = np.empty(m)
    held = np.empty(m)
    cap = m + 1
    t_side = np.empty(cap, np.int8)
    t_entry_bar = np.empty(cap, np.int64)
    t_exit_bar = np.empty(cap, np.int64)
    t_entry_price = np.empty(cap)
    t_exit_price = np.empty(cap)
    t_shares = np.empty(cap)
    t_commission = np.empty(cap)
    t_reason = np.empty(cap, np.int8)
    count = 0

    cash = capital
    side = 0
    shares = 0.0
    entry_price = 0.0
    entry_bar = 0
    entry_fee = 0.0
    active = False  # becomes True at the first change of target inside the window
    for i in range(start, n):
        if i > start:
            j = i - 1  # the bar whose close decided this open
            if not active:
                active = target[j] != (target[j - 1] if j > 0 else 0)
            wanted = target[j] if active else 0
            if wanted != side:
                if side != 0:  # close at this open
                    price = open_[i] - slippage * side
                    fee = _commission(shares, price, per_share, minimum, max_fraction)
                    cash += side * shares * price - fee
                    t_side[count] = side
                    t_entry_bar[count] = entry_bar
                    t_exit_bar[count] = i
                    t_entry_price[count] = entry_price
                    t_exit_price[count] = price
                    t_shares[count] = shares
                    t_commission[count] = entry_fee + fee
                    t_reason[count] = 1 if wanted == -side else 0
                    count += 1
                    side = 0
                    shares = 0.0
                if wanted != 0:  # open at this open, sized from equity now (all cash)
                    price = open_[i] + slippage * wanted
                    size = fixed_shares if fixed_shares > 0.0 else allocation * cash / price
                    if not fractional:
                        size = math.floor(size + 1e-9)
                    if size > 0.0:
                        fee = _commission(size, price, per_share, minimum, max_fraction)
                        cash -= wanted * size * price + fee
                        side = wanted
                        shares = size
                        entry_price = price
                        entry_bar = i
                        entry_fee = fee
        if flat_at_close and side != 0 and session_last[i]:
            price = close[i] - slippage * side
            fee = _commission(shares, price, per_share, minimum, max_fraction)
            cash += side * shares * price - fee
            t_side[count] = side
            t_entry_bar[count] = entry_bar
            t_exit_bar[count] = i
            t_entry_price[count] = entry_price
            t_exit_price[count] = price
            t_shares[count] = shares
            t_commission[count] = entry_fee + fee
            t_reason[count] = 2
            count += 1
            side = 0
            shares = 0.0
        equity[i - start] = cash + side * shares * close[i]
        held[i - start] = side * shares
    if side != 0:  # still open at the end: close at the last close
        i = n - 1
        price = close[i] - slippage * side
        fee = _commission(shares, price, per_share, minimum, max_fraction)
        cash += side * shares * price - fee
        t_side[count] = side
        t_entry_bar[count] = entry_bar
        t_exit_bar[count] = i
        t_entry_price[count] = entry_price
        t_exit_price[count] = price
        t_shares[count] = shares
        t_commission[count] = entry_fee + fee
        t_reason[count] = 3
        count += 1
        equity[m - 1] = cash
        held[m - 1] = 0.0
    return (
        equity, held, t_side[:count], t_entry_bar[:count], t_exit_bar[:count],
        t_entry_price[:count], t_exit_price[:count], t_shares[:count],
        t_commission[:count], t_reason[:count],
    )  # fmt: skip


def session_last_bars(index: pd.DatetimeIndex) -> np.ndarray:
    """True at each session's last bar (the next bar falls on another local date)."""
    days = index.tz_localize(None).normalize().as_unit("ns").asi8 if len(index) else np.empty(0)
    return np.r_[days[1:] != days[:-1], True] if len(index) else np.empty(0, bool)


def simulate(
    bars: pd.DataFrame,
    target: np.ndarray,
    start: int = 0,
    capital: float = 100_000.0,
    costs: Costs = Costs(),
    sizing: Sizing = Sizing(),
    flat_at_close: bool = False,
) -> SimResult:
    """Fill ``target`` (position per bar, decided at its close) on ``bars`` from bar ``start``.

    Bars before ``start`` only provide history; nothing is traded there. Returns the equity
    and position at each bar's close from ``start`` on, and the round-trip trades with columns
    side, entry_time, entry_price, exit_time, exit_price, shares, commission, pnl,
    return_pct, bars_held, exit_reason, entry_bar, exit_bar (bar numbers into ``bars``).
    """
    if not 0 <= start < len(bars):
        raise ValueError(f"start {start} is outside the {len(bars)} bars")
    if len(target) != len(bars):
        raise ValueError("target must have one value per bar")
    out = _simulate_kernel(
        np.ascontiguousarray(bars["open"], dtype=np.float64),
        np.ascontiguousarray(bars["close"], dtype=np.float64),
        np.ascontiguousarray(target, dtype=np.int8),
        session_last_bars(bars.index) if flat_at_close else np.zeros(len(bars), bool),
        int(start),
        float(capital),
        float(costs.commission_per_share),
        float(costs.commission_min),
        float(costs.commission_max_pct) / 100,
        float(costs.slippage),
        float(sizing.allocation),
        float(sizing.fixed_shares or 0.0),
        bool(sizing.fractional),
        bool(flat_at_close),
    )
    equity, held, side, entry_bar, exit_bar, entry_price, exit_price, shares, fee, reason = out
    index = bars.index
    pnl = side * (exit_price - entry_price) * shares - fee
    trades = pd.DataFrame(
        {
            "side": np.where(side > 0, "long", "short"),
            "entry_time": index[entry_bar],
            "entry_price": entry_price,
            "exit_time": index[exit_bar],
            "exit_price": exit_price,
            "shares": shares,
            "commission": fee,
            "pnl": pnl,
            "return_pct": pnl / (entry_price * shares) * 100 if len(pnl) else pnl,
            "bars_held": exit_bar - entry_bar,
            "exit_reason": np.asarray(EXIT_REASONS, dtype=object)[reason],
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
        }
    )
    return SimResult(equity=equity, position=held, trades=trades, start=start)
