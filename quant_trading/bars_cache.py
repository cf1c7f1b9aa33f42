"""The parsed-bars cache: a CSV's bars kept as Arrow beside it, so a re-run skips the parse.

Parsing a two-year 5-minute CSV costs 20-50 ms; loading the same bars from an Arrow IPC file
(Feather v2, uncompressed) costs about 1 ms. The loader
(:mod:`quant_trading.backtesting.datafiles`) reads every CSV through :func:`load_bars`.

Where: ``<data folder>/.qt_cache/<file name>.arrow``, one per CSV, replaced when the CSV
changes, so the folder never grows past one entry per file. A dot folder stays out of
``ls`` and file dialogs; it holds a ``CACHEDIR.TAG`` so backup tools that honour the tag skip
it; deleting it is always safe. A data folder that cannot be written (read-only media, a
shared folder) works as before, without a cache: the failed write is logged at debug level.

Never stale: an entry is used only if it was made from the very bytes there now. The entry
records the SHA-256 of the bytes it was parsed from with the file's size and mtime (of the
same open file, so they describe what was hashed), the time zone, and a fingerprint of the
parser (this module's schema, csv_store's source, pandas' and pyarrow's versions). Any
difference rebuilds the entry: new content (even at the same size with the mtime put back by
``os.utime``), a new size, a new mtime (a ``touch`` costs one parse), or a new parser.

Size and mtime alone do not prove the content (copy tools keep mtimes, ``os.utime`` puts
them back, and a file rewritten within the file system's timestamp step keeps its mtime), so
a load hashes the file unless stat vouches for it, the way git decides a file is unchanged
without reading it: the entry also records what stat said when the file was hashed (size,
mtime, ctime, inode, device), and only if all five are the same now, and the file's last
change was already at least :data:`SETTLED_SECONDS` old when it was hashed, is the file
taken as unchanged without reading it. Every write to a file moves its ctime, which no
program can set back (the machine's clock stamps it); only a change within the same
timestamp step as the hash could keep it, so a file hashed less than :data:`SETTLED_SECONDS`
after its last change (more than any file system's step; FAT's is 2 s) is hashed on each
load, until a load finds it settled and records that. A copied file (another inode) or a
renamed one (a new ctime) is hashed once. Hashing costs about 1 ms per MB (3 ms for two
years of 5m bars, 40-60 ms for ten years of 1m), a parse 10-20 ms per MB; the backtest
reports the SHA-256 of each data file, which the entry keeps. On a miss the bars are parsed
from the bytes whose hash goes into the new entry, so a file changed mid-read cannot pair
old bars with a new hash.

Parquet input files are not cached (reading them is already about as fast as the cache).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import csv_store
from .atomic import atomic_write
from .bars import EXCHANGE_TZ, OHLCV

__all__ = ["CACHE_FOLDER", "LoadedBars", "cache_file", "load_bars"]

log = logging.getLogger(__name__)

#: The cache's folder inside a data folder.
CACHE_FOLDER = ".qt_cache"
SCHEMA = "quant_trading.parsed-bars/3"  # 3: uncompressed
#: How long after its last change a file must have been hashed for stat to vouch for it later.
SETTLED_SECONDS = 2.0
_META_KEY = b"quant_trading"
# https://bford.info/cachedir/: tar --exclude-caches, borg, restic and others skip the folder.
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder holds quant_trading's parsed-bars cache; it is rebuilt when missing.\n"
)


@dataclass(frozen=True)
class LoadedBars:
    """A bar file's OHLCV bars (the canonical frame of :func:`~quant_trading.csv_store.read_bars`),
    the SHA-256 of the bytes they came from, and whether the cache served them."""

    bars: pd.DataFrame
    sha256: str
    cached: bool = False


@dataclass(frozen=True)
class _Seen:
    """What stat says of a file; the same five values later mean it was not written since
    (when :meth:`settled` at the time it was hashed)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, status: os.stat_result) -> _Seen:
        return cls(status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino,
                   status.st_dev)  # fmt: skip

    def settled(self, before_ns: int) -> bool:
        """Whether the file's last change was :data:`SETTLED_SECONDS` older than
        ``before_ns`` (a time taken before this stat): then any later change has other times."""
        return max(self.mtime_ns, self.ctime_ns) + int(SETTLED_SECONDS * 1e9) <= before_ns

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def cache_file(path: str | os.PathLike) -> Path:
    """Where the cache entry of the bar file ``path`` lives."""
    path = Path(path)
    return path.parent / CACHE_FOLDER / f"{path.name}.arrow"


