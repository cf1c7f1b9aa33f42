"""The backtest cache: ``<cache-dir>/<timeframe>/<SYMBOL>_backtest.json``, one per symbol.

Everything the visualizer shows comes from here, so it never re-runs a backtest: the run's
settings, the data file and its checksum, the candles with indicators, the equity curve, the
trades and the statistics, and how to draw each indicator column (the strategy's declared
hints, so a chart needs no strategy code). Files are written atomically, and a reader checks
``schema`` before trusting the rest.

Schema 4 keeps the settings and statistics as plain JSON and packs each array column
(:mod:`._packing`): prices and volumes as the decimal integers they are (bit for bit the
floats the run used), positions and every trade number exactly, the equity as the runs of its
cash (cash + position x close at each bar, checked bit for bit when written), indicator lines
to about 7 significant digits, times in epoch seconds. That is about 0.65 MB per symbol-year
of 5-minute bars with MACD, a quarter of schema 2's plain JSON numbers. Schema 3 was the same
with the equity as 8-byte floats (a quarter more bytes to write, encode and read). The
candles stay in the file, though they are the data file's bars: a chart must open after the
data file was re-downloaded, merged or moved. An infinite statistic is "Infinity", NaN null.

:class:`CacheStage` writes files while a run goes on and moves them into place only when the
whole run succeeded, so a failed run changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from ..atomic import atomic_write
from ..drawing import Drawing, macd_drawing
from ..timeframes import EXCHANGE_TZ, Timeframe
from ._packing import (
    pack_codes,
    pack_exact,
    pack_floats,
    pack_ints,
    pack_marked,
    pack_runs,
    unpack,
)
from .statistics import Statistics, epoch_ns

if TYPE_CHECKING:  # readers (the visualizer) should not pay for the engine's imports
    from .engine import RoundTrips
    from .runner import SymbolResult, SymbolSummary

__all__ = [
    "SCHEMA",
    "CacheError",
    "CacheWriteError",
    "CachedBacktest",
    "CacheStage",
    "CandleArrays",
    "cache_path",
    "write_cache",
    "stage_file",
    "read_cache",
]

SCHEMA = "quant_trading.backtest/4"
#: Older schemas the reader still accepts. /3 stored the equity as 8-byte floats; /2 stored
#: its arrays as JSON numbers; /1 also stored no drawing hints: its MACD, Signal and Hist
#: columns are drawn as MACD.
PACKED = (SCHEMA, "quant_trading.backtest/3")
READABLE = (*PACKED, "quant_trading.backtest/2", "quant_trading.backtest/1")
TRADE_COLUMNS = [
    "side", "entry_time", "entry_price", "exit_time", "exit_price", "shares",
    "commission", "pnl", "return_pct", "bars_held", "exit_reason",
]  # fmt: skip


class CacheError(ValueError):
    """A cache file that cannot be used; the message names it."""


class CacheWriteError(OSError):
    """A cache file could not be written (the OSError's errno, message and file)."""


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


@dataclass(frozen=True)
class CandleArrays:
    """The per-bar columns of a cache file as arrays, as a run has them before it builds
    any frame: the traded bars' times, their OHLCV and indicator columns (in the file's
    order), and the equity and shares held at each close."""

    index: pd.DatetimeIndex
    columns: dict[str, np.ndarray]
    equity: np.ndarray
    position: np.ndarray

    @classmethod
    def of(cls, result: SymbolResult) -> CandleArrays:
        """The arrays of a whole result's frames."""
        candles = result.candles
        return cls(
            index=candles.index,
            columns={name: candles[name].to_numpy(np.float64) for name in candles.columns},
            equity=result.equity.to_numpy(np.float64),
            position=np.asarray(result.position, np.float64),
        )


def _epoch(times) -> np.ndarray:
    """Epoch seconds (bars start on whole seconds) of an index or a column of times."""
    return epoch_ns(times) // 1_000_000_000


# The packed columns' base64 goes into the document as orjson fragments (see _packing).


def _candles(candles: CandleArrays, indicators: set[str]) -> dict[str, Any]:
    columns = {"time": pack_ints(_epoch(candles.index), fragments=True)}
    for name, values in candles.columns.items():
        pack = pack_floats if name in indicators else pack_exact
        columns[name] = pack(values, fragments=True)
    equity = np.asarray(candles.equity, np.float64)
    position = np.asarray(candles.position, np.float64)
    columns["equity"] = pack_marked(
        equity, ("position", position), ("close", candles.columns["close"]), fragments=True
    ) or pack_exact(equity, fragments=True)
    columns["position"] = pack_runs(position, fragments=True)
    return {"rows": len(candles.index), "columns": columns}


def _trades(trips: RoundTrips) -> dict[str, Any]:
    """The round trips' columns (:data:`TRADE_COLUMNS`), packed from their arrays: the same
    JSON as packing the columns of their frame."""
    from .engine import EXIT_REASONS  # the writer ran the engine: loaded already

    pnl = trips.pnl
    floats = {
        "entry_price": trips.entry_price,
        "exit_price": trips.exit_price,
        "shares": trips.shares,
        "commission": trips.commission,
        "pnl": pnl,
        "return_pct": trips.return_of(pnl, trips.entry_price, trips.shares),
    }
    columns = {}
    for name in TRADE_COLUMNS:
        if name == "side":
            columns[name] = pack_codes(["short", "long"], trips.side > 0, fragments=True)
        elif name == "exit_reason":
            columns[name] = pack_codes(EXIT_REASONS, trips.reason, fragments=True)
        elif name in ("entry_time", "exit_time"):
            columns[name] = pack_ints(_epoch(getattr(trips, name)), fragments=True)
        elif name == "bars_held":
            columns[name] = pack_ints(trips.exit_bar - trips.entry_bar, fragments=True)
        else:
            columns[name] = pack_exact(floats[name], fragments=True)
    return {"rows": len(trips), "columns": columns}


def _document(result: SymbolSummary, candles: CandleArrays) -> dict[str, Any]:
    index = candles.index
    options = result.options
    stats = {k: _json_number(v) for k, v in result.statistics.as_dict().items()}
    return {
        "schema": SCHEMA,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "symbol": result.symbol,
        "timeframe": result.config.timeframe.name,
        "timezone": str(index.tz or EXCHANGE_TZ),
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
            "start": index[0].isoformat(),
            "end": index[-1].isoformat(),
        },
        "data": {
            "file": str(result.source.path),
            "sha256": result.source.sha256,
            "source_timeframe": result.source.source_timeframe.name,
            "rows": result.source.rows,
        },
        "candles": _candles(candles, set(result.config.columns)),
        "trades": _trades(result.round_trips),
        "statistics": stats,
    }


