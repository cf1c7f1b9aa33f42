"""Backtest the active strategy on stored bars:

    python -m quant_trading.backtesting.run_backtest --timeframe 5m --data-dir market_data

Prints a trade blotter, a per-symbol summary, the equity by month and the portfolio totals,
and caches each symbol's result under ``backtest_results/<timeframe>/`` for the visualizer
No TWS needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

# Only what the argument parser needs at the top: ``--help`` and a bad flag answer without
# loading pandas, numba and the engine (about a second); main() imports them after parsing.
from ..cli import (
    ArgumentParser,
    add_run_arguments,
    exit_with,
    fail,
    non_negative_int,
    positive_int,
    run_config,
    say_if_compiling,
    setup_logging,
    time_option,
)

PROG = "run_backtest"
# Named, as __name__ is "__main__" under python -m, outside the "quant_trading" logger that -v
# turns up to debug.
log = logging.getLogger("quant_trading.backtesting.run_backtest")
#: Overrides jobs.MIN_BARS_PER_WORKER (tests use it to run tiny data in worker processes).
MIN_BARS_ENV = "QT_JOBS_MIN_BARS"


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Backtest a strategy on OHLCV CSVs (fills at the next bar's open).",
    )
    add_run_arguments(p)
    p.add_argument(
        "--cache-dir",
        default="backtest_results",
        help="where to write <timeframe>/<SYMBOL>_backtest.json (default: backtest_results)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not write cache files")
    p.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="run symbols in up to N processes; fewer when the data is too small to pay for "
        "starting them (default: chosen from the cores and the number of bars)",
    )
    p.add_argument(
        "--trades",
        type=non_negative_int,
        default=10,
        metavar="N",
        help="trades shown per symbol, newest last (default: 10; 0 = all)",
    )
    p.add_argument("--env-file", help="settings file (default: ./strategy.env, else the project's)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 data problem, 2 bad arguments)."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    from ..csv_store import DataFileError
    from ..strategy import StrategyError
    from ._statistics_jit import measure
    from .cache import CacheWriteError
    from .engine import Costs, Sizing, _simulate_kernel
    from .runner import BacktestOptions, run_symbols

    try:
        config = run_config(args)
        options = BacktestOptions(
            start=time_option(args.start, "--start"),
            end=time_option(args.end, "--end", end=True),
            capital=args.initial_capital,
            costs=Costs(commission_per_share=args.commission, slippage=args.slippage),
            sizing=Sizing(
                allocation=args.allocation, fixed_shares=args.size, fractional=args.fractional
            ),
            flat_at_close=args.flat_at_close,
        )
        min_bars = _min_bars(os.environ.get(MIN_BARS_ENV))
    except (StrategyError, FileNotFoundError, ValueError) as exc:
        return fail(PROG, str(exc), 2)
    if options.start is not None and options.end is not None and options.start >= options.end:
        return fail(PROG, "--start must be before --end", 2)

    say_if_compiling(PROG, _simulate_kernel, measure)
    try:
        jobs = _jobs(args.jobs, config, args.data_dir, min_bars)
        # Each symbol's cache file is written as it is computed, and all are moved into
        # place only once every symbol succeeded: a failed run changes nothing.
        cache_dir = None if args.no_cache else args.cache_dir
        run = run_symbols(config, args.data_dir, options, jobs=jobs, cache_dir=cache_dir,
                          keep_series=False)  # fmt: skip
    except DataFileError as exc:
        return fail(PROG, str(exc), 1)
    except CacheWriteError as exc:
        return fail(PROG, f"cannot write cache in {args.cache_dir}: {exc}", 1)
    except KeyboardInterrupt:  # the runner has put the cache back as it was
        return fail(PROG, "interrupted; the cache is as it was", 130)
    for symbol, why in run.skipped.items():
        log.warning("%s skipped: %s", symbol, why)
    written = run.cache_files

    out = [run.report(args.trades), ""]
    if written:
        out.append(
            f"Cache: {len(written)} file(s) in {Path(args.cache_dir) / config.timeframe.name}/"
        )
        out += [f"  {path}" for path in written]
    print("\n".join(out).rstrip())
    return 0


def _jobs(requested: int | None, config, data_dir: str, min_bars: int) -> int:
    """The processes to run in: ``--jobs`` capped, or chosen, by :mod:`.jobs`."""
    from .datafiles import estimate_rows
    from .jobs import available_cores, choose_jobs

    symbols = list(config.symbols)
    if requested == 1 or len(symbols) <= 1:
        return 1
    rows = estimate_rows(data_dir, symbols, config.timeframe)
    cores = available_cores()
    jobs = choose_jobs(requested, len(symbols), sum(rows) / len(symbols), cores, min_bars)
    log.info("%d process(es) for %d symbols, about %s bars, on %d core(s)%s", jobs, len(symbols),
             f"{sum(rows):,}", cores, f" (--jobs {requested})" if requested else "")  # fmt: skip
    return jobs


def _min_bars(text: str | None) -> int:
    from .jobs import MIN_BARS_PER_WORKER

    if not text:
        return MIN_BARS_PER_WORKER
    try:
        return max(0, int(text))
    except ValueError:
        raise ValueError(f"{MIN_BARS_ENV}={text!r}: not a whole number") from None


if __name__ == "__main__":
    # No teardown: freeing pandas', numba's and the run's objects one by one takes 0.2-0.5 s
    # and nothing needs it (every file is written and closed by now).
    exit_with(main, fast=True)
