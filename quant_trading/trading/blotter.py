"""A paper trader's folder (``paper_trading/`` by default): what it did, what it saw and how
it was set up, so that a restart goes on where it stopped and the parity report can re-run
the backtest on exactly the same bars.

* ``blotter.csv``: one row per simulated order, never changed once written;
* ``state.json``: the strategy, its parameters, the costs and sizing, and each book's window
  start (the first bar it traded): a restart with other settings is refused, since the
  blotter would no longer be what they trade;
* ``bars/<SYMBOL>_<tf>_bars_macd.csv``: every finished bar each book saw, from its first
  warm-up bar (``run_backtest --data-dir paper_trading/bars`` reads them as they are);
* ``posted.csv``: the orders the dashboard has accepted (or refused for good).

Every file is written whole to a temporary file and renamed into place (atomic), so a
killed paper trader leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from ..atomic import atomic_write
from ..backtesting.runner import BacktestOptions
from ..bars import EXCHANGE_TZ
from .orders import PaperFill

__all__ = ["Blotter", "PaperFolder", "PaperSettings", "PaperStateError", "BookLedger", "ledger"]

_COLUMNS = tuple(f.name for f in fields(PaperFill)) + ("recorded_at",)
_STATE_VERSION = 1


class PaperStateError(ValueError):
    """A paper trading folder that cannot be used as it is; the message names the file."""


@dataclass(frozen=True)
class PaperSettings:
    """What a paper trader's fills depend on, besides the bars: a restart must use the same."""

    strategy: str
    params: dict[str, Any]
    tag: str
    capital: float
    commission: float
    slippage: float
    allocation: float
    size: float | None
    fractional: bool
    session_close: bool

    def backtest_options(self) -> BacktestOptions:
        """The backtest's options these settings mean (each book adds its window start)."""
        return BacktestOptions.of(
            capital=self.capital,
            commission=self.commission,
            slippage=self.slippage,
            allocation=self.allocation,
            size=self.size,
            fractional=self.fractional,
            flat_at_close=self.session_close,
        )

    def describe(self) -> str:
        """One line: ``MACD FAST=12 SLOW=26 SIGNAL=9, capital 100000 ...``."""
        params = " ".join(f"{k}={v}" for k, v in self.params.items())
        sizing = f"size {self.size:g}" if self.size else f"allocation {self.allocation:g}"
        return (
            f"{self.strategy} {params}, capital {self.capital:g}, commission "
            f"{self.commission:g}, slippage {self.slippage:g}, {sizing}"
            + (", fractional" if self.fractional else "")
            + (", session close" if self.session_close else "")
        )


class PaperFolder:
    """The files of one paper trading folder (see the module doc)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.blotter = Blotter(self.path / "blotter.csv")
        self.state_path = self.path / "state.json"
        self.posted_path = self.path / "posted.csv"
        self.bars_dir = self.path / "bars"

    # -- state.json
    def load_state(self) -> tuple[PaperSettings | None, dict[str, pd.Timestamp]]:
        """The settings and each book's window start (``"AAPL 5m"`` -> time), or
        (None, {}) for a new folder."""
        if not self.state_path.exists():
            return None, {}
        try:
            doc = json.loads(self.state_path.read_text(encoding="utf-8"))
            if doc.get("version") != _STATE_VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {_STATE_VERSION}")
            settings = PaperSettings(**doc["settings"])
            starts = {k: _time(v) for k, v in doc["books"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise PaperStateError(f"{self.state_path}: unreadable ({exc})") from None
        return settings, starts

    def save_state(self, settings: PaperSettings, starts: Mapping[str, pd.Timestamp]) -> None:
        """Write state.json (atomic)."""
        doc = {
            "version": _STATE_VERSION,
            "settings": asdict(settings),
            "books": {k: v.isoformat() for k, v in starts.items()},
        }
        with atomic_write(self.state_path) as handle:
            json.dump(doc, handle, indent=2)
            handle.write("\n")

    def window_starts(self, settings: PaperSettings) -> dict[str, pd.Timestamp]:
        """Each book's window start, for a run with ``settings``; a folder made with other
        settings is refused (one line)."""
        stored, starts = self.load_state()
        if stored is not None and stored != settings:
            raise PaperStateError(
                f"{self.state_path} was made with {stored.describe()}; this run has "
                f"{settings.describe()}: use the same settings or another --dir"
            )
        return starts

    # -- posted.csv
    def posted(self) -> dict[str, str]:
        """client_order_id -> outcome (``posted``, or ``refused: ...``) of every post done."""
        if not self.posted_path.exists():
            return {}
        with self.posted_path.open(encoding="utf-8", newline="") as handle:
            return {row["client_order_id"]: row["outcome"] for row in csv.DictReader(handle)}

    def save_posted(self, outcomes: Mapping[str, str]) -> None:
        """Write posted.csv (atomic)."""
        with atomic_write(self.posted_path) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["client_order_id", "outcome"])
            writer.writerows(outcomes.items())


class Blotter:
    """``blotter.csv``: the orders, in the order they were recorded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fills: list[PaperFill] | None = None
        self._recorded: list[str] = []

    def fills(self) -> list[PaperFill]:
        """Every order recorded (read once, then kept)."""
        if self._fills is None:
            self._fills, self._recorded = _read(self.path)
        return list(self._fills)

    def ids(self) -> dict[str, PaperFill]:
        """client_order_id -> order."""
        return {f.client_order_id: f for f in self.fills()}

    def append(self, new: Iterable[PaperFill], recorded_at: pd.Timestamp) -> None:
        """Add orders (the whole file is rewritten, atomically)."""
        new = list(new)
        if not new:
            return
        fills = self.fills() + new
        recorded = self._recorded + [recorded_at.isoformat()] * len(new)
        with atomic_write(self.path) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(_COLUMNS)
            for fill, at in zip(fills, recorded, strict=True):
                writer.writerow([*_cells(fill), at])
        self._fills, self._recorded = fills, recorded


