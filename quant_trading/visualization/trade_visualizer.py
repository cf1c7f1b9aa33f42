"""Look at a backtest's trades on a chart:

    python -m quant_trading.visualization.trade_visualizer --timeframe 5m \
        --cache-dir backtest_results

opens a window over the cache ``run_backtest`` writes (it never re-runs a backtest);
``--export FILE.png --symbol AAPL [--start ... --end ...]`` draws the same chart into a file
without a window.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Sequence

from ..backtesting.cache import CacheError
from ..cli import ArgumentParser, exit_with, fail, setup_logging
from ..timeframes import TimeframeError, parse_time, parse_timeframe

PROG = "trade_visualizer"
log = logging.getLogger(__name__)


def _timeframe(text: str) -> str:
    """A timeframe a backtest can be cached under (bars that divide a day), as its folder name."""
    try:
        tf = parse_timeframe(text)
    except TimeframeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not tf.clock_aligned:
        raise argparse.ArgumentTypeError(
            f"{text!r}: run_backtest makes bars that divide a day (1m, 3m, 5m, 10m, 15m, 30m, "
            "1h, 1d, ...), so there is no cache for it"
        )
    return tf.name


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Candlesticks, indicators and trade markers from run_backtest's cache.",
    )
    p.add_argument(
        "--timeframe",
        type=_timeframe,
        help="timeframe folder to open first (default: 5m, else the first found)",
    )
    p.add_argument(
        "--cache-dir",
        default="backtest_results",
        help="folder run_backtest wrote (default: backtest_results)",
    )
    p.add_argument("--symbol", help="symbol to show first (default: the first in the folder)")
    p.add_argument(
        "--start",
        help="first day or time shown, New York time (alone: the week from it; "
        "default: the last week)",
    )
    p.add_argument("--end", help="last day or time shown (alone: the week up to it)")
    p.add_argument(
        "--export",
        metavar="FILE.png",
        help="draw the chart into this image file instead of opening a window (needs --symbol)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 no usable cache, 2 bad arguments)."""
    started = time.perf_counter()
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        start = _time(args.start, "--start")
        end = _time(args.end, "--end", end=True)
    except ValueError as exc:
        return fail(PROG, str(exc), 2)
    if start is not None and end is not None and start >= end:
        return fail(PROG, "--start must be before --end", 2)
    if args.export:
        return _export(args, start, end)
    return _window(args, start, end, started)


def _time(text: str | None, flag: str, end: bool = False):
    if text is None:
        return None
    try:
        return parse_time(text, end=end)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: not a date or time (use e.g. 2026-01-31)") from None


def _export(args, start, end) -> int:
    from .export import export_chart

    if not args.symbol:
        return fail(PROG, "--export needs --symbol", 2)
    try:
        done = export_chart(args.cache_dir, args.export, args.symbol, args.timeframe, start, end)
    except CacheError as exc:
        return fail(PROG, str(exc), 1)
    except ValueError as exc:
        return fail(PROG, str(exc), 2)
    except OSError as exc:
        return fail(PROG, f"cannot write {args.export}: {exc.strerror or exc}", 1)
    print(
        f"Wrote {done.path}: {done.symbol} {done.timeframe}, {done.first:%Y-%m-%d %H:%M} .. "
        f"{done.last:%Y-%m-%d %H:%M} ({done.bars:,} bars, {done.markers:,} trade markers)"
    )
    return 0


def _window(args, start, end, started: float) -> int:
    import tkinter as tk

    from .app import TradeVisualizerApp

    try:
        root = tk.Tk()
    except tk.TclError as exc:
        return fail(
            PROG, f"cannot open a window ({exc}); use --export FILE.png without a display", 1
        )
    TradeVisualizerApp(
        root, args.cache_dir, args.timeframe, args.symbol, start, end, started=started
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C in the terminal just closes
        root.mainloop()
    return 0


if __name__ == "__main__":
    exit_with(main)
