"""What ``optimize`` prints and writes: the ranked table (top rows, then every statistic
of them), and the CSV and JSON of every combination. The walk-forward report uses its cells
and columns too."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

__all__ = ["SHOWN", "cell", "json_value", "report", "span", "stem", "write"]

#: Columns of the console table besides the parameters: (statistic, heading, format).
SHOWN = (
    ("return_pct", "Return%", "+,.2f"),
    ("sharpe", "Sharpe", ".3f"),
    ("sortino", "Sortino", ".3f"),
    ("calmar", "Calmar", ".3f"),
    ("max_drawdown_pct", "MaxDD%", ".2f"),
    ("win_rate_pct", "Win%", ".1f"),
    ("profit_factor", "PF", ".3f"),
    ("trades", "Trades", ",d"),
)


def stem(result) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{result.strategy}_{result.timeframe.name}_{stamp}"


def write(result, stem: Path) -> list[Path]:
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
        **search_settings(result),
        "planned": result.planned,
        "rejected": result.rejected,
        "interrupted": result.interrupted,
        "best_params": result.best_params,
        "results": [
            {"rank": int(rank), **{k: json_value(v) for k, v in row.items()}}
            for rank, row in zip(result.table.index, result.table.to_dict("records"))
        ],
    }
    with atomic_write(json_path) as handle:
        json.dump(document, handle, indent=1)
    return [csv_path, json_path]


def search_settings(result) -> dict:
    """How a search chose (its objective, method and space), as its JSON files say; a
    walk-forward's too."""
    return {
        "objective": result.objective,
        "maximize": result.maximize,
        "min_trades": result.min_trades,
        "method": result.method,
        "seed": result.seed,
        "space": {k: list(v) for k, v in result.space.values.items()},
        "fixed": result.space.fixed,
    }


def json_value(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def cell(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def report(result, top: int, written: list[Path]) -> str:
    from ..backtesting.statistics import LABELS

    space = result.space
    ranges = ", ".join(f"{n} {span(v)}" for n, v in space.values.items())
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
    shown = [(c, h, s) for c, h, s in SHOWN if c != result.objective]
    own = next((x for x in SHOWN if x[0] == result.objective), (result.objective,) * 2 + (".4g",))
    objective_first = [own, *shown]
    headings = ["Rank", *space.values, *(h for _, h, _ in objective_first)]
    rows = [headings]
    for rank, row in table.head(top).iterrows():
        cells = [str(rank)] + [str(row[n]) for n in space.values]
        cells += [cell(row[c], s) for c, _, s in objective_first]
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
        return cell(value, ",.2f")
    return cell(value, ".2f" if name.endswith("_pct") else ".3f")


def _duration(seconds: float) -> str:
    """``12d 03:20`` (days, hours:minutes), ``03:20`` under a day."""
    if not math.isfinite(seconds):
        return "n/a"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours:02d}:{minutes:02d}"
    return f"{days}d {clock}" if days else clock


def span(values: tuple) -> str:
    if len(values) > 3 and all(isinstance(v, int) for v in values):
        steps = {b - a for a, b in zip(values, values[1:])}
        if len(steps) == 1:
            step = steps.pop()
            return f"{values[0]}..{values[-1]}" + (f" step {step}" if step != 1 else "")
    return ",".join(map(str, values))
