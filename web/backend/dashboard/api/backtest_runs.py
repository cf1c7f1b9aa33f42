"""Run a validated backtest request in-process with the toolkit's engine, write its cache
files, and store it as a :class:`~dashboard.api.models.BacktestRun`.

The engine and the cache writer are :func:`quant_trading.backtesting.runner.run_symbols`'s,
called as ``run_backtest`` calls it, so the numbers and the cache files are the CLI's. A run
holds one symbol's data file at a time in memory, and at most
``settings.BACKTEST_MAX_CONCURRENT`` (default 2) run at once; a request that finds every slot
taken waits up to ``settings.BACKTEST_QUEUE_TIMEOUT`` seconds (default 60), then answers
503. Two runs of the same timeframe and symbol write the same cache file: each move into
place is atomic, and the last one stays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from quant_trading.backtesting.cache import CacheWriteError as EngineCacheWriteError
from quant_trading.backtesting.datafiles import MissingDataError
from quant_trading.backtesting.runner import BacktestOptions, run_symbols
from quant_trading.csv_store import DataFileError
from quant_trading.strategy import StrategyConfig

from .backtest_records import display_path, run_records
from .models import BacktestRun

__all__ = [
    "BacktestRequest",
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_QUEUE_TIMEOUT",
    "EngineBusy",
    "engine_slot",
    "run_backtest",
]

log = logging.getLogger("dashboard.api.backtests")

DEFAULT_MAX_CONCURRENT = 2
DEFAULT_QUEUE_TIMEOUT = 60.0


@dataclass(frozen=True)
class BacktestRequest:
    """A checked ``POST /api/backtests/``: the strategy resolved with its parameters,
    timeframe and symbols, the engine's options, and the settings as stored with the run."""

    config: StrategyConfig
    options: BacktestOptions
    write_cache: bool
    settings: dict[str, Any]


class EngineBusy(APIException):
    """Every engine slot stayed taken for the whole queue timeout."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "busy"
    default_detail = "the server is running as many backtests as it may; try again shortly"

    def __init__(self, wait: float) -> None:
        super().__init__()
        self.wait = max(1, round(wait))  # DRF sends it as Retry-After


class DataProblem(APIException):
    """A data file the run needs is malformed (the message names file and line)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "data_error"


class CacheWriteError(APIException):
    """The cache folder cannot be written."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_code = "cache_error"


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _semaphore() -> threading.BoundedSemaphore:
    # One per configured size, so a changed setting takes effect (tests) while runs holding
    # the previous one release it normally.
    size = max(1, int(getattr(settings, "BACKTEST_MAX_CONCURRENT", DEFAULT_MAX_CONCURRENT)))
    with _slots_lock:
        return _slots.setdefault(size, threading.BoundedSemaphore(size))


@contextmanager
def engine_slot(timeout: float | None = None) -> Iterator[None]:
    """Hold one of the engine's slots for the block; :class:`EngineBusy` (503) if none frees
    up within ``timeout`` seconds (default ``settings.BACKTEST_QUEUE_TIMEOUT``)."""
    if timeout is None:
        timeout = float(getattr(settings, "BACKTEST_QUEUE_TIMEOUT", DEFAULT_QUEUE_TIMEOUT))
    semaphore = _semaphore()
    if not semaphore.acquire(timeout=timeout):
        raise EngineBusy(wait=timeout)
    try:
        yield
    finally:
        semaphore.release()


def run_backtest(request: BacktestRequest, requested_by: str) -> BacktestRun:
    """Run ``request`` on ``settings.DATA_DIR``, write its cache files into
    ``settings.CACHE_DIR`` (when asked), store the run and return it."""
    config = request.config
    data_dir = str(settings.DATA_DIR)
    with engine_slot():
        started = time.perf_counter()
        # As run_backtest: each symbol is cut to its trades and statistics as soon as it is
        # done (memory stays flat however many symbols a request names), and its cache file
        # is staged then and moved into place only when every symbol has succeeded.
        cache_dir = settings.CACHE_DIR if request.write_cache else None
        try:
            run = run_symbols(config, data_dir, request.options, progress=False,
                              cache_dir=cache_dir, keep_series=False)  # fmt: skip
        except MissingDataError as exc:  # no symbol had bars in the period
            message = str(exc).replace(data_dir, display_path(data_dir))
            raise ValidationError({"non_field_errors": [message]}) from None
        except DataFileError as exc:
            raise DataProblem(str(exc).replace(data_dir, display_path(data_dir))) from None
        except EngineCacheWriteError as exc:
            log.error("cannot write the backtest cache: %s", exc)
            raise CacheWriteError(
                f"cannot write cache in {display_path(settings.CACHE_DIR)}: {exc.strerror}"
            ) from None
        duration = time.perf_counter() - started
    records = run_records(run, run.cache_files)
    stored = BacktestRun.objects.create(
        duration_seconds=duration,
        requested_by=requested_by,
        strategy=config.strategy.name,
        params=config.params,
        symbols=list(config.symbols),
        timeframe=config.timeframe.name,
        settings=request.settings,
        summary=records.summary,
        symbol_metrics=records.symbol_metrics,
        monthly_equity=records.monthly_equity,
        trades=records.trades,
        data_files=records.data_files,
        skipped=records.skipped,
        cache_files=records.cache_files,
    )
    log.info(
        "backtest %d: %s %s %s for %s in %.2f s (%d trades)",
        stored.pk,
        stored.strategy,
        stored.timeframe,
        " ".join(stored.symbols),
        requested_by or "?",
        duration,
        len(records.trades),
    )
    return stored
