"""Real-time market data: quotes and trades as they come, and 1/3/5/10-minute bars with
MACD(12,26,9) built by the shared core.

    python -m quant_trading.data.market_data_tracker [--symbols AAPL MSFT] [--timeframes 1 3 5 10]

Before going live each timeframe is back-filled from history (at least 400 bars where the
data allows) so MACD is warm from the first live bar and equals what the backtest computes
on the same bars. Live bars come from IB's 5-second real-time bars (exact OHLCV); bars that
the live feed did not cover from their first second (the first one, and any after a
reconnect) are taken from history instead, so no bar is lost or doubled. Ticks are printed
for display. Read-only: it places no orders.
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

from ..bars import EXCHANGE_TZ
from ..cli import (
    ArgumentParser,
    add_connection_arguments,
    connection_failed,
    fail,
    positive_float,
    setup_logging,
)
from ..core.ibkr_connection import (
    TROUBLESHOOTING,
    ConnectionConfigError,
    IBKRConnection,
    RequestError,
    RequestTimeout,
    stock,
)
from ..core.pacing import PacingLimiter
from ..csv_store import bars_filename, read_bars, write_bars
from ..settings import load_settings, split_symbols
from ..strategy import StrategyConfig, StrategyError, configure
from ..timeframes import parse_timeframe
from .live_bars import FinishedBar, LiveBars

__all__ = ["MarketDataTracker", "format_bar", "MIN_HISTORY_BARS"]

PROG = "market_data_tracker"
log = logging.getLogger(__name__)

MIN_HISTORY_BARS = 400
#: The longest duration IB serves per request for each bar size (its step-size table).
_CHUNK = {"1m": ("1 D", 1), "3m": ("1 W", 7), "5m": ("1 W", 7), "10m": ("1 W", 7)}
NO_SUBSCRIPTION = (354, 10167)
_SESSION_OPEN = datetime.time(9, 30)
_SIDES = {1: "LONG", -1: "SHORT", 0: "FLAT"}
_CROSS_TEXT = {1: "  ^ MACD crossed above Signal", -1: "  v MACD crossed below Signal"}


@dataclass(frozen=True)
class _Event:
    kind: str  # "tick", "bar", "lost", "resubscribe", "nodata"
    req_id: int
    payload: tuple = ()


def format_bar(item: FinishedBar) -> str:
    """One finished bar with its MACD values and crossover mark."""
    bar, point = item.bar, item.macd

    def num(value: float, spec: str = ".4f") -> str:
        return "n/a" if math.isnan(value) else format(value, spec)

    return (
        f"Bar {item.timeframe:>3} {item.symbol:<6} {bar.time:%Y-%m-%d %H:%M}  "
        f"O {bar.open:.2f} H {bar.high:.2f} L {bar.low:.2f} C {bar.close:.2f} "
        f"V {bar.volume:,.0f} | MACD {num(point.macd)} Signal {num(point.signal)} "
        f"Hist {num(point.hist, '+.4f')}" + _CROSS_TEXT.get(item.cross, "")
    )


class MarketDataTracker(IBKRConnection):
    """Streams quotes and builds live bars with MACD for a list of symbols."""

    DEFAULT_CLIENT_ID = 12

    def __init__(
        self,
        symbols: Sequence[str],
        timeframes: Sequence[str] = ("1m", "3m", "5m", "10m"),
        *,
        exchange: str = "SMART",
        currency: str = "USD",
        delayed: bool = False,
        quiet: bool = False,
        csv_dir: str | Path | None = None,
        macd_periods: tuple[int, int, int] = (12, 26, 9),
        output: Callable[[str], None] = print,
        pacing: PacingLimiter | None = None,
        strategy: StrategyConfig | None = None,
        **connection,
    ) -> None:
        connection.setdefault("auto_reconnect", True)
        super().__init__(**connection)
        self.symbols = [s.upper() for s in symbols]
        self.timeframes = [parse_timeframe(t).name for t in timeframes]
        self.exchange, self.currency = exchange, currency
        self.delayed, self.quiet = delayed, quiet
        self.csv_dir = Path(csv_dir) if csv_dir else None
        self.macd_periods = macd_periods
        self.output = output
        self.pacing = pacing or PacingLimiter()
        self.strategy = strategy
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
        """Fill every timeframe with at least MIN_HISTORY_BARS finished bars of history."""
        fast, slow, signal = self.macd_periods
        for symbol in self.symbols:
            live = self.live[symbol] = LiveBars(symbol, self.timeframes, fast, slow, signal)
            for tf in self.timeframes:
                history = self._history_back(symbol, tf, MIN_HISTORY_BARS)
                # The newest bar may still be forming; the live feed's first bar brings it back.
                added = live.add_history(tf, history.iloc[:-1])
                self._store(added)
                last = live.timeframes[tf].last_time
                self.output(
                    f"{symbol} {tf}: {len(added)} bars of history"
                    + (f" through {last:%Y-%m-%d %H:%M}" if last is not None else "")
                )

    def _history_back(self, symbol: str, tf: str, bars_wanted: int) -> pd.DataFrame:
        """At least ``bars_wanted`` finished bars (where the data allows), walking back in
        chunks of the longest duration IB serves for the bar size."""
        duration, days = _CHUNK.get(tf, ("1 W", 7))
        width = pd.Timedelta(seconds=parse_timeframe(tf).seconds)
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

    def _history(self, symbol: str, tf: str, end: str, duration: str) -> pd.DataFrame:
        size = parse_timeframe(tf).ib_bar_size
        self.pacing.wait((symbol, "TRADES"), (symbol, end, duration, size))
        try:
            return self.historical_bars(self.contracts[symbol], end, duration, size)
        except RequestError as exc:
            if exc.code == 162 and "no data" in exc.message.lower():
                return _empty()
            raise

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
        for tf, through in gaps.items():
            try:
                history = self._history(symbol, tf, "", self._gap_duration(live, tf, through))
            except (RequestError, RequestTimeout) as exc:
                # e.g. the connection dropped mid-request: the next live bar asks again
                log.warning("%s %s: history for the gap failed (%s)", symbol, tf, exc)
                continue
            finished += live.add_history(tf, history, through=through)
        finished.sort(key=lambda f: (f.bar.time, self.timeframes.index(f.timeframe)))
        self._store(finished)
        for item in finished:
            self.output(format_bar(item) + self._signal(item))
        return len(finished)

    def _signal(self, item: FinishedBar) -> str:
        """The strategy's target after this bar, from the same function the backtest runs."""
        config = self.strategy
        if config is None or item.timeframe != config.timeframe:
            return ""
        bars = self.live[item.symbol].timeframes[item.timeframe].frame()
        side = int(config.positions(bars)[-1])
        return f"  [{config.strategy.name}: {_SIDES[side]}]"

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
        for key in {(i.symbol, i.timeframe) for i in items}:
            path = self.csv_dir / bars_filename(*key)
            tf_bars = self.live[key[0]].timeframes[key[1]]
            frame = tf_bars.frame()
            if key not in self._csv:
                self._csv[key] = read_bars(path) if path.exists() else frame.iloc[:0]
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


