"""reqHistoricalData as TWS validates and answers it: durations, bar sizes, end times, limits.

Error codes: a malformed bar size, duration, end time, whatToShow or formatDate gets 321
("Error validating request"); a duration longer than the step-size table allows for the bar
size, bars of 30 s or less older than six months, an empty period and pacing get 162 from the
Historical Market Data Service, as TWS sends them.

:func:`plan_request` checks a request the way TWS does and turns it into a :class:`HistoryPlan`
(the period and bar size to serve) or a :class:`HistoryError` carrying TWS's error code and
wording. :func:`format_bars` turns bars into the ``historicalData`` message's rows for the
request's ``formatDate`` and ``whatToShow``.

Limits (IB's published "historical data limitations", all configurable in
:class:`HistoryLimits`): the longest duration per bar size (the step-size table), bars of 30
seconds or less no older than six months, and at most 50 open requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from ..bars import EXCHANGE_TZ
from ..timeframes import IB_BAR_SIZES, Timeframe, parse_timeframe
from .messages import SV, HistBar
from .requests import HistoricalRequest

__all__ = [
    "DEFAULT_MAX_DURATION",
    "HistoryError",
    "HistoryLimits",
    "HistoryPlan",
    "format_bars",
    "format_time",
    "parse_duration",
    "parse_end",
    "plan_request",
]

_NY = ZoneInfo(EXCHANGE_TZ)
_UTC = ZoneInfo("UTC")
#: TWS names the exchange's zone this way in bar dates and contract details.
TZ_NAME = "US/Eastern"

#: The longest duration TWS accepts per bar size (IB's step-size table), as (count, unit).
#: Deliberately a copy of ``timeframes.IB_MAX_DURATION`` (the table the clients plan with):
#: the simulator models TWS independently, so a wrong client table cannot pass against it.
#: tests/test_core_basics.py checks that the two agree.
DEFAULT_MAX_DURATION: dict[str, tuple[int, str]] = {
    "1 secs": (1800, "S"), "5 secs": (3600, "S"), "10 secs": (14400, "S"),
    "15 secs": (14400, "S"), "30 secs": (28800, "S"),
    "1 min": (1, "D"), "2 mins": (2, "D"),
    "3 mins": (1, "W"), "5 mins": (1, "W"), "10 mins": (1, "W"), "15 mins": (1, "W"),
    "20 mins": (1, "W"),
    "30 mins": (1, "M"), "1 hour": (1, "M"), "2 hours": (1, "M"), "3 hours": (1, "M"),
    "4 hours": (1, "M"), "8 hours": (1, "M"),
    "1 day": (1, "Y"), "1 week": (1, "Y"), "1 month": (1, "Y"),
}  # fmt: skip

# Nominal lengths, only to compare a duration with the table's limit.
_UNIT_SECONDS = {"S": 1, "D": 86400, "W": 7 * 86400, "M": 31 * 86400, "Y": 366 * 86400}

_WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK")
_LEGAL_SIZES = ", ".join([s for s in IB_BAR_SIZES if s not in ("1 week", "1 month")] + ["1W", "1M"])
_ALIASES = {"1W": "1 week", "1M": "1 month", "1 W": "1 week", "1 M": "1 month"}


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """IB's historical-data limits; tests and users may loosen or tighten them."""

    max_duration: dict[str, tuple[int, str]] = field(
        default_factory=lambda: dict(DEFAULT_MAX_DURATION)
    )
    #: Bars of this size or smaller (seconds) may not start more than ``small_bar_age`` ago.
    small_bar_seconds: int = 30
    small_bar_age: timedelta = timedelta(days=183)
    max_open_requests: int = 50
    enforce_step_size: bool = True


class HistoryError(Exception):
    """A request TWS would refuse: ``code`` and ``message`` as TWS words them."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """A validated request: serve ``timeframe`` bars starting in [start, end) (epoch s)."""

    timeframe: Timeframe
    start: float
    end: float
    warnings: tuple[tuple[int, str], ...] = ()


def _invalid(cause: str) -> HistoryError:
    return HistoryError(321, f"Error validating request.-'bP' : cause - {cause}")


def parse_duration(text: str) -> tuple[int, str]:
    """``"5 D"`` -> (5, "D"); units S, D, W, M, Y. Raises :class:`HistoryError` (321)."""
    match = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", text or "")
    if not match or int(match.group(1)) <= 0:
        raise _invalid(
            f"Historical data duration format is invalid: {text!r}. "
            "Valid format is '<integer> <unit>' with unit S, D, W, M or Y"
        )
    return int(match.group(1)), match.group(2)


def parse_bar_size(text: str) -> tuple[str, Timeframe]:
    """IB's bar-size text -> (canonical IB spelling, Timeframe). Raises 321 when not legal."""
    canonical = _ALIASES.get(text.strip(), text.strip())
    if canonical not in IB_BAR_SIZES:
        raise _invalid(
            f"Historical data bar size setting is invalid. Legal ones are: {_LEGAL_SIZES}"
        )
    return canonical, parse_timeframe(canonical)


