"""The compiled loops of :mod:`._packing`'s encoders: one pass over a column where numpy
would take a dozen. Only the writer imports this (a chart reading the cache never loads
numba)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["fewest_decimals", "decimal_ints", "typical_step", "outliers", "narrow"]

_EXACT = 9007199254740992.0  # 2**53: integers beyond it are not all floats


@njit(cache=True, nogil=True)
def fewest_decimals(values, most):  # pragma: no cover - compiled
    """The fewest decimals (up to ``most``) that hold every value exactly, or -1."""
    for decimals in range(most + 1):
        scale = 10.0**decimals
        exact = True
        for v in values:
            r = np.rint(v * scale)
            if not abs(r) < _EXACT or r / scale != v:
                exact = False
                break
        if exact:
            return decimals
    return -1


@njit(cache=True, nogil=True)
def typical_step(values, delta):  # pragma: no cover - compiled
    """The median of the values (of their steps if ``delta``), rounded down."""
    if delta:
        values = values[1:] - values[:-1]
    if values.size == 0:
        return 0
    return int(np.floor(np.median(values.astype(np.float64))))


@njit(cache=True, nogil=True)
def decimal_ints(values, scale, ints):  # pragma: no cover - compiled
    """``ints[i] = values[i] * scale`` rounded; False at the first value that is not
    exactly ``ints[i] / scale`` (the reader's division), or is NaN, infinite, too large or
    -0.0 (which would come back as 0.0)."""
    for i in range(values.size):
        r = np.rint(values[i] * scale)
        if not abs(r) < _EXACT or r / scale != values[i]:
            return False
        if r == 0.0 and math.copysign(1.0, values[i]) < 0:
            return False
        ints[i] = np.int64(r)
    return True


@njit(cache=True, nogil=True)
def outliers(values, delta, offset):  # pragma: no cover - compiled
    """How many of the values (their steps if ``delta``), less ``offset``, do not fit in
    1, 2 and 4 bytes."""
    c1 = c2 = c4 = 0
    previous = 0
    for i in range(values.size):
        v = values[i] - offset
        if delta:
            v -= previous
            previous = values[i]
        c1 += (v < -128) | (v > 127)
        c2 += (v < -32768) | (v > 32767)
        c4 += (v < -2147483648) | (v > 2147483647)
    return c1, c2, c4


@njit(cache=True, nogil=True)
def narrow(values, delta, offset, out, low, high, at, big):  # pragma: no cover - compiled
    """The values (steps if ``delta``) less ``offset`` into ``out`` (a narrow integer array);
    those outside ``low..high`` also into ``at`` (row) and ``big`` (value). Returns how many
    those were."""
    k = 0
    previous = 0
    for i in range(values.size):
        v = values[i] - offset
        if delta:
            v -= previous
            previous = values[i]
        if v < low or v > high:
            at[k] = i
            big[k] = v
            k += 1
            out[i] = 0
        else:
            out[i] = v
    return k
