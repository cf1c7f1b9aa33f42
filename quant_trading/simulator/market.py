"""The simulated market: bars from the CSV files, a replay clock, and ticks inside each bar.

Prices come from ``<SYMBOL>_<tf>.csv`` or ``<SYMBOL>_<tf>_bars_macd.csv`` in the data folder,
read with the shared :func:`~quant_trading.csv_store.read_bars`. A symbol may have several files
(say two years of 5-minute bars and the last month of 1-minute bars); the finest file wins
where files overlap, and coarser files fill in the time before it.

Live data is a deterministic replay. Each source bar is turned into a path of trades spaced
``tick_interval`` seconds apart (at least four): the first trade is at the bar's start at the
open, the path visits the high and the low (the low first on an up bar) and the last trade is
the close; the bar's volume is split over the trades. A client that aggregates these trades
gets exactly the source bars back, and 5-second bars built from them are what
``reqRealTimeBars`` and sub-minute ``reqHistoricalData`` serve. Quotes sit one minimum tick
either side of the last trade.

The :class:`ReplayClock` maps wall time to market time: ``speed`` market seconds per real
second from a chosen start.

The replay ends at the last session's close: from then on the market is closed (no trades,
no 5-second bars). With ``--loop`` it keeps going instead: when the replay runs out,
:meth:`Market.extend_loop` appends the replayed sessions again (the sessions from
the replay's start to the end of the data), moved to the following weekdays at the same New
York clock times, so time keeps increasing and bars stay aligned to the clock.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time as _time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..bars import EXCHANGE_TZ, OHLCV, aggregate
from ..csv_store import read_bars
from ..timeframes import Timeframe, TimeframeError, parse_timeframe
from .historical import Sessions
from .messages import ContractInfo

__all__ = [
    "Market",
    "ReplayClock",
    "SymbolData",
    "Ticks",
    "UnknownSymbol",
    "bar_ticks",
    "contract_for",
]

log = logging.getLogger(__name__)

#: Where a replay starts without --start: this long after the last session's open.
DEFAULT_START_OFFSET = 3600.0

_FILE = re.compile(r"^([A-Za-z0-9.\-]+?)_(\d+[a-z]+)(?:_bars_macd)?\.csv$")

# Real conIds of the sample symbols, so that tools that hard-code them keep working; other
# symbols get a stable made-up id.
_KNOWN = {
    "AAPL": (265598, "NASDAQ", "APPLE INC", "Technology", "Computers", "Computers"),
    "MSFT": (272093, "NASDAQ", "MICROSOFT CORP", "Technology", "Software", "Software"),
    "SPY": (756733, "ARCA", "SPDR S&P 500 ETF TRUST", "Funds", "Equity Fund", "Large Cap"),
    "QQQ": (320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", "Funds", "Equity Fund", ""),
    "TSLA": (76792991, "NASDAQ", "TESLA INC", "Consumer, Cyclical", "Auto Manufacturers", ""),
    "NVDA": (4815747, "NASDAQ", "NVIDIA CORP", "Technology", "Semiconductors", ""),
    "AMZN": (3691937, "NASDAQ", "AMAZON.COM INC", "Communications", "Internet", ""),
}


class UnknownSymbol(KeyError):
    """No data file for the symbol (TWS answers error 200)."""


def contract_for(symbol: str) -> ContractInfo:
    """The simulator's description of a stock: conId, primary exchange and long name."""
    symbol = symbol.upper()
    if symbol in _KNOWN:
        con_id, primary, name, industry, category, sub = _KNOWN[symbol]
        return ContractInfo(symbol, con_id, primary, "USD", name, industry=industry,
                            category=category, subcategory=sub)  # fmt: skip
    con_id = 100_000_000 + zlib.crc32(symbol.encode()) % 800_000_000
    return ContractInfo(symbol, con_id, "NASDAQ", "USD", symbol)


