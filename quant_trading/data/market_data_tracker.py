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

What it survives: TWS pacing the back-fill (error 162) or the connection dropping during it
(retried with a backoff); a dropped socket (reconnects, resubscribes with the same request
ids, fills the missed bars from history); TWS losing its link to IB (1100, then 1101 or 1102:
said, and the missed bars filled); the market closing (said once, with the time of the last
trade; the session's last bars are finished at the close).
"""

from __future__ import annotations

import datetime
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd
from ibapi.ticktype import TickTypeEnum

from ..bars import EXCHANGE_TZ, aggregate
from ..core.ibkr_connection import (
    NOT_CONNECTED,
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

__all__ = ["MarketDataTracker", "format_bar", "MIN_HISTORY_BARS", "CLOSED_AFTER", "STALE_AFTER"]

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
_SESSION_CLOSE = datetime.time(16, 0)
_SIDES = {1: "LONG", -1: "SHORT", 0: "FLAT"}
#: Seconds without a 5-second bar after which TWS's clock is asked whether the session has
#: closed: real-time bars come every 5 s while the market is open, and stop outside regular
#: hours.
CLOSED_AFTER = 15.0
#: Seconds without a 5-second bar after which the market is called closed whatever the
#: clock says (an early close, a halt: IB sends real-time bars only while it trades).
STALE_AFTER = 600.0
#: Request ids: quotes are 1, 2, ... in symbol order (the ids printed), real-time bars
#: _BAR_IDS + 1, ..., contract and history requests _INTERNAL_IDS + 1, ... So the printed ids
#: start at 1 and stay the same across reconnects.
_BAR_IDS = 10_000
_INTERNAL_IDS = 1_000_000

_T = TypeVar("_T")


@dataclass(frozen=True)
class _Event:
    kind: str  # "tick", "bar", "trade", "nodata", "lost", "resubscribe", "restored"
    req_id: int
    payload: tuple = ()


@dataclass
class _Activity:
    """When a symbol's feed was last heard from, for telling that its market closed."""

    data_until: float | None  # epoch seconds up to which the market's data has come
    heard: float  # the tracker's clock when it came
    asked: float = -math.inf  # the tracker's clock when TWS's clock was last asked
    reported: bool = False  # "market closed" already said for this silence


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
    ``strategy`` (whose own timeframe is always tracked).

    ``pacing`` paces history requests and sleeps the back-fill's backoff after a pacing
    violation (give it a fake clock and sleep in tests). ``clock`` (seconds, monotonic)
    measures how long a symbol's feed has been silent: after ``closed_after`` seconds, if
    TWS's clock is past that session's close, or after ``stale_after`` seconds in any case,
    it says "no trades since HH:MM, market closed"."""

    DEFAULT_CLIENT_ID = 12
    PAPER_ONLY = True  # read-only, but a live account still needs --live
    #: The back-fill's retries after a 162 pacing violation or a lost connection: wait 2, 4,
    #: ... 60 s between tries, PACING_RETRIES tries, about 11 minutes in all (as the
    #: downloader), longer than IB's 10-minute pacing window that other tools may have used.
    PACING_BACKOFF = (2.0, 60.0)
    PACING_RETRIES = 16

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
        clock: Callable[[], float] = time.monotonic,
        closed_after: float = CLOSED_AFTER,
        stale_after: float = STALE_AFTER,
        **connection,
    ) -> None:
        connection.setdefault("auto_reconnect", True)
        super().__init__(**connection)
        self.symbols = [s.upper() for s in symbols]
        if len(self.symbols) >= _BAR_IDS:
            raise ValueError(f"too many symbols ({len(self.symbols)}): at most {_BAR_IDS - 1}")
        self.strategy = strategy
        self.timeframes = _tracked(timeframes, strategy.timeframe)
        self.exchange, self.currency = exchange, currency
        self.delayed, self.quiet = delayed, quiet
        self.csv_dir = Path(csv_dir) if csv_dir else None
        self.output = output
        self.pacing = pacing or PacingLimiter()
        self.clock = clock
        self.closed_after, self.stale_after = closed_after, stale_after
        self.contracts: dict[str, object] = {}
        self.live: dict[str, LiveBars] = {}
        self.finished: list[FinishedBar] = []
        self._events: queue.Queue[_Event] = queue.Queue()
        self._tick_ids: dict[int, str] = {}
        self._bar_ids: dict[int, str] = {}
        self._failed_ids: set[int] = set()  # requests TWS refused (354): nothing to cancel
        self._from_ticks: set[str] = set()  # symbols whose bars come from (delayed) ticks
        self._quotes: dict[str, dict[str, float]] = {}
        self._csv: dict[tuple[str, str], pd.DataFrame] = {}
        # Connections so far: bumped by every reconnect (reconnect thread), read by the
        # back-fill's retries and to tell stale connection events from current ones.
        self._generation = 0
        self._reconnected = threading.Condition()
        self._subscribed_in: int | None = None  # the generation subscribe() last ran in
        self._link_down = False  # TWS lost its link to IB (1100) and it is not back yet
        self._socket_down = False  # our socket to TWS dropped and is not back yet
        self._activity: dict[str, _Activity] = {}

    # ---------------------------------------------------------------- setup
    def next_request_id(self) -> int:
        """Ids for contract and history requests: above the market data lines' ids, which
        are fixed per symbol (see :meth:`market_data_id`)."""
        return _INTERNAL_IDS + super().next_request_id()

    def market_data_id(self, symbol: str) -> int:
        """The request id of ``symbol``'s quotes, as printed (``ReqID: 1`` for the first
        symbol, 2 for the second ...): the same after every reconnect."""
        return self.symbols.index(symbol) + 1

    def _realtime_bars_id(self, symbol: str) -> int:
        return _BAR_IDS + self.symbols.index(symbol) + 1

    def resolve_symbols(self) -> list[str]:
        """Look every symbol up (contract details); returns the unknown ones."""
        unknown = []
        for symbol in self.symbols:
            query = stock(symbol, self.exchange, self.currency)
            try:
                details = self._patiently(symbol, lambda q=query: self.contract_details(q))
            except RequestError as exc:
                if self._lost(exc):
                    raise
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
        MIN_HISTORY_BARS, where the data allows. A pacing violation (162) or a lost
        connection is retried with a backoff (:attr:`PACING_BACKOFF`), not fatal."""
        wanted = MIN_HISTORY_BARS + self.strategy.warmup
        for symbol in self.symbols:
            live = self.live[symbol] = LiveBars(symbol, self.timeframes, self.strategy)
            for tf in self.timeframes:
                history = self._history_back(symbol, tf, wanted)
                # The newest bar may still be forming; the live feed's first bar brings it back
                # (or, if the market turns out to be closed, history again).
                added = live.add_history(tf, history.iloc[:-1])
                if len(history) and tf == self.timeframes[0]:  # the finest: data reached its end
                    until = history.index[-1].timestamp() + tf.seconds
                    self._activity[symbol] = _Activity(until, self.clock())
                self._store(added)
                last = live.timeframes[tf.name].last_time
                self.output(
                    f"{symbol} {tf}: {len(added)} bars of history"
                    + (f" through {last:%Y-%m-%d %H:%M}" if last is not None else "")
                )

    def _history_back(
        self, symbol: str, tf: Timeframe, bars_wanted: int, since: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """At least ``bars_wanted`` finished bars (where the data allows), and back to the
        bar at ``since`` if given, walking back in chunks of the longest duration IB serves
        for the bar size requested."""
        duration, days = _chunk(_history_size(tf))
        width = pd.Timedelta(seconds=tf.seconds)
        chunks: list[pd.DataFrame] = []
        earliest: pd.Timestamp | None = None
        end: pd.Timestamp | None = None  # None: now
        exact, empty = True, 0
        while empty < 4 and len(chunks) + empty < 40:
            text = "" if end is None else end.tz_convert("UTC").strftime("%Y%m%d-%H:%M:%S")
            chunk = self._patiently(
                f"{symbol} {tf}", lambda t=text: self._history(symbol, tf, t, duration)
            )
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
            if sum(len(c) for c in chunks) > bars_wanted and (since is None or earliest <= since):
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

    def _patiently(self, what: str, request: Callable[[], _T]) -> _T:
        """``request()``, retried with a backoff (:attr:`PACING_BACKOFF`) while TWS answers
        with a pacing violation (162) or the connection is down and being re-established
        (``auto_reconnect``), as the downloader does. Other errors are raised at once."""
        delay, longest = self.PACING_BACKOFF
        attempt, paced, told_lost = 0, 0, False
        while True:
            attempt += 1
            generation = self._generation
            try:
                return request()
            except RequestError as exc:
                if not _is_pacing(exc) and not (self._lost(exc) and self.auto_reconnect):
                    raise
                failure: Exception = exc
            except (RequestTimeout, OSError, AttributeError) as exc:
                # A request on a socket that just closed times out, or fails in ibapi's send
                # (the reader thread may have set the socket to None); else it is real.
                if self.isConnected() or not self.auto_reconnect:
                    raise
                failure = exc
            pacing = isinstance(failure, RequestError) and _is_pacing(failure)
            if attempt == self.PACING_RETRIES:
                raise RequestError(-1, 162 if pacing else NOT_CONNECTED,
                                   f"{what}: gave up after {attempt} tries: {failure}")  # fmt: skip
            if pacing:
                paced += 1
                why = " (IB allows 60 history requests in 10 minutes, counting every tool)"
                self.output(
                    f"{what}: TWS refused the history request for pacing (error 162)"
                    + (why if paced == 1 else "")
                    + f"; retrying in {delay:g} s"
                )
                self.pacing.pause(delay)
            else:
                if not told_lost:
                    self.output(f"{what}: connection to TWS lost; retrying once it is back")
                    told_lost = True
                if self._await_reconnect(generation, delay):
                    self.output("Reconnected; continuing the back-fill")
                    told_lost = False
            delay = min(delay * 2, longest)

    def _lost(self, exc: RequestError) -> bool:
        """True if ``exc`` means the socket to TWS is gone (504, or it closed meanwhile)."""
        return exc.code == NOT_CONNECTED or not self.isConnected()

    def _await_reconnect(self, generation: int, timeout: float) -> bool:
        """Wait (up to ``timeout`` seconds) until a connection newer than ``generation`` is
        up; True if it is. Returns at once when the reconnect already happened."""
        with self._reconnected:
            return self._reconnected.wait_for(
                lambda: self._generation > generation and self.isConnected(), timeout
            )

    def subscribe(self) -> None:
        """Market data (for display, or for bars when only delayed ticks are allowed) and
        5-second real-time bars for every symbol, with the same request ids every time."""
        self._subscribed_in = self._generation
        self._socket_down = False
        if self.delayed:
            self.reqMarketDataType(3)
        now = self.clock()
        for symbol in self.symbols:
            self.live[symbol].restart_feed()
            # The silence that may mean "market closed" is timed from here.
            self._activity.setdefault(symbol, _Activity(None, now)).heard = now
            contract = self.contracts[symbol]
            if not self.quiet or symbol in self._from_ticks or self.delayed:
                self._request_ticks(symbol)
            if not self.delayed and symbol not in self._from_ticks:
                rid = self._realtime_bars_id(symbol)
                self._bar_ids[rid] = symbol
                self._failed_ids.discard(rid)
                self.reqRealTimeBars(rid, contract, 5, "TRADES", True, [])
            else:
                self._from_ticks.add(symbol)

    def _request_ticks(self, symbol: str) -> None:
        rid = self.market_data_id(symbol)
        self._tick_ids[rid] = symbol
        self._failed_ids.discard(rid)
        self.reqMktData(rid, self.contracts[symbol], "", False, False, [])

    # ----------------------------------------------------- connection hooks
    def resubscribe(self) -> None:
        """Called by the connection after a reconnect: renew the subscriptions (in the
        tracking thread)."""
        with self._reconnected:
            self._generation += 1
            self._reconnected.notify_all()
        self._events.put(_Event("resubscribe", -1, (self._generation,)))

    def on_connection_lost(self, reason: str) -> None:
        """The socket dropped (the connection reconnects) or TWS lost its link to IB (1100:
        the socket stays up, TWS reconnects)."""
        link_only = self.isConnected()
        self._events.put(_Event("lost", -1, (reason, link_only, self._generation)))

    def on_connection_restored(self, data_lost: bool) -> None:
        """TWS's link to IB is back (1102, or 1101 with ``data_lost``): tell the user, and
        after a data loss resubscribe (both in the tracking thread)."""
        self._events.put(_Event("restored", -1, (data_lost,)))

    def on_error(self, req_id: int, code: int, message: str) -> None:
        """No live data subscription (354) for a symbol's quotes or bars: switch it to
        delayed data (in the tracking thread). Other errors go to the connection's log."""
        symbol = self._bar_ids.get(req_id) or self._tick_ids.get(req_id)
        if code in NO_SUBSCRIPTION and symbol:
            self._failed_ids.add(req_id)
            self._events.put(_Event("nodata", req_id, (symbol,)))
            return
        super().on_error(req_id, code, message)

    # ------------------------------------------------------------ main loop
    def track(self, duration: float | None = None, until_bars: int | None = None) -> None:
        """Process events until ``duration`` seconds passed, ``until_bars`` live bars were
        finished, or Ctrl-C; meanwhile tell when a symbol's market closed. Runs in the
        caller's thread (history requests block here, never in the reader thread)."""
        deadline = math.inf if duration is None else time.monotonic() + duration
        live_bars = 0
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=min(0.25, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                event = None
            if event is not None:
                live_bars += self._handle(event)
            live_bars += self._check_market_closed()
            if until_bars is not None and live_bars >= until_bars:
                return

    def _handle(self, event: _Event) -> int:
        if event.kind == "tick":
            self.output(event.payload[0])
            return 0
        if event.kind in ("lost", "resubscribe", "restored"):
            self._connection_event(event)
            return 0
        if event.kind == "nodata":
            symbol = event.payload[0]
            if symbol not in self._from_ticks:
                self.output(f"{symbol}: no live data subscription; switching to delayed data")
                self._from_ticks.add(symbol)
                self.reqMarketDataType(3)
                rid = self.market_data_id(symbol)
                if rid in self._tick_ids and rid not in self._failed_ids:
                    self.cancelMktData(rid)  # live quotes still run: the same id comes next
                self._request_ticks(symbol)
            return 0
        symbol, values = event.payload[0], event.payload[1:]
        live = self.live[symbol]
        if event.kind == "trade":
            finished, gaps = live.add_trade(*values)
            heard_until = values[0]
        else:
            finished, gaps = live.add_realtime_bar(*values)
            heard_until = values[0] + 5
        activity = self._activity.get(symbol)
        if activity is not None:  # the market trades: a later silence is told again
            activity.heard = self.clock()
            activity.data_until = heard_until
            activity.reported = False
        return self._show(symbol, finished, gaps)

    def _show(
        self,
        symbol: str,
        finished: list[FinishedBar],
        gaps: dict[str, pd.Timestamp],
        end: pd.Timestamp | None = None,
    ) -> int:
        """Fill ``gaps`` from history (ending ``end``, else at the end of each gap's bar),
        then store and print every finished bar in time order; returns how many bars were
        printed."""
        live = self.live[symbol]
        for name, through in gaps.items():
            tf = live.timeframes[name].timeframe
            # History that ends with the gap, not now: when the tracker fell behind (a long
            # pacing wait, a busy machine), now may be sessions later, and a span ending now
            # would miss the gap's bars for good.
            stop = end if end is not None else through + pd.Timedelta(seconds=tf.seconds)
            duration = self._gap_duration(live, name, through, stop)
            end_text = stop.tz_convert("UTC").strftime("%Y%m%d-%H:%M:%S")
            try:
                history = self._history(symbol, tf, end_text, duration)
            except (RequestError, RequestTimeout, OSError) as exc:
                # e.g. the connection dropped mid-request: the next live bar asks again
                log.warning("%s %s: history for the gap failed (%s)", symbol, tf, exc)
                continue
            finished += live.add_history(tf, history, through=through)
        # In the order they finished (bars that end together: the longest first), also when
        # a gap's bars from history come with live ones.
        finished.sort(key=lambda f: (f.bar.time.timestamp() + f.timeframe.seconds, f.bar.time))
        self._store(finished)
        for item in finished:
            self._print_bar(item)
        return len(finished)

    def _print_bar(self, item: FinishedBar) -> None:
        """Show one finished bar (the paper trader adds its book's position)."""
        self.output(format_bar(item, self.strategy))

    def _connection_event(self, event: _Event) -> None:
        """Tell the user what happened to the connection and restore the feed."""
        if event.kind == "lost":
            reason, link_only, generation = event.payload
            if (
                not link_only
                and self._subscribed_in is not None
                and generation < self._subscribed_in
            ):
                return  # lost (and reconnected) before the current subscriptions were made
            if link_only:
                self._link_down = True
                self.output("TWS lost its connection to IB; waiting for it to come back...")
            else:
                self._socket_down = True
                self.output(f"Connection lost ({reason}); reconnecting...")
            for live in self.live.values():
                live.restart_feed()
            return
        if event.kind == "restored":
            (data_lost,) = event.payload
            self._link_down = False
            if data_lost:
                self.output(
                    "TWS's connection to IB is back (data lost); resubscribing and filling "
                    "missed bars from history"
                )
                if self._subscribed_in is not None:
                    self.subscribe()
            else:
                self.output(
                    "TWS's connection to IB is back (data maintained); missed bars come "
                    "from history"
                )
            self._heard_now()
            return
        (generation,) = event.payload
        if self._subscribed_in is None or generation <= self._subscribed_in:
            return  # the subscriptions were made on this connection already
        self.output("Reconnected; resubscribing and filling missed bars from history")
        self._tick_ids.clear()
        self._bar_ids.clear()
        self.subscribe()

    def _heard_now(self) -> None:
        """Start the silence timers afresh (after an outage, silence says nothing yet)."""
        now = self.clock()
        for activity in self._activity.values():
            activity.heard = now

    def _check_market_closed(self) -> int:
        """Say once per silence that a symbol's market closed: after :attr:`closed_after`
        seconds without a 5-second bar (or, from delayed data, a trade) when TWS's clock is
        past that session's close (the session's bars the feed did not bring are then taken
        from history), or after :attr:`stale_after` seconds in any case. Returns how many
        bars it printed."""
        if self._link_down or self._socket_down or self._subscribed_in is None:
            return 0
        now, shown = self.clock(), 0
        tws_now: float | None = None
        for symbol, activity in self._activity.items():
            silence = now - activity.heard
            if activity.reported or activity.data_until is None:
                continue
            stale = silence >= self.stale_after
            # TWS's clock is asked at most every closed_after seconds while a feed is silent.
            ask = silence >= self.closed_after and now - activity.asked >= self.closed_after
            if not (stale or ask):
                continue
            if ask:
                activity.asked = now
                tws_now = tws_now or self._tws_time()
            close = _session_close(activity.data_until)
            if ask and tws_now is not None and tws_now >= close:
                shown += self._finish_session(symbol, activity, close)
            elif not stale:
                continue
            activity.reported = True
            when = _new_york(activity.data_until)
            today = tws_now is None or when.date() == _new_york(tws_now).date()
            since = f"{when:%H:%M}" if today else f"{when:%Y-%m-%d %H:%M}"
            self.output(f"{symbol}: no trades since {since}, market closed")
        return shown

    def _tws_time(self) -> float | None:
        """TWS's clock in epoch seconds (the simulator's is its market time), or None if
        it does not answer in a few seconds."""
        try:
            return self.current_time(timeout=min(self.timeout, 5.0)).timestamp()
        except (RequestError, RequestTimeout, OSError) as exc:
            log.info("TWS's clock did not answer (%s)", exc)
            return None

    def _finish_session(self, symbol: str, activity: _Activity, close: float) -> int:
        """The session closed at epoch ``close``: finish the bars the feed was building, and
        take from history those it did not bring (all of them when the market closed before
        the feed started, e.g. during a long back-fill). Returns how many it printed."""
        live = self.live[symbol]
        finished, gaps = live.close(close)
        last_start = pd.Timestamp(close - 1, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
        for name, bars in live.timeframes.items():
            if bars.last_time is None or bars.last_time.timestamp() + bars.seconds < close:
                gaps[name] = last_start  # every bar that started before the close
        # History ending at the close, not now: now may be days later (a weekend).
        shown = self._show(symbol, finished, gaps, pd.Timestamp(close, unit="s", tz="UTC"))
        finest = live.timeframes[self.timeframes[0].name]
        if finest.last_time is not None:
            end = finest.last_time.timestamp() + finest.seconds
            activity.data_until = max(activity.data_until or -math.inf, min(end, close))
        return shown

    @staticmethod
    def _gap_duration(live: LiveBars, tf: str, through: pd.Timestamp, end: pd.Timestamp) -> str:
        """Seconds of history ending ``end`` that reach back past the last bar we have: an
        exact span keeps it from being an "identical request" TWS would pace."""
        bars = live.timeframes[tf]
        start = bars.last_time if bars.last_time is not None else through
        span = (end - start).total_seconds() + 2 * bars.seconds + 1800
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
        # TWS sends a new quote's bid, then its ask: the spread goes with the ask, where both
        # sides are the new quote's (with the bid's line it would pair a new bid with the old
        # ask, even a negative spread).
        if name.endswith("ASK") and "BID" in quotes:
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


# ibapi 9.81 names it to_str, 10.x toStr.
_tick_name = getattr(TickTypeEnum, "to_str", None) or TickTypeEnum.toStr


def _is_pacing(exc: RequestError) -> bool:
    return exc.code == 162 and "pacing" in exc.message.lower()


def _new_york(epoch: float) -> pd.Timestamp:
    return pd.Timestamp(epoch, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)


def _session_close(epoch: float) -> float:
    """Epoch seconds of the regular session's close (16:00 New York) on ``epoch``'s day."""
    day = _new_york(epoch).normalize()
    return day.replace(hour=_SESSION_CLOSE.hour, minute=_SESSION_CLOSE.minute).timestamp()


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
    from quant_trading.cli import exit_with
    from quant_trading.cli.market_data import main

    exit_with(main)
