"""``python -m quant_trading.backtesting.optimize``: search a strategy's parameters.

The strategy, symbols, timeframe, window and costs are given as to ``run_backtest`` (and read
from strategy.env the same way); ``--param NAME=RANGE`` says what to search. Prints the top
combinations, writes every one to CSV and JSON under ``backtest_results/optimize/`` and
prints the best as strategy.env lines.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import (
    ArgumentParser,
    add_run_arguments,
    fail,
    positive_int,
    run_config,
    setup_logging,
    time_option,
)

PROG = "optimize"
log = logging.getLogger("quant_trading.cli.optimize")

#: Columns of the console table besides the parameters: (statistic, heading, format).
_SHOWN = (
    ("return_pct", "Return%", "+,.2f"),
    ("sharpe", "Sharpe", ".3f"),
    ("sortino", "Sortino", ".3f"),
    ("calmar", "Calmar", ".3f"),
    ("max_drawdown_pct", "MaxDD%", ".2f"),
    ("win_rate_pct", "Win%", ".1f"),
    ("profit_factor", "PF", ".3f"),
    ("trades", "Trades", ",d"),
)


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
        help="combinations drawn by --method random (default: 100)",
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

    stem = Path(args.out_dir) / _stem(result)
    try:
        written = _write(result, stem)
        if axes and result.best_params is not None:
            from ..backtesting.optimize import heatmap

            written.append(heatmap(result, *axes, f"{stem}_heatmap_{axes[0]}_{axes[1]}.png"))
    except OSError as exc:
        return fail(PROG, f"cannot write results in {args.out_dir}: {exc}", 1)
    print(_report(result, args.top, written))
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
    from . import walk_forward as output

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    stem = Path(out_dir) / f"{result.strategy}_{result.timeframe.name}_walkforward_{stamp}"
    try:
        written = output.write(result, stem)
    except OSError as exc:
        return fail(PROG, f"cannot write results in {out_dir}: {exc}", 1)
    print(output.report(result, written))
    return output.exit_code(result)


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


def _stem(result) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{result.strategy}_{result.timeframe.name}_{stamp}"


def _write(result, stem: Path) -> list[Path]:
    """The full table as CSV and, with the run's settings, as JSON; atomically."""
    from ..atomic import atomic_write

    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    with atomic_write(csv_path) as handle:
        result.table.to_csv(handle)
    document = {
        "strategy": result.strategy,
        "timeframe": result.timeframe.name,
        "symbols": list(result.symbols),
        "skipped": result.skipped,
        "objective": result.objective,
        "maximize": result.maximize,
        "min_trades": result.min_trades,
        "method": result.method,
        "seed": result.seed,
        "space": {k: list(v) for k, v in result.space.values.items()},
        "fixed": result.space.fixed,
        "planned": result.planned,
        "rejected": result.rejected,
        "interrupted": result.interrupted,
        "best_params": result.best_params,
        "results": [
            {"rank": int(rank), **{k: _json(v) for k, v in row.items()}}
            for rank, row in zip(result.table.index, result.table.to_dict("records"))
        ],
    }
    with atomic_write(json_path) as handle:
        json.dump(document, handle, indent=1)
    return [csv_path, json_path]