class ReplayClock:
    """Market time = ``start`` + (wall time since creation) x ``speed``, in epoch seconds.

    Thread-safe; :meth:`jump` moves market time (tests, demos), :meth:`set_speed` changes the
    rate from now on without a jump.
    """

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._lock = threading.Lock()
        self._origin_wall = _time.monotonic()
        self._origin_market = float(start)
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        """Market seconds per real second."""
        return self._speed

    def now(self) -> float:
        """Current market time, epoch seconds."""
        with self._lock:
            return self._origin_market + (_time.monotonic() - self._origin_wall) * self._speed

    def set_speed(self, speed: float) -> None:
        """Change the replay rate from the current market time on."""
        with self._lock:
            wall = _time.monotonic()
            self._origin_market += (wall - self._origin_wall) * self._speed
            self._origin_wall = wall
            self._speed = float(speed)

    def jump(self, market_time: float) -> None:
        """Set the market time (it keeps running at the same speed from there)."""
        with self._lock:
            self._origin_wall = _time.monotonic()
            self._origin_market = float(market_time)


@dataclass(frozen=True, slots=True)
class Ticks:
    """Trades, as parallel arrays: epoch seconds, price, size."""

    time: np.ndarray
    price: np.ndarray
    size: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @staticmethod
    def empty() -> Ticks:
        """No trades."""
        return Ticks(np.empty(0), np.empty(0), np.empty(0))


def bar_ticks(
    start: float,
    width: float,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    interval: float,
    min_tick: float = 0.01,
) -> Ticks:
    """The trades that make up one bar (see the module doc); deterministic.

    Aggregating them gives back exactly (o, h, lo, c, v): the open, high, low and close are
    trades at the source's own values, other prices lie between them, and the sizes sum to v.
    """
    n = max(4, int(round(width / interval)))
    times = start + np.arange(n) * (width / n)
    # An up bar dips first, a down bar rallies first: the usual guess at the path inside a bar.
    first, second = (lo, h) if c >= o else (h, lo)
    a, b = max(1, round((n - 1) / 3)), max(2, round(2 * (n - 1) / 3))
    points = np.interp(np.arange(n), [0, a, b, n - 1], [o, first, second, c])
    prices = np.clip(np.round(points / min_tick) * min_tick, lo, h).round(8)
    prices[0], prices[a], prices[b], prices[n - 1] = o, first, second, c
    total = float(v)
    whole = np.floor(total)
    base, extra = divmod(int(whole), n)
    sizes = np.full(n, float(base))
    sizes[:extra] += 1.0
    sizes[-1] += total - whole  # a fractional volume (rare) goes to the last trade
    return Ticks(times, prices, sizes)


#: SymbolData's array of each OHLCV column.
_ARRAYS = dict(zip(OHLCV, ("o", "h", "lo", "c", "v"), strict=True))


