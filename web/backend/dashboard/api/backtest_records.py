"""A finished backtest as the JSON the API answers and stores: pure conversions of the
toolkit's :class:`~quant_trading.backtesting.runner.RunResult`, no computation of their own.

Numbers are the engine's own floats (JSON keeps them exactly); NaN becomes null and an
infinite statistic the string ``"Infinity"`` (``"-Infinity"``), as in the backtest cache.
Times are ISO 8601 with their New York offset. File paths are relative to the repository
root, as ``run_backtest`` prints them when run from the checkout (``market_data/AAPL_5m.csv``),
or absolute for a folder configured outside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings

from quant_trading.backtesting.cache import TRADE_COLUMNS
from quant_trading.backtesting.report import equity_by_month
from quant_trading.backtesting.runner import RunResult, SymbolSummary
from quant_trading.backtesting.statistics import Statistics

from .jsonable import json_number

__all__ = [
    "RunRecords",
    "data_file_record",
    "display_path",
    "monthly_records",
    "run_records",
    "statistics_record",
    "symbol_metrics",
    "trade_records",
]

_TIME_COLUMNS = ("entry_time", "exit_time")


@dataclass(frozen=True)
class RunRecords:
    """Everything a stored run holds besides what was asked, ready for JSON."""

    summary: dict[str, Any]  # the portfolio's statistics
    symbol_metrics: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    monthly_equity: list[dict[str, Any]]
    data_files: list[dict[str, Any]]
    skipped: dict[str, str]
    cache_files: list[str]


def display_path(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path(settings.REPO_ROOT).resolve()))
    except ValueError:
        return str(path)


def statistics_record(statistics: Statistics) -> dict[str, Any]:
    """Every statistic by its field name (``return_pct``, ``sharpe``, ...)."""
    return {key: json_number(value) for key, value in statistics.as_dict().items()}


def symbol_metrics(result: SymbolSummary) -> dict[str, Any]:
    """One symbol's row: its statistics (the CLI's per-symbol summary columns are
    ``trades``, ``win_rate_pct``, ``net_profit``, ``return_pct``, ``buy_hold_return_pct``,
    ``max_drawdown_pct``, ``sharpe``, ``exposure_pct`` and ``equity_final``), the bars traded,
    and the warning about entries the cash could not pay for (or None)."""
    return {
        "symbol": result.symbol,
        "bars": result.bar_count,
        "warning": result.refusal_message(),
        **statistics_record(result.statistics),
    }


def trade_records(trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Round trips as records: ``symbol`` and the cache's trade columns, in the frame's
    order (the portfolio's trades are sorted by exit time, then symbol)."""
    columns: dict[str, list[Any]] = {"symbol": trades["symbol"].tolist()}
    for name in TRADE_COLUMNS:
        if name in _TIME_COLUMNS:
            columns[name] = [stamp.isoformat() for stamp in trades[name]]
        else:
            columns[name] = [json_number(value) for value in trades[name].tolist()]
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def data_file_record(result: SymbolSummary) -> dict[str, Any]:
    """The file a symbol was read from, its checksum, and the bars it gave."""
    source = result.source
    return {
        "symbol": result.symbol,
        "file": display_path(source.path),
        "sha256": source.sha256,
        "source_timeframe": source.source_timeframe.name,
        "rows": source.rows,
        "first_bar": source.first.isoformat() if source.first is not None else None,
        "last_bar": source.last.isoformat() if source.last is not None else None,
    }


def monthly_records(run: RunResult) -> list[dict[str, Any]]:
    """The portfolio's equity by month: what ``run_backtest`` prints under "equity by
    month" (with one symbol the portfolio is that symbol)."""
    portfolio = run.portfolio
    rows = equity_by_month(portfolio.equity, portfolio.statistics.equity_initial)
    return [{k: json_number(v) for k, v in asdict(row).items()} for row in rows]


def run_records(run: RunResult, cache_files: list[Path]) -> RunRecords:
    """The records of a finished run whose cache files (if any) are ``cache_files``."""
    data_dir = str(settings.DATA_DIR)
    return RunRecords(
        summary=statistics_record(run.portfolio.statistics),
        symbol_metrics=[symbol_metrics(result) for result in run.results],
        trades=trade_records(run.portfolio.trades),
        monthly_equity=monthly_records(run),
        data_files=[data_file_record(result) for result in run.results],
        # A reason starts with the data file's path; shown the way data_files shows it.
        skipped={
            symbol: why.replace(data_dir, display_path(data_dir))
            for symbol, why in run.skipped.items()
        },
        cache_files=[display_path(path) for path in cache_files],
    )
