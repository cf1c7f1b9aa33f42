"""``python -m quant_trading.backtesting.optimize``: search a strategy's parameters.

The strategy, symbols, timeframe, window and costs are given as to ``run_backtest`` (and read
from strategy.env the same way); ``--param NAME=RANGE`` says what to search. Prints the top
combinations, writes every one to CSV and JSON under ``backtest_results/optimize/`` and
prints the best as strategy.env lines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import (
    ArgumentParser,
    add_run_arguments,
    fail,
    positive_int,
    run_config,
    say_if_compiling,
    setup_logging,
    time_option,
)
from . import optimize_report as output

PROG = "optimize"
log = logging.getLogger("quant_trading.cli.optimize")


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Search a strategy's parameters: backtest every combination (or a random "
        "sample) and rank them by a statistic.",
    )
    add_run_arguments(p)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=RANGE",
        help="values to search: start:stop[:step] (inclusive) or a comma list, e.g. "
        "FAST=5:20, SLOW=20:60:2, SIGNAL=5,9,13 (repeatable; default: every numeric "
        "parameter over its declared bounds; the others as in strategy.env)",
    )
    p.add_argument(
        "--objective",
        default="sharpe",
        help="statistic to rank by: sharpe, return_pct, sortino, calmar, "
        "max_drawdown_pct, profit_factor... (default: sharpe)",
    )
    p.add_argument("--minimize", action="store_true", help="smaller objective is better")
    p.add_argument(
        "--min-trades",
        type=int,
        default=1,
        metavar="N",
        help="combinations with fewer trades rank last (default: 1)",
    )
    p.add_argument(
        "--method",
        choices=("grid", "random", "optuna"),
        default="grid",
        help="every combination, --trials random ones, or --trials chosen by Optuna's TPE "
        "sampler (default: grid)",
    )
    p.add_argument(
        "--trials",
        type=positive_int,
        metavar="N",
        help="combinations tried by --method random or optuna (default: 100)",
    )
    p.add_argument("--seed", type=int, help="random seed, for a reproducible draw")
    p.add_argument(
        "--top", type=positive_int, default=10, metavar="N", help="combinations shown (default: 10)"
    )
    p.add_argument(
        "--heatmap",
        metavar="X,Y",
        help="also draw the objective over two searched parameters (the others "
        "at their best values) as a PNG beside the CSV",
    )
    p.add_argument(
        "--out-dir",
        default="backtest_results/optimize",
        help="where the CSV and JSON go (default: backtest_results/optimize)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="run combinations in N processes (default: 1); with --scheduler local, "
        "the local cluster's worker processes",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the combinations on a Dask cluster: the address of a running `dask "
        "scheduler` (tcp://HOST:8786), or local to start a LocalCluster for this run",
    )
    p.add_argument(
        "--walk-forward",
        metavar="IN:OUT",
        help="walk forward: search each IN window, trade the best on the OUT window after it, "
        "then move on by OUT; lengths in days, weeks, months or years, e.g. 6M:1M, 10D:2D",
    )
    p.add_argument(
        "--anchored",
        action="store_true",
        help="with --walk-forward: every in-sample window starts at the period's start "
        "(and grows) instead of rolling",
    )
    p.add_argument("--env-file", help="settings file (default: ./strategy.env, else the project's)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 data problem or nothing eligible,
    2 bad arguments, 130 interrupted after writing what was done)."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    from ..backtesting._sweep import _measure_rows
    from ..backtesting.cluster import ClusterError, check_scheduler
    from ..backtesting.datafiles import DataFileError
    from ..backtesting.optimize import OptimizeError, optimize, search_space
    from ..backtesting.walk_forward import parse_walk_forward, walk_forward
    from ..strategy import StrategyError

    try:
        config = run_config(args)
        grid = _grid(args.param)
        space = search_space(config.strategy, config.params, grid)
        axes = _heatmap_axes(args.heatmap, space) if args.heatmap else None
        start, end = time_option(args.start, "--start"), time_option(args.end, "--end", end=True)
        if args.min_trades < 0:
            raise OptimizeError(f"--min-trades {args.min_trades}: must not be negative")
        if args.trials and args.method == "grid":
            raise OptimizeError("--trials needs --method random or optuna")
        spans = parse_walk_forward(args.walk_forward) if args.walk_forward else None
        _check_walk_forward(args, spans)
        scheduler = check_scheduler(args.scheduler) if args.scheduler else None
        _check_scheduler(args, scheduler)
        settings = dict(
            config=config,
            data_dir=args.data_dir,
            grid=grid,
            objective=args.objective,
            maximize=not args.minimize,
            min_trades=args.min_trades,
            method=args.method,
            trials=args.trials,
            seed=args.seed,
            start=start,
            end=end,
            capital=args.initial_capital,
            commission=args.commission,
            slippage=args.slippage,
            allocation=args.allocation,
            size=args.size,
            fractional=args.fractional,
            flat_at_close=args.flat_at_close,
            progress=None,
            jobs=args.jobs,
            scheduler=scheduler,
        )
    except (StrategyError, OptimizeError, ClusterError, FileNotFoundError, ValueError) as exc:
        return fail(PROG, str(exc), 2)
    if not scheduler:  # a cluster's workers compile, not this process
        say_if_compiling(PROG, _measure_rows)
    try:
        if spans:
            result = walk_forward(config.strategy, in_sample=spans[0], out_of_sample=spans[1],
                                  anchored=args.anchored, **settings)  # fmt: skip
        else:
            result = optimize(config.strategy, **settings)
    except KeyboardInterrupt:  # before the search began (reading bars, compiling): nothing done
        return fail(PROG, "interrupted before any combination was done; nothing written", 130)
    except OptimizeError as exc:  # the grid's size, the window
        return fail(PROG, str(exc), 2)
    except (DataFileError, ClusterError) as exc:
        return fail(PROG, str(exc), 1)
    for symbol, why in result.skipped.items():
        log.warning("%s skipped: %s", symbol, why)
    if spans:
        return _walked(result, args.out_dir)

    stem = Path(args.out_dir) / output.stem(result)
    try:
        written = output.write(result, stem)
        if axes and result.best_params is not None:
            from ..backtesting.optimize import heatmap

            written.append(heatmap(result, *axes, f"{stem}_heatmap_{axes[0]}_{axes[1]}.png"))
    except OSError as exc:
        return fail(PROG, f"cannot write results in {args.out_dir}: {exc}", 1)
    print(output.report(result, args.top, written))
    if result.interrupted:
        return 130
    return 0 if result.best_params is not None else 1


def _check_walk_forward(args, spans) -> None:
    from ..backtesting.optimize import OptimizeError

    if spans is None:
        if args.anchored:
            raise OptimizeError("--anchored needs --walk-forward IN:OUT")
        return
    if args.heatmap:
        raise OptimizeError("--heatmap draws one search; --walk-forward makes one per window")


def _check_scheduler(args, scheduler: str | None) -> None:
    from ..backtesting.optimize import OptimizeError

    if scheduler is None:
        return
    if args.jobs > 1 and scheduler != "local":
        raise OptimizeError(f"--jobs {args.jobs}: the cluster at {scheduler} has its own "
                            "workers; --jobs sets them only with --scheduler local")  # fmt: skip


def _walked(result, out_dir: str) -> int:
    """Write and print a walk-forward result; its exit code."""
    from . import walk_forward

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    stem = Path(out_dir) / f"{result.strategy}_{result.timeframe.name}_walkforward_{stamp}"
    try:
        written = walk_forward.write(result, stem)
    except OSError as exc:
        return fail(PROG, f"cannot write results in {out_dir}: {exc}", 1)
    print(walk_forward.report(result, written))
    return walk_forward.exit_code(result)


def _grid(specs: list[str]) -> dict[str, str] | None:
    from ..backtesting.optimize import OptimizeError

    grid: dict[str, str] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().upper()
        if not sep or not name:
            raise OptimizeError(f"--param {spec!r}: use NAME=start:stop[:step] or NAME=a,b,c")
        if name in grid:
            raise OptimizeError(f"--param {name} given twice")
        grid[name] = values
    return grid or None


def _heatmap_axes(text: str, space) -> tuple[str, str]:
    from ..backtesting.optimize import OptimizeError

    names = [n.strip().upper() for n in text.split(",")]
    if len(names) != 2 or names[0] == names[1]:
        raise OptimizeError(f"--heatmap {text}: name two different parameters, e.g. FAST,SLOW")
    for name in names:
        if name not in space.values:
            raise OptimizeError(
                f"--heatmap {text}: {name} is not searched; searched: {', '.join(space.values)}"
            )
    return names[0], names[1]
