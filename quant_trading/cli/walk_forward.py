"""What ``optimize --walk-forward IN:OUT`` prints and writes: a table of the windows (dates,
the parameters chosen, in-sample and out-of-sample results), the stitched out-of-sample
statistics beside the in-sample ones, and CSV/JSON files plus the stitched equity."""

from __future__ import annotations

import json
from pathlib import Path

from .optimize_report import SHOWN, cell, json_value, search_settings, span

#: The summary's columns besides the objective: (statistic, heading, format).
_SUMMARY = (
    ("return_ann_pct", "Ann.Ret%", "+,.2f"),
    ("sharpe", "Sharpe", ".3f"),
    ("max_drawdown_pct", "MaxDD%", ".2f"),
    ("win_rate_pct", "Win%", ".1f"),
    ("profit_factor", "PF", ".3f"),
)


def write(result, stem: Path) -> list[Path]:
    """The windows as CSV, everything as JSON, and the stitched out-of-sample equity as
    CSV (time, equity), each written atomically. Returns the paths."""
    from ..atomic import atomic_write

    table_path = stem.with_suffix(".csv")
    json_path = stem.with_suffix(".json")
    equity_path = stem.with_name(f"{stem.name}_equity.csv")
    with atomic_write(table_path) as handle:
        result.table().to_csv(handle)
    stats = result.statistics.as_dict() if result.statistics is not None else None
    document = {
        "strategy": result.strategy,
        "timeframe": result.timeframe.name,
        "symbols": list(result.symbols),
        "skipped": result.skipped,
        "walk_forward": {
            "in_sample": str(result.in_sample),
            "out_of_sample": str(result.out_of_sample),
            "anchored": result.anchored,
        },
        **search_settings(result),
        "interrupted": result.interrupted,
        "out_of_sample": _plain(stats),
        "in_sample_mean": _plain(result.in_sample_mean()),
        "windows": [
            {
                "window": w.window.number,
                "in_start": w.window.in_start.isoformat(),
                "in_end": w.window.in_end.isoformat(),
                "out_start": w.window.out_start.isoformat(),
                "out_end": w.window.out_end.isoformat(),
                "params": w.params,
                "combinations": len(w.search.table),
                "rejected": w.search.rejected,
                "in_sample": _plain(w.in_sample.as_dict() if w.in_sample else None),
                "out_of_sample": _plain(w.out_of_sample.as_dict() if w.out_of_sample else None),
            }
            for w in result.windows
        ],
    }
    with atomic_write(json_path) as handle:
        json.dump(document, handle, indent=1, default=json_value)
    with atomic_write(equity_path) as handle:
        result.equity.rename_axis("time").to_csv(handle, header=["equity"])
    return [table_path, json_path, equity_path]


def _plain(values: dict | None) -> dict | None:

    return None if values is None else {k: json_value(v) for k, v in values.items()}


def report(result, written: list[Path]) -> str:
    """The console report of a walk."""
    from ..backtesting.statistics import LABELS

    space = result.space
    ranges = ", ".join(f"{n} {span(v)}" for n, v in space.values.items())
    fixed = ", ".join(f"{n}={v}" for n, v in space.fixed.items())
    how = "anchored" if result.anchored else "rolling"
    method = {"grid": f"grid of {space.size:,}", "random": "random", "optuna": "Optuna TPE"}
    searched = method.get(result.method, result.method)
    if result.method != "grid" and result.windows:
        searched += f" {result.windows[0].search.planned:,} of {space.size:,}"
    label = LABELS.get(result.objective, result.objective)
    lines = [
        f"{result.strategy} walk-forward on {result.timeframe.name} bars of "
        f"{' '.join(result.symbols)}: {result.in_sample} in-sample, {result.out_of_sample} "
        f"out-of-sample, {how}; {len(result.windows)} window(s)"
        + ("; INTERRUPTED, windows so far" if result.interrupted else ""),
        f"  each window: {searched} combinations, best by {label} "
        f"({'max' if result.maximize else 'min'}, at least {result.min_trades} trade(s))",
        f"  searched: {ranges}" + (f"; fixed: {fixed}" if fixed else ""),
        "",
    ]
    heading, spec = next(
        ((h, s) for c, h, s in SHOWN if c == result.objective), (result.objective, ".4g")
    )
    # A parameter searched over one value is the same in every window: left out here.
    varied = [n for n, v in space.values.items() if len(v) > 1]
    headings = ["Win", "In-sample", "Out-of-sample", *varied,
                f"IS {heading}", f"OOS {heading}", "OOS Ret%", "Trades"]  # fmt: skip
    rows = [headings]
    for w in result.windows:
        chosen = w.params or {}
        cells = [str(w.window.number), _days(*w.window.span("in")), _days(*w.window.span("out"))]
        cells += [str(chosen.get(n, "-")) for n in varied]
        ins, out = w.in_sample, w.out_of_sample
        cells += [
            cell(getattr(ins, result.objective), spec) if ins else "-",
            cell(getattr(out, result.objective), spec) if out else "cash",
            cell(out.return_pct, "+,.2f") if out else "-",
            cell(out.trades, ",d") if out else "-",
        ]
        rows.append(cells)
    lines += _aligned(rows, left=3)

    stats = result.statistics
    lines.append("")
    if stats is None:
        lines.append("Nothing was traded out-of-sample: no window had an eligible combination.")
    else:
        mean = result.in_sample_mean()
        columns = [(result.objective, heading, spec)]
        columns += [c for c in _SUMMARY if c[0] != result.objective]
        traded = sum(w.out_of_sample is not None for w in result.windows)
        summary = [["", *(h for _, h, _ in columns), "Trades/win"]]
        summary.append(
            [f"In-sample (mean of {len(result.windows)} windows' best)"]
            + [cell(mean[c], s) for c, _, s in columns]
            + [cell(mean["trades"], ",.1f")]
        )
        summary.append(
            ["Out-of-sample (stitched)"]
            + [cell(getattr(stats, c), s) for c, _, s in columns]
            + [cell(stats.trades / max(traded, 1), ",.1f")]
        )
        lines += _aligned(summary, left=1)
        lines += [
            "",
            f"Out-of-sample, stitched: {stats.start[:10]}..{stats.end[:10]}, "
            f"{stats.trades:,} trades",
            f"  equity {stats.equity_initial:,.2f} -> {stats.equity_final:,.2f} "
            f"({stats.return_pct:+.2f}%; buy & hold {stats.buy_hold_return_pct:+.2f}%)",
        ]
    lines.append("")
    lines += [f"Results: {written[0]}"] + [f"         {p}" for p in written[1:]]
    last = next((w for w in reversed(result.windows) if w.params), None)
    if last is not None:
        prefix = result.strategy.upper()
        lines += ["", f"Latest window's parameters (window {last.window.number}; paste into "
                  "strategy.env):"]  # fmt: skip
        lines += [f"{prefix}_{k}={v}" for k, v in last.params.items()]
    return "\n".join(lines)


def _days(first, last) -> str:
    """``2026-10-01..10-10``: the year once when both days fall in it."""
    return (
        f"{first:%Y-%m-%d}..{last:%m-%d}"
        if first.year == last.year
        else f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
    )


def _aligned(rows: list[list[str]], left: int) -> list[str]:
    """Rows as text columns: the first ``left`` columns flush left, the rest right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in
                  enumerate(zip(r, widths))).rstrip()
        for r in rows
    ]  # fmt: skip


def exit_code(result) -> int:
    """0: traded out-of-sample; 1: nothing eligible anywhere; 130: interrupted."""
    if result.interrupted:
        return 130
    return 0 if result.statistics is not None else 1
