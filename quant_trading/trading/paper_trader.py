"""The paper trader: the strategy run live on the market data tracker's bars, each decision
filled on paper at the next bar's open by the backtest's own engine.

    python -m quant_trading.trading.paper_trader --symbols AAPL MSFT --timeframe 1m 5m
        [--session-close] [--post-to http://127.0.0.1:8000] [--dir paper_trading]
    python -m quant_trading.trading.paper_trader --compare paper_trading

For each symbol and timeframe a :class:`~.book.PaperBook` takes every finished bar (warm-up
history first, as the tracker back-fills it; then live bars; bars missed while the
connection was down come from history, in order) and the strategy's target at it. The
order a change of target makes is filled at the next bar's open: live, as soon as that
bar's first 5-second bar is in; or, when the feed did not see that open (a gap), from the
history bar once it is back. The fills go to the folder's blotter (see :mod:`.blotter`)
and, with ``--post-to``, to the dashboard. Read-only toward IB: no order is sent to TWS.

A restart reads the folder: the bars it saw warm the strategy up exactly as before, the
bars since come from history, and the decisions on them are caught up in order. Orders
already in the blotter are not recorded again (their client order ids say so), and none is
skipped, since the engine re-derives every order from the bars.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..bars import EXCHANGE_TZ
from ..csv_store import DataFileError, bars_filename, read_bars, write_bars
from ..data.live_bars import FinishedBar, LiveBars
from ..data.market_data_tracker import MIN_HISTORY_BARS, MarketDataTracker
from ..strategy import StrategyConfig
from ..timeframes import Timeframe
from .blotter import PaperFolder, PaperSettings, PaperStateError, ledger
from .book import BookStatus, PaperBook
from .orders import PaperFill
from .poster import Poster

__all__ = ["PaperTrader", "format_fill", "book_key"]

log = logging.getLogger(__name__)

_SIDES = {1: "LONG", -1: "SHORT", 0: "FLAT"}


def book_key(symbol: str, timeframe: Timeframe | str) -> str:
    """``"AAPL 5m"``: how a book is named in state.json and in the output."""
    name = timeframe if isinstance(timeframe, str) else timeframe.name
    return f"{symbol} {name}"


def format_fill(fill: PaperFill, late: bool = False) -> str:
    """One fill as printed."""
    return (
        f"FILL {fill.time:%Y-%m-%d %H:%M} {fill.symbol} {fill.timeframe} {fill.action} "
        f"{fill.shares:g} @ {fill.price:.2f} ({fill.reason}) commission {fill.commission:.2f}"
        f" -> position {fill.position:+g}  [{fill.client_order_id}]"
        + ("  (caught up from history)" if late else "")
    )


class PaperTrader(MarketDataTracker):
    """Paper-trades ``strategy`` on ``timeframes`` of ``symbols`` (see the module doc).

    ``settings`` are the strategy and the backtest's capital, costs, sizing and
    ``flat_at_close`` (each book has its own window start). ``folder`` is the paper trading
    folder; ``poster`` posts the fills to the dashboard. ``show_bars`` prints a position
    line per finished bar, else only fills and notices are printed. Bars seen are saved at
    most every ``save_every`` seconds, and always before a fill is recorded (so the parity
    report has them)."""

    DEFAULT_CLIENT_ID = 14

    def __init__(
        self,
        symbols: Sequence[str],
        timeframes: Sequence[Timeframe | str],
        *,
        strategy: StrategyConfig,
        settings: PaperSettings,
        folder: str | Path = "paper_trading",
        poster: Poster | None = None,
        show_bars: bool = True,
        save_every: float = 5.0,
        **tracker,
    ) -> None:
        tracker["quiet"] = True  # quotes are not printed: fills and positions are
        super().__init__(symbols, timeframes, strategy=strategy, **tracker)
        self.paper, self.options = settings, settings.backtest_options()
        self.folder = PaperFolder(folder)
        self.starts = self.folder.window_starts(settings)
        self.known = self.folder.blotter.ids()
        self.poster = poster
        self.show_bars, self.save_every = show_bars, save_every
        self.books: dict[str, PaperBook] = {}
        self._opened: dict[str, pd.Timestamp] = {}  # the bar whose open was last filled
        self._unsaved: set[tuple[str, str]] = set()
        self._saved_at = -math.inf
        self._told_conflicts: set[str] = set()
        self._status_at: dict[int, BookStatus] = {}  # a stored bar's book, until printed

    # ---------------------------------------------------------------- start
    def backfill(self) -> None:
        """Warm every book up: the bars it saw before (from the folder), then history up to
        now; then catch up on the decisions made while it was not running."""
        wanted = MIN_HISTORY_BARS + self.strategy.warmup
        for symbol in self.symbols:
            live = self.live[symbol] = LiveBars(symbol, self.timeframes, self.strategy)
            for tf in self.timeframes:
                self._start_book(symbol, tf, live, wanted)
        self._save_bars(force=True)
        self.folder.save_state(self.paper, self.starts)

    def _start_book(self, symbol: str, tf: Timeframe, live: LiveBars, wanted: int) -> None:
        key = book_key(symbol, tf)
        saved = self._saved_bars(symbol, tf)
        items = live.add_history(tf, saved)
        since = saved.index[-1] if len(saved) else None
        history = self._history_back(symbol, tf, 1 if since is not None else wanted, since)
        # The newest bar may still be forming; the live feed brings it (or history again).
        fresh = live.add_history(tf, history.iloc[:-1])
        items += fresh
        if fresh:
            self._unsaved.add((symbol, tf.name))
        bars = live.timeframes[tf.name]
        if key not in self.starts:
            # A new book trades from the first bar that finishes from now on.
            last = bars.last_time
            self.starts[key] = (
                last + pd.Timedelta(seconds=tf.seconds) if last is not None else self._now()
            )
        book = self.books[key] = PaperBook(
            self.paper.tag, symbol, tf, replace(self.options, start=self.starts[key])
        )
        for item in items:
            book.add(item.bar, item.position)
        held = ledger(self._fills_of(symbol, tf))
        if held.orders:
            self.output(
                f"{key}: from the blotter: {_position(held.position, held.average_price)}, "
                f"realized {held.realized:+,.2f} ({held.orders} order{'s' * (held.orders != 1)})"
            )
        last = bars.last_time
        self.output(
            f"{key}: {len(saved)} bars seen before, {len(fresh)} from history"
            + (f" through {last:%Y-%m-%d %H:%M}" if last is not None else "")
            + f"; trading from {self.starts[key]:%Y-%m-%d %H:%M}"
        )
        self._record(book, book.fills())
        held = ledger(self._fills_of(symbol, tf))
        if held.orders and abs(held.position - book.status.position) > 1e-9:
            self.output(
                f"warning: {key}: the blotter holds {held.position:+g} shares but the engine "
                f"holds {book.status.position:+g} on the same bars"
            )

    def _saved_bars(self, symbol: str, tf: Timeframe) -> pd.DataFrame:
        path = self.folder.bars_dir / bars_filename(symbol, tf)
        if not path.exists():
            return pd.DataFrame(columns=["open", "high", "low", "close", "volume"])
        try:
            return read_bars(path, indicators=self.strategy.columns)
        except DataFileError as exc:
            raise PaperStateError(str(exc)) from None

    def _now(self) -> pd.Timestamp:
        epoch = self._tws_time() or time.time()
        return pd.Timestamp(epoch, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)

    # ---------------------------------------------------------------- bars
    def _store(self, items: list[FinishedBar]) -> None:
        """Finished bars (in time order, live or from history): each goes to its book, which
        is asked for its new orders after it, so the orders and the position line printed
        with each bar are those of that bar."""
        for item in items:
            book = self.books.get(book_key(item.symbol, item.timeframe))
            if book is None:
                continue
            book.add(item.bar, item.position)
            self._unsaved.add((item.symbol, item.timeframe.name))
            self._record(book, book.fills())
            self._status_at[id(item)] = book.status  # what _print_bar shows with it
        self._save_bars()

    def _handle(self, event) -> int:
        shown = super()._handle(event)
        if event.kind in ("bar", "trade"):
            self._fill_opens(event.payload[0])
        return shown

    def _fill_opens(self, symbol: str) -> None:
        """Fill at a bar's open as soon as its first trade is in, if the live feed saw that
        trade and the bar before it is in the book (otherwise the bar comes from history and
        its open is filled then)."""
        live = self.live.get(symbol)
        if live is None:
            return
        for name, bars in live.timeframes.items():
            key = book_key(symbol, name)
            book = self.books.get(key)
            bar = bars.aggregator.open_bar
            if book is None or bar is None or self._opened.get(key) == bar.time:
                continue
            if bar.time.timestamp() < live.live_since or not book.follows(bar.time):
                continue
            self._opened[key] = bar.time
            self._record(book, book.fills(next_open=(bar.time, bar.open)))

    def _print_bar(self, item: FinishedBar) -> None:
        s = self._status_at.pop(id(item), None)
        if not self.show_bars or s is None:
            return
        self.output(
            f"{item.bar.time:%Y-%m-%d %H:%M} {book_key(item.symbol, item.timeframe):<10} "
            f"close {item.bar.close:.2f}  target {_SIDES[item.position]:<5}  "
            f"{_position(s.position, s.entry_price)}  realized {s.realized:+,.2f}  "
            f"unrealized {s.unrealized:+,.2f}"
        )

    # ---------------------------------------------------------------- fills
    def _record(self, book: PaperBook, fills: list[PaperFill]) -> None:
        """Keep the orders not in the blotter yet: save the bars they were decided on, add
        them to the blotter, print and post them."""
        new = []
        for fill in fills:
            old = self.known.get(fill.client_order_id)
            if old is None:
                new.append(fill)
            elif old != fill and fill.client_order_id not in self._told_conflicts:
                # e.g. history's open differs from the live open it was filled at
                self._told_conflicts.add(fill.client_order_id)
                self.output(
                    f"warning: {fill.client_order_id}: the bars now give {fill.action} "
                    f"{fill.shares:g} @ {fill.price:.2f}; the blotter keeps {old.action} "
                    f"{old.shares:g} @ {old.price:.2f}"
                )
        if not new:
            return
        self._save_bars(only=(book.symbol, book.timeframe.name))
        self.folder.blotter.append(new, recorded_at=pd.Timestamp.now(tz="UTC"))
        end = None
        if book.last_time is not None:
            end = book.last_time + pd.Timedelta(seconds=book.timeframe.seconds)
        for fill in new:
            self.known[fill.client_order_id] = fill
            self.output(format_fill(fill, late=end is not None and fill.time < end))
        if self.poster is not None:
            self.poster.submit(new)

    def _fills_of(self, symbol: str, tf: Timeframe) -> list[PaperFill]:
        return [
            f for f in self.folder.blotter.fills() if (f.symbol, f.timeframe) == (symbol, tf.name)
        ]

    def _save_bars(self, force: bool = False, only: tuple[str, str] | None = None) -> None:
        """Write the bars of the books that got new ones (atomic, whole files): every
        ``save_every`` seconds, now if ``force``, or now only the book ``only`` (whose
        fill is about to be recorded)."""
        due = force or time.monotonic() - self._saved_at >= self.save_every
        keys = sorted(self._unsaved) if due else [k for k in self._unsaved if k == only]
        for symbol, name in keys:
            frame = self.live[symbol].timeframes[name].frame()
            write_bars(frame, self.folder.bars_dir / bars_filename(symbol, name))
            self._unsaved.discard((symbol, name))
        if due:
            self._saved_at = time.monotonic()

    def finish(self) -> None:
        """Save what is not saved yet (call before disconnecting)."""
        if self.books:
            self._save_bars(force=True)
            self.folder.save_state(self.paper, self.starts)


def _position(shares: float, price: float) -> str:
    if not shares:
        return "flat"
    return f"{'long' if shares > 0 else 'short'} {abs(shares):g} @ {price:.2f}"


if __name__ == "__main__":  # python -m quant_trading.trading.paper_trader
    from quant_trading.cli import exit_with
    from quant_trading.cli.paper_trader import main

    exit_with(main)
