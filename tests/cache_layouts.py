"""Backtest cache files in the layouts older versions wrote, for the tests that check they
still open: schema 3 (schema 4 with the equity as 8-byte floats), schema 2 (every array a JSON
list of numbers) and schema 1 (schema 2 without the indicators' drawing hints). Built from a
cache read back, so no old code is needed."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import orjson

from quant_trading.backtesting.cache import TRADE_COLUMNS, CachedBacktest, read_cache


def _epoch(times) -> list[int]:
    return [int(t.timestamp()) for t in times]


def _number(value):
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def schema2_document(cached: CachedBacktest) -> dict:
    """The document schema 2's writer made for the same backtest."""
    candles = cached.candles
    trades = cached.trades
    return {
        "schema": "quant_trading.backtest/2",
        "created": "2026-01-01T00:00:00+00:00",
        "symbol": cached.symbol,
        "timeframe": cached.timeframe,
        "timezone": str(candles.index.tz),
        "strategy": cached.strategy,
        "indicators": [drawing.as_dict() for drawing in cached.indicators],
        "settings": cached.settings,
        "period": cached.period,
        "data": cached.data,
        "candles": {
            "time": _epoch(candles.index),
            **{c: candles[c].to_numpy(np.float64) for c in candles.columns},
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
        "statistics": {k: _number(v) for k, v in cached.statistics.as_dict().items()},
    }


def write_schema3(path4: Path, path: Path) -> Path:
    """Rewrite the schema 4 file ``path4`` as schema 3 wrote it: the same document with the
    equity column as its 8-byte floats."""
    doc = orjson.loads(path4.read_bytes())
    doc["schema"] = "quant_trading.backtest/3"
    equity = read_cache(path4).candles["equity"].to_numpy(np.float64)
    doc["candles"]["columns"]["equity"] = {
        "codec": "f8",
        "data": base64.b64encode(equity.astype("<f8").tobytes()).decode("ascii"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc))
    return path


def write_schema2(cached: CachedBacktest, path: Path) -> Path:
    """Write ``cached`` as schema 2 did (NaN as null, as orjson writes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(schema2_document(cached), option=orjson.OPT_SERIALIZE_NUMPY))
    return path


def write_schema1(cached: CachedBacktest, path: Path) -> Path:
    """Write ``cached`` as schema 1 did: schema 2 without drawing hints (MACD only)."""
    doc = schema2_document(cached)
    doc["schema"] = "quant_trading.backtest/1"
    del doc["indicators"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
    return path
