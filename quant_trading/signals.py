"""Building blocks for a strategy's ``positions``: crosses, holding a side between events,
and limiting a strategy to one side.

Pure and vectorized over numpy arrays; every function decides bar t from bars up to t only.
"""

from __future__ import annotations

import numpy as np

from quant_trading.jit import njit

__all__ = ["MODES", "crosses", "hold", "limit_sides"]

#: Which sides a strategy trades: both (flip at every signal), long or flat, short or flat.
MODES = ("long_short", "long_only", "short_only")


@njit(cache=True, nogil=True)
def _cross_kernel(diff, out):  # pragma: no cover - compiled
    # The sign of the last non-zero difference: zeros and warm-up NaNs do not end a trend,
    # so touching without crossing is no cross, and the first sign seen is not a cross.
    last = 0
    for i in range(len(diff)):
        d = diff[i]
        sign = 1 if d > 0 else (-1 if d < 0 else 0)  # NaN compares false: no sign
        c = 0
        if sign != 0:
            if last == -sign:
                c = sign
            last = sign
        out[i] = c


@njit(cache=True, nogil=True)
def _hold_kernel(events, out):  # pragma: no cover - compiled
    side = 0
    for i in range(len(events)):
        if events[i] != 0:
            side = events[i]
        out[i] = side


def crosses(a, b=0.0) -> np.ndarray:
    """+1 at each bar where ``a`` crosses above ``b`` (array or number), -1 where it crosses
    below, else 0 (int8). A cross at t: a[t] - b[t] has the opposite sign of the last non-zero
    difference before t."""
    diff = np.ascontiguousarray(np.asarray(a, dtype=np.float64) - b, dtype=np.float64)
    out = np.empty(len(diff), np.int8)
    _cross_kernel(diff, out)
    return out


def hold(events) -> np.ndarray:
    """Position per bar from events (+1 go long, -1 go short, 0 nothing new): the side of the
    latest event, 0 before the first (int8)."""
    events = np.asarray(events)
    if len(events) == 0:
        return np.zeros(0, np.int8)
    if events.dtype.kind in "biu":  # compiled: one pass instead of numpy's five
        out = np.empty(len(events), np.int8)
        _hold_kernel(np.ascontiguousarray(events), out)
        return out
    where = np.where(events != 0, np.arange(len(events)), -1)
    latest = np.maximum.accumulate(where)
    return np.where(latest >= 0, events[np.maximum(latest, 0)], 0).astype(np.int8)


def limit_sides(position, mode: str) -> np.ndarray:
    """``position`` limited by ``mode`` (see :data:`MODES`): ``long_only`` turns shorts
    into flat, ``short_only`` longs."""
    position = np.asarray(position, dtype=np.int8)
    if mode == "long_only":
        return np.maximum(position, 0).astype(np.int8)
    if mode == "short_only":
        return np.minimum(position, 0).astype(np.int8)
    if mode != "long_short":
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return position