def parse_end(text: str, now: float) -> tuple[float, tuple[tuple[int, str], ...]]:
    """endDateTime -> (epoch seconds, warnings).

    Empty means now; ``yyyymmdd hh:mm:ss`` is taken in TWS's time zone (here New York) with
    warning 2174 as TWS gives it; ``yyyymmdd hh:mm:ss <zone>`` is in that zone;
    ``yyyymmdd-hh:mm:ss`` is UTC; ``yyyymmdd`` alone is that day's midnight... in New York.
    """
    text = (text or "").strip()
    if not text:
        return now, ()
    warnings: tuple[tuple[int, str], ...] = ()
    try:
        if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", text):
            dt = datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=_UTC)
        else:
            match = re.fullmatch(r"(\d{8})(?:\s+(\d{2}:\d{2}:\d{2}))?(?:\s+(\S+))?", text)
            if not match:
                raise ValueError(text)
            day, clock, zone = match.groups()
            naive = datetime.strptime(f"{day} {clock or '00:00:00'}", "%Y%m%d %H:%M:%S")
            if zone:
                dt = naive.replace(tzinfo=ZoneInfo(zone))
            else:
                dt = naive.replace(tzinfo=_NY)
                warnings = ((2174, _IMPLIED_TZ_WARNING),)
    except (ValueError, ZoneInfoNotFoundError):
        raise _invalid(
            f"Historical data query end date/time string [{text}] is invalid.  "
            "Format is 'YYYYMMDD{SPACE}hh:mm:ss[{SPACE}TMZ]'."
        ) from None
    return dt.timestamp(), warnings


_IMPLIED_TZ_WARNING = (
    "Warning: You submitted request with date-time attributes without explicit time zone. "
    "Please switch to use yyyymmdd-hh:mm:ss in UTC or use instrument time zone, like "
    "US/Eastern. Implied time zone functionality will be removed in the next API release"
)


