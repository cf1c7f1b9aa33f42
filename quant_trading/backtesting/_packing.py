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
* ``marked``: a column that is ``cash + shares * price`` at each row, with ``shares`` and
  ``price`` other columns of the table: an equity curve marked to market at each close, whose
  cash changes only at trades. Stored as the runs of that cash, and used only when
  ``cash + shares * price`` in float64 (the reader's arithmetic, checked when written) gives
  **every value back bit for bit**; otherwise the column is ``f8``. A twelfth of the bytes.
* ``text``: a few distinct strings (trade sides, exit reasons) as labels and codes
  (:func:`pack_codes` when the column is its codes already).

Encoding runs its loops compiled (:mod:`._packing_jit`, numba) in the process that ran the
backtest; decoding is plain numpy, so a chart that only reads the cache never loads numba.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
import pandas as pd

from .statistics import readonly

__all__ = [
    "pack_codes", "pack_exact", "pack_floats", "pack_ints", "pack_marked", "pack_runs", "pack_text",
    "unpack",
]  # fmt: skip

#: Most decimals :func:`pack_exact` tries (10**10 keeps prices of sub-cent coins exact).
MAX_DECIMALS = 10
_WIDTHS = (1, 2, 4, 8)
_OUTLIER_BYTES = 12  # a value that does not fit: its row (4 bytes) and itself (8)
_SAMPLE = 64  # values tried before a whole column is


def _kernels():
    """The encoders' compiled loops, imported on first use: a reader never loads numba."""
    global _KERNELS
    if _KERNELS is None:
        from . import _packing_jit

        _KERNELS = _packing_jit
    return _KERNELS


_KERNELS = None


def _b64(array: np.ndarray, fragments: bool = False) -> Any:
    if fragments:  # quoted JSON text, which orjson copies as it is
        return orjson.Fragment(_kernels().base64(array))
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _bytes(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def _choose(rows: int, counts: tuple[int, int, int]) -> tuple[int, int]:
    """The width (bytes) that stores ``rows`` values in the fewest bytes, and how many do not
    fit it, from the counts that do not fit 1, 2 and 4 bytes."""
    options = [(w * rows + _OUTLIER_BYTES * c, w, c) for w, c in zip(_WIDTHS, counts)]
    _, width, outliers = min([*options, (8 * rows, 8, 0)])
    return width, outliers


def _int_spec(values: np.ndarray, delta: bool, offset: int, width: int, outliers: int,
              fragments: bool):  # fmt: skip
    limit = 1 << (8 * width - 1)
    narrow = np.empty(len(values), f"<i{width}")
    at, big = np.empty(outliers, np.int64), np.empty(outliers, np.int64)
    _kernels().narrow(values, delta, offset, narrow, -limit, limit - 1, at, big)
    spec: dict[str, Any] = {"codec": "int", "delta": delta, "offset": offset,
                            "width": width, "data": _b64(narrow, fragments)}  # fmt: skip
    if outliers:
        spec["at"] = _b64(at.astype("<u4"), fragments)
        spec["big"] = _b64(big.astype("<i8"), fragments)
    return spec


# Every encoder takes ``fragments``: its base64 fields then are orjson.Fragment objects (the
# quoted JSON text, which ``orjson.dumps`` copies as it is) rather than text. The same JSON
# comes out, in half the time; the cache writer uses it.


def pack_ints(values: np.ndarray, *, fragments: bool = False) -> dict[str, Any]:
    """Integers (times in seconds, bar counts, codes), losslessly."""
    kernels = _kernels()
    values = readonly(values, np.int64)
    rows = len(values)
    # The typical step (a bar's length in seconds, 0 for prices) goes into one number.
    head = values[: _SAMPLE * 16 + 1]
    offset = kernels.typical_step(head, True)
    width, outliers = _choose(rows, kernels.outliers(values, True, offset))
    if width > 1:  # steps as large as the values (volumes): try the values themselves
        plain_offset = kernels.typical_step(head, False)
        plain = _choose(rows, kernels.outliers(values, False, plain_offset))
        if plain[0] * rows + _OUTLIER_BYTES * plain[1] < width * rows + _OUTLIER_BYTES * outliers:
            return _int_spec(values, False, plain_offset, *plain, fragments)
    return _int_spec(values, True, offset, width, outliers, fragments)


def _sample_decimals(sample: np.ndarray) -> int | None:
    """The fewest decimals that hold a few values exactly (None: none do)."""
    found = _kernels().fewest_decimals(readonly(sample, np.float64), MAX_DECIMALS)
    return None if found < 0 else found


def pack_exact(values: np.ndarray, *, fragments: bool = False) -> dict[str, Any]:
    """Floats, losslessly: as decimal integers when that is exact (prices, volumes,
    whole shares), else as 8-byte floats."""
    values = readonly(values, np.float64)
    first = _sample_decimals(values[:_SAMPLE])
    if first is not None:
        ints = np.empty(len(values), np.int64)
        for decimals in range(first, MAX_DECIMALS + 1):  # later values may need more
            if _kernels().decimal_ints(values, 10.0**decimals, ints):
                return {**pack_ints(ints, fragments=fragments), "decimals": decimals}
            if not np.isfinite(values).all():
                break
    return {"codec": "f8", "data": _b64(values.astype("<f8"), fragments)}


def pack_floats(values: np.ndarray, *, fragments: bool = False) -> dict[str, Any]:
    """Floats to about 7 significant digits (4-byte floats), or exactly if a few decimals
    hold them (an indicator that is a price level)."""
    values = np.asarray(values, dtype=np.float64)
    if _sample_decimals(values[:_SAMPLE]) is not None:
        packed = pack_exact(values, fragments=fragments)
        if packed["codec"] == "int":
            return packed
    return {"codec": "f4", "data": _b64(values.astype("<f4"), fragments)}


def pack_runs(values: np.ndarray, *, fragments: bool = False) -> dict[str, Any]:
    """A piecewise-constant column (shares held), losslessly: where it changes, and to what."""
    values = np.asarray(values, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else []
    return {"codec": "runs", "at": pack_ints(starts, fragments=fragments),
            "values": pack_exact(values[starts], fragments=fragments)}  # fmt: skip


def pack_marked(
    values: np.ndarray,
    shares: tuple[str, np.ndarray],
    price: tuple[str, np.ndarray],
    *,
    fragments: bool = False,
) -> dict[str, Any] | None:
    """``values`` that are ``cash + shares * price`` at each row (an equity curve: cash plus
    the shares held valued at the close), as the runs of that cash, losslessly; None if that
    does not give every value back bit for bit, or takes more bytes than the values. ``shares``
    and ``price``: the names and values of the columns the reader multiplies."""
    values = readonly(values, np.float64)
    rows = len(values)
    marked = np.asarray(shares[1], np.float64) * np.asarray(price[1], np.float64)
    starts, cash = np.empty(rows, np.int64), np.empty(rows, np.float64)
    count = _kernels().cash_runs(values, readonly(marked, np.float64), starts, cash)
    if count > rows // 8:  # as many bytes as the values themselves, or NaN
        return None
    starts, cash = starts[:count], cash[:count]
    if not np.array_equal(_marked(starts, cash, marked).view(np.int64), values.view(np.int64)):
        return None
    return {"codec": "marked", "shares": shares[0], "price": price[0],
            "at": pack_ints(starts, fragments=fragments),
            "cash": pack_exact(cash, fragments=fragments)}  # fmt: skip


def _marked(starts: np.ndarray, cash: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Each row's cash plus ``marked`` (shares * price): the writer's check and the reader's
    values, the same float64 arithmetic."""
    return np.repeat(cash, np.diff(np.r_[starts, len(marked)])) + marked


def pack_text(values, *, fragments: bool = False) -> dict[str, Any]:
    """A column of a few distinct strings (a categorical's codes are used as they are)."""
    column = values.array if isinstance(values, pd.Series) else values
    if not isinstance(column, pd.Categorical):
        column = pd.Categorical(column)
    return pack_codes(column.categories, column.codes, fragments=fragments)


def pack_codes(labels, codes: np.ndarray, *, fragments: bool = False) -> dict[str, Any]:
    """A column of ``labels[codes[i]]`` (a text column already as its codes)."""
    return {"codec": "text", "labels": [str(x) for x in labels],
            "codes": pack_ints(codes, fragments=fragments)}  # fmt: skip


def unpack(
    spec: dict[str, Any], rows: int, columns: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """A packed column back as an array of ``rows`` values: float64, int64 (``int`` without
    ``decimals``) or str (``text``). ``columns``: the table's other columns, unpacked (a
    ``marked`` column is computed from two of them). ValueError if the spec is damaged."""
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
    elif codec == "marked":
        if columns is None or spec["shares"] not in columns or spec["price"] not in columns:
            raise ValueError(f"marked column without its {spec['shares']} and {spec['price']}")
        starts = unpack(spec["at"], -1)
        cash = unpack(spec["cash"], len(starts))
        shares = np.asarray(columns[spec["shares"]], np.float64)
        price = np.asarray(columns[spec["price"]], np.float64)
        if len(shares) != rows or len(price) != rows:
            raise ValueError(f"marked column of {rows} rows from other lengths")
        out = _marked(starts, cash, shares * price)
    else:
        raise ValueError(f"unknown codec {codec!r}")
    if rows >= 0 and len(out) != rows:
        raise ValueError(f"{codec} column of {len(out)} values, expected {rows}")
    return out
