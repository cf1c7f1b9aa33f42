"""Download long ranges of historical bars from TWS into ``<SYMBOL>_<tf>_bars_macd.csv``
(or ``.parquet``: ``HistoryDownloader(file_format="parquet")``).

The range is cut into the fewest requests IB allows (:mod:`.chunks`), sent through a pacing
limiter, retried after a pacing violation, and merged into the existing file: new bars are
added, overlapping ones replaced by the newer download, MACD recomputed over the whole file,
and the file rewritten atomically after every chunk. A Parquet download into a folder that
holds only the CSV of the same name starts from the CSV's bars, so switching formats never
loses history (the CSV is left as it is). A small progress file beside it records
which chunks are done, so an interrupted run (Ctrl-C, a dropped connection) resumes where it
stopped when the same command runs again.

"Now" (the default end) is TWS's clock (``reqCurrentTime``), not this machine's: TWS serves
data up to its own present, and the simulator's present is its replayed market time.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import pandas as pd
from tqdm import tqdm

from ..atomic import atomic_write
from ..bars import EXCHANGE_TZ, OHLCV, with_macd
from ..core.ibkr_connection import IBKRConnection, RequestError, RequestTimeout, stock
from ..core.pacing import PacingLimiter, PacingRules
from ..csv_store import FORMATS, DataFileError, bars_filename, read_bars
from ..timeframes import Timeframe, parse_timeframe
from .chunks import (
    Chunk,
    DurationError,
    check_bar_size,
    ib_time,
    parse_duration,
    plan_chunks,
    range_start,
)

__all__ = [
    "DownloadRequest",
    "DownloadResult",
    "HistoryDownloader",
    "OutputDirError",
    "check_output_dir",
]

log = logging.getLogger(__name__)

#: IB refuses bars of 30 seconds or less older than six months.
SMALL_BAR_SECONDS = 30
#: After a 162 pacing answer: wait 2, 4, ... 60 s between tries (HistoryDownloader's
#: PACING_BACKOFF), for up to about 11 minutes in all, longer than IB's 10-minute window
#: (other clients may have used it up).
PACING_RETRIES = 16
NO_DATA = "no data"


@dataclass(frozen=True)
class DownloadRequest:
    """What to download for one symbol."""

    symbol: str
    bar_size: str  # IB's spelling, e.g. "5 mins"
    duration: str  # e.g. "6 M"
    end: pd.Timestamp | None = None  # None: now
    what_to_show: str = "TRADES"
    all_hours: bool = False
    exchange: str = "SMART"
    currency: str = "USD"
    primary_exchange: str = ""

    @property
    def timeframe(self) -> Timeframe:
        """The bar size as a Timeframe (``5m`` for ``5 mins``)."""
        return parse_timeframe(self.bar_size)

    def signature(self) -> dict:
        """What identifies the request for resuming (everything but the end time)."""
        return {
            "symbol": self.symbol.upper(),
            "bar_size": self.bar_size,
            "duration": self.duration,
            "what_to_show": self.what_to_show,
            "all_hours": self.all_hours,
        }


@dataclass
class DownloadResult:
    """How one symbol went."""

    symbol: str
    path: Path | None = None
    bars: int = 0  # rows in the file afterwards
    new_bars: int = 0  # rows that were not in the file before
    requests: int = 0
    chunks: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    error: str | None = None
    resumed: int = 0  # chunks skipped because an earlier run had done them

    @property
    def ok(self) -> bool:
        """True if the symbol completed."""
        return self.error is None


@dataclass
class _Progress:
    """The resume file: the request, its fixed end time and the chunks already merged."""

    request: dict
    end: str
    done: list[str] = field(default_factory=list)


class ConnectionLost(RuntimeError):
    """The connection to TWS went away mid-download."""


class OutputDirError(ValueError):
    """The output folder cannot hold the files; the message says why, in one line."""


def check_output_dir(folder: str | Path) -> Path:
    """Make sure files can be written in ``folder`` (created later if missing) before any
    download starts: raise :class:`OutputDirError` if part of the path is a file, or if the
    folder (or, when it does not exist yet, its nearest existing parent) refuses a new file.
    Writability is tried with a real file, not ``os.access``, which says yes to root even
    where the file system says no. Creates nothing; returns ``folder`` as a Path."""
    folder = Path(folder)
    existing = folder
    while not (existing.exists() or existing.is_symlink()) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "a file, not a folder" if existing.is_file() else "not a folder"
        where = "" if existing == folder else f"{existing} "
        raise OutputDirError(f"--output-dir {folder}: {where}is {what}")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as exc:
        where = "" if existing == folder else f" (in {existing}, to create it)"
        raise OutputDirError(
            f"--output-dir {folder}: cannot write there{where}: {exc.strerror or exc}"
        ) from None
    return folder


class HistoryDownloader(IBKRConnection):
    """Downloads, merges and stores bars; one instance, many symbols. Paper accounts only
    unless ``allow_live=True`` (see :class:`IBKRConnection`)."""

    DEFAULT_CLIENT_ID = 13
    PAPER_ONLY = True
    #: Seconds to wait after a 162 pacing violation, doubling up to the maximum.
    PACING_BACKOFF = (2.0, 60.0)

    def __init__(
        self,
        output_dir: str | Path = "market_data",
        pacing: PacingRules | None = None,
        progress: bool | None = None,
        limiter: PacingLimiter | None = None,
        file_format: str = "csv",
        **connection,
    ) -> None:
        if file_format not in FORMATS:
            raise ValueError(f"file_format {file_format!r}: use {' or '.join(FORMATS)}")
        super().__init__(**connection)
        self.output_dir = Path(output_dir)
        #: "csv" or "parquet": the files' format (the names differ only in their suffix).
        self.file_format = file_format
        #: Paces every historical request and counts the time waited; pass one ``limiter``
        #: to several downloaders that share a TWS (IB paces per TWS session).
        self.limiter = limiter or PacingLimiter(pacing or PacingRules())
        self.show_progress = progress
        self.pacing_errors = 0

    # ----------------------------------------------------------------- public
    def download(self, request: DownloadRequest, update: bool = False) -> DownloadResult:
        """Download one symbol's range into its file. Never raises for a per-symbol
        problem (unknown symbol, no data, no permission, a request TWS did not answer, a
        file that cannot be written): that goes in the result's error. Raises
        :class:`ConnectionLost` when TWS goes away (the file stays consistent)."""
        result = DownloadResult(request.symbol.upper())
        try:
            check_output_dir(self.output_dir)
            check_bar_size(request.bar_size)
            self._download(request, update, result)
        except (RequestError, RequestTimeout) as exc:
            if not self.isConnected():
                raise ConnectionLost("the connection to TWS was lost") from None
            result.error = _describe(exc) if isinstance(exc, RequestError) else str(exc)
        except (OutputDirError, DurationError) as exc:
            result.error = str(exc)
        except OSError as exc:  # the disk filled up, or the folder changed under us
            if not self.isConnected():  # or the socket, under a send ibapi did not guard
                raise ConnectionLost("the connection to TWS was lost") from None
            result.error = f"cannot write {result.path or self.output_dir}: {exc.strerror or exc}"
        return result

    def _download(self, request: DownloadRequest, update: bool, result: DownloadResult) -> None:
        symbol = result.symbol
        contract = self._contract(request)
        path = self.output_dir / bars_filename(symbol, request.timeframe, self.file_format)
        result.path = path
        try:
            existing = self._existing(path, symbol, request.timeframe)
        except DataFileError as exc:
            result.error = f"{exc} (left untouched)"
            return

        progress = self._load_progress(path, request)
        if progress:
            end = pd.Timestamp(progress.end)
        elif request.end is not None:
            end = request.end
        else:  # TWS's "now", which is the end of what it can serve
            end = self._call(self.current_time)
        if update:
            if existing is None or existing.empty:
                result.error = f"{path}: nothing stored yet; run without --update first"
                return
            start = existing.index[-1]
        else:
            count, unit = parse_duration(request.duration)
            start = range_start(end, count, unit)
        head = None
        try:
            head = self._call(
                lambda: self.head_timestamp(contract, request.what_to_show, not request.all_hours)
            )
            start = max(start, head)
        except RequestError as exc:
            if exc.code not in (162, 321, 354):
                raise
            log.info("%s: no head timestamp (%s)", symbol, exc)
        if head is not None and head > end:
            result.error = (
                f"no data up to {end:%Y-%m-%d %H:%M}: TWS's data for {symbol} starts at "
                f"{head:%Y-%m-%d %H:%M}"
            )
            return
        tf = request.timeframe
        if tf.seconds is not None and tf.seconds <= SMALL_BAR_SECONDS:
            oldest = end - pd.DateOffset(months=6) + pd.Timedelta(minutes=1)
            if start < oldest:
                log.warning("%s: IB keeps %s bars for six months only; starting at %s",
                            symbol, request.bar_size, oldest)  # fmt: skip
                start = oldest

        chunks = plan_chunks(start, end, request.bar_size, request.all_hours)
        # Daily and longer bars are labelled with their date (midnight), before ``start``.
        first_label = start if tf.is_intraday else start.normalize()
        progress = progress or _Progress(request.signature(), end.isoformat())
        result.chunks = len(chunks)
        before = set(existing.index) if existing is not None else set()
        stored = existing
        # tqdm's disable=None: a bar on a terminal, none in logs and tests.
        quiet = None if self.show_progress is None else not self.show_progress
        bar = tqdm(total=len(chunks), desc=f"{symbol} {request.bar_size}", unit="req",
                   leave=False, disable=quiet)  # fmt: skip
        try:
            for chunk in chunks:
                if chunk.end_text in progress.done:
                    result.resumed += 1
                    bar.update()
                    continue
                bars = self._fetch(contract, request, chunk)
                result.requests += 1
                bars = bars[(bars.index >= first_label) & (bars.index <= end)]
                stored = _merge(stored, bars)
                if stored is not None and not stored.empty:
                    _write(stored, path)
                progress.done.append(chunk.end_text)
                self._save_progress(path, progress)
                bar.update()
                bar.set_postfix(bars=0 if stored is None else len(stored))
        finally:
            bar.close()
        self._progress_path(path).unlink(missing_ok=True)
        if stored is None or stored.empty:
            result.error = f"no data between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M}"
            return
        result.bars = len(stored)
        result.new_bars = len(set(stored.index) - before)
        result.first, result.last = stored.index[0], stored.index[-1]

    # ---------------------------------------------------------------- helpers
    def _existing(self, path: Path, symbol: str, tf: Timeframe) -> pd.DataFrame | None:
        """The bars stored so far: the file itself, or, before its first write, the same
        download in the other format (a Parquet file starts from the CSV's bars)."""
        if path.exists():
            return read_bars(path)[OHLCV]
        for other in FORMATS:
            twin = self.output_dir / bars_filename(symbol, tf, other)
            if other != self.file_format and twin.exists():
                log.info("%s: starting from the bars in %s", path.name, twin.name)
                return read_bars(twin)[OHLCV]
        return None

    def _contract(self, request: DownloadRequest):
        contract = stock(request.symbol, request.exchange, request.currency,
                         request.primary_exchange)  # fmt: skip
        details = self._call(lambda: self.contract_details(contract))
        primary = details[0].contract.primaryExchange if details else ""
        return stock(request.symbol, request.exchange, request.currency,
                     request.primary_exchange or primary)  # fmt: skip

    def _fetch(self, contract, request: DownloadRequest, chunk: Chunk) -> pd.DataFrame:
        key = (request.symbol.upper(), request.exchange, request.what_to_show)
        identity = (*key, chunk.end_text, chunk.duration, request.bar_size, request.all_hours)
        backoff, longest = self.PACING_BACKOFF
        for _attempt in range(PACING_RETRIES):
            self.limiter.wait(key, identity)
            try:
                return self._call(
                    lambda: self.historical_bars(contract, chunk.end_text, chunk.duration,
                                                 request.bar_size, request.what_to_show,
                                                 use_rth=not request.all_hours))  # fmt: skip
            except RequestError as exc:
                text = exc.message.lower()
                if exc.code == 162 and "pacing" in text:
                    self.pacing_errors += 1
                    log.warning("%s: pacing violation; waiting %.0f s before retrying",
                                request.symbol, backoff)  # fmt: skip
                    self.limiter.pause(backoff)  # counted in the pacing summary
                    backoff = min(backoff * 2, longest)
                    continue
                if exc.code == 162 and NO_DATA in text:
                    return _empty()
                raise
        raise RequestError(-1, 162, "still pacing-limited after several retries")

    def _call(self, func):
        """Run a blocking request; a closed connection becomes :class:`ConnectionLost`."""
        try:
            return func()
        except RequestError as exc:
            if exc.code == 504 or not self.isConnected():
                raise ConnectionLost("the connection to TWS was lost") from None
            raise
        except RequestTimeout:
            if not self.isConnected():
                raise ConnectionLost("the connection to TWS was lost") from None
            raise

    def _progress_path(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.progress.json")

    def _load_progress(self, path: Path, request: DownloadRequest) -> _Progress | None:
        """The unfinished earlier run of this same request, if any (its end time wins when
        no explicit end was given, so the chunks line up)."""
        file = self._progress_path(path)
        if not file.exists():
            return None
        try:
            state = _Progress(**orjson.loads(file.read_bytes()))
        except (ValueError, TypeError):
            return None
        if state.request != request.signature():
            return None
        if request.end is not None and pd.Timestamp(state.end) != request.end:
            return None
        log.info(
            "%s: resuming an interrupted download (%d chunks done)", path.name, len(state.done)
        )
        return state

    def _save_progress(self, path: Path, progress: _Progress) -> None:
        with atomic_write(self._progress_path(path), "wb") as handle:
            handle.write(orjson.dumps(asdict(progress)))


def _merge(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame | None:
    """Union of two bar frames; where both have a bar, the new one wins."""
    if old is None or old.empty:
        return new if not new.empty else old
    if new.empty:
        return old
    merged = pd.concat([old[OHLCV], new[OHLCV]])
    return merged[~merged.index.duplicated(keep="last")].sort_index()


def _write(bars: pd.DataFrame, path: Path) -> None:
    from ..csv_store import write_bars

    write_bars(with_macd(bars[OHLCV]), path)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in OHLCV}, dtype=float,
                        index=pd.DatetimeIndex([], tz=EXCHANGE_TZ, name="time"))  # fmt: skip


def _describe(exc: RequestError) -> str:
    if exc.code == 200:
        return "unknown symbol (TWS: no security definition)"
    if exc.code in (354, 10197, 162) and "permission" in exc.message.lower():
        return f"no market data permission ({exc.message})"
    return f"error {exc.code}: {exc.message}"


__all__ += ["ConnectionLost", "ib_time"]
