"""Read and write OHLCV bar files: users' plain CSVs, the project's ``*_bars_macd.csv``, and
the same two kinds as Parquet (``.parquet``: the downloader's ``--format parquet``, or a user's
own file).

Reading is forgiving about form and strict about content. Column names are matched without
regard to case (a time column called date, datetime, time or timestamp, or separate date and
time columns; open, high, low, close, volume; anything else is ignored), times may be epoch
seconds/milliseconds, ``yyyymmdd`` dates or date strings, with or without a UTC offset (naive
times are taken as America/New_York). Rows are sorted and duplicate timestamps dropped
(keeping the last, and saying how many). A bad row raises :class:`DataFileError` whose
message names the file and the line: an unparsable time, a time without a date (``09:30:00``,
which a date parser would silently put on today's date), a missing, non-numeric or
non-positive price, high below low, a negative volume; also a header that names fewer columns
than the rows hold (pandas would quietly turn the first column into the index). A Parquet
file is checked the same way, its rows counted from 1 (``row 5``) as it has no lines; its time
may also be the index pandas stored with it.

CSVs are parsed by pyarrow's reader when the file is plain (a header, one time column in ISO
8601 form, numbers, no blank lines): it reads times with their UTC offsets in C, in about a
third of the time of pandas' reader followed by ``to_datetime``. Anything else, and any file
with a bad row, goes through pandas' reader, which keeps line numbers exact and reads every
form above; so the error messages are the same either way.

Files are written with :func:`~quant_trading.atomic.atomic_write`, times in CSVs as ISO 8601
with the exchange's UTC offset (``2024-03-01T09:30:00-05:00``), in Parquet as timestamps in
America/New_York.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .bars import EXCHANGE_TZ, MACD_COLUMNS, OHLCV
from .timeframes import Timeframe, parse_timeframe

__all__ = [
    "FORMATS",
    "DataFileError",
    "ParsedBars",
    "bars_filename",
    "parse_bars",
    "read_bars",
    "write_bars",
]

log = logging.getLogger(__name__)

#: File formats the store reads and writes, by file suffix.
FORMATS = ("csv", "parquet")

_PRICES = ["open", "high", "low", "close"]
_TIME_NAMES = ("datetime", "timestamp", "date", "time")
_OFFSET_AT_END = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
# A clock time with nothing before it: "09:30", "9:30:00", "09:30:00.500", "9:30 AM".
_TIME_ONLY = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?(?:\s*[AaPp]\.?[Mm]\.?)?")
# Epoch seconds below this (1973-03-03) are not plausible bar times: such numbers are clock
# times like 930 or 93000 (HHMM, HHMMSS) without a date.
_EARLIEST_EPOCH_S = 1e8
_NO_DATE = "has no date (the time column must hold dates, or add a date column)"


class DataFileError(ValueError):
    """A bar file that cannot be used; the message names the file and, if any, the line."""


@dataclass(frozen=True)
class ParsedBars:
    """A bar file read into the canonical bars frame, with what was tidied on the way
    (rows sorted, duplicates dropped, no volume column): ``(logging level, message)`` pairs
    that :meth:`log` reports, prefixed with the file's path."""

    bars: pd.DataFrame
    path: Path
    notes: tuple[tuple[int, str], ...] = ()

    def log(self) -> None:
        """Log the notes, as :func:`read_bars` does each time it reads the file."""
        for level, message in self.notes:
            log.log(level, "%s: %s", self.path, message)