def load_bars(path: str | os.PathLike, tz: str = EXCHANGE_TZ) -> LoadedBars:
    """Read the OHLCV bars of a CSV or Parquet file, through the cache for a CSV.

    Same result, same warnings and same :class:`~quant_trading.csv_store.DataFileError` as
    ``read_bars(path, tz, indicators=())``; a file with a bad row is never cached, so it
    fails the same way every time.
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        content, _ = _read(path)
        bars = csv_store.read_bars(path, tz, (), content=content)
        return LoadedBars(bars, hashlib.sha256(content).hexdigest())
    entry = cache_file(path)
    # Stat alone, when it vouches for the file (see the module's docstring).
    seen = _stat(path)
    found = _read_entry(entry, path, lambda meta: _vouches(meta, path, seen, tz))
    if found is not None:
        parsed, meta = found
        parsed.log()
        return LoadedBars(parsed.bars, meta["key"]["sha256"], cached=True)
    # Else hashed in chunks: a hit then never holds the whole file in memory (60 MB for ten
    # years of 1m bars).
    before_ns = time.time_ns()
    sha256, seen = _digest(path)
    key = _key(path, seen, sha256, tz)
    settled = seen if seen.settled(before_ns) else None
    found = _read_entry(entry, path, lambda meta: meta.get("key") == key)
    if found is not None:
        parsed, meta = found
        if settled is not None:  # stat can vouch from now on
            _write_entry(entry, key, settled, parsed)
        parsed.log()
        return LoadedBars(parsed.bars, sha256, cached=True)
    # A miss reads the file again, and the key is that of the bytes parsed, should the file
    # have changed in between.
    before_ns = time.time_ns()
    content, seen = _read(path)
    sha256 = hashlib.sha256(content).hexdigest()
    parsed = csv_store.parse_bars(path, tz, (), content=content)
    parsed.log()
    _write_entry(entry, _key(path, seen, sha256, tz), seen if seen.settled(before_ns) else None,
                 parsed)  # fmt: skip
    return LoadedBars(parsed.bars, sha256)


def _key(path: Path, seen: _Seen, sha256: str, tz: str) -> dict:
    """What a cache entry must have been made from to serve ``path`` now."""
    return {
        "schema": SCHEMA,
        "source": path.name,
        "size": seen.size,
        "mtime_ns": seen.mtime_ns,
        "sha256": sha256,
        "tz": tz,
        "parser": _parser_fingerprint(),
    }


def _vouches(meta: dict, path: Path, seen: _Seen, tz: str) -> bool:
    """Whether stat shows the file the entry was made from, unchanged since."""
    key = meta.get("key")
    if not isinstance(key, dict) or meta.get("seen") != seen.as_dict():
        return False
    return key == _key(path, seen, key.get("sha256"), tz)


@contextlib.contextmanager
def _reading(path: Path):
    """OSError as the DataFileError that names the file."""
    try:
        yield
    except FileNotFoundError:
        raise csv_store.DataFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise csv_store.DataFileError(f"{path}: cannot read file ({exc})") from None


def _stat(path: Path) -> _Seen:
    with _reading(path):
        return _Seen.of(os.stat(path))


def _digest(path: Path) -> tuple[str, _Seen]:
    """The file's SHA-256, and what stat said of the file that was hashed."""
    digest = hashlib.sha256()
    with _reading(path), open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest(), _Seen.of(status)


def _read(path: Path) -> tuple[bytes, _Seen]:
    """The file's bytes, and what stat said of the file they were read from."""
    with _reading(path), open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        return handle.read(), _Seen.of(status)


@functools.cache
def _parser_fingerprint() -> str:
    """Changes whenever the code that turns a CSV into bars may have changed."""
    import pyarrow

    digest = hashlib.sha256(f"{pd.__version__} {pyarrow.__version__} {np.__version__}".encode())
    with contextlib.suppress(OSError):  # installed without its source: the versions must do
        digest.update(Path(csv_store.__file__).read_bytes())
    return digest.hexdigest()[:16]


def _read_entry(
    entry: Path, path: Path, wanted: Callable[[dict], bool]
) -> tuple[csv_store.ParsedBars, dict] | None:
    """The cached bars and the entry's metadata if ``wanted(metadata)``, else None."""
    import pyarrow as pa

    try:
        with pa.OSFile(str(entry)) as source:
            reader = pa.ipc.open_file(source)
            meta = json.loads((reader.schema.metadata or {}).get(_META_KEY, b"{}"))
            if not isinstance(meta, dict) or not wanted(meta):
                log.debug("%s: cache entry is out of date", path.name)
                return None
            table = reader.read_all()
        times = table.column("time").to_numpy().astype("datetime64[ns]")
        tz = meta["key"]["tz"]
        index = pd.DatetimeIndex(times, name="time").tz_localize("UTC").tz_convert(tz)
        frame = pd.DataFrame({c: table.column(c).to_numpy() for c in OHLCV}, index=index)
        frame.attrs.update(meta["attrs"])
        notes = tuple((int(level), str(text)) for level, text in meta["notes"])
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.debug("%s: unreadable cache entry %s (%s); parsing again", path.name, entry, exc)
        return None
    return csv_store.ParsedBars(frame, path, notes), meta


def _write_entry(entry: Path, key: dict, seen: _Seen | None, parsed: csv_store.ParsedBars) -> None:
    """Write the entry; ``seen``: what stat said of the hashed file, if it was settled.
    Uncompressed (1.9 MB for two years of 5m bars, 80% of the CSV): LZ4 would halve it, but
    decompressing costs more than the rest of a load, and a run of many symbols loads many
    (schema 2 was LZ4-compressed)."""
    import pyarrow as pa

    bars = parsed.bars
    times = bars.index.tz_convert("UTC").tz_localize(None).as_unit("ns")
    table = pa.table(
        {"time": pa.array(times.to_numpy()), **{c: bars[c].to_numpy(np.float64) for c in OHLCV}}
    )
    meta = {
        "key": key,
        "seen": None if seen is None else seen.as_dict(),
        "attrs": dict(bars.attrs),
        "notes": [list(n) for n in parsed.notes],
    }
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    try:
        _make_folder(entry.parent)
        with (
            atomic_write(entry, "wb") as handle,
            pa.ipc.new_file(handle, table.schema) as out,
        ):
            out.write_table(table)
    except OSError as exc:
        # A read-only data folder: the bars were parsed anyway, only the next run pays again.
        log.debug("cannot write the parsed-bars cache %s (%s); going on without it", entry, exc)


def _make_folder(folder: Path) -> None:
    if folder.is_dir():
        return
    folder.mkdir(exist_ok=True)
    with atomic_write(folder / "CACHEDIR.TAG") as handle:
        handle.write(_CACHEDIR_TAG)