class SymbolData:
    """All bars of one symbol, stitched from its files (finest wins), with the trades in them.

    ``starts``/``widths`` are epoch seconds per bar; ``o, h, lo, c, v`` the bar values.
    """

    def __init__(self, symbol: str, files: dict[Timeframe, Path], tick_interval: float) -> None:
        self.symbol = symbol
        self.contract = contract_for(symbol)
        self.files = dict(sorted(files.items(), key=lambda kv: kv[0].seconds or 10**9))
        self.tick_interval = float(tick_interval)
        self._frames: dict[Timeframe, pd.DataFrame] = {}
        self._calendars: dict[Timeframe, _Calendar] = {}
        self._sessions: Sessions | None = None
        self._lock = threading.RLock()  # frame() is called with it held while loading
        self._ticks_cache: OrderedDict[int, Ticks] = OrderedDict()
        self._loaded = False

    # -- loading --------------------------------------------------------------------------

    def frame(self, tf: Timeframe) -> pd.DataFrame:
        """The bars of the file with timeframe ``tf`` (read once)."""
        with self._lock:
            if tf not in self._frames:
                frame = read_bars(self.files[tf])
                self._frames[tf] = frame[OHLCV]
            return self._frames[tf]

    def _calendar(self, tf: Timeframe) -> _Calendar:
        """The file's bars with their New York days, for daily and longer bars (built once)."""
        with self._lock:
            if tf not in self._calendars:
                self._calendars[tf] = _Calendar.of(self.frame(tf), tf.seconds)
            return self._calendars[tf]

    def _load(self) -> None:
        if self._loaded:
            return
        pieces = []
        cutoff = None  # bars of coarser files are used only before the finer data starts
        for tf in self.files:  # finest first
            frame = self.frame(tf)
            self._calendar(tf)  # now, so that no daily request has to build it
            if cutoff is not None:
                frame = frame[frame.index < cutoff]
            if len(frame):
                width = np.full(len(frame), tf.seconds, dtype=np.int64)
                pieces.append((frame, width))
                first = frame.index[0]
                cutoff = first if cutoff is None else min(cutoff, first)
        if not pieces:
            raise UnknownSymbol(self.symbol)
        pieces.sort(key=lambda p: p[0].index[0])
        frame = pd.concat([p[0] for p in pieces])
        self.widths = np.concatenate([p[1] for p in pieces])
        self.starts = frame.index.as_unit("s").asi8.astype(np.int64)
        self.ends = self.starts + self.widths
        self.o, self.h, self.lo, self.c, self.v = (frame[col].to_numpy(np.float64) for col in OHLCV)
        self.session = _yyyymmdd(frame.index)
        self._loaded = True

    def ensure_loaded(self) -> None:
        """Read the files now (the server does this at start-up so the first request is fast)."""
        with self._lock:
            self._load()

    # -- queries --------------------------------------------------------------------------

    @property
    def first_time(self) -> float:
        """Start of the first bar, epoch seconds."""
        self.ensure_loaded()
        return float(self.starts[0])

    @property
    def last_time(self) -> float:
        """End of the last bar, epoch seconds."""
        self.ensure_loaded()
        return float(self.ends[-1])

    def bar_trades(self, i: int) -> Ticks:
        """The trades of bar ``i`` (cached; the replay asks for the same bars many times)."""
        with self._lock:
            ticks = self._ticks_cache.get(i)
            if ticks is not None:
                self._ticks_cache.move_to_end(i)
                return ticks
        ticks = bar_ticks(
            float(self.starts[i]), float(self.widths[i]), self.o[i], self.h[i], self.lo[i],
            self.c[i], self.v[i], self.tick_interval, self.contract.min_tick,
        )  # fmt: skip
        with self._lock:
            self._ticks_cache[i] = ticks
            if len(self._ticks_cache) > 4096:
                self._ticks_cache.popitem(last=False)
        return ticks

    def trades(self, t_from: float, t_to: float) -> Ticks:
        """All trades with ``t_from <= time < t_to``."""
        self.ensure_loaded()
        i = int(np.searchsorted(self.ends, t_from, side="right"))
        j = int(np.searchsorted(self.starts, t_to, side="left"))
        if j <= i:
            return Ticks.empty()
        parts = [self.bar_trades(k) for k in range(i, j)]
        times = np.concatenate([p.time for p in parts])
        mask = (times >= t_from) & (times < t_to)
        return Ticks(
            times[mask],
            np.concatenate([p.price for p in parts])[mask],
            np.concatenate([p.size for p in parts])[mask],
        )

    def last_trade(self, t: float) -> tuple[float, float, float] | None:
        """(time, price, size) of the last trade before market time ``t``, or None."""
        self.ensure_loaded()
        i = int(np.searchsorted(self.starts, t, side="left")) - 1
        if i < 0:
            return None
        if t >= self.ends[i]:
            ticks = self.bar_trades(i)
            return float(ticks.time[-1]), float(ticks.price[-1]), float(ticks.size[-1])
        ticks = self.bar_trades(i)
        k = int(np.searchsorted(ticks.time, t, side="left")) - 1
        return float(ticks.time[k]), float(ticks.price[k]), float(ticks.size[k])

    def price(self, t: float) -> float:
        """The last trade price at market time ``t`` (the first open before the data)."""
        last = self.last_trade(t)
        return float(self.o[0]) if last is None else last[1]

    def session_stats(self, t: float) -> SessionStats:
        """Open, high, low, volume of the session that ``t`` falls in (up to ``t``), and the
        previous session's close."""
        self.ensure_loaded()
        i = int(np.searchsorted(self.starts, t, side="left")) - 1
        if i < 0:
            return SessionStats(None, None, None, 0.0, None, None)
        day = self.session[i]
        first = int(np.searchsorted(self.session, day, side="left"))
        prev_close = float(self.c[first - 1]) if first > 0 else None
        complete = slice(first, i) if t < self.ends[i] else slice(first, i + 1)
        high = float(self.h[complete].max()) if complete.stop > complete.start else -np.inf
        low = float(self.lo[complete].min()) if complete.stop > complete.start else np.inf
        volume = float(self.v[complete].sum())
        if t < self.ends[i]:  # the bar in progress counts up to t
            partial = self.trades(float(self.starts[i]), t)
            if len(partial):
                high = max(high, float(partial.price.max()))
                low = min(low, float(partial.price.min()))
                volume += float(partial.size.sum())
        last = self.last_trade(t)
        return SessionStats(float(self.o[first]), high, low, volume, prev_close, last)

    def sessions(self) -> Sessions:
        """Trading days in the data and the start of each one's first bar."""
        self.ensure_loaded()
        with self._lock:
            if self._sessions is None:
                days, first = np.unique(self.session, return_index=True)
                self._sessions = Sessions(days, self.starts[first].astype(np.float64))
            return self._sessions

    def session_spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(days, opens, closes): each trading day's first bar start and last bar end."""
        sessions = self.sessions()
        last = np.r_[np.searchsorted(self.session, sessions.days[1:], side="left") - 1,
                     len(self.session) - 1]  # fmt: skip
        return sessions.days, sessions.opens, self.ends[last].astype(np.float64)

    def append_days(self, moves: dict[int, int]) -> None:
        """Append a copy of the bars of each day in ``moves`` (``yyyymmdd`` -> ``yyyymmdd``)
        on its new day, at the same New York clock times. The new days must come after the
        data (``--loop``)."""
        self.ensure_loaded()
        with self._lock:
            rows = np.flatnonzero(np.isin(self.session, np.fromiter(moves, np.int64)))
            if not len(rows):
                return
            shift = {day: _midnight(new) - _midnight(day) for day, new in moves.items()}
            old_days = self.session[rows]
            starts = self.starts[rows] + np.array([shift[d] for d in old_days.tolist()])
            if starts[0] < self.ends[-1]:
                raise ValueError("looped days must come after the data")
            widths = self.widths[rows]
            values = {col: getattr(self, attr)[rows] for col, attr in _ARRAYS.items()}
            for tf in self.files:
                own = widths == tf.seconds
                if own.any():  # the history of sizes built from this file sees the new days
                    index = pd.to_datetime(starts[own], unit="s", utc=True)
                    added = pd.DataFrame(
                        {col: v[own] for col, v in values.items()},
                        index=index.tz_convert(self.frame(tf).index.tz).rename("time"),
                    )
                    self._frames[tf] = pd.concat([self.frame(tf), added])
                    self._calendars.pop(tf, None)
            self.starts = np.concatenate([self.starts, starts])
            self.widths = np.concatenate([self.widths, widths])
            self.ends = self.starts + self.widths
            for col, attr in _ARRAYS.items():
                setattr(self, attr, np.concatenate([getattr(self, attr), values[col]]))
            new_days = np.array([moves[d] for d in old_days.tolist()], dtype=self.session.dtype)
            self.session = np.concatenate([self.session, new_days])
            self._sessions = None

    def session_notional(self, t: float) -> float:
        """Sum of price x size traded in ``t``'s session before ``t`` (for RTVolume's VWAP).

        Finished bars count at their typical price (high + low + close) / 3, the bar in
        progress at its trades' prices: close to, not exactly, the trades' VWAP.
        """
        self.ensure_loaded()
        i = int(np.searchsorted(self.starts, t, side="left")) - 1
        if i < 0:
            return 0.0
        first = int(np.searchsorted(self.session, self.session[i], side="left"))
        done = slice(first, i) if t < self.ends[i] else slice(first, i + 1)
        typical = (self.h[done] + self.lo[done] + self.c[done]) / 3
        total = float((typical * self.v[done]).sum())
        if t < self.ends[i]:
            partial = self.trades(float(self.starts[i]), t)
            total += float((partial.price * partial.size).sum())
        return total

    def previous_close(self, t: float) -> float | None:
        """Close of the last session before the one ``t`` falls in."""
        return self.session_stats(t).previous_close

    def bars(
        self, tf: Timeframe, t_from: float, t_to: float, complete_by: float | None = None
    ) -> pd.DataFrame:
        """Bars of size ``tf`` starting in [t_from, t_to), aggregated by the shared core.

        With ``complete_by`` only source bars (or trades) finished by then are used, so a
        request never sees the future of the replay.

        Minute and longer sizes come from the files (only those that divide ``tf``); sizes
        under a minute are built from the trades. Bars of a coarser file than ``tf`` are not
        split: that period has no ``tf`` bars.
        """
        self.ensure_loaded()
        lo_ts = pd.Timestamp(t_from, unit="s", tz="UTC")
        hi_ts = pd.Timestamp(t_to, unit="s", tz="UTC")
        secs = tf.seconds
        if complete_by is not None:
            t_to = min(t_to, complete_by)
        if secs is not None and secs < 60:
            ticks = self.trades(t_from, t_to)
            if not len(ticks):
                return _empty_frame()
            index = pd.DatetimeIndex(
                pd.to_datetime((ticks.time * 1e9).astype(np.int64), utc=True)
            ).tz_convert(EXCHANGE_TZ)
            frame = pd.DataFrame(
                {"open": ticks.price, "high": ticks.price, "low": ticks.price,
                 "close": ticks.price, "volume": ticks.size},
                index=index.rename("time"),
            )  # fmt: skip
            out = aggregate(frame, tf)
            out["count"] = _counts(ticks.time, out.index, secs)
            return out
        pieces = []
        calendar = tf.unit in ("w", "mo") or (secs is not None and secs >= 86400)
        for file_tf in self.files:
            if file_tf.seconds is None or (secs is not None and secs % file_tf.seconds):
                continue
            n_ticks = max(4, int(round(file_tf.seconds / self.tick_interval)))
            if calendar:
                out = self._calendar(file_tf).bars(tf.unit, t_from, t_to, complete_by, n_ticks)
                if out is not None:
                    pieces.append(out)
                continue
            frame = self.frame(file_tf)
            keep = (frame.index >= lo_ts) & (frame.index < hi_ts)
            if complete_by is not None:
                ends = frame.index.as_unit("s").asi8 + file_tf.seconds
                keep &= ends <= complete_by
            frame = frame[keep]
            if not len(frame):
                continue
            out = aggregate(frame, tf)
            out["count"] = aggregate(frame.assign(volume=float(n_ticks)), tf)["volume"]
            pieces.append(out)
        if not pieces:
            return _empty_frame()
        merged = pd.concat(pieces)  # finest first, so keep="first" prefers the finest file
        merged = merged[~merged.index.duplicated(keep="first")].sort_index()
        return merged

    def head_time(self) -> float:
        """Start of the earliest bar, epoch seconds."""
        return self.first_time


