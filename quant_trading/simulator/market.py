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
"""

from __future__ import annotations

import logging
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

    def _load(self) -> None:
        if self._loaded:
            return
        pieces = []
        cutoff = None  # bars of coarser files are used only before the finer data starts
        for tf in self.files:  # finest first
            frame = self.frame(tf)
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
        self.index = frame.index
        self.starts = frame.index.as_unit("s").asi8.astype(np.int64)
        self.ends = self.starts + self.widths
        self.o, self.h, self.lo, self.c, self.v = (frame[col].to_numpy(np.float64) for col in OHLCV)
        local = frame.index.tz_convert(EXCHANGE_TZ)
        self.session = np.asarray(local.strftime("%Y%m%d").astype(int))
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
        days, first = np.unique(self.session, return_index=True)
        return Sessions(days, self.starts[first].astype(np.float64))

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
        for file_tf in self.files:
            if file_tf.seconds is None or (secs is not None and secs % file_tf.seconds):
                continue
            frame = self.frame(file_tf)
            keep = (frame.index >= lo_ts) & (frame.index < hi_ts)
            if complete_by is not None:
                ends = frame.index.as_unit("s").asi8 + file_tf.seconds
                keep &= ends <= complete_by
            frame = frame[keep]
            if not len(frame):
                continue
            n_ticks = max(4, int(round(file_tf.seconds / self.tick_interval)))
            if tf.unit in ("w", "mo") or (secs is not None and secs >= 86400):
                out = _calendar_bars(frame, tf)
                out["count"] = _calendar_bars(frame.assign(volume=n_ticks), tf)["volume"]
            else:
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


def _calendar_bars(frame: pd.DataFrame, tf: Timeframe) -> pd.DataFrame:
    """Daily, weekly and monthly bars, labelled by the first session of the period (midnight
    New York), since those periods do not divide the clock the way intraday bins do."""
    local = frame.index.tz_convert(EXCHANGE_TZ)
    days = local.normalize()
    if tf.unit == "w":
        key = days - pd.to_timedelta(days.day_of_week, unit="D")
        key = key.normalize()
    elif tf.unit == "mo":
        key = days - pd.to_timedelta(days.day - 1, unit="D")
    else:
        key = days
    grouped = frame.groupby(key.to_numpy())
    out = grouped.agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"),
        close=("close", "last"), volume=("volume", "sum"),
    )  # fmt: skip
    first_day = pd.Series(days, index=frame.index).groupby(key.to_numpy()).first()
    out.index = pd.DatetimeIndex(first_day.to_numpy(), name="time")
    if out.index.tz is None:
        out.index = out.index.tz_localize(EXCHANGE_TZ)
    return out


class Market:
    """The data folder's symbols, loaded on first use, and the replay clock."""

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
