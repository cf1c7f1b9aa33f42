"""Planning a long historical download as the fewest requests IB allows.

Pure (no I/O, no ibapi). IB serves at most a certain duration per request for each bar size
(its "step size" table: 1 D of 1-minute bars, 1 W of 3- to 20-minute bars, ...). A range is
cut into chunks of that duration, walked backwards from the end. Days without a session
(weekends, holidays, from the NYSE calendar) get no request. Chunks measured in days end
one second before local midnight, so "1 D" means that whole day whether TWS counts days as
trading days or as 24 hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from ..bars import EXCHANGE_TZ
from ..sessions import nyse_calendar
from ..timeframes import IB_BAR_SIZES, IB_MAX_DURATION, parse_timeframe

__all__ = [
    "Chunk",
    "DurationError",
    "parse_duration",
    "range_start",
    "parse_end",
    "plan_chunks",
    "ib_time",
]

_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$", re.IGNORECASE)
_EXTENDED = (pd.Timedelta(hours=4), pd.Timedelta(hours=20))  # IB's pre/after-hours window


class DurationError(ValueError):
    """A duration, bar size or end time IB would not accept; the message says which."""


@dataclass(frozen=True)
class Chunk:
    """One request: it ends at ``end`` and reaches back ``duration`` (IB's spelling)."""

    start: pd.Timestamp
    end: pd.Timestamp
    duration: str

    @property
    def end_text(self) -> str:
        """``endDateTime`` as IB wants it with an explicit zone: ``yyyymmdd-hh:mm:ss`` UTC."""
        return ib_time(self.end)


def ib_time(stamp: pd.Timestamp) -> str:
    """``yyyymmdd-hh:mm:ss`` in UTC, the unambiguous ``endDateTime`` form."""
    return stamp.tz_convert("UTC").strftime("%Y%m%d-%H:%M:%S")


def parse_duration(text: str) -> tuple[int, str]:
    """``"6 M"`` -> ``(6, "M")``; units S, D, W, M, Y (IB's)."""
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise DurationError(
            f"--duration {text!r}: use '<number> <unit>' with unit S, D, W, M or Y, e.g. '6 M'"
        )
    return int(match.group(1)), match.group(2).upper()


def range_start(end: pd.Timestamp, count: int, unit: str) -> pd.Timestamp:
    """The start of ``count`` ``unit`` back from ``end`` (calendar arithmetic)."""
    if unit == "S":
        return end - pd.Timedelta(seconds=count)
    if unit == "D":
        return end - pd.Timedelta(days=count)
    if unit == "W":
        return end - pd.Timedelta(weeks=count)
    if unit == "M":
        return end - pd.DateOffset(months=count)
    return end - pd.DateOffset(years=count)


def parse_end(text: str | None, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """``--end-datetime``: empty for now; ``yyyymmdd hh:mm:ss`` with an optional time zone
    name (``US/Eastern``, ``UTC``; none means New York); ``yyyymmdd-hh:mm:ss`` (UTC); ISO
    8601; or a date (its end: the whole day is included)."""
    if not text or not text.strip():
        return (now or pd.Timestamp.now(tz="UTC")).tz_convert(EXCHANGE_TZ)
    value = text.strip()
    try:
        if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", value):
            return pd.Timestamp(value.replace("-", " "), tz="UTC").tz_convert(EXCHANGE_TZ)
        match = re.fullmatch(r"(\d{8})\s+(\d{2}:\d{2}:\d{2})(?:\s+(\S+))?", value)
        if match:
            zone = match.group(3) or EXCHANGE_TZ
            stamp = pd.Timestamp(f"{match.group(1)} {match.group(2)}").tz_localize(zone)
            return stamp.tz_convert(EXCHANGE_TZ)
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DurationError(f"--end-datetime {text!r}: {exc}") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(EXCHANGE_TZ)
    if re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", value):  # a bare date: through its end
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    return stamp.tz_convert(EXCHANGE_TZ)


def check_bar_size(text: str) -> str:
    """IB's spelling of a bar size (``5 mins``), accepting ``5m`` as well."""
    try:
        size = parse_timeframe(text).ib_bar_size
    except ValueError:
        size = None
    if size not in IB_MAX_DURATION:
        raise DurationError(f"--bar-size {text!r}: use one of {', '.join(IB_BAR_SIZES)}")
    return size


def _session_days(start: pd.Timestamp, end: pd.Timestamp) -> set:
    calendar = nyse_calendar()
    first = max(start.tz_convert(EXCHANGE_TZ).normalize().tz_localize(None), calendar.first_session)
    last = min(end.tz_convert(EXCHANGE_TZ).normalize().tz_localize(None), calendar.last_session)
    if first > last:
        return set()
    return {d.date() for d in calendar.sessions_in_range(first, last)}


def _has_session(start: pd.Timestamp, end: pd.Timestamp, days: set, all_hours: bool) -> bool:
    """Whether [start, end) overlaps trading time on a session day."""
    day = start.tz_convert(EXCHANGE_TZ).normalize()
    last = end.tz_convert(EXCHANGE_TZ)
    while day <= last:
        if day.date() in days:
            if all_hours:
                opens, closes = day + _EXTENDED[0], day + _EXTENDED[1]
            else:
                opens, closes = (
                    day + pd.Timedelta(hours=9, minutes=30),
                    day + pd.Timedelta(hours=16),
                )
            if start < closes and end > opens:
                return True
        day += pd.Timedelta(days=1)
    return False


def plan_chunks(
    start: pd.Timestamp, end: pd.Timestamp, bar_size: str, all_hours: bool = False
) -> list[Chunk]:
    """The requests that cover [start, end] for ``bar_size``, newest first."""
    count, unit = IB_MAX_DURATION[check_bar_size(bar_size)]
    end = end.tz_convert(EXCHANGE_TZ)
    start = start.tz_convert(EXCHANGE_TZ)
    days = _session_days(start - pd.Timedelta(days=1), end)
    chunks: list[Chunk] = []
    if unit == "D":
        # One day (or count days) per request, each ending just before local midnight.
        cursor = end
        while cursor > start:
            day = cursor.normalize()
            day_end = min(cursor, day + pd.Timedelta(days=1) - pd.Timedelta(seconds=1))
            first_day = day - pd.Timedelta(days=count - 1)
            chunk_start = max(first_day, start)
            covered = {(first_day + pd.Timedelta(days=i)).date() for i in range(count)}
            if covered & days:
                chunks.append(Chunk(chunk_start, day_end, f"{count} D"))
            cursor = first_day - pd.Timedelta(seconds=1)
        return chunks
    # A request's window may start inside a bar, and the bar TWS builds there can be cut
    # short. So each next (older) request ends at the first bar boundary at or after that
    # window start (midnight for day-long and longer steps, where no session is split):
    # the bar is fetched whole once more, and the older request's copy wins the merge.
    step = pd.Timedelta(days=1) if unit != "S" else pd.Timedelta(seconds=_bar_seconds(bar_size))
    cursor = end
    while cursor > start:
        window_start = range_start(cursor, count, unit)
        chunk_start = max(window_start, start)
        if _has_session(chunk_start, cursor, days, all_hours):
            chunks.append(Chunk(chunk_start, cursor, f"{count} {unit}"))
        cursor = _ceil(window_start, step)
        if cursor >= chunks[-1].end if chunks else cursor >= end:  # never loop in place
            cursor = window_start
    return chunks


def _bar_seconds(bar_size: str) -> int:
    return parse_timeframe(bar_size).seconds or 86400


def _ceil(stamp: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """``stamp`` rounded up to a multiple of ``step`` on the local clock."""
    if step >= pd.Timedelta(days=1):
        day = stamp.normalize()
        return day if day == stamp else day + pd.Timedelta(days=1)
    offset = (stamp - stamp.normalize()) % step
    return stamp if offset == pd.Timedelta(0) else stamp + (step - offset)
