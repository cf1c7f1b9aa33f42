"""Numbers as strict JSON holds them (pure: shared by the backtest and chart bodies)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["json_number"]


def json_number(value: Any) -> Any:
    """A value as strict JSON holds it: numpy scalars as Python ones, NaN as None, and
    infinity as ``"Infinity"``/``"-Infinity"`` (as the cache file has it; Python's float()
    and JavaScript's Number() read it back)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value
