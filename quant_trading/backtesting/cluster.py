"""Run an optimizer's combinations on a Dask distributed cluster (``optimize --scheduler``).

The search (the strategy, the options) and each symbol's bars are scattered to the workers
once, the bars once per connection (a walk-forward's windows share them); chunks of
combinations then go out as tasks that refer to them, so no task carries bars. Rows come back
in the order the combinations were given, so the table is the one an in-process run gives.
dask is imported here only, and this module only when a scheduler is asked for.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import socket
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

__all__ = ["ClusterError", "DaskCluster", "check_scheduler"]

log = logging.getLogger(__name__)

#: ``tcp://host:8786``, ``tls://host:8786`` or ``host:8786`` (tcp), as ``dask worker`` takes it.
_ADDRESS = re.compile(r"^(?:(?P<scheme>tcp|tls)://)?(?P<host>\[[^\]]+\]|[^:/\s]+):(?P<port>\d+)$")
#: Versions a worker must share with this process: a different numba, numpy or pandas may
#: round differently, and other toolkit code (a version number says little of a checkout)
#: may compute different statistics.
_SAME = ("python", "quant_trading", "quant_trading code", "numba", "numpy", "pandas")
#: What a chunk of combinations holds at most: large enough that a task's round trip to the
#: scheduler (a few ms) is small beside its backtests, small enough to keep the bar moving.
_CHUNK = 64


class ClusterError(RuntimeError):
    """The scheduler cannot be reached or its workers cannot run the search; the message is
    one line that says which and what to do."""


def check_scheduler(text: str) -> str:
    """``text`` as a scheduler address (``tcp://host:port``, ``tls://...``, ``host:port``) or
    ``local``; ClusterError if it is neither."""
    text = text.strip()
    if text == "local" or _ADDRESS.match(text):
        return text
    raise ClusterError(
        f"--scheduler {text}: use tcp://HOST:PORT (a running `dask scheduler`) or local"
    )


class DaskCluster:
    """A Dask client for the length of a ``with`` block, connected to the scheduler at
    ``scheduler`` (``tcp://host:8786``), or with ``"local"`` to a ``LocalCluster`` of
    ``workers`` processes (default: one per core) on loopback, started for the block.
    Raises ClusterError when the scheduler is unreachable, has no worker within ``timeout``
    seconds, or its workers lack this toolkit or run other versions of it."""

    def __init__(self, scheduler: str, workers: int | None = None, timeout: float = 10.0):
        self.scheduler = check_scheduler(scheduler)
        self.workers = workers
        self.timeout = timeout
        self.client = None
        self._local = None
        self._shipped: set[str] = set()
        # Each symbol's bars on the workers, by the identity of its SymbolData (kept, so the
        # identity stays its own): a walk-forward's windows search the same bars.
        self._bars: dict[int, tuple[Any, Any]] = {}

    def __enter__(self) -> DaskCluster:
        try:
            self._connect()
            self._check_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect; a local cluster is stopped."""
        self._bars.clear()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._local is not None:
            self._local.close()
            self._local = None

    def _connect(self) -> None:
        from distributed import Client

        if not log.isEnabledFor(logging.DEBUG):
            # Importing distributed sets its loggers to INFO: a cluster's start-up chatter,
            # not what the search's user asked to see (unless -v).
            logging.getLogger("distributed").setLevel(logging.WARNING)

        if self.scheduler == "local":
            from distributed import LocalCluster

            # Loopback only, no dashboard; one thread per process, since the combinations
            # are Python code that a second thread in the same process would only wait for.
            self._local = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # No dashboard; the scheduler's small HTTP server on a free loopback port.
                dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            )
            self.client = Client(self._local, timeout=f"{self.timeout}s")
            return
        _reachable(self.scheduler, self.timeout)
        try:
            self.client = Client(self.scheduler, timeout=f"{self.timeout}s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot connect to the Dask scheduler at {self.scheduler}: {_reason(exc)}"
            ) from None

    def _check_workers(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
        except TimeoutError:
            raise ClusterError(
                f"the Dask scheduler at {self.scheduler} has no worker (waited "
                f"{self.timeout:g} s); start some with: dask worker {self.scheduler}"
            ) from None
        mine = _versions()
        try:
            theirs = self.client.run(_versions)
        except Exception as exc:  # a worker cannot unpickle a function of this package
            if (missing := _missing_module(exc)) is None:
                raise
            raise ClusterError(
                f"a Dask worker of {self.scheduler} cannot import {missing}: install "
                "this toolkit on the workers (pip install 'quant_trading[optimize]')"
            ) from None
        try:  # the scheduler unpickles each task, which names a function of this package
            self.client.run_on_scheduler(_importable)
        except Exception as exc:
            if (missing := _missing_module(exc)) is None:
                raise
            raise ClusterError(
                f"the Dask scheduler at {self.scheduler} cannot import {missing}: install "
                "this toolkit there too (pip install 'quant_trading[optimize]'); it reads "
                "the tasks, which name the toolkit's functions"
            ) from None
        for worker, versions in sorted(theirs.items()):
            for name in _SAME:
                if versions.get(name) != mine[name]:
                    raise ClusterError(
                        f"Dask worker {worker} has {name} {versions.get(name)}, this machine "
                        f"{mine[name]}: install the same versions on the workers"
                    )

    def _ship(self, strategy) -> None:
        """Send the files of a strategy loaded from a --strategy-path folder to the workers,
        under the module names this process gave them, so that they can unpickle its
        functions (a strategy in an installed package is theirs already)."""
        from ..strategy import loaded_files

        for name, path in loaded_files(strategy).items():
            if name in self._shipped:
                continue
            with tempfile.TemporaryDirectory() as folder:
                copy = Path(folder) / f"{name}.py"
                shutil.copyfile(path, copy)
                # Not imported on upload: the scheduler need not have what the strategy imports.
                self.client.upload_file(str(copy), load=False)
            self._shipped.add(name)
            log.info("sent %s to the workers as %s", path, name)

    def _scatter_bars(self, datas: list) -> list:
        """Futures of these symbols' bars, on every worker; each symbol's are sent the
        first time a search asks for them, and kept until the cluster is closed."""
        futures = []
        for data in datas:
            entry = self._bars.get(id(data))
            if entry is None:
                future = self.client.scatter(data, broadcast=True, hash=False)
                entry = self._bars[id(data)] = (data, future)
                log.info("sent the bars of %s to the workers", data.symbol)
            futures.append(entry[1])
        return futures

    def batches(
        self, search, combos: Iterator[dict[str, Any]], planned: int
    ) -> Iterator[tuple[int, Any]]:
        """(combinations done, their rows) per chunk, in the order of ``combos``, computed
        by ``search.run_batch`` on the cluster's workers."""
        client = self.client
        workers = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
        size = max(1, min(_CHUNK, math.ceil(planned / (workers * 8))))
        self._ship(search.config.strategy)
        try:
            bars = self._scatter_bars(search.datas)
            remote = client.scatter(replace(search, datas=[]), broadcast=True, hash=False)
        except Exception as exc:
            if (missing := _missing_module(exc)) is None:
                raise
            raise ClusterError(_import_message(missing, self.scheduler)) from None
        todo = iter(lambda: list(islice(combos, size)), [])
        submit = lambda chunk: client.submit(_run_chunk, remote, bars, chunk, pure=False)  # noqa: E731
        # A few chunks per worker in flight, not all: rows wait in memory for their turn.
        pending = deque(submit(chunk) for chunk in islice(todo, 4 * workers))
        try:
            while pending:
                try:
                    rows = pending.popleft().result()
                except Exception as exc:
                    if (missing := _missing_module(exc)) is None:
                        raise
                    raise ClusterError(_import_message(missing, self.scheduler)) from None
                pending.extend(submit(chunk) for chunk in islice(todo, 1))
                yield len(rows), rows
        finally:
            client.cancel([*pending, remote])


#: Tasks of one worker process share its copy of the search, and the search's indicator
#: memo is not made for threads; a worker started with several threads runs them in turn.
_RUNNING = threading.Lock()


def _run_chunk(search, bars: list, chunk: list[dict[str, Any]]):
    # ``search`` is this worker's copy of the search, sent without its bars: the first of
    # its tasks here gives it them (the worker's copies of each symbol's, sent once).
    with _RUNNING:
        if not search.datas:
            search.datas = list(bars)
        return search.run_batch(chunk)


def _importable() -> bool:
    # Run on the scheduler: that it could unpickle this function is the check.
    return True


def _versions() -> dict[str, str]:
    import numba
    import numpy
    import pandas

    import quant_trading

    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "quant_trading": quant_trading.__version__,
        "quant_trading code": _code_digest(),
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }


def _code_digest() -> str:
    """A digest of the toolkit's and its bundled strategies' Python files (names and
    contents), shortened: equal on two machines that run the same code."""
    import quant_trading
    import strategies

    digest = hashlib.sha256()
    for package in (quant_trading, strategies):
        for folder in map(Path, package.__path__):
            for path in sorted(folder.rglob("*.py")):
                digest.update(path.relative_to(folder.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _reachable(address: str, timeout: float) -> None:
    """A plain TCP connection first: a refused or unknown address fails in milliseconds with
    the system's reason, where dask's client would retry until its timeout."""
    found = _ADDRESS.match(address)
    host, port = found["host"].strip("[]"), int(found["port"])
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address}: {_reason(exc)} (is `dask "
            f"scheduler` running there?)"
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0] or type(exc).__name__


def _missing_module(exc: BaseException) -> str | None:
    """The module a worker could not import, if that is what ``exc`` says: an ImportError,
    or the plain Exception carrying its text that a failed scatter raises."""
    if isinstance(exc, ImportError):
        return exc.name or str(exc)
    found = re.search(r"No module named '([^']+)'", str(exc))
    return found[1] if found else None


def _import_message(missing: str, scheduler: str) -> str:
    return (
        f"a Dask worker of {scheduler} cannot import {missing}: the workers need what the "
        "strategy imports, under the same names (the strategy's own file is sent)"
    )
