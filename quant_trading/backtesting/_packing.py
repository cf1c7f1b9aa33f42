"""How the backtest cache packs a column of numbers into a short JSON object.

A column becomes ``{"codec": ..., ...}`` with its bytes in base64 (little-endian). The
codecs, and which the cache uses where:

* ``int``: integers as deltas (or as they are, whichever is smaller) less their typical
  value, in the narrowest of 1, 2, 4 or 8 bytes, with the few that do not fit listed apart.
  With ``decimals`` the integers are a decimal column scaled by ``10**decimals``: prices in
  cents, volumes in shares. :func:`pack_exact` uses it only when the scaled integers give
  back **every value bit for bit** (``ints / 10**decimals == values``, the division the reader
  does), so it is lossless; otherwise the column is stored as ``f8``.
* ``f8``: the raw 8-byte floats (lossless; equity, P&L, prices with float noise).
* ``f4``: 4-byte floats, about 7 significant digits (indicator lines; a chart needs no more).
* ``runs``: a piecewise-constant column (positions) as the rows where it changes and its
  value from there on.
* ``text``: a few distinct strings (trade sides, exit reasons) as labels and codes.

Encoding runs its loops compiled (:mod:`._packing_jit`, numba) in the process that ran the
backtest; decoding is plain numpy, so a chart that only reads the cache never loads numba.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["pack_exact", "pack_floats", "pack_ints", "pack_runs", "pack_text", "unpack"]

#: Most decimals :func:`pack_exact` tries (10**10 keeps prices of sub-cent coins exact).
MAX_DECIMALS = 10
_WIDTHS = (1, 2, 4, 8)
_OUTLIER_BYTES = 12  # a value that does not fit: its row (4 bytes) and itself (8)
_SAMPLE = 64  # values tried before a whole column is


def _kernels():
    """The encoders' compiled loops, imported on first use: a reader never loads numba."""
    from . import _packing_jit

    return _packing_jit


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _bytes(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def _choose(rows: int, counts: tuple[int, int, int]) -> tuple[int, int]:
    """The width (bytes) that stores ``rows`` values in the fewest bytes, and how many do not
    fit it, from the counts that do not fit 1, 2 and 4 bytes."""
    options = [(w * rows + _OUTLIER_BYTES * c, w, c) for w, c in zip(_WIDTHS, counts)]
    _, width, outliers = min([*options, (8 * rows, 8, 0)])
    return width, outliers


def _int_spec(values: np.ndarray, delta: bool, offset: int, width: int, outliers: int):
    limit = 1 << (8 * width - 1)
    narrow = np.empty(len(values), f"<i{width}")
    at, big = np.empty(outliers, np.int64), np.empty(outliers, np.int64)
    _kernels().narrow(values, delta, offset, narrow, -limit, limit - 1, at, big)
    spec: dict[str, Any] = {"codec": "int", "delta": delta, "offset": offset,
                            "width": width, "data": _b64(narrow)}  # fmt: skip
    if outliers:
        spec["at"] = _b64(at.astype("<u4"))
        spec["big"] = _b64(big.astype("<i8"))
    return spec


def pack_ints(values: np.ndarray) -> dict[str, Any]:
    """Integers (times in seconds, bar counts, codes), losslessly."""
    kernels = _kernels()
    values = np.ascontiguousarray(values, dtype=np.int64)
    rows = len(values)
    # The typical step (a bar's length in seconds, 0 for prices) goes into one number.
    head = values[: _SAMPLE * 16 + 1]
    offset = kernels.typical_step(head, True)
    width, outliers = _choose(rows, kernels.outliers(values, True, offset))
    if width > 1:  # steps as large as the values (volumes): try the values themselves
        plain_offset = kernels.typical_step(head, False)
        plain = _choose(rows, kernels.outliers(values, False, plain_offset))
        if plain[0] * rows + _OUTLIER_BYTES * plain[1] < width * rows + _OUTLIER_BYTES * outliers:
            return _int_spec(values, False, plain_offset, *plain)
    return _int_spec(values, True, offset, width, outliers)


def _sample_decimals(sample: np.ndarray) -> int | None:
    """The fewest decimals that hold a few values exactly (None: none do)."""
    found = _kernels().fewest_decimals(np.ascontiguousarray(sample, np.float64), MAX_DECIMALS)
    return None if found < 0 else found


def pack_exact(values: np.ndarray) -> dict[str, Any]:
    """Floats, losslessly: as decimal integers when that is exact (prices, volumes,
    whole shares), else as 8-byte floats."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    first = _sample_decimals(values[:_SAMPLE])
    if first is not None:
        ints = np.empty(len(values), np.int64)
        for decimals in range(first, MAX_DECIMALS + 1):  # later values may need more
            if _kernels().decimal_ints(values, 10.0**decimals, ints):
                return {**pack_ints(ints), "decimals": decimals}
            if not np.isfinite(values).all():
                break
    return {"codec": "f8", "data": _b64(values.astype("<f8"))}


def pack_floats(values: np.ndarray) -> dict[str, Any]:
    """Floats to about 7 significant digits (4-byte floats), or exactly if a few decimals
    hold them (an indicator that is a price level)."""
    values = np.asarray(values, dtype=np.float64)
    if _sample_decimals(values[:_SAMPLE]) is not None:
        packed = pack_exact(values)
        if packed["codec"] == "int":
            return packed
    return {"codec": "f4", "data": _b64(values.astype("<f4"))}


def pack_runs(values: np.ndarray) -> dict[str, Any]:
    """A piecewise-constant column (shares held), losslessly: where it changes, and to what."""
    values = np.asarray(values, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else []
    return {"codec": "runs", "at": pack_ints(starts), "values": pack_exact(values[starts])}


def pack_text(values) -> dict[str, Any]:
    """A column of a few distinct strings (a categorical's codes are used as they are)."""
    column = pd.Categorical(values)
    return {"codec": "text", "labels": [str(x) for x in column.categories],
            "codes": pack_ints(column.codes)}  # fmt: skip


def unpack(spec: dict[str, Any], rows: int) -> np.ndarray:
    """A packed column back as an array of ``rows`` values: float64, int64 (``int`` without
    ``decimals``) or str (``text``). ValueError if the spec is damaged."""
    codec = spec["codec"]
    if codec == "f8":
        out = _bytes(spec["data"], "<f8").astype(np.float64)
    elif codec == "f4":
        out = _bytes(spec["data"], "<f4").astype(np.float64)
    elif codec == "int":
        out = _bytes(spec["data"], f"<i{int(spec['width'])}").astype(np.int64)
        if "at" in spec:
            out[_bytes(spec["at"], "<u4")] = _bytes(spec["big"], "<i8")
        if spec["offset"]:
            out += spec["offset"]
        if spec["delta"]:
            np.cumsum(out, out=out)
        if "decimals" in spec:
            out = out / 10.0 ** int(spec["decimals"])
    elif codec == "runs":
        starts = unpack(spec["at"], -1)
        values = unpack(spec["values"], len(starts))
        out = np.repeat(values, np.diff(np.r_[starts, rows]))
    elif codec == "text":
        labels = np.array(spec["labels"], dtype=object)
        out = labels[unpack(spec["codes"], rows)]
    else:
        raise ValueError(f"unknown codec {codec!r}")
    if rows >= 0 and len(out) != rows:
        raise ValueError(f"{codec} column of {len(out)} values, expected {rows}")
    return out