def _cells(fill: PaperFill) -> list[str]:
    out = []
    for f in fields(PaperFill):
        value = getattr(fill, f.name)
        out.append(value.isoformat() if isinstance(value, pd.Timestamp) else repr(value)
                   if isinstance(value, float) else str(value))  # fmt: skip
    return out


def _read(path: Path) -> tuple[list[PaperFill], list[str]]:
    if not path.exists():
        return [], []
    text = path.read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return [], []
    if tuple(header) != _COLUMNS:
        raise PaperStateError(f"{path}: not a paper blotter (header {','.join(header)!r})")
    fills, recorded = [], []
    for number, row in enumerate(reader, start=2):
        try:
            if len(row) != len(_COLUMNS):
                raise ValueError(f"{len(row)} fields, expected {len(_COLUMNS)}")
            fills.append(_fill(dict(zip(_COLUMNS, row, strict=True))))
            recorded.append(row[-1])
        except ValueError as exc:
            raise PaperStateError(f"{path}, row {number}: {exc}") from None
    return fills, recorded


def _fill(row: dict[str, str]) -> PaperFill:
    if row["action"] not in ("BUY", "SELL"):
        raise ValueError(f"action {row['action']!r}: BUY or SELL")
    numbers = {k: float(row[k]) for k in ("shares", "price", "commission", "position")}
    if not all(math.isfinite(v) for v in numbers.values()):
        raise ValueError("a number is not finite")
    return PaperFill(
        client_order_id=row["client_order_id"],
        strategy=row["strategy"],
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        bar_time=_time(row["bar_time"]),
        time=_time(row["time"]),
        action=row["action"],
        reason=row["reason"],
        **numbers,
    )


def _time(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    if stamp.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return stamp.tz_convert(EXCHANGE_TZ)


@dataclass(frozen=True)
class BookLedger:
    """A book's position rebuilt from its orders in the blotter (average cost)."""

    position: float
    average_price: float  # of the open position, NaN when flat
    realized: float  # closed P&L, commissions included
    orders: int


def ledger(fills: Iterable[PaperFill]) -> BookLedger:
    """The position, its average price and the realized P&L that ``fills`` (one book's, in
    order) leave. As the engine counts it, an opening order's commission is realized when
    the position closes (until then it is part of the open position's P&L)."""
    position = cost = fees = realized = 0.0  # fees: the open position's, not realized yet
    count = 0
    for fill in fills:
        count += 1
        signed = fill.shares if fill.action == "BUY" else -fill.shares
        if position == 0 or (position > 0) == (signed > 0):  # opening or adding
            cost += signed * fill.price
            fees += fill.commission
            position += signed
            continue
        closing = min(abs(signed), abs(position))
        share = closing / abs(position)
        average = cost / position
        realized += closing * (fill.price - average) * (1 if position > 0 else -1)
        realized -= fill.commission * closing / abs(signed) + fees * share
        cost, fees = cost * (1 - share), fees * (1 - share)
        position += signed
        if abs(position) < 1e-12:
            position = cost = fees = 0.0
        elif closing < abs(signed):  # flipped past zero in one order: the rest opens
            cost = position * fill.price
            fees = fill.commission * (abs(signed) - closing) / abs(signed)
    average_price = cost / position if position else math.nan
    return BookLedger(position, average_price, realized, count)
