"""How many processes a backtest run uses (``run_backtest --jobs``).

The process that runs the backtest computes symbols itself, and ``jobs - 1`` worker
processes forked from it compute others meanwhile. A worker is not free: it is forked once
the first symbol has loaded the compiled kernels (so it inherits them rather than loading
them again), and from then on every page either process writes is copied, and its results
come back pickled through a pipe. In one process a symbol costs about 0.5 µs of CPU per bar
(bars from the parsed-bars cache, indicators, engine, statistics, its cache file). Measured
on two cores with two years of 5m bars per symbol (39,000 bars), a worker's start costs
about 0.2 s: on 20 symbols two processes were no quicker than one, on 40 they saved 0.1-0.2
s, on 80 a second. So a worker is started only for at least :data:`MIN_BARS_PER_WORKER`
bars, about as much work as its own start. :func:`default_jobs` puts that in one rule, and
``--jobs N`` is an upper bound on it, so asking for more processes never makes a run slower
than ``--jobs 1``.
"""

from __future__ import annotations

import os

__all__ = ["MIN_BARS_PER_WORKER", "available_cores", "choose_jobs", "default_jobs"]

#: Bars each process must get for a worker's start to pay: at about 0.5 µs a bar, 0.2 s of
#: work, as much as the worker's start costs.
MIN_BARS_PER_WORKER = 400_000


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_jobs(
    symbols: int,
    bars_per_symbol: float,
    cores: int,
    min_bars_per_worker: int = MIN_BARS_PER_WORKER,
) -> int:
    """Processes (this one and its workers) for ``symbols`` symbols of about
    ``bars_per_symbol`` bars each on ``cores`` cores: one per core, but no more than there are
    symbols (a symbol is not split) and no more than the bars can keep busy,
    ``min_bars_per_worker`` each. At least 1."""
    if symbols <= 1 or cores <= 1:
        return 1
    by_work = int(symbols * max(bars_per_symbol, 0) // max(min_bars_per_worker, 1))
    return max(1, min(cores, symbols, by_work))


def choose_jobs(
    requested: int | None,
    symbols: int,
    bars_per_symbol: float,
    cores: int,
    min_bars_per_worker: int = MIN_BARS_PER_WORKER,
) -> int:
    """The processes to use: :func:`default_jobs`, or fewer when ``requested`` (``--jobs N``)
    is lower. A request above it is capped, as the extra processes would only slow the run."""
    auto = default_jobs(symbols, bars_per_symbol, cores, min_bars_per_worker)
    return auto if requested is None else max(1, min(requested, auto))
