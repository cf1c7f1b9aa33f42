"""Parameters from a URL that the charts and orders read: symbols, timeframes and times.

A symbol and a timeframe become part of a cache file's path, so they are checked first.

Only what these functions return may reach a path: a ticker of capitals, digits, ``.`` and
``-`` (so no ``/``, ``\\``, ``..`` or NUL can get through), and a timeframe's canonical short
name (``5m``), rebuilt from the parsed :class:`~quant_trading.timeframes.Timeframe`.
"""

from __future__ import annotations

import re

import pandas as pd

from quant_trading.timeframes import Timeframe, TimeframeError, parse_time, parse_timeframe

__all__ = ["SYMBOL_RE", "BadParameter", "parse_symbol", "parse_chart_timeframe", "parse_when"]

#: A ticker as IB spells them (``AAPL``, ``BRK.B``, ``BF-B``), at most 15 characters.
SYMBOL_RE = re.compile(r"[A-Z0-9][A-Z0-9.\-]{0,14}")


class BadParameter(ValueError):
    """A symbol, timeframe or time that cannot be used; the message is one line for the user."""


def parse_symbol(text: str) -> str:
    """``aapl`` -> ``AAPL``; :class:`BadParameter` unless it is a plausible ticker."""
    symbol = text.strip().upper()
    if not SYMBOL_RE.fullmatch(symbol):
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise BadParameter(
            f"{shown!r} is not a ticker: use 1-15 letters, digits, '.' or '-' (e.g. AAPL, BRK.B)"
        )
    return symbol


def parse_chart_timeframe(text: str) -> Timeframe:
    """``5m``, ``5 mins`` or ``5`` -> the 5-minute :class:`Timeframe` (its ``name`` is the
    cache folder); :class:`BadParameter` for anything else."""
    if len(text) > 20:
        raise BadParameter(f"{text[:20]!r}...: not a timeframe")
    try:
        return parse_timeframe(text)
    except TimeframeError as exc:
        raise BadParameter(str(exc)) from None


_TIME_TEXT = re.compile(r"[0-9A-Za-z:+\-. /]{1,40}")


def parse_when(text: str, *, end: bool = False) -> pd.Timestamp:
    """A date or date-time as the CLI's ``--start``/``--end`` take it (New York time unless
    an offset is given: ``2026-01-31``, ``2026-01-31 10:00``, ``2026-01-31T15:00:00Z``), via
    :func:`quant_trading.timeframes.parse_time`; as an ``end`` a bare date includes that
    whole day. :class:`BadParameter` when it is not one."""
    text = text.strip()
    if not _TIME_TEXT.fullmatch(text):
        raise BadParameter(f"{text[:40]!r} is not a date: use e.g. 2026-01-31 or 2026-01-31 10:00")
    try:
        stamp = parse_time(text, end=end)
    except (ValueError, TypeError, AttributeError, OverflowError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise BadParameter(f"{text!r} is not a date: use e.g. 2026-01-31 or 2026-01-31 10:00")
    return stamp
