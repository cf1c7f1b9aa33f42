"""Which bars are on screen: a window of ``width`` bars starting at ``start``, moved by
scrolling, zooming and jumping. Pure arithmetic, so navigation is tested without a display.

Positions are bar numbers, not times: the chart has no gaps for nights and weekends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..timeframes import parse_timeframe

__all__ = ["Viewport", "default_width", "first_window", "MIN_BARS", "MAX_BARS"]

#: Fewer bars than this is not a chart any more.
MIN_BARS = 20
#: mplfinance draws every visible candle on each move: a week (390 five-minute candles) moves
#: in ~0.1 s, 2,000 candles in ~0.2-0.3 s, and beyond that candles are thinner than a pixel
#: anyway. The overview strip shows the whole period.
MAX_BARS = 2000
#: Regular trading hours, 09:30-16:00 New York.
SESSION_MINUTES = 390


#: The first window's most candles: a week of 1-minute bars (1,950) would be thinner than a
#: pixel each and slow to move; 1,000 is two and a half sessions.
DEFAULT_MAX_BARS = 1000


def default_width(timeframe: str, total: int) -> int:
    """About one trading week of bars (390 for 5-minute bars), at most DEFAULT_MAX_BARS."""
    try:
        minutes = parse_timeframe(timeframe).minutes
    except ValueError:
        minutes = None
    # Daily or longer bars: about half a year.
    week = round(5 * SESSION_MINUTES / minutes) if minutes and minutes < SESSION_MINUTES else 120
    return max(1, min(week, DEFAULT_MAX_BARS, total))


def first_window(first: int | None, stop: int | None, width: int, total: int) -> tuple[int, int]:
    """Bars ``[first, stop)`` to show first, from the bars a ``--start`` (``first``) and an
    ``--end`` (``stop``) fall on: both as asked; one of them: ``width`` bars from ``first``
    or up to ``stop``; neither: the last ``width`` bars."""
    if first is None and stop is None:
        return max(0, total - width), total
    if first is None:
        return max(0, stop - width), stop
    if stop is None:
        return first, min(total, first + width)
    return first, stop


@dataclass(frozen=True)
class Viewport:
    """Bars ``start`` .. ``stop - 1`` of ``total`` are visible. Every method returns a new,
    clamped viewport: it never runs past either end, and keeps its width when it can."""

    start: int
    width: int
    total: int

    @classmethod
    def ending_at(cls, stop: int, width: int, total: int) -> Viewport:
        """The ``width`` bars before ``stop`` (the latest week, by default)."""
        return cls(stop - width, width, total).clamped()

    @classmethod
    def spanning(cls, first: int, stop: int, total: int) -> Viewport:
        """Bars ``first .. stop - 1``, cut to :data:`MAX_BARS` from the first."""
        return cls(first, stop - first, total).clamped()

    @property
    def stop(self) -> int:
        """One past the last visible bar."""
        return self.start + self.width

    @property
    def center(self) -> int:
        """The bar in the middle of the window."""
        return self.start + self.width // 2

    def clamped(self) -> Viewport:
        """Width within [MIN_BARS, MAX_BARS] (and the data), start within the data."""
        width = max(min(self.width, MAX_BARS, self.total), min(MIN_BARS, self.total), 1)
        start = max(0, min(self.start, self.total - width))
        return replace(self, start=start, width=width)

    def scrolled(self, bars: int) -> Viewport:
        """Moved right by ``bars`` (left if negative)."""
        return replace(self, start=self.start + bars).clamped()

    def paged(self, pages: float) -> Viewport:
        """Moved by whole windows, keeping a tenth of the old one in view for orientation."""
        return self.scrolled(round(pages * self.width * 0.9))

    def zoomed(self, factor: float, anchor: int | None = None) -> Viewport:
        """Width times ``factor`` (< 1 zooms in), keeping ``anchor`` (default: the centre)
        at the same place on screen."""
        anchor = self.center if anchor is None else anchor
        width = max(1, round(self.width * factor))
        share = (anchor - self.start) / self.width if self.width else 0.5
        return replace(self, start=round(anchor - share * width), width=width).clamped()

    def showing(self, first: int, last: int | None = None) -> Viewport:
        """Centred on bars ``first .. last``; widened (up to MAX_BARS) if they do not fit."""
        last = first if last is None else last
        width = max(self.width, min(last - first + 1 + 2 * MIN_BARS, MAX_BARS))
        middle = (first + last) / 2
        return replace(self, start=math.floor(middle - width / 2 + 0.5), width=width).clamped()

    def moved_to(self, fraction: float) -> Viewport:
        """Start at ``fraction`` of the whole period (a scrollbar's position)."""
        return replace(self, start=round(fraction * self.total)).clamped()

    def fractions(self) -> tuple[float, float]:
        """(first, last) visible share of the whole period, as a scrollbar shows it."""
        if self.total <= 0:
            return 0.0, 1.0
        return self.start / self.total, self.stop / self.total

    def contains(self, bar: int) -> bool:
        """True when ``bar`` is on screen."""
        return self.start <= bar < self.stop
