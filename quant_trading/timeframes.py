"""Bar sizes: the project's short names (``5m``) and IB's bar-size strings (``5 mins``).

Pure: no I/O. A :class:`Timeframe` is what every other module passes around; parse user input
with :func:`parse_timeframe`, which accepts either spelling (and bare minutes, ``"5"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

__all__ = [
    "EXCHANGE_TZ",
    "Timeframe",
    "parse_timeframe",
    "parse_time",
    "IB_BAR_SIZES",
    "IB_MAX_DURATION",
    "TimeframeError",
]

#: US stock sessions, bar labels and naive times in users' files are New York time.
EXCHANGE_TZ = "America/New_York"


class TimeframeError(ValueError):
    """A bar size that is neither a short name nor an IB bar-size string."""


# (count, unit) -> unit length in seconds; months and weeks are calendar units, not seconds.
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_UNIT_IB = {"s": "sec", "m": "min", "h": "hour", "d": "day", "w": "week", "mo": "month"}

#: Every bar size IB's reqHistoricalData accepts, in IB's own spelling.
IB_BAR_SIZES = (
    "1 secs", "5 secs", "10 secs", "15 secs", "30 secs",
    "1 min", "2 mins", "3 mins", "5 mins", "10 mins", "15 mins", "20 mins", "30 mins",
    "1 hour", "2 hours", "3 hours", "4 hours", "8 hours",
    "1 day", "1 week", "1 month",
)  # fmt: skip

#: The longest duration IB serves per historical request, by bar size, as (count, unit) in
#: IB's duration units (its published "step size" table). The downloader and the market data
#: tracker plan their requests with it. The simulator keeps its own copy on purpose (see
#: ``simulator/historical.py``): it models TWS independently, so one wrong table cannot make
#: both sides agree; tests/test_core_basics.py checks that the two are equal.
IB_MAX_DURATION: dict[str, tuple[int, str]] = {
    "1 secs": (1800, "S"), "5 secs": (3600, "S"), "10 secs": (14400, "S"),
    "15 secs": (14400, "S"), "30 secs": (28800, "S"),
    "1 min": (1, "D"), "2 mins": (2, "D"),
    "3 mins": (1, "W"), "5 mins": (1, "W"), "10 mins": (1, "W"), "15 mins": (1, "W"),
    "20 mins": (1, "W"),
    "30 mins": (1, "M"), "1 hour": (1, "M"), "2 hours": (1, "M"), "3 hours": (1, "M"),
    "4 hours": (1, "M"), "8 hours": (1, "M"),
    "1 day": (1, "Y"), "1 week": (1, "Y"), "1 month": (1, "Y"),
}  # fmt: skip

_ALIASES = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hr": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "wk": "w", "week": "w", "weeks": "w",
    "mo": "mo", "mon": "mo", "month": "mo", "months": "mo",
}  # fmt: skip

_PATTERN = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar size: ``count`` units of ``unit`` (one of s, m, h, d, w, mo)."""

    count: int
    unit: str

    @property
    def name(self) -> str:
        """Short name used in file and folder names: ``5m``, ``1h``, ``1d``."""
        return f"{self.count}{self.unit}"

    @property
    def ib_bar_size(self) -> str:
        """IB's bar-size string: ``1 min``, ``5 mins``, ``1 secs``, ``1 day``."""
        word = _UNIT_IB[self.unit]
        if self.unit == "s":
            return f"{self.count} secs"  # IB writes "1 secs", plural even for one
        return f"{self.count} {word}" + ("s" if self.count > 1 else "")

    @property
    def seconds(self) -> int | None:
        """Length in seconds, or None for months (calendar length varies)."""
        if self.unit == "mo":
            return None
        return self.count * _UNIT_SECONDS[self.unit]

    @property
    def minutes(self) -> float | None:
        """Length in minutes, or None for months."""
        secs = self.seconds
        return None if secs is None else secs / 60

    @property
    def is_intraday(self) -> bool:
        """True for bars shorter than a day (they carry a time of day, not just a date)."""
        secs = self.seconds
        return secs is not None and secs < 86400

    @property
    def clock_aligned(self) -> bool:
        """True when bins can be aligned to the wall clock: the size divides an hour or a day."""
        secs = self.seconds
        return secs is not None and secs <= 86400 and 86400 % secs == 0

    def __str__(self) -> str:
        return self.name


def parse_timeframe(value: str | int | Timeframe) -> Timeframe:
    """Parse ``5m``, ``5 mins``, ``5min``, ``5`` (minutes), ``1 hour``, ``1d``, ``30 secs``...

    Raises :class:`TimeframeError` with the accepted spellings when it cannot.
    """
    if isinstance(value, Timeframe):
        return value
    if isinstance(value, int):
        value = str(value)
    match = _PATTERN.match(str(value))
    unit = (
        _ALIASES.get(match.group(2).lower() if match and match.group(2) else "m") if match else None
    )
    if not match or unit is None or int(match.group(1)) <= 0:
        raise TimeframeError(
            f"unknown timeframe {value!r}: use e.g. 1m, 3m, 5m, 10m, 1h, 1d "
            f"or an IB bar size such as '5 mins'"
        )
    return Timeframe(int(match.group(1)), unit)


def parse_time(text: str, *, end: bool = False) -> pd.Timestamp:
    """``2025-01-31`` or ``2025-01-31 10:00`` (New York unless an offset is given), or a
    whole month ``2025-01`` or year ``2025``. A bare date, month or year as an end includes
    all of it (``--end 2025`` is the end of 2025). ValueError if ``text`` is no time."""
    text = text.strip()
    if _CALENDAR_SPAN.match(text):
        period = pd.Period(text)  # a year, a month or a day
        stamp = (period + 1).start_time if end else period.start_time
    else:
        stamp = pd.Timestamp(text)
    if stamp is pd.NaT:  # "", "NaT": pandas' "no time"
        raise ValueError(f"{text!r} is not a date or time")
    return stamp.tz_localize(EXCHANGE_TZ) if stamp.tzinfo is None else stamp.tz_convert(EXCHANGE_TZ)


_CALENDAR_SPAN = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