def _json(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _cell(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _report(result, top: int, written: list[Path]) -> str:
    from ..backtesting.statistics import LABELS

    space = result.space
    ranges = ", ".join(f"{n} {_span(v)}" for n, v in space.values.items())
    fixed = ", ".join(f"{n}={v}" for n, v in space.fixed.items())
    size = f"{result.space.size:,} combinations"
    seed = f" (seed {result.seed})" if result.seed is not None else " (no seed)"
    how = {
        "grid": f"grid of {size}",
        "random": f"random {result.planned:,} of {size}{seed}",
        "optuna": f"Optuna TPE, {result.planned:,} trials over {size}{seed}",
    }[result.method]
    lines = [
        f"{result.strategy} optimization on {result.timeframe.name} bars of "
        f"{' '.join(result.symbols)}: {how}",
        f"  searched: {ranges}" + (f"; fixed: {fixed}" if fixed else ""),
    ]
    table = result.table
    ran = len(table)
    low = int((~table["eligible"]).sum()) if ran else 0
    lines.append(
        f"  {ran:,} run, {result.rejected:,} refused by {result.strategy}'s checks, {low:,} "
        f"with fewer than {result.min_trades} trade(s)"
        + ("; INTERRUPTED, results so far" if result.interrupted else "")
    )
    label = LABELS.get(result.objective, result.objective)
    lines += ["", f"Top {min(top, ran)} by {label} ({'max' if result.maximize else 'min'}):"]
    shown = [(c, h, s) for c, h, s in _SHOWN if c != result.objective]
    own = next((x for x in _SHOWN if x[0] == result.objective), (result.objective,) * 2 + (".4g",))
    objective_first = [own, *shown]
    headings = ["Rank", *space.values, *(h for _, h, _ in objective_first)]
    rows = [headings]
    for rank, row in table.head(top).iterrows():
        cells = [str(rank)] + [str(row[n]) for n in space.values]
        cells += [_cell(row[c], s) for c, _, s in objective_first]
        if not row["eligible"]:
            cells[0] += "*"
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(headings))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    if low and table.head(top)["eligible"].eq(False).any():
        lines.append(f"  * fewer than {result.min_trades} trade(s): ranked last")
    if ran:
        lines += ["", f"Every statistic of the top {min(top, ran)}:"]
        lines += _every_statistic(table.head(top), space)
    lines.append("")
    lines += [f"Results: {written[0]}"] + [f"         {p}" for p in written[1:]]
    best = result.env_lines()
    if best:
        lines += ["", "Best parameters (paste into strategy.env):", *best]
    else:
        lines += [
            "",
            f"No best parameters: no combination has {result.min_trades}+ trade(s) and a "
            f"defined {result.objective}.",
        ]
    return "\n".join(lines)


#: Statistics shown in dollars, with thousands separators.
_DOLLARS = {"equity_initial", "equity_final", "equity_peak", "net_profit", "commissions",
            "max_drawdown_usd"}  # fmt: skip
#: Rank columns side by side; more go in another block below, so lines stay readable.
_RANKS_PER_BLOCK = 6


def _every_statistic(top, space) -> list[str]:
    """The ``top`` rows turned on their side: one line per parameter and statistic, one
    column per rank (blocks of :data:`_RANKS_PER_BLOCK` ranks)."""
    from ..backtesting.statistics import LABELS, Statistics

    names = [*space.values, *(f.name for f in fields(Statistics))]
    labels = [n if n in space.values else LABELS.get(n, n) for n in names]
    width = max(map(len, labels))
    lines: list[str] = []
    ranks = list(top.iterrows())
    for first in range(0, len(ranks), _RANKS_PER_BLOCK):
        block = ranks[first : first + _RANKS_PER_BLOCK]
        columns = [
            [f"#{rank}" + ("" if row["eligible"] else "*")] + [_statistic(n, row[n]) for n in names]
            for rank, row in block
        ]
        widths = [max(map(len, c)) for c in columns]
        for i, label in enumerate(["", *labels]):
            cells = "  ".join(c[i].rjust(w) for c, w in zip(columns, widths))
            lines.append(f"  {label.ljust(width)}  {cells}")
        if first + _RANKS_PER_BLOCK < len(ranks):
            lines.append("")
    return lines


def _statistic(name: str, value) -> str:
    """One statistic as a reader wants it: durations as days and hours, times to the
    minute, dollars with separators, percentages with 2 decimals, ratios with 3."""
    if isinstance(value, str):
        return value[:16].replace("T", " ")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if name.endswith("duration_s") or name == "duration_s":
        return _duration(float(value))
    if isinstance(value, int | np.integer):
        return f"{value:,d}"
    if name in _DOLLARS:
        return _cell(value, ",.2f")
    return _cell(value, ".2f" if name.endswith("_pct") else ".3f")


def _duration(seconds: float) -> str:
    """``12d 03:20`` (days, hours:minutes), ``03:20`` under a day."""
    if not math.isfinite(seconds):
        return "n/a"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours:02d}:{minutes:02d}"
    return f"{days}d {clock}" if days else clock


def _span(values: tuple) -> str:
    if len(values) > 3 and all(isinstance(v, int) for v in values):
        steps = {b - a for a, b in zip(values, values[1:])}
        if len(steps) == 1:
            step = steps.pop()
            return f"{values[0]}..{values[-1]}" + (f" step {step}" if step != 1 else "")
    return ",".join(map(str, values))