@dataclass(frozen=True, slots=True)
class SessionStats:
    """A session so far: its open, high, low, volume; the previous close; the last trade."""

    open: float | None
    high: float | None
    low: float | None
    volume: float
    previous_close: float | None
    last: tuple[float, float, float] | None


def _empty_frame() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz=EXCHANGE_TZ, name="time")
    return pd.DataFrame({c: np.empty(0) for c in [*OHLCV, "count"]}, index=index)


def _counts(times: np.ndarray, index: pd.DatetimeIndex, secs: int) -> np.ndarray:
    starts = index.as_unit("s").asi8.astype(np.float64)
    lo = np.searchsorted(times, starts, side="left")
    hi = np.searchsorted(times, starts + secs, side="left")
    return (hi - lo).astype(np.float64)


def _weekdays_after(day: int, n: int) -> list[int]:
    """The ``n`` weekdays after the ``yyyymmdd`` day, as ``yyyymmdd`` ints."""
    first = np.datetime64(f"{day // 10000:04d}-{day // 100 % 100:02d}-{day % 100:02d}")
    dates = np.busday_offset(first, np.arange(1, n + 1), roll="forward")
    return [int(str(d).replace("-", "")) for d in dates]


def _yyyymmdd(index: pd.DatetimeIndex) -> np.ndarray:
    """The New York date of each time as a ``yyyymmdd`` int."""
    local = index.tz_convert(EXCHANGE_TZ)
    return np.asarray(local.year * 10000 + local.month * 100 + local.day, dtype=np.int64)