def bars_filename(symbol: str, timeframe: Timeframe | str, fmt: str = "csv") -> str:
    """The project's file name for a symbol's bars: ``AAPL_5m_bars_macd.csv`` (or ``.parquet``
    with ``fmt="parquet"``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown bar file format {fmt!r} (use {' or '.join(FORMATS)})")
    return f"{symbol.upper()}_{parse_timeframe(timeframe).name}_bars_macd.{fmt}"


def read_bars(
    path: str | os.PathLike,
    tz: str = EXCHANGE_TZ,
    indicators: Sequence[str] = MACD_COLUMNS,
    *,
    content: bytes | None = None,
) -> pd.DataFrame:
    """Read a bar CSV or Parquet file into the canonical bars frame (see
    :mod:`quant_trading.bars`).

    The ``indicators`` columns (by default ``MACD``, ``Signal`` and ``Hist``) are kept when
    the file has them; other extra columns are ignored. ``content``: the file's bytes when the
    caller has read them already (they are parsed instead of the file, e.g. the very bytes a
    checksum was taken of). Raises :class:`DataFileError` for a missing file or any bad row.
    """
    parsed = parse_bars(path, tz, indicators, content=content)
    parsed.log()
    return parsed.bars


def parse_bars(
    path: str | os.PathLike,
    tz: str = EXCHANGE_TZ,
    indicators: Sequence[str] = MACD_COLUMNS,
    *,
    content: bytes | None = None,
) -> ParsedBars:
    """:func:`read_bars` without the logging: the frame and the notes it would log."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        raw = _read_parquet(path, content)
        return _from_table(path, raw, tz, indicators, first_row=1, unit="row")
    data = _file_bytes(path, content)
    header = _header(path, data)
    sep = max((",", ";", "\t"), key=header.count)
    typed = _arrow_table(data, sep)
    if typed is not None:
        try:
            return _from_table(path, typed, tz, indicators)
        except DataFileError:
            pass  # pandas' reader below sees the rows as written and names the problem
    return _from_table(path, _read_table(path, data, sep), tz, indicators)