def _macd_periods(config: StrategyConfig) -> tuple[int, int, int]:
    """The strategy's MACD periods if it has them (so printed values match its signals)."""
    p = config.params
    return (
        (p["FAST"], p["SLOW"], p["SIGNAL"])
        if {"FAST", "SLOW", "SIGNAL"} <= p.keys()
        else (12, 26, 9)
    )


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description="Live quotes and 1/3/5/10-minute bars with MACD from TWS."
    )
    p.add_argument(
        "--symbols",
        nargs="+",
        metavar="SYMBOL",
        help="symbols (default: the active strategy's symbols in strategy.env)",
    )
    p.add_argument(
        "--timeframes",
        nargs="+",
        default=["1", "3", "5", "10"],
        metavar="MINUTES",
        help="bar sizes in minutes (default: 1 3 5 10)",
    )
    p.add_argument("--exchange", default="SMART", help="routing exchange (default: SMART)")
    p.add_argument("--currency", default="USD", help="currency (default: USD)")
    p.add_argument("--delayed", action="store_true", help="use delayed market data (type 3)")
    p.add_argument("--quiet", action="store_true", help="print only finished bars")
    p.add_argument(
        "--csv-dir", help="append finished bars (with MACD) to <SYMBOL>_<tf>_bars_macd.csv here"
    )
    p.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help="stop after SECONDS (default: run until Ctrl-C)",
    )
    add_connection_arguments(p, MarketDataTracker.DEFAULT_CLIENT_ID)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, live_tool=True)
    try:
        timeframes = [parse_timeframe(t).name for t in args.timeframes]
        settings = load_settings()
        strategy = configure(settings.get("ACTIVE_STRATEGY") or "MACD", settings)
        symbols = split_symbols(" ".join(args.symbols)) if args.symbols else list(strategy.symbols)
        if not symbols:
            return fail(
                PROG, "no symbols: pass --symbols or set <STRATEGY>_SYMBOLS in strategy.env", 2
            )
        tracker = MarketDataTracker(
            symbols,
            timeframes,
            exchange=args.exchange,
            currency=args.currency,
            delayed=args.delayed,
            quiet=args.quiet,
            csv_dir=args.csv_dir,
            client_id=args.client_id,
            host=args.host,
            port=args.port,
            timeout=args.timeout,
            allow_live=args.live,
            output=lambda line: print(line, flush=True),
            strategy=strategy,
            macd_periods=_macd_periods(strategy),
        )
    except (ConnectionConfigError, StrategyError, ValueError) as exc:
        return fail(PROG, str(exc), 2)
    if not tracker.connect_to_tws():
        return connection_failed(PROG, tracker.last_error, tracker.tws_unreachable, TROUBLESHOOTING)
    try:
        unknown = tracker.resolve_symbols()
        if not tracker.symbols:
            return fail(
                PROG, f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}", 1
            )
        tracker.backfill()
        tracker.subscribe()
        tracker.track(args.duration)
        return 0
    except (RequestError, RequestTimeout) as exc:
        return fail(PROG, str(exc), 1)
    except KeyboardInterrupt:
        return 0
    finally:
        tracker.disconnect_from_tws()


if __name__ == "__main__":
    sys.exit(main())