def _midnight(day: int) -> int:
    """Epoch seconds of New York midnight starting the ``yyyymmdd`` day."""
    return int(pd.Timestamp(str(day), tz=EXCHANGE_TZ).timestamp())


@dataclass(frozen=True, slots=True)
class _Calendar:
    """One file's bars with the New York day each falls on, so that daily, weekly and monthly
    bars are numpy reductions over a slice (a pandas groupby on tz-aware times took most of a
    second per request, blocking every client meanwhile)."""

    starts: np.ndarray  # epoch seconds, sorted
    width: int
    midnight: np.ndarray  # epoch seconds of the bar's New York midnight
    day: np.ndarray  # the bar's New York date, days since 1970-01-01
    o: np.ndarray
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    v: np.ndarray

    @staticmethod
    def of(frame: pd.DataFrame, width: int) -> _Calendar:
        """Index ``frame``: one file's bars, each ``width`` seconds long."""
        index = frame.index
        starts = index.as_unit("s").asi8.astype(np.int64)
        wall = index.tz_convert(EXCHANGE_TZ).tz_localize(None).as_unit("s").asi8
        day = wall // 86400
        days, which = np.unique(day, return_inverse=True)
        # Midnight is a real instant every day in New York (clocks change at 2 am).
        midnights = pd.to_datetime(days, unit="D").tz_localize(EXCHANGE_TZ)
        return _Calendar(
            starts, width, midnights.as_unit("s").asi8[which], day,
            *(frame[col].to_numpy(np.float64) for col in OHLCV),
        )  # fmt: skip

    def bars(
        self, unit: str, t_from: float, t_to: float, complete_by: float | None, n_ticks: int
    ) -> pd.DataFrame | None:
        """Bars of a day (``d``), week (``w``, from Monday) or month (``mo``) from the file's
        bars starting in [t_from, t_to) and, with ``complete_by``, ended by then; labelled by
        the first session of the period (midnight New York), as TWS dates them. None if no
        bar qualifies."""
        i = int(np.searchsorted(self.starts, t_from, side="left"))
        j = int(np.searchsorted(self.starts, t_to, side="left"))
        if complete_by is not None:
            j = min(j, int(np.searchsorted(self.starts, complete_by - self.width, side="right")))
        if j <= i:
            return None
        day = self.day[i:j]
        if unit == "w":
            key = day - (day + 3) % 7  # 1970-01-01 was a Thursday: back to Monday
        elif unit == "mo":
            key = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        else:
            key = day
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        last = np.r_[first[1:] - 1, len(key) - 1]
        index = pd.to_datetime(self.midnight[i:j][first], unit="s", utc=True)
        return pd.DataFrame(
            {
                "open": self.o[i:j][first],
                "high": np.maximum.reduceat(self.h[i:j], first),
                "low": np.minimum.reduceat(self.lo[i:j], first),
                "close": self.c[i:j][last],
                "volume": np.add.reduceat(self.v[i:j], first),
                "count": (last - first + 1) * n_ticks,
            },
            index=index.tz_convert(EXCHANGE_TZ).rename("time"),
        )


