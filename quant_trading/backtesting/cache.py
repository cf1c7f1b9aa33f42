"""The backtest cache: ``<cache-dir>/<timeframe>/<SYMBOL>_backtest.json``, one per symbol.

Everything the visualizer shows comes from here, so it never re-runs a backtest: the run's
settings, the data file and its checksum, the candles with indicators, the equity curve, the
trades and the statistics, and how to draw each indicator column (the strategy's declared
hints, so a chart needs no strategy code). Arrays are stored column by column (compact, and
quick to turn back into frames); times are epoch seconds, NaN is null, an infinite statistic
is "Infinity". Files are written atomically, and a reader checks ``schema`` before trusting
the rest.

orjson writes and parses these files several times faster than the standard json module,
which matters for two years of 5-minute candles per symbol.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from ..atomic import atomic_write
from ..drawing import Drawing, macd_drawing
from ..timeframes import EXCHANGE_TZ, Timeframe
from .statistics import Statistics

if TYPE_CHECKING:  # readers (the visualizer) should not pay for the engine's imports
    from .runner import SymbolResult

__all__ = ["SCHEMA", "CacheError", "CachedBacktest", "cache_path", "write_cache", "read_cache"]

SCHEMA = "quant_trading.backtest/2"
#: Older schemas the reader still accepts. /1 stored no drawing hints: its MACD, Signal and
#: Hist columns are drawn as MACD.
READABLE = (SCHEMA, "quant_trading.backtest/1")
TRADE_COLUMNS = [
    "side", "entry_time", "entry_price", "exit_time", "exit_price", "shares",
    "commission", "pnl", "return_pct", "bars_held", "exit_reason",
]  # fmt: skip


class CacheError(ValueError):
    """A cache file that cannot be used; the message names it."""


@dataclass
class CachedBacktest:
    """A cache file read back: settings as plain dicts, arrays as frames."""

    path: Path
    symbol: str
    timeframe: str
    strategy: dict[str, Any]
    settings: dict[str, Any]
    period: dict[str, str]
    data: dict[str, Any]
    candles: pd.DataFrame  # OHLCV + indicators + equity, indexed by time
    trades: pd.DataFrame
    statistics: Statistics
    indicators: list[Drawing]  # how to draw the indicator columns of ``candles``


def cache_path(cache_dir: str | Path, timeframe: str | Timeframe, symbol: str) -> Path:
    """``<cache_dir>/<timeframe>/<SYMBOL>_backtest.json``."""
    return Path(cache_dir) / str(timeframe) / f"{symbol.upper()}_backtest.json"


def _json_number(value):
    """A statistic as JSON can hold it: plain numbers, NaN as null (orjson's default), and
    infinity (Sortino without a losing day) as the string "Infinity", which
    :meth:`Statistics.from_dict`, Python's float() and JavaScript's Number() all read back."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _epoch(index_or_series) -> np.ndarray:
    values = pd.DatetimeIndex(index_or_series)
    return values.as_unit("s").asi8 if len(values) else np.empty(0, np.int64)


def _document(result: SymbolResult) -> dict[str, Any]:
    candles = result.candles
    options = result.options
    trades = result.trades
    stats = {k: _json_number(v) for k, v in result.statistics.as_dict().items()}
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "symbol": result.symbol,
        "timeframe": result.config.timeframe.name,
        "timezone": str(candles.index.tz or EXCHANGE_TZ),
        "strategy": {
            "name": result.config.strategy.name,
            "description": result.config.strategy.description,
            "params": result.config.params,
        },
        "indicators": [drawing.as_dict() for drawing in result.config.drawing],
        "settings": {
            "initial_capital": options.capital,
            "costs": asdict(options.costs),
            "sizing": asdict(options.sizing),
            "flat_at_close": options.flat_at_close,
            "fills": "next bar open",
        },
        "period": {
            "start": candles.index[0].isoformat(),
            "end": candles.index[-1].isoformat(),
        },
        "data": {
            "file": str(result.data.path),
            "sha256": result.data.sha256,
            "source_timeframe": result.data.source_timeframe.name,
            "rows": len(result.data.bars),
        },
        "candles": {
            "time": _epoch(candles.index),
            **{c: candles[c].to_numpy(np.float64) for c in candles.columns},
            "equity": result.equity.to_numpy(np.float64),
            "position": np.asarray(result.position, np.float64),
        },
        "trades": {
            **{
                c: trades[c].to_numpy()
                for c in TRADE_COLUMNS
                if c not in ("entry_time", "exit_time", "side", "exit_reason")
            },
            "side": trades["side"].tolist(),
            "exit_reason": trades["exit_reason"].tolist(),
            "entry_time": _epoch(trades["entry_time"]),
            "exit_time": _epoch(trades["exit_time"]),
        },
        "statistics": stats,
    }


def write_cache(result: SymbolResult, cache_dir: str | Path) -> Path:
    """Write one symbol's result atomically; returns the file's path."""
    path = cache_path(cache_dir, result.config.timeframe, result.symbol)
    payload = orjson.dumps(_document(result), option=orjson.OPT_SERIALIZE_NUMPY)
    with atomic_write(path, "wb") as handle:
        handle.write(payload)
    return path


def read_cache(path: str | Path) -> CachedBacktest:
    """Read a cache file back; CacheError (naming the file) if it is not one of ours."""
    path = Path(path)
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise CacheError(f"{path}: file not found") from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CacheError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") not in READABLE:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise CacheError(f"{path}: not a backtest cache of schema {SCHEMA} (found {found!r})")
    try:
        tz = doc["timezone"]
        columns = dict(doc["candles"])
        index = pd.to_datetime(np.asarray(columns.pop("time"), np.int64), unit="s", utc=True)
        candles = pd.DataFrame(
            {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()},
            index=index.tz_convert(tz).rename("time"),
        )
        trades = pd.DataFrame(doc["trades"])
        for column in ("entry_time", "exit_time"):
            trades[column] = pd.to_datetime(
                trades[column].astype(np.int64), unit="s", utc=True
            ).dt.tz_convert(tz)
        trades = trades[[c for c in TRADE_COLUMNS if c in trades.columns]]
        if "indicators" in doc:
            drawings = [Drawing.from_dict(entry) for entry in doc["indicators"]]
        else:  # schema 1: MACD was the only strategy
            drawings = [macd_drawing()] if "Hist" in candles.columns else []
        for drawing in drawings:
            for line in drawing.lines:
                if line.column not in candles.columns:
                    raise ValueError(f"indicator column {line.column!r} missing")
        return CachedBacktest(
            path=path,
            symbol=doc["symbol"],
            timeframe=doc["timeframe"],
            strategy=doc["strategy"],
            settings=doc["settings"],
            period=doc["period"],
            data=doc["data"],
            candles=candles,
            trades=trades,
            statistics=Statistics.from_dict(doc["statistics"]),
            indicators=drawings,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CacheError(f"{path}: damaged backtest cache ({exc!s:.80})") from None
