"""Real-time market data: quotes and trades as they come, and 1/3/5/10-minute (or any
clock-aligned) bars with a strategy's indicators and target position, built by the shared
core.

    python -m quant_trading.data.market_data_tracker [--symbols AAPL MSFT] [--timeframes 1 3 5 10]
        [--strategy NAME] [--strategy-path DIR]

Each timeframe runs the strategy bar by bar (:mod:`.live_bars`). Before going live each
timeframe is back-filled from history (at least MIN_HISTORY_BARS bars beyond the strategy's
warm-up, where the data allows) so the indicators are warm from the first live bar and equal
what the backtest computes on the same bars. Live bars come from IB's 5-second real-time bars
(exact OHLCV); bars that the live feed did not cover from their first second (the first one,
and any after a reconnect) are taken from history instead, so no bar is lost or doubled.
Ticks are printed for display. Read-only: it places no orders.
"""

from __future__ import annotations

import datetime
import logging
import math
import queue
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from ibapi.ticktype import TickTypeEnum

from ..bars import EXCHANGE_TZ, aggregate
from ..core.ibkr_connection import (
    IBKRConnection,
    RequestError,
    RequestTimeout,
    stock,
)
from ..core.pacing import PacingLimiter
from ..csv_store import bars_filename, read_bars, write_bars
from ..strategy import StrategyConfig
from ..timeframes import IB_BAR_SIZES, IB_MAX_DURATION, Timeframe, TimeframeError, parse_timeframe
from .live_bars import FinishedBar, LiveBars

__all__ = ["MarketDataTracker", "format_bar", "MIN_HISTORY_BARS"]

log = logging.getLogger(__name__)

MIN_HISTORY_BARS = 400
_UNIT_DAYS = {"D": 1, "W": 7, "M": 30}  # to step back over a period with no bars
#: IB bar sizes history is requested in: those that divide half an hour. IB labels a
#: session's first bar by the 09:30 open (its first hourly bar is 09:30-10:00), while our
#: bins follow the clock (09:00-10:00), so coarser bars are aggregated here from these.
_HISTORY_SIZES = sorted(
    (tf for tf in map(parse_timeframe, IB_BAR_SIZES) if tf.unit == "m" and 1800 % tf.seconds == 0),
    key=lambda tf: -tf.seconds,
)
NO_SUBSCRIPTION = (354, 10167)
_SESSION_OPEN = datetime.time(9, 30)
_SIDES = {1: "LONG", -1: "SHORT", 0: "FLAT"}


@dataclass(frozen=True)
class _Event:
    kind: str  # "tick", "bar", "lost", "resubscribe", "nodata"
    req_id: int
    payload: tuple = ()


def format_bar(item: FinishedBar, strategy: StrategyConfig) -> str:
    """One finished bar as printed: OHLCV, then the strategy's indicator values under their
    labels; a mark with the strategy's ``signal_text`` where its target rises or falls; and,
    on the strategy's own timeframe, its target (``[MACD: LONG]``)."""
    bar, spec = item.bar, strategy.strategy
    text = (
        f"Bar {item.timeframe.name:>3} {item.symbol:<6} {bar.time:%Y-%m-%d %H:%M}  "
        f"O {bar.open:.2f} H {bar.high:.2f} L {bar.low:.2f} C {bar.close:.2f} "
        f"V {bar.volume:,.0f}"
    )
    lines = [line for indicator in strategy.indicators for line in indicator.lines]
    if lines:
        text += " | " + " ".join(
            f"{line.label} {_number(item.values[line.column], line.style)}" for line in lines
        )
    side = _SIDES[item.position]
    if item.position != item.previous:
        rise = item.position > item.previous
        mark = spec.signal_text[0 if rise else 1].format(name=spec.name, side=side)
        text += ("  ^ " if rise else "  v ") + mark
    if item.timeframe.seconds == strategy.timeframe.seconds:
        text += f"  [{spec.name}: {side}]"
    return text


