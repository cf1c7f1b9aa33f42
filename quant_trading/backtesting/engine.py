"""The fill simulator: target positions per bar in, trades and a per-bar equity curve out.

Pure (no I/O). The rules, which the README repeats:

* the target decided at bar t's close is filled at bar t+1's open (no look-ahead);
* trading starts at the first change of the target inside the window (a position held from
  before the window is not entered mid-trend);
* a flip is two orders at the same open: close the old side, then open the new one;
* entries are sized from the equity at the fill: the most shares (whole unless
  ``fractional``) whose cost plus commission fit in ``allocation`` of it, or a fixed number
  of shares; shorts are sized the same way, no borrow fee. There is no leverage: an entry
  whose cost plus commission exceeds the cash (a fixed size too big, or not even one share)
  is refused, as a cash account's broker (and backtesting.py's) would, and counted in
  :attr:`SimResult.refused`;
* costs per order: ``commission_per_share`` with IBKR fixed pricing's minimum and a maximum
  of a fraction of the trade value, plus ``slippage`` per share against the trader;
* ``flat_at_close`` closes at the close of each session's last bar; the next session's first
  open re-enters if the target still holds a side;
* a position still open at the end is closed at the last close (exit reason "end of data").

The per-bar loop runs compiled (numba), which is what makes it fast; the inputs and outputs
are plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import pandas as pd

from quant_trading.jit import njit

__all__ = [
    "Costs",
    "Sizing",
    "EXIT_REASONS",
    "Refused",
    "RoundTrips",
    "SimResult",
    "simulate",
    "session_last_bars",
]

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
    """How many shares an entry buys or sells short: the most whose cost plus commission fit
    in ``allocation`` of the equity, or ``fixed_shares``. No leverage, so ``allocation`` is
    at most 1."""

    allocation: float = 1.0  # fraction of current equity, commission included
    fixed_shares: float | None = None  # overrides allocation when set
    fractional: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.allocation <= 1:
            raise ValueError(
                f"allocation {self.allocation:g}: must be greater than 0 and at most 1 "
                "(a fraction of equity; there is no leverage)"
            )
        if self.fixed_shares is not None and not self.fixed_shares > 0:
            raise ValueError(f"size {self.fixed_shares:g}: must be greater than 0")
        whole = self.fixed_shares is None or float(self.fixed_shares).is_integer()
        if not (whole or self.fractional):
            raise ValueError(
                f"size {self.fixed_shares:g}: whole shares only, unless fractional shares "
                "are allowed (--fractional)"
            )


@dataclass(frozen=True)
class Refused:
    """Entries refused because their cost plus commission exceeded the cash: how many, and
    the first one (``shares`` asked for, 1 when not even one share fitted)."""

    count: int
    first_time: pd.Timestamp
    shares: float
    cost: float  # price x shares + commission
    cash: float


@dataclass(frozen=True)
class RoundTrips:
    """Round trips as the fill loop recorded them, one array per column, with their entry
    and exit times: what the statistics, the results cache and the blotters read. The frame
    of :meth:`frame` is built only when asked for: a run of many symbols measures and caches
    the arrays and never needs it."""

    side: np.ndarray  # int8: 1 long, -1 short
    entry_time: pd.DatetimeIndex
    entry_price: np.ndarray
    exit_time: pd.DatetimeIndex
    exit_price: np.ndarray
    shares: np.ndarray
    commission: np.ndarray
    reason: np.ndarray  # int8: the exit reason's position in EXIT_REASONS
    entry_bar: np.ndarray  # int64 bar numbers into the bars simulated
    exit_bar: np.ndarray
    symbol: str | None = None  # a frame column when set

    @classmethod
    def of(cls, index: pd.DatetimeIndex, records: dict[str, np.ndarray]) -> RoundTrips:
        """From :attr:`SimResult.records` on the bars' ``index``."""
        return cls(
            side=records["side"],
            entry_time=index[records["entry_bar"]],
            entry_price=records["entry_price"],
            exit_time=index[records["exit_bar"]],
            exit_price=records["exit_price"],
            shares=records["shares"],
            commission=records["commission"],
            reason=records["reason"],
            entry_bar=records["entry_bar"],
            exit_bar=records["exit_bar"],
        )

    def __len__(self) -> int:
        return len(self.side)

    @property
    def pnl(self) -> np.ndarray:
        """Profit after commission, per round trip."""
        return self.side * (self.exit_price - self.entry_price) * self.shares - self.commission

    @staticmethod
    def return_of(pnl: np.ndarray, entry_price: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """Return in percent of the entry's value (``pnl`` as :attr:`pnl` gives it)."""
        return pnl / (entry_price * shares) * 100 if len(pnl) else pnl

    def named(self, symbol: str) -> RoundTrips:
        """The same round trips, with a ``symbol`` column in their frame."""
        return replace(self, symbol=symbol)

    def tail(self, count: int) -> RoundTrips:
        """The last ``count`` round trips (all if ``count`` is 0 or more than there are)."""
        if count <= 0 or count >= len(self):
            return self
        rows = slice(len(self) - count, None)
        return replace(self, **{f.name: getattr(self, f.name)[rows] for f in _COLUMNS})

    def frame(self) -> pd.DataFrame:
        """One row per round trip: side, entry_time, entry_price, exit_time, exit_price,
        shares, commission, pnl, return_pct, bars_held, exit_reason, entry_bar, exit_bar
        (and symbol, when set)."""
        pnl = self.pnl
        columns = {
            # Categoricals from codes: string columns would cost more than the whole loop.
            "side": pd.Categorical.from_codes((self.side > 0).astype(np.int8), ["short", "long"]),
            "entry_time": self.entry_time,
            "entry_price": self.entry_price,
            "exit_time": self.exit_time,
            "exit_price": self.exit_price,
            "shares": self.shares,
            "commission": self.commission,
            "pnl": pnl,
            "return_pct": self.return_of(pnl, self.entry_price, self.shares),
            "bars_held": self.exit_bar - self.entry_bar,
            "exit_reason": pd.Categorical.from_codes(self.reason, EXIT_REASONS),
            "entry_bar": self.entry_bar,
            "exit_bar": self.exit_bar,
        }
        if self.symbol is not None:
            columns["symbol"] = self.symbol  # the dtype ``frame.assign(symbol=...)`` gives
        return pd.DataFrame(columns)


_COLUMNS = [f for f in fields(RoundTrips) if f.name != "symbol"]


@dataclass
class SimResult:
    """What :func:`simulate` returns. Per-bar arrays cover the bars from ``start`` on; the
    trades are kept as arrays and turned into a frame only when asked for."""

    equity: np.ndarray  # mark-to-market at each bar's close
    position: np.ndarray  # signed shares held at each bar's close
    start: int
    index: pd.DatetimeIndex  # all bars' times (trade bars index into it)
    records: dict[str, np.ndarray]  # side, entry/exit bar and price, shares, commission, reason
    refused: Refused | None = None  # entries the cash could not pay for, if any

    @cached_property
    def round_trips(self) -> RoundTrips:
        """The trades as arrays, with their times."""
        return RoundTrips.of(self.index, self.records)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per round trip (:meth:`RoundTrips.frame`)."""
        return self.round_trips.frame()


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


# Inlined into the fill (numba IR): LLVM left it a call, and every float the fill keeps in
# a register was saved and reloaded around it at each entry, an eighth of the fill's time.
@njit(cache=True, nogil=True, inline="always")
def _affordable(budget, price, per_share, minimum, max_fraction, fractional):  # pragma: no cover
    """The most shares whose cost plus commission fit in ``budget`` (0 if none)."""
    if budget <= 0.0 or price <= 0.0:
        return 0.0
    # Cost n * price + fee(n) rises with n, so one n meets the budget exactly, and there the
    # fee follows one of its three pieces: per share, the minimum, or the cap. Each piece's
    # own solution that truly fits is at most that n, so the largest one that fits is it.
    best = 0.0
    slack = budget * (1.0 + 1e-12)  # the exact solution may land a rounding error above
    if per_share <= 0.0:
        best = budget / price
    else:
        candidates = (
            budget / (price + per_share),
            (budget - minimum) / price,
            budget / (price * (1.0 + max_fraction)) if max_fraction > 0.0 else 0.0,
        )
        for n in candidates:
            if n > best and n * price + _commission(n, price, per_share, minimum,
                                                    max_fraction) <= slack:  # fmt: skip
                best = n
    if fractional:
        fee = _commission(best, price, per_share, minimum, max_fraction)
        if best * price + fee > budget:
            best *= 1.0 - 1e-12
        return best
    # Whole shares: the floor of the exact solution, nudged if rounding put it one off. Kept
    # a float (whole numbers are exact): converting to an integer and back lengthened every
    # entry's chain of dependent instructions.
    n = np.floor(best)
    while n > 0 and n * price + _commission(n, price, per_share, minimum, max_fraction) > budget:
        n -= 1.0
    while (n + 1) * price + _commission(n + 1, price, per_share, minimum, max_fraction) <= budget:
        n += 1.0
    return n


# Columns of the kernel's trade table (one float row per round trip).
_TRADE_FIELDS = ("side", "entry_bar", "exit_bar", "entry_price", "exit_price", "shares",
                 "commission", "reason")  # fmt: skip


@njit(cache=True, nogil=True)
def _record_exit(table, row, side, entry_bar, entry_price, shares, entry_fee, bar, price, fee,
                 reason):  # fmt: skip  # pragma: no cover - compiled
    table[row, 0] = side
    table[row, 1] = entry_bar
    table[row, 2] = bar
    table[row, 3] = entry_price
    table[row, 4] = price
    table[row, 5] = shares
    table[row, 6] = entry_fee + fee
    table[row, 7] = reason


@njit(cache=True, nogil=True)
def _simulate_kernel(  # pragma: no cover - compiled
    open_, close, target, session_last, start, capital, per_share, minimum, max_fraction,
    slippage, allocation, fixed_shares, fractional, flat_at_close,
):  # fmt: skip
    n = len(close)
    equity = np.empty(n - start)
    held = np.empty(n - start)
    table = np.empty((n - start + 1, 8))
    count = 0
    # Refused entries: how many, then the first one's bar, shares, cost and the cash then.
    refused = np.zeros(5)
    refused_side = 0  # the side of the signal being refused, so it counts once
    cash = capital
    side = 0
    shares = entry_price = entry_fee = 0.0
    entry_bar = 0
    active = False  # becomes True at the first change of target inside the window
    wanted = 0
    # Bars with a position held at their close or the close before, or an exit: the
    # statistics' exposure (their _exposed_bars of ``held`` and the exits, counted here for
    # a parameter search, which measures thousands of fills).
    exposed = 0
    one, stop = np.uint64(1), np.uint64(n - 1)  # for the settled bars' loop
    i = start
    while i < n:
        was, before = side, count
        if i > start:
            j = i - 1  # the bar whose close decided this open
            if not active:
                active = target[j] != (target[j - 1] if j > 0 else 0)
            wanted = target[j] if active else 0
            if wanted == 0:
                refused_side = 0
            if wanted != side:
                if side != 0:  # close at this open
                    exit_price = open_[i] - slippage * side
                    reason = _FLIP if wanted == -side else _SIGNAL
                    fee = _commission(shares, exit_price, per_share, minimum, max_fraction)
                    cash += side * shares * exit_price - fee
                    _record_exit(table, count, side, entry_bar, entry_price, shares, entry_fee,
                                 i, exit_price, fee, reason)  # fmt: skip
                    count += 1
                    side = 0
                if wanted != 0:  # open at this open; flat now, so the cash is the equity
                    price = open_[i] + slippage * wanted
                    if fixed_shares > 0.0:
                        size = fixed_shares
                        fee = _commission(size, price, per_share, minimum, max_fraction)
                        fits = size * price + fee <= cash
                    else:
                        size = _affordable(allocation * cash, price, per_share, minimum,
                                           max_fraction, fractional)  # fmt: skip
                        fits = size > 0.0
                    if fits:
                        refused_side = 0
                        entry_fee = _commission(size, price, per_share, minimum, max_fraction)
                        cash -= wanted * size * price + entry_fee
                        side, shares, entry_price, entry_bar = wanted, size, price, i
                    elif wanted != refused_side:  # refused, as a cash account's broker
                        # would; retried at each open, but counted once per signal
                        refused_side = wanted
                        if refused[0] == 0:
                            asked = size if fixed_shares > 0.0 else 1.0
                            refused[1] = i
                            refused[2] = asked
                            refused[3] = asked * price + _commission(
                                asked, price, per_share, minimum, max_fraction
                            )
                            refused[4] = cash
                        refused[0] += 1
        last = i == n - 1
        if side != 0 and (last or (flat_at_close and session_last[i])):
            price = close[i] - slippage * side  # session close, or still open at the end
            fee = _commission(shares, price, per_share, minimum, max_fraction)
            cash += side * shares * price - fee
            _record_exit(table, count, side, entry_bar, entry_price, shares, entry_fee, i,
                         price, fee, _END if last and not (flat_at_close and session_last[i])
                         else _SESSION)  # fmt: skip
            count += 1
            side = 0
        value = side * shares
        equity[i - start] = cash + value * close[i]
        held[i - start] = value
        exposed += (was != 0) | (side != 0) | (count != before)
        i += 1
        if i - 1 > start and side == wanted and i < n - 1:
            # Settled: the position is what the target asks (no refused entry waits). While
            # the target stays the same and no session ends (flat_at_close) before the last
            # bar, the bars place no order and close nothing: only their equity moves. Most
            # bars of a backtest are such bars, so this is a tight loop, with unsigned
            # positions (numba checks a signed index for a negative value at every access,
            # which cost a quarter of the fill).
            decided = target[i - 2]
            k, offset = np.uint64(i), np.uint64(start)
            if flat_at_close:
                while k < stop and target[k - one] == decided and not session_last[k]:
                    equity[k - offset] = cash + value * close[k]
                    held[k - offset] = value
                    k += one
            else:
                while k < stop and target[k - one] == decided:
                    equity[k - offset] = cash + value * close[k]
                    held[k - offset] = value
                    k += one
            exposed += (np.int64(k) - i) * (side != 0)
            i = np.int64(k)
    return equity, held, table[:count], refused, exposed


def session_last_bars(index: pd.DatetimeIndex) -> np.ndarray:
    """True at each session's last bar (the next bar falls on another local date)."""
    days = index.tz_localize(None).normalize().as_unit("ns").asi8 if len(index) else np.empty(0)
    return np.r_[days[1:] != days[:-1], True] if len(index) else np.empty(0, bool)


def _session_flags(
    index: pd.DatetimeIndex, flat_at_close: bool, given: np.ndarray | None
) -> np.ndarray:
    if not flat_at_close:
        return np.zeros(len(index), bool)
    if given is None:
        return session_last_bars(index)
    if len(given) != len(index):
        raise ValueError("session_last must have one value per bar")
    return np.ascontiguousarray(given, dtype=bool)


def simulate(
    bars: pd.DataFrame,
    target: np.ndarray,
    start: int = 0,
    capital: float = 100_000.0,
    costs: Costs = Costs(),
    sizing: Sizing = Sizing(),
    flat_at_close: bool = False,
    session_last: np.ndarray | None = None,
) -> SimResult:
    """Fill ``target`` (position per bar, decided at its close) on ``bars`` from bar ``start``.

    Bars before ``start`` only provide history; nothing is traded there. Returns the equity
    and position at each bar's close from ``start`` on, and the round-trip trades with columns
    side, entry_time, entry_price, exit_time, exit_price, shares, commission, pnl,
    return_pct, bars_held, exit_reason, entry_bar, exit_bar (bar numbers into ``bars``), and
    in ``refused`` the entries the cash could not pay for (None when there were none).

    ``session_last`` (one bool per bar) says which bars end a session for ``flat_at_close``;
    by default :func:`session_last_bars`, which counts the last bar as a session's last. A
    live caller, which does not know yet whether more bars of the session will come, passes
    its own.
    """
    if not 0 <= start < len(bars):
        raise ValueError(f"start {start} is outside the {len(bars)} bars")
    if len(target) != len(bars):
        raise ValueError("target must have one value per bar")
    out = _simulate_kernel(
        np.ascontiguousarray(bars["open"], dtype=np.float64),
        np.ascontiguousarray(bars["close"], dtype=np.float64),
        np.ascontiguousarray(target, dtype=np.int8),
        _session_flags(bars.index, flat_at_close, session_last),
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
    equity, held, table, refused, _ = out
    # Copies, not views: a view would keep the kernel's whole table (a row per bar) alive.
    records = {name: table[:, k].copy() for k, name in enumerate(_TRADE_FIELDS)}
    for name in ("side", "reason"):
        records[name] = records[name].astype(np.int8)
    for name in ("entry_bar", "exit_bar"):
        records[name] = records[name].astype(np.int64)
    refusal = None
    if refused[0]:
        refusal = Refused(int(refused[0]), bars.index[int(refused[1])], *map(float, refused[2:]))
    return SimResult(equity, held, start, bars.index, records, refusal)