def write_bars(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a bars frame atomically: ``time``, OHLCV, then its other (indicator) columns; a
    CSV (times in ISO 8601 with UTC offset) or, for a ``.parquet`` path, Parquet. Returns the
    path."""
    path = Path(path)
    columns = [*OHLCV, *(c for c in frame.columns if c not in OHLCV)]
    out = frame[columns].copy()
    volume = out["volume"].to_numpy()
    if np.isfinite(volume).all() and (volume == np.round(volume)).all():
        out["volume"] = volume.astype(np.int64)  # "1200", not "1200.0": shares are whole
    if path.suffix.lower() == ".parquet":
        _write_parquet(out, path)
        return path
    out.insert(0, "time", _iso_times(frame.index))
    with atomic_write(path) as handle:
        out.to_csv(handle, index=False, lineterminator="\n")
    return path


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # The time as a column, not pandas' index metadata: other tools (polars, DuckDB, R) see
    # a plain "time" column of timestamps with the zone.
    table = pa.Table.from_pandas(frame.rename_axis("time").reset_index(), preserve_index=False)
    with atomic_write(path, "wb") as handle:
        pq.write_table(table, handle)


def _from_table(
    path: Path,
    raw: pd.DataFrame,
    tz: str,
    indicators: Sequence[str],
    first_row: int = 2,
    unit: str = "line",
) -> ParsedBars:
    """Check and convert a table as read (text or typed columns) into the bars frame.
    ``first_row``: the line (CSV: 2, below the header) or row number of the table's first
    row, for the messages."""
    columns = {str(name).strip().lower(): name for name in raw.columns}
    missing = [name for name in _PRICES if name not in columns]
    time_text = _time_column(raw, columns)
    if time_text is None:
        missing.insert(0, "time (date, datetime, time or timestamp)")
    if missing and not any(re.search("[a-z]", name) for name in columns):
        raise DataFileError(
            f"{path}: no header row; the first line must name the columns "
            "(time, open, high, low, close, volume)"
        )
    if missing:
        found = ", ".join(str(c) for c in raw.columns)
        raise DataFileError(f"{path}: missing column {', '.join(missing)} (found: {found})")

    # Blank lines are kept by the reader so that row i is line i + 2 of the file (header = 1).
    blank = raw.isna().all(axis=1).to_numpy()
    lines = np.arange(len(raw)) + first_row
    if blank.any():
        raw, time_text, lines = raw[~blank], time_text[~blank], lines[~blank]
    if raw.empty:
        raise DataFileError(f"{path}: no data rows")
    undated = _first_undated(time_text)
    if undated is not None:
        raise DataFileError(
            f"{path}, {unit} {lines[undated]}: time {str(time_text.iloc[undated]).strip()!r} "
            + _NO_DATE
        )

    times = _parse_times(time_text, tz)
    bad_time = times.isna().to_numpy()
    values = {}
    problems: list[tuple[int, str]] = []
    if bad_time.any():
        i = int(np.argmax(bad_time))
        problems.append((i, f"cannot read time {time_text.iloc[i]!r}"))
    for name in [*_PRICES, "volume", *indicators]:
        if name.lower() not in columns:
            continue
        column = raw[columns[name.lower()]]
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
        values[name] = numbers
        if name in indicators:
            continue  # indicators are recomputed anyway; blanks are normal during warm-up
        bad = (
            np.isnan(numbers) if name in _PRICES else np.isnan(numbers) & column.notna().to_numpy()
        )
        _first(problems, bad, lambda i, c=column, n=name: _not_a_number(n, c.iloc[i]))
        if name in _PRICES:
            _first(
                problems, numbers <= 0, lambda i, n=name, v=numbers: f"{n} {v[i]:g} is not positive"
            )
        else:
            _first(problems, numbers < 0, lambda i, v=numbers: f"volume {v[i]:g} is negative")
    _first(
        problems,
        values["high"] < values["low"],
        lambda i: f"high {values['high'][i]:g} is below low {values['low'][i]:g}",
    )
    if problems:
        row, message = min(problems)
        raise DataFileError(f"{path}, {unit} {lines[row]}: {message}")

    notes: list[tuple[int, str]] = []
    if "volume" not in values:
        notes.append((logging.INFO, "no volume column; volume set to 0"))
        values["volume"] = np.zeros(len(raw))
    else:
        values["volume"] = np.nan_to_num(values["volume"])
    frame = pd.DataFrame(
        {name: values[name] for name in [*OHLCV, *indicators] if name in values},
        index=pd.DatetimeIndex(times, name="time"),
    )
    return ParsedBars(_tidy(frame, notes), path, tuple(notes))


def _file_bytes(path: Path, content: bytes | None) -> bytes:
    if content is not None:
        return content
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read file ({exc})") from None


def _header(path: Path, data: bytes) -> str:
    """The first line, as a text file's readline() would give it."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    try:
        header = data[: min(ends) if ends else len(data)].decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: cannot read file ({exc})") from None
    if not header.strip():
        raise DataFileError(f"{path}: file is empty")
    return header


def _read_table(path: Path, data: bytes, sep: str) -> pd.DataFrame:
    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            sep=sep,
            encoding="utf-8-sig",
            skip_blank_lines=False,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise DataFileError(f"{path}: not a readable CSV ({detail})") from None
    if not isinstance(raw.index, pd.RangeIndex):
        # Rows with more values than the header has names: pandas silently makes the first
        # values the index, so a "Time,Open,..." header over "2006-01-02,09:05:00,..." rows
        # would drop the dates and read the times alone.
        extra = raw.index.nlevels
        raise DataFileError(
            f"{path}, line 2: {len(raw.columns) + extra} values but the header names "
            f"{len(raw.columns)} columns (is a column name missing from the first line?)"
        )
    return raw


def _arrow_table(data: bytes, sep: str) -> pd.DataFrame | None:
    """The CSV read by pyarrow with typed columns, or None when it is not plain enough for
    the result to be certainly what pandas' reader gives: then that reader decides.

    Plain means: no blank line (pyarrow skips them, which would shift line numbers), every
    row as long as the header (pyarrow refuses others), distinct column names, and the time,
    price and volume columns parsed by pyarrow as timestamps and numbers without a gap.
    """
    if b"\n\n" in data or b"\n\r\n" in data or b"\r\r" in data:
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:  # pragma: no cover - a dependency; pandas' reader still works
        return None
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data), parse_options=pa_csv.ParseOptions(delimiter=sep)
        )
    except (pa.ArrowException, ValueError):
        return None
    names = [name.strip().lower() for name in table.column_names]
    if len(set(names)) != len(names) or not set(_PRICES) <= set(names):
        return None
    times = [name for name in _TIME_NAMES if name in names]
    if not times or {"date", "time"} <= set(times) and not {"datetime", "timestamp"} & set(times):
        return None  # no time column, or a date and a time column to join: pandas' way
    columns = [times[0], *_PRICES, *(["volume"] if "volume" in names else [])]
    for name in columns:
        column = table.column(names.index(name))
        kind = column.type
        typed = pa.types.is_timestamp(kind) if name == times[0] else (
            pa.types.is_integer(kind) or pa.types.is_floating(kind)
        )  # fmt: skip
        if not typed or column.null_count:
            return None
    return table.to_pandas()