class Market:
    """The data folder's symbols, loaded on first use, and the replay clock.

    :meth:`closed_until` says when a closed market opens next; for ``--loop`` the server
    calls :meth:`extend_loop` whenever the replay runs out (see the module doc).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        clock: ReplayClock | None = None,
        tick_interval: float = 5.0,
        speed: float = 60.0,
        start: float | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.tick_interval = float(tick_interval)
        self._symbols: dict[str, SymbolData] = {}
        self._scan()
        if clock is None:
            clock = ReplayClock(self.default_start() if start is None else start, speed)
        self.clock = clock
        self.replay_start = clock.now()
        self._hours: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._replayed: list[int] | None = None  # the days --loop replays again

    def _scan(self) -> None:
        files: dict[str, dict[Timeframe, Path]] = {}
        if not self.data_dir.is_dir():
            log.warning("data folder %s does not exist: no symbols", self.data_dir)
            return
        for path in sorted(self.data_dir.iterdir()):
            match = _FILE.match(path.name)
            if not match:
                continue
            try:
                tf = parse_timeframe(match.group(2))
            except TimeframeError:
                continue
            if tf.seconds is None:
                continue
            symbol = match.group(1).upper()
            per_symbol = files.setdefault(symbol, {})
            # Prefer the plain OHLCV file over the *_bars_macd.csv of the same timeframe.
            if tf not in per_symbol or not path.name.endswith("_bars_macd.csv"):
                per_symbol[tf] = path
        for symbol, by_tf in files.items():
            self._symbols[symbol] = SymbolData(symbol, by_tf, self.tick_interval)
        log.info("data folder %s: %d symbols", self.data_dir, len(self._symbols))

    @property
    def symbols(self) -> list[str]:
        """Symbols with at least one data file."""
        return sorted(self._symbols)

    def has(self, symbol: str) -> bool:
        """True if ``symbol`` has data."""
        return symbol.upper() in self._symbols

    def data(self, symbol: str) -> SymbolData:
        """The symbol's data; :class:`UnknownSymbol` if it has none."""
        try:
            return self._symbols[symbol.upper()]
        except KeyError:
            raise UnknownSymbol(symbol) from None

    def default_start(self) -> float:
        """One hour after the open of the last session in the data (first symbol), so that a
        replay started without ``--start`` streams at once and "1 D" requests already have
        bars; now if there is no data."""
        for symbol in self.symbols:
            try:
                data = self.data(symbol)
                data.ensure_loaded()
            except Exception as exc:  # a bad file must not stop the server from starting
                log.warning("cannot read data for %s: %s", symbol, exc)
                continue
            last_session = data.session[-1]
            i = int(np.searchsorted(data.session, last_session, side="left"))
            return min(float(data.starts[i]) + DEFAULT_START_OFFSET, float(data.ends[-1]))
        return _time.time()

    def _readable(self) -> list[SymbolData]:
        out = []
        for symbol in self.symbols:
            try:
                data = self.data(symbol)
                data.ensure_loaded()
            except Exception:  # already reported at start-up; such a symbol has no sessions
                continue
            out.append(data)
        return out

    def hours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(days, opens, closes) of the market: every ``yyyymmdd`` with data for any symbol,
        from its earliest first bar to its latest last bar (epoch seconds)."""
        if self._hours is None:
            spans: dict[int, tuple[float, float]] = {}
            for data in self._readable():
                for day, o, c in zip(*(a.tolist() for a in data.session_spans()), strict=True):
                    lo, hi = spans.get(day, (o, c))
                    spans[day] = (min(lo, o), max(hi, c))
            days = sorted(spans)
            self._hours = (
                np.array(days, dtype=np.int64),
                np.array([spans[d][0] for d in days], dtype=np.float64),
                np.array([spans[d][1] for d in days], dtype=np.float64),
            )
        return self._hours

    @property
    def end(self) -> float | None:
        """When the last session in the data closes (epoch seconds), None without data."""
        closes = self.hours()[2]
        return float(closes[-1]) if len(closes) else None

    def closed_until(self, t: float) -> float | None:
        """None while a session is open at market time ``t``; else when the next one opens
        (``math.inf`` after the last session)."""
        _, opens, closes = self.hours()
        k = int(np.searchsorted(opens, t, side="right")) - 1
        if k >= 0 and t < closes[k]:
            return None
        return float(opens[k + 1]) if k + 1 < len(opens) else math.inf

    def extend_loop(self) -> list[int]:
        """Append the replayed sessions again on the weekdays after the data; return the new
        days. The replayed sessions are those from the replay's start (the session it began
        in, else the next one, else the last) to the end of the original data."""
        days, opens, closes = self.hours()
        if not len(days):
            return []
        if self._replayed is None:
            k = int(np.searchsorted(opens, self.replay_start, side="right")) - 1
            if k < 0 or self.replay_start >= closes[k]:
                k += 1  # started while closed: the next session is the first replayed
            self._replayed = days[min(max(k, 0), len(days) - 1) :].tolist()
        new_days = _weekdays_after(int(days[-1]), len(self._replayed))
        moves = dict(zip(self._replayed, new_days, strict=True))
        for data in self._readable():
            data.append_days(moves)
        self._hours = None
        log.info("replay looped: sessions %s again as %s", self._replayed, new_days)
        return new_days

    def price(self, symbol: str) -> float | None:
        """Last trade price of ``symbol`` now, or None without data."""
        if not self.has(symbol):
            return None
        return self.data(symbol).price(self.clock.now())

    def previous_close(self, symbol: str) -> float | None:
        """Previous session's close of ``symbol`` now, or None."""
        if not self.has(symbol):
            return None
        return self.data(symbol).previous_close(self.clock.now())