def _encode(result: SymbolSummary, candles: CandleArrays | None = None) -> bytes:
    if candles is None:
        candles = CandleArrays.of(result)
    return orjson.dumps(_document(result, candles))


def write_cache(result: SymbolResult, cache_dir: str | Path) -> Path:
    """Write one symbol's result atomically; returns the file's path."""
    path = cache_path(cache_dir, result.config.timeframe, result.symbol)
    payload = _encode(result)
    with atomic_write(path, "wb") as handle:
        handle.write(payload)
    return path


class CacheStage:
    """Cache files written while a run goes on, moved into place only when it all succeeded.

    The files go into a hidden folder inside ``<cache_dir>/<timeframe>/`` (the same disk, so
    moving them is a rename; readers list only ``*_backtest.json`` there, so they never see
    it). :meth:`commit` renames each into place, atomically per file, in the order they were
    staged; :meth:`discard` removes the folder and any folder this stage created, so a failed
    run leaves the cache as it was. The processes of a run write with :func:`stage_file` into
    :attr:`folder`. Errors are :class:`CacheWriteError`.

    Each file is flushed to disk (fsync) before it is renamed into place, by a thread of this
    process while the run goes on: an fsync waits for the disk (5-10 ms for a file of two
    years of 5m bars), which would otherwise hold up the process computing the next symbol.
    The thread is started at the first :meth:`add`, after any worker process was forked.
    """

    def __init__(self, cache_dir: str | Path, timeframe: str | Timeframe):
        self.target = Path(cache_dir) / str(timeframe)
        self._created = []  # folders made here, deepest first
        probe = self.target
        while not probe.exists() and probe != probe.parent:
            self._created.append(probe)
            probe = probe.parent
        with _write_errors():
            self.target.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.target))
        self._names: list[str] = []
        self._flushed: list[Future] = []
        self._flusher: ThreadPoolExecutor | None = None

    def add(self, name: str) -> None:
        """Note a file that :func:`stage_file` wrote into :attr:`folder`, and start flushing
        it to disk."""
        self._names.append(name)
        if self._flusher is None:
            self._flusher = ThreadPoolExecutor(1, thread_name_prefix="cache-flush")
        self._flushed.append(self._flusher.submit(_flush, self.folder / name))

    def commit(self) -> list[Path]:
        """Rename every staged file into place once all are on disk; returns their paths."""
        written = []
        with _write_errors():
            for flushed in self._flushed:
                flushed.result()
            for name in self._names:
                path = self.target / name
                staged = self.folder / name
                with contextlib.suppress(FileNotFoundError):  # keep the old file's mode
                    os.chmod(staged, path.stat().st_mode & 0o7777)
                os.replace(staged, path)
                written.append(path)
        self.discard(keep_target=True)
        return written

    def discard(self, keep_target: bool = False) -> None:
        """Remove the staged files (and folders this stage created, unless ``keep_target``)."""
        if self._flusher is not None:
            self._flusher.shutdown(wait=True, cancel_futures=True)
            self._flusher = None
        shutil.rmtree(self.folder, ignore_errors=True)
        if not keep_target:
            for folder in self._created:
                with contextlib.suppress(OSError):
                    folder.rmdir()