def _read_parquet(path: Path, content: bytes | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.py_buffer(content) if content is not None else path)
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except (OSError, pa.ArrowException) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataFileError(f"{path}: not a readable Parquet file ({detail})") from None
    frame = table.to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        # The time kept as pandas' index (DataFrame.to_parquet's default): make it a column.
        if isinstance(frame.index, pd.DatetimeIndex) and frame.index.name is None:
            frame.index.name = "time"
        frame = frame.reset_index()
    return frame


def _time_column(raw: pd.DataFrame, columns: dict[str, str]) -> pd.Series | None:
    """The time of each row as a Series (strings or numbers), or None if there is none."""
    if "date" in columns and "time" in columns and not {"datetime", "timestamp"} & set(columns):
        date = raw[columns["date"]].astype("string").str.strip()
        return date + " " + raw[columns["time"]].astype("string").str.strip()
    for name in _TIME_NAMES:
        if name in columns:
            return raw[columns[name]]
    return None


def _first_undated(text: pd.Series) -> int | None:
    """Position of the first time that has no date (a bare clock time), or None.

    Text is judged on its first value, like :func:`_parse_times` (a file is written in one
    form; a lone row of another form fails to parse and is reported by line anyway). Numbers
    are all checked: epoch seconds before 1973 are clock times such as 93000, not dates.
    """
    if pd.api.types.is_datetime64_any_dtype(text):
        return None  # typed timestamps (pyarrow's reader, Parquet) always carry a date
    sample = text.dropna()
    if sample.empty:
        return None
    if pd.api.types.is_numeric_dtype(text):
        first = float(sample.iloc[0])
        if 1e7 <= first < 1e8:  # yyyymmdd dates
            return None
        small = text.to_numpy(np.float64) < _EARLIEST_EPOCH_S
        return int(np.argmax(small)) if small.any() else None
    first = str(sample.iloc[0]).strip()
    if _TIME_ONLY.fullmatch(first):
        return int(text.index.get_loc(sample.index[0]))
    if re.fullmatch(r"\d+(\.\d+)?", first):  # numbers read as text (a bad row elsewhere)
        value = float(first)
        if not 1e7 <= value < 1e8 and value < _EARLIEST_EPOCH_S:
            return int(text.index.get_loc(sample.index[0]))
    return None


