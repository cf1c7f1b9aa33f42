"""The compiled loops of :mod:`._packing`'s encoders: one pass over a column where numpy
would take a dozen. Only the writer imports this (a chart reading the cache never loads
numba)."""

from __future__ import annotations

import binascii
import math
import sys

import numpy as np

from ..jit import njit

__all__ = [
    "fewest_decimals", "decimal_ints", "typical_step", "outliers", "narrow", "cash_runs", "base64",
]  # fmt: skip

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


@njit(cache=True, nogil=True)
def cash_runs(values, marked, starts, cash):  # pragma: no cover - compiled
    """Runs of one cash that ``cash + marked[i]`` gives ``values[i]`` back over: where each
    starts and its cash into ``starts`` and ``cash``; returns how many. A row the current
    cash does not give back starts a run, with its own ``values[i] - marked[i]``."""
    k = 0
    current = math.nan
    for i in range(values.size):
        if current + marked[i] != values[i]:
            current = values[i] - marked[i]
            starts[k] = i
            cash[k] = current
            k += 1
    return k


_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                          np.uint8)  # fmt: skip
#: The two base64 characters of each 12 bits, as one little-endian 16-bit number: a 3-byte
#: group is two lookups and one 4-byte store.
_PAIRS = np.stack([np.repeat(_ALPHABET, 64), np.tile(_ALPHABET, 64)], axis=1).view("<u2")[:, 0]


@njit(cache=True, nogil=True)
def _base64(data, pairs, alphabet):  # pragma: no cover - compiled
    n = data.size
    size = (n + 2) // 3 * 4
    # The text starts 4 bytes in, so that whole groups are aligned 4-byte stores; the
    # opening quote goes just before it.
    out = np.empty(size + 6, np.uint8)
    groups = n // 3
    body = out[4 : 4 + 4 * groups].view(np.uint32)
    for g in range(groups):
        i = 3 * g
        v = (np.uint32(data[i]) << 16) | (np.uint32(data[i + 1]) << 8) | np.uint32(data[i + 2])
        body[g] = np.uint32(pairs[v >> 12]) | (np.uint32(pairs[v & 4095]) << 16)
    whole, j = 3 * groups, 4 + 4 * groups
    if n > whole:  # one or two bytes left: padded with "="
        v = np.uint32(data[whole]) << 16
        if n - whole == 2:
            v |= np.uint32(data[whole + 1]) << 8
        out[j] = alphabet[v >> 18]
        out[j + 1] = alphabet[(v >> 12) & 63]
        out[j + 2] = alphabet[(v >> 6) & 63] if n - whole == 2 else 61
        out[j + 3] = 61
    out[3] = out[4 + size] = 34  # '"'
    return out[3 : 5 + size]


def base64(data: np.ndarray) -> bytes:
    """The bytes of ``data`` in standard base64 as a JSON string, quotes included (what
    ``orjson.dumps`` writes for the text ``base64.b64encode`` gives), in a quarter of the
    time of encoding, decoding to text and serialising it."""
    raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if raw.flags.writeable:  # one compiled version for read-only and writeable columns
        raw = raw.view()
        raw.flags.writeable = False
    if sys.byteorder != "little":  # the 4-byte stores assume it
        return b'"' + binascii.b2a_base64(raw, newline=False) + b'"'
    return _base64(raw, _PAIRS, _ALPHABET).tobytes()