@contextlib.contextmanager
def _write_errors():
    try:
        yield
    except CacheWriteError:
        raise
    except OSError as exc:
        raise CacheWriteError(exc.errno, exc.strerror, exc.filename) from None


def stage_file(
    result: SymbolResult | SymbolSummary, folder: str | Path, candles: CandleArrays | None = None
) -> str:
    """Write one symbol's cache file into a :class:`CacheStage`'s folder (from any process);
    returns its name for :meth:`CacheStage.add`, which flushes it to disk. ``candles``: the
    per-bar arrays, when ``result`` is a summary without them."""
    name = cache_path("", result.config.timeframe, result.symbol).name
    payload = _encode(result, candles)
    with _write_errors():
        fd = os.open(Path(folder) / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
    return name


def _flush(path: Path) -> None:
    """Wait until the file's bytes are on disk (whichever process wrote them)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        if doc["schema"] in PACKED:
            candles, trades = _unpack_arrays(doc, tz)
        else:
            candles, trades = _json_arrays(doc, tz)
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
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CacheError(f"{path}: damaged backtest cache ({exc!s:.80})") from None


def _times(seconds: np.ndarray, tz: str) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(seconds, np.int64), unit="s", utc=True).tz_convert(tz)


def _unpack_arrays(doc: dict[str, Any], tz: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Schemas 3 and 4: packed columns."""
    packed = doc["candles"]
    rows = int(packed["rows"])
    specs = packed["columns"]
    # A marked column (the equity) is computed from others: those come first.
    marked = {name for name, spec in specs.items() if spec["codec"] == "marked"}
    columns = {name: unpack(spec, rows) for name, spec in specs.items() if name not in marked}
    columns.update({name: unpack(specs[name], rows, columns) for name in marked})
    columns = {name: columns[name] for name in specs}  # in the file's order
    index = _times(columns.pop("time"), tz).rename("time")
    candles = pd.DataFrame(columns, index=index)
    packed = doc["trades"]
    rows = int(packed["rows"])
    columns = {name: unpack(spec, rows) for name, spec in packed["columns"].items()}
    for name in ("entry_time", "exit_time"):
        columns[name] = _times(columns[name], tz)
    trades = pd.DataFrame(columns)
    return candles, trades[[c for c in TRADE_COLUMNS if c in trades.columns]]


def _json_arrays(doc: dict[str, Any], tz: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Schemas 1 and 2: arrays as JSON lists of numbers."""
    columns = dict(doc["candles"])
    index = _times(columns.pop("time"), tz).rename("time")
    candles = pd.DataFrame(
        {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}, index=index
    )
    trades = pd.DataFrame(doc["trades"])
    for column in ("entry_time", "exit_time"):
        trades[column] = pd.to_datetime(
            trades[column].astype(np.int64), unit="s", utc=True
        ).dt.tz_convert(tz)
    return candles, trades[[c for c in TRADE_COLUMNS if c in trades.columns]]
