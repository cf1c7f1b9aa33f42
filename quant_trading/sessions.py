"""NYSE sessions: which days trade and when they close, from exchange_calendars' XNYS
(holidays and 13:00 half days included). Shared by the downloader's planning and the paper
trader's session close."""

from __future__ import annotations

import warnings
from functools import cache

import pandas as pd

from .bars import EXCHANGE_TZ

__all__ = ["nyse_calendar", "session_close"]


@cache
def nyse_calendar():
    """The XNYS calendar from 1990 (loaded once: exchange_calendars is slow to import)."""
    import exchange_calendars

    with warnings.catch_warnings():  # pandas deprecation noise inside the library
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar("XNYS", start="1990-01-02")


def session_close(time: pd.Timestamp) -> pd.Timestamp:
    """When the NYSE session of ``time``'s New York date closes (13:00 on half days); 16:00
    on a day the calendar does not list as a session."""
    day = time.tz_convert(EXCHANGE_TZ).normalize()
    calendar = nyse_calendar()
    label = day.tz_localize(None)
    if calendar.first_session <= label <= calendar.last_session and calendar.is_session(label):
        return calendar.session_close(label).tz_convert(EXCHANGE_TZ)
    return day + pd.Timedelta(hours=16)
