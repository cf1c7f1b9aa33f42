"""The parity report: the backtest re-run over the bars the paper trader saw, order by order
against its blotter.

For each book in the folder's state the saved bars (``bars/``) are backtested with the
folder's settings and the book's window start, exactly as ``run_backtest --data-dir
<folder>/bars --start <window start>`` would, and the backtest's orders (its round trips
turned into orders, the end-of-data close left out) are matched with the blotter's by client
order id. Every difference in time, side, price, shares or commission is a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..backtesting.datafiles import load_symbol
from ..backtesting.runner import backtest_symbol
from ..sessions import session_close
from ..strategy import configure
from ..timeframes import parse_timeframe
from .blotter import PaperFolder, PaperStateError
from .orders import PaperFill, fills_from_trades

__all__ = ["BookComparison", "compare_folder", "report"]

_COMPARED = ("time", "action", "price", "shares", "commission")


@dataclass
class BookComparison:
    """One book: the orders of both sides and where they differ."""

    key: str
    start: pd.Timestamp
    paper: list[PaperFill]
    backtest: list[PaperFill]
    differences: list[str] = field(default_factory=list)
    pending: list[PaperFill] = field(default_factory=list)  # filled after the last saved bar


def compare_folder(folder: str | Path, strategy_path: Iterable[str] = ()) -> list[BookComparison]:
    """Compare every book of the paper trading ``folder`` (see the module doc). Raises
    PaperStateError (one line) for a folder that is not a paper trader's."""
    paper = PaperFolder(folder)
    settings, starts = paper.load_state()
    if settings is None:
        raise PaperStateError(f"{paper.state_path}: not found (is {folder} a paper trader's?)")
    options = settings.backtest_options()
    fills = paper.blotter.fills()
    out = []
    for key, start in starts.items():
        symbol, tf_name = key.split(" ")
        tf = parse_timeframe(tf_name)
        config = configure(settings.strategy, {}, timeframe=tf, params=settings.params,
                           source="params", strategy_path=strategy_path)  # fmt: skip
        data = load_symbol(paper.bars_dir, symbol, tf)
        mine = [f for f in fills if (f.symbol, f.timeframe) == (symbol, tf.name)]
        if start > data.bars.index[-1]:
            out.append(BookComparison(key, start, mine, [], pending=mine))
            continue
        result = backtest_symbol(config, data, replace(options, start=start))
        trades = _open_at_the_end(result.trades, tf)
        want = fills_from_trades(trades, tag=settings.tag, symbol=symbol, timeframe=tf,
                                 costs=options.costs)  # fmt: skip
        end = data.bars.index[-1] + pd.Timedelta(seconds=tf.seconds)
        out.append(_compare(key, start, mine, want, end))
    return out


def _open_at_the_end(trades: pd.DataFrame, tf) -> pd.DataFrame:
    """The backtest counts the data's last bar as a session's last, so with flat-at-close it
    closes there; the paper trader had not reached that session's close (unless the bar does
    end it): that trade is still open, like one ended by "end of data"."""
    if trades.empty:
        return trades
    last = trades.index[-1]
    row = trades.loc[last]
    end = row["exit_time"] + pd.Timedelta(seconds=tf.seconds)
    if row["exit_reason"] != "session close" or end >= session_close(row["exit_time"]):
        return trades
    reasons = trades["exit_reason"].astype(object)
    reasons.loc[last] = "end of data"
    return trades.assign(exit_reason=reasons)


def _compare(key, start, paper, backtest, end) -> BookComparison:
    result = BookComparison(key, start, paper, backtest)
    theirs = {f.client_order_id: f for f in backtest}
    ours = {f.client_order_id: f for f in paper}
    for fill in paper:
        other = theirs.get(fill.client_order_id)
        if other is None:
            if fill.time >= end:  # its bar had not finished when the paper trader stopped
                result.pending.append(fill)
            else:
                result.differences.append(f"{_order(fill)}   backtest: no such order")
            continue
        fields = [name for name in _COMPARED if getattr(fill, name) != getattr(other, name)]
        if fields:
            result.differences.append(
                f"{_order(fill)}   backtest: {_order(other)}   ({', '.join(fields)})"
            )
    for fill in backtest:
        if fill.client_order_id not in ours:
            result.differences.append(f"paper: no such order   backtest: {_order(fill)}")
    return result


def _order(fill: PaperFill) -> str:
    return (
        f"{fill.time:%Y-%m-%d %H:%M} {fill.action} {fill.shares:g} @ {fill.price:.2f} "
        f"commission {fill.commission:.2f} ({fill.reason})"
    )


def report(books: list[BookComparison], output: Callable[[str], None] = print) -> int:
    """Print the comparison; returns the number of differences."""
    total = 0
    for book in books:
        count = len(book.differences)
        total += count
        verdict = "identical" if not count else _count(count, "difference")
        paper = _count(len(book.paper), "order")
        output(
            f"{book.key:<10} from {book.start:%Y-%m-%d %H:%M}: paper {paper}, "
            f"backtest {len(book.backtest)}: {verdict}"
        )
        for line in book.differences:
            output(f"  {line}")
        if book.pending:
            output(
                f"  {len(book.pending)} order(s) filled at the open of a bar that had not "
                "finished when the paper trader stopped: not compared"
            )
    orders = sum(len(b.paper) for b in books)
    if total:
        output(_count(total, "difference"))
    else:
        output(f"identical ({_count(len(books), 'book')}, {_count(orders, 'order')})")
    return total


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"