def _parse_times(text: pd.Series, tz: str) -> pd.Series:
    """Parse a time column to tz-aware timestamps in ``tz``; unparsable entries become NaT."""
    if isinstance(text.dtype, pd.DatetimeTZDtype):
        return text.dt.as_unit("ns").dt.tz_convert(tz)
    if pd.api.types.is_datetime64_dtype(text):
        return _localize(text.dt.as_unit("ns"), tz)
    if pd.api.types.is_numeric_dtype(text):
        return _parse_numeric_times(text.to_numpy(np.float64), tz)
    strings = text.astype("string")
    sample = strings.dropna()
    if sample.empty:
        return pd.Series(pd.NaT, index=text.index, dtype=f"datetime64[ns, {tz}]")
    first = sample.iloc[0].strip()
    # Judged on the first value (per-row string checks would cost more than the parse); a row
    # of another form then fails to parse and is reported by line.
    if re.fullmatch(r"\d+(\.\d+)?", first):  # epoch numbers or yyyymmdd, with a bad row
        return _parse_numeric_times(pd.to_numeric(strings, errors="coerce").to_numpy(), tz)
    if re.search(r"\s\s", first) or first != sample.iloc[0]:  # IB's "20240301  09:30:00"
        strings = strings.str.strip().str.replace(r"\s+", " ", regex=True)
    aware = bool(_OFFSET_AT_END.search(first))
    parsed = None
    for fmt in ("ISO8601", None):
        try:
            with warnings.catch_warnings():
                # "Could not infer format": rows that do not parse are reported by line below,
                # so pandas' warning would only add noise to a one-line error.
                warnings.simplefilter("ignore", UserWarning)
                attempt = pd.to_datetime(strings, utc=aware, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            continue
        if parsed is None or attempt.isna().sum() < parsed.isna().sum():
            parsed = attempt
        if not parsed.isna().any():
            break
    if parsed is None:
        return pd.Series(pd.NaT, index=text.index, dtype=f"datetime64[ns, {tz}]")
    parsed = parsed.dt.as_unit("ns")
    if aware:
        return parsed.dt.tz_convert(tz)
    return _localize(parsed, tz)


def _parse_numeric_times(numbers: np.ndarray, tz: str) -> pd.Series:
    finite = numbers[np.isfinite(numbers)]
    if finite.size and (finite >= 1e7).all() and (finite < 1e8).all():  # yyyymmdd dates
        text = pd.Series(numbers).map(lambda v: f"{v:.0f}" if np.isfinite(v) else "")
        return _localize(pd.to_datetime(text, format="%Y%m%d", errors="coerce"), tz)
    # Epoch in seconds, milliseconds, microseconds or nanoseconds, judged by magnitude.
    scale = 1
    magnitude = np.nanmax(np.abs(finite)) if finite.size else 0
    for limit, factor in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3)):
        if magnitude < limit:
            scale = factor
            break
    ns = pd.array(np.round(numbers * scale), dtype="Int64")
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True, errors="coerce")).dt.tz_convert(tz)


def _localize(naive: pd.Series, tz: str) -> pd.Series:
    """Attach ``tz`` to naive wall times; DST-ambiguous or non-existent ones become NaT."""
    try:
        return naive.dt.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except (ValueError, TypeError):  # 'infer' needs order; fall back to flagging them
        return naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")


def _not_a_number(name: str, value) -> str:
    if pd.isna(value) or not str(value).strip():
        return f"{name} is missing"
    return f"{name} {str(value).strip()!r} is not a number"


def _first(problems: list[tuple[int, str]], mask: np.ndarray, describe) -> None:
    if mask.any():
        i = int(np.argmax(mask))
        problems.append((i, describe(i)))


def _tidy(frame: pd.DataFrame, notes: list[tuple[int, str]]) -> pd.DataFrame:
    """Sort by time and drop duplicate timestamps (keeping the last), noting what changed."""
    if not frame.index.is_monotonic_increasing:
        notes.append((logging.WARNING, "rows were out of time order; sorted"))
        frame = frame.sort_index(kind="stable")
    duplicated = frame.index.duplicated(keep="last")
    if duplicated.any():
        notes.append((logging.WARNING, f"dropped {int(duplicated.sum())} row(s) with a "
                      "duplicate timestamp (kept the last)"))  # fmt: skip
        frame = frame[~duplicated]
    frame.attrs["duplicates_dropped"] = int(duplicated.sum())
    return frame


def _iso_times(index: pd.DatetimeIndex) -> np.ndarray:
    """ISO 8601 strings with the UTC offset, vectorized (Timestamp.isoformat is per row)."""
    local = index.tz_localize(None)
    offsets = (local.as_unit("ns").asi8 - index.as_unit("ns").asi8) // (60 * 10**9)
    offset_text = {
        m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
        for m in set(offsets.tolist())
    }
    stamps = local.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object)
    return stamps + np.array([offset_text[m] for m in offsets.tolist()], dtype=object)