def _number(value: float, style: str) -> str:
    if math.isnan(value):
        return "n/a"
    return format(value, "+.4f" if style == "histogram" else ".4f")


class MarketDataTracker(IBKRConnection):
    """Streams quotes and builds live bars for a list of symbols, each timeframe running
    ``strategy`` (whose own timeframe is always tracked)."""

    DEFAULT_CLIENT_ID = 12

    def __init__(
        self,
        symbols: Sequence[str],
        timeframes: Sequence[Timeframe | str] = ("1m", "3m", "5m", "10m"),
        *,
        strategy: StrategyConfig,
        exchange: str = "SMART",
        currency: str = "USD",
        delayed: bool = False,
        quiet: bool = False,
        csv_dir: str | Path | None = None,
        output: Callable[[str], None] = print,
        pacing: PacingLimiter | None = None,
        **connection,
    ) -> None:
        connection.setdefault("auto_reconnect", True)
        super().__init__(**connection)
        self.symbols = [s.upper() for s in symbols]
        self.strategy = strategy
        self.timeframes = _tracked(timeframes, strategy.timeframe)
        self.exchange, self.currency = exchange, currency
        self.delayed, self.quiet = delayed, quiet
        self.csv_dir = Path(csv_dir) if csv_dir else None
        self.output = output
        self.pacing = pacing or PacingLimiter()
        self.contracts: dict[str, object] = {}
        self.live: dict[str, LiveBars] = {}
        self.finished: list[FinishedBar] = []
        self._events: queue.Queue[_Event] = queue.Queue()
        self._tick_ids: dict[int, str] = {}
        self._bar_ids: dict[int, str] = {}
        self._from_ticks: set[str] = set()  # symbols whose bars come from (delayed) ticks
        self._quotes: dict[str, dict[str, float]] = {}
        self._csv: dict[tuple[str, str], pd.DataFrame] = {}

    # ---------------------------------------------------------------- setup
    def resolve_symbols(self) -> list[str]:
        """Look every symbol up (contract details); returns the unknown ones."""
        unknown = []
        for symbol in self.symbols:
            try:
                details = self.contract_details(stock(symbol, self.exchange, self.currency))
            except RequestError as exc:
                unknown.append(symbol)
                self.output(f"{symbol}: not found ({exc})")
                continue
            contract = details[0].contract
            self.contracts[symbol] = stock(
                symbol, self.exchange, self.currency, contract.primaryExchange
            )
        self.symbols = [s for s in self.symbols if s in self.contracts]
        return unknown

    def backfill(self) -> None:
        """Fill every timeframe with finished bars of history: the strategy's warm-up plus
        MIN_HISTORY_BARS, where the data allows."""
        wanted = MIN_HISTORY_BARS + self.strategy.warmup
        for symbol in self.symbols:
            live = self.live[symbol] = LiveBars(symbol, self.timeframes, self.strategy)
            for tf in self.timeframes:
                history = self._history_back(symbol, tf, wanted)
                # The newest bar may still be forming; the live feed's first bar brings it back.
                added = live.add_history(tf, history.iloc[:-1])
                self._store(added)
                last = live.timeframes[tf.name].last_time
                self.output(
                    f"{symbol} {tf}: {len(added)} bars of history"
                    + (f" through {last:%Y-%m-%d %H:%M}" if last is not None else "")
                )

    def _history_back(self, symbol: str, tf: Timeframe, bars_wanted: int) -> pd.DataFrame:
        """At least ``bars_wanted`` finished bars (where the data allows), walking back in
        chunks of the longest duration IB serves for the bar size requested."""
        duration, days = _chunk(_history_size(tf))
        width = pd.Timedelta(seconds=tf.seconds)
        chunks: list[pd.DataFrame] = []
        earliest: pd.Timestamp | None = None
        end: pd.Timestamp | None = None  # None: now
        exact, empty = True, 0
        while empty < 4 and len(chunks) + empty < 40:
            text = "" if end is None else end.tz_convert("UTC").strftime("%Y%m%d-%H:%M:%S")
            chunk = self._history(symbol, tf, text, duration)
            older = chunk if earliest is None else chunk[chunk.index < earliest]
            if older.empty:
                if exact and earliest is not None:
                    # TWS counts "1 D" in trading days: ending inside the earliest bar's
                    # session gave nothing older, so end before that day instead.
                    exact, end = False, earliest.normalize() - pd.Timedelta(seconds=1)
                else:
                    empty += 1  # a weekend or holiday: keep stepping back
                    end = (end or pd.Timestamp.now(EXCHANGE_TZ)) - pd.Timedelta(days=days)
                continue
            chunks.append(chunk)
            earliest, empty, exact = older.index[0], 0, True
            if sum(len(c) for c in chunks) > bars_wanted:
                break
            if earliest.time() <= _SESSION_OPEN:  # a whole session: the next ends before it
                exact, end = False, earliest.normalize() - pd.Timedelta(seconds=1)
            else:
                # End the next chunk just after the earliest bar: a chunk's first bar may be
                # cut by its window start, and the next (older) chunk brings that bar whole.
                end = earliest + width
        if not chunks:
            return _empty()
        merged = pd.concat(chunks)
        merged = merged[~merged.index.duplicated(keep="last")].sort_index()
        return merged.iloc[1:]  # the oldest bar may be cut by the window start

    def _history(self, symbol: str, tf: Timeframe, end: str, duration: str) -> pd.DataFrame:
        """``tf`` bars from one history request (``end`` "" is now), built from a finer bar
        size where IB's own bars would not line up with ours (see ``_HISTORY_SIZES``)."""
        source = _history_size(tf)
        size = source.ib_bar_size
        self.pacing.wait((symbol, "TRADES"), (symbol, end, duration, size))
        try:
            bars = self.historical_bars(self.contracts[symbol], end, duration, size)
        except RequestError as exc:
            if exc.code == 162 and "no data" in exc.message.lower():
                return _empty()
            raise
        return bars if source == tf or bars.empty else _whole_bins(bars, tf)

    def subscribe(self) -> None:
        """Market data (for display, or for bars when only delayed ticks are allowed) and
        5-second real-time bars for every symbol."""
        if self.delayed:
            self.reqMarketDataType(3)
        for symbol in self.symbols:
            self.live[symbol].restart_feed()
            contract = self.contracts[symbol]
            if not self.quiet or symbol in self._from_ticks or self.delayed:
                rid = self.next_request_id()
                self._tick_ids[rid] = symbol
                self.reqMktData(rid, contract, "", False, False, [])
            if not self.delayed and symbol not in self._from_ticks:
                rid = self.next_request_id()
                self._bar_ids[rid] = symbol
                self.reqRealTimeBars(rid, contract, 5, "TRADES", True, [])
            else:
                self._from_ticks.add(symbol)

    def resubscribe(self) -> None:
        self._events.put(_Event("resubscribe", -1))

    def on_connection_lost(self, reason: str) -> None:
        self._events.put(_Event("lost", -1, (reason,)))

    # ------------------------------------------------------------ main loop
    def track(self, duration: float | None = None, until_bars: int | None = None) -> None:
        """Process events until ``duration`` seconds passed, ``until_bars`` live bars were
        finished, or Ctrl-C. Runs in the caller's thread (history requests block here, never
        in the reader thread)."""
        deadline = math.inf if duration is None else time.monotonic() + duration
        live_bars = 0
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                continue
            live_bars += self._handle(event)
            if until_bars is not None and live_bars >= until_bars:
                return

    def _handle(self, event: _Event) -> int:
        if event.kind == "tick":
            self.output(event.payload[0])
            return 0
        if event.kind == "lost":
            self.output(f"Connection lost ({event.payload[0]}); reconnecting...")
            for live in self.live.values():
                live.restart_feed()
            return 0
        if event.kind == "resubscribe":
            self.output("Reconnected; resubscribing and filling missed bars from history")
            self._tick_ids.clear()
            self._bar_ids.clear()
            self.subscribe()
            return 0
        if event.kind == "nodata":
            symbol = event.payload[0]
            if symbol not in self._from_ticks:
                self.output(f"{symbol}: no live data subscription; switching to delayed data")
                self._from_ticks.add(symbol)
                self.reqMarketDataType(3)
                rid = self.next_request_id()
                self._tick_ids[rid] = symbol
                self.reqMktData(rid, self.contracts[symbol], "", False, False, [])
            return 0
        symbol, values = event.payload[0], event.payload[1:]
        live = self.live[symbol]
        if event.kind == "trade":
            finished, gaps = live.add_trade(*values)
        else:
            finished, gaps = live.add_realtime_bar(*values)
        for name, through in gaps.items():
            tf = live.timeframes[name].timeframe
            try:
                history = self._history(symbol, tf, "", self._gap_duration(live, name, through))
            except (RequestError, RequestTimeout) as exc:
                # e.g. the connection dropped mid-request: the next live bar asks again
                log.warning("%s %s: history for the gap failed (%s)", symbol, tf, exc)
                continue
            finished += live.add_history(tf, history, through=through)
        finished.sort(key=lambda f: (f.bar.time, self.timeframes.index(f.timeframe)))
        self._store(finished)
        for item in finished:
            self.output(format_bar(item, self.strategy))
        return len(finished)

    @staticmethod
    def _gap_duration(live: LiveBars, tf: str, through: pd.Timestamp) -> str:
        """Seconds of history (ending now) that reach back past the last bar we have: an
        exact span keeps it from being an "identical request" TWS would pace."""
        bars = live.timeframes[tf]
        start = bars.last_time if bars.last_time is not None else through
        span = (through - start).total_seconds() + 2 * bars.seconds + 1800
        return f"{int(min(span, 86400))} S"

    def _store(self, items: list[FinishedBar]) -> None:
        self.finished += items
        if self.csv_dir is None or not items:
            return
        for key in {(i.symbol, i.timeframe.name) for i in items}:
            path = self.csv_dir / bars_filename(*key)
            frame = self.live[key[0]].timeframes[key[1]].frame()
            if key not in self._csv:
                self._csv[key] = (
                    read_bars(path, indicators=self.strategy.columns)
                    if path.exists()
                    else frame.iloc[:0]
                )
            old = self._csv[key]
            merged = pd.concat([old[old.index < frame.index[0]], frame])
            self._csv[key] = merged
            write_bars(merged, path)

    # ------------------------------------------------------------ callbacks
    def realtimeBar(self, reqId, time_, open_, high, low, close, volume, wap, count) -> None:  # noqa: N802, N803
        symbol = self._bar_ids.get(reqId)
        if symbol is not None:
            values = (
                float(time_),
                float(open_),
                float(high),
                float(low),
                float(close),
                float(volume),
            )
            self._events.put(_Event("bar", reqId, (symbol, *values)))

    def _tell(self, req_id: int, text: str) -> None:
        """Queue a quote line for printing (by the main thread, in order with the bars)."""
        if not self.quiet:
            self._events.put(_Event("tick", req_id, (text,)))

    def tickPrice(self, reqId, tickType, price, attrib) -> None:  # noqa: N802, N803
        symbol = self._tick_ids.get(reqId)
        if symbol is None or price <= 0:
            return
        name = _tick_name(tickType)
        quotes = self._quotes.setdefault(symbol, {})
        quotes[name.replace("DELAYED_", "")] = float(price)
        line = f"Price Update - ReqID: {reqId} ({symbol}), {name}: {price:.2f}"
        if name.endswith(("BID", "ASK")) and "BID" in quotes and "ASK" in quotes:
            line += f"  [spread {quotes['ASK'] - quotes['BID']:.2f}]"
        self._tell(reqId, line)

    def tickSize(self, reqId, tickType, size) -> None:  # noqa: N802, N803
        symbol = self._tick_ids.get(reqId)
        if symbol is None:
            return
        name = _tick_name(tickType)
        quotes = self._quotes.setdefault(symbol, {})
        quotes[name.replace("DELAYED_", "")] = float(size)
        if name.endswith("LAST_SIZE") and symbol in self._from_ticks and "TIME" in quotes:
            # Without 5-second bars (delayed data) the trades make the bars: price and size
            # come together, the time in its own tick, so these bars are approximate.
            trade = (quotes["TIME"], quotes.get("LAST", math.nan), float(size))
            if not math.isnan(trade[1]):
                self._events.put(_Event("trade", reqId, (symbol, *trade)))
        self._tell(reqId, f"Size Update - ReqID: {reqId} ({symbol}), {name}: {float(size):,.0f}")

    def tickString(self, reqId, tickType, value) -> None:  # noqa: N802, N803
        symbol = self._tick_ids.get(reqId)
        name = _tick_name(tickType)
        if symbol is None or name not in ("LAST_TIMESTAMP", "DELAYED_LAST_TIMESTAMP"):
            return
        stamp = float(value)
        self._quotes.setdefault(symbol, {})["TIME"] = stamp
        when = pd.Timestamp(stamp, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
        self._tell(reqId, f"Last Trade - ReqID: {reqId} ({symbol}), {when:%H:%M:%S}")

    def on_error(self, req_id: int, code: int, message: str) -> None:
        symbol = self._bar_ids.get(req_id) or self._tick_ids.get(req_id)
        if code in NO_SUBSCRIPTION and symbol:
            self._events.put(_Event("nodata", req_id, (symbol,)))
            return
        super().on_error(req_id, code, message)


# ibapi 9.81 names it to_str, 10.x toStr.
_tick_name = getattr(TickTypeEnum, "to_str", None) or TickTypeEnum.toStr


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {c: [] for c in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex([], tz=EXCHANGE_TZ, name="time"),
        dtype=float,
    )


def _tracked(timeframes: Sequence[Timeframe | str], own: Timeframe) -> list[Timeframe]:
    """The timeframes to track, shortest first, with the strategy's own one among them (in
    its spelling: 1h, not 60m)."""
    chosen: dict[int | None, Timeframe] = {}
    for tf in map(parse_timeframe, [own, *timeframes]):
        chosen.setdefault(tf.seconds, tf)
    for tf in chosen.values():
        # Live bars are built from 5-second bars and back-filled from minute bars.
        if not (tf.clock_aligned and tf.is_intraday and tf.seconds % 60 == 0):
            raise TimeframeError(
                f"cannot track {tf.name} bars: live bars are whole minutes that divide a day "
                "(1m, 3m, 5m, 10m, 15m, 30m, 1h, ...)"
            )
    return sorted(chosen.values(), key=lambda tf: tf.seconds)


def _history_size(tf: Timeframe) -> Timeframe:
    """The bar size to request ``tf``'s history in (see ``_HISTORY_SIZES``)."""
    return next(size for size in _HISTORY_SIZES if tf.seconds % size.seconds == 0)


def _chunk(size: Timeframe) -> tuple[str, int]:
    """(IB duration, its length in days) of one history request for ``size`` bars: the
    longest IB serves."""
    count, unit = IB_MAX_DURATION[size.ib_bar_size]
    return f"{count} {unit}", count * _UNIT_DAYS[unit]


def _whole_bins(bars: pd.DataFrame, tf: Timeframe) -> pd.DataFrame:
    """``bars`` aggregated to ``tf``, without a first bin that the request's start cut (it
    neither starts at the bin's start nor at the session's open); the request further back
    brings that bin whole."""
    out = aggregate(bars, tf)
    first = bars.index[0]
    cut = first != out.index[0] and first.time() != _SESSION_OPEN
    return out.iloc[1:] if cut else out


if __name__ == "__main__":  # the seed's `python -m quant_trading.data.market_data_tracker`
    from quant_trading.cli.market_data import main

    sys.exit(main())