def _period_start(end: float, count: int, unit: str, sessions: Sessions | None) -> float:
    end_dt = pd.Timestamp(end, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
    if unit == "S":
        return end - count
    if unit == "D":
        # Trading days: the last ``count`` sessions that had started by the end, so "1 D"
        # during a session is that session and before the open it is the previous one.
        if sessions is not None and len(sessions.days):
            k = int(np.searchsorted(sessions.opens, end, side="left"))
            if k > 0:
                first = sessions.days[max(0, k - count)]
                return pd.Timestamp(str(first), tz=EXCHANGE_TZ).timestamp()
        return (end_dt - pd.Timedelta(days=count)).timestamp()
    if unit == "W":
        return (end_dt - pd.Timedelta(weeks=count)).timestamp()
    if unit == "M":
        return (end_dt - pd.DateOffset(months=count)).timestamp()
    return (end_dt - pd.DateOffset(years=count)).timestamp()


@dataclass(frozen=True, slots=True)
class Sessions:
    """A symbol's trading days (sorted ``yyyymmdd`` ints) and each one's first bar (epoch s)."""

    days: np.ndarray
    opens: np.ndarray


def plan_request(
    request: HistoricalRequest,
    now: float,
    limits: HistoryLimits,
    sessions: Sessions | None = None,
) -> HistoryPlan:
    """Validate ``request`` as TWS does and work out the period to serve.

    ``sessions`` are used for "N D" durations, which count trading days. Raises
    :class:`HistoryError`.
    """
    if request.what_to_show not in _WHAT_TO_SHOW:
        raise _invalid(
            f"Historical data whatToShow {request.what_to_show!r} is not supported by the "
            f"simulator; use one of {', '.join(_WHAT_TO_SHOW)}"
        )
    if request.format_date not in (1, 2):
        raise _invalid(f"Date formatting selection of {request.format_date} rejected")
    size_text, tf = parse_bar_size(request.bar_size)
    count, unit = parse_duration(request.duration)
    if request.keep_up_to_date and request.end.strip():
        raise _invalid("End date not supported with live updates")
    if limits.enforce_step_size and size_text in limits.max_duration:
        max_count, max_unit = limits.max_duration[size_text]
        if count * _UNIT_SECONDS[unit] > max_count * _UNIT_SECONDS[max_unit]:
            # TWS answers this with 162 from the HMDS ("invalid step", per a public log of a
            # 1-secs/1 D request), not with 321; ib_async also treats 321 as a warning and
            # would wait forever for the bars.
            step = tf.seconds if tf.seconds is not None else 86400 * 30
            raise HistoryError(
                162,
                f"Historical Market Data Service error message:invalid step: {step} "
                f"({request.duration} of {size_text} bars exceeds the maximum duration of "
                f"{max_count} {max_unit} for this bar size)",
            )
    end, warnings = parse_end(request.end, now)
    end = min(end, now)  # no bars from the future
    start = _period_start(end, count, unit, sessions)
    small = tf.seconds is not None and tf.seconds <= limits.small_bar_seconds
    if small and start < now - limits.small_bar_age.total_seconds():
        raise HistoryError(
            162,
            "Historical Market Data Service error message:Historical data requests for "
            f"bar sizes of {limits.small_bar_seconds} secs or less are limited to the "
            "last six months",
        )
    return HistoryPlan(tf, start, end, warnings)


def no_data_error(request: HistoricalRequest) -> HistoryError:
    """162 as TWS words it when the period has no bars."""
    what = {"TRADES": "Trades", "MIDPOINT": "Midpoint", "BID": "Bid", "ASK": "Ask"}
    return HistoryError(
        162,
        "Historical Market Data Service error message:HMDS query returned no data: "
        f"{request.contract.description} {what.get(request.what_to_show, request.what_to_show)}",
    )


def format_time(epoch: float, tf: Timeframe, format_date: int, sv: int) -> str:
    """A bar's date as TWS writes it: ``yyyymmdd`` for daily and longer bars; otherwise epoch
    seconds (formatDate 2) or the local time, with the zone name from Decimal-era servers on
    (``20261030 09:30:00 US/Eastern``) and the old two-space form before."""
    ts = pd.Timestamp(epoch, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
    if not tf.is_intraday:
        return ts.strftime("%Y%m%d")
    if format_date == 2:
        return str(int(epoch))
    if sv >= SV.FRACTIONAL_SIZE_SUPPORT:
        return ts.strftime("%Y%m%d %H:%M:%S") + f" {TZ_NAME}"
    return ts.strftime("%Y%m%d  %H:%M:%S")


def period_text(epoch: float, sv: int) -> str:
    """The start/end of a request's period in the ``historicalData`` header."""
    ts = pd.Timestamp(epoch, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
    if sv >= SV.FRACTIONAL_SIZE_SUPPORT:
        return ts.strftime("%Y%m%d %H:%M:%S") + f" {TZ_NAME}"
    return ts.strftime("%Y%m%d  %H:%M:%S")


#: Quotes sit this many minimum ticks either side of the last trade (see market.py).
HALF_SPREAD = 0.01


def format_bars(
    frame: pd.DataFrame, tf: Timeframe, what: str, format_date: int, sv: int
) -> list[HistBar]:
    """Rows of the ``historicalData`` message: TRADES bars carry volume, WAP and trade count;
    MIDPOINT/BID/ASK bars carry -1 there, as TWS sends them, with prices shifted by the
    simulated half spread for BID and ASK."""
    shift = {"BID": -HALF_SPREAD, "ASK": HALF_SPREAD}.get(what, 0.0)
    epochs = frame.index.as_unit("s").asi8
    out = []
    for k, row in enumerate(frame.itertuples(index=False)):
        o, h, lo, c = (round(x + shift, 8) for x in (row.open, row.high, row.low, row.close))
        if what == "TRADES":
            wap = round((row.high + row.low + row.close) / 3, 4)
            volume, count = row.volume, int(row.count)
        else:
            wap, volume, count = -1.0, -1.0, -1
        out.append(
            HistBar(
                format_time(float(epochs[k]), tf, format_date, sv), o, h, lo, c, volume, wap, count
            )  # fmt: skip
        )
    return out
