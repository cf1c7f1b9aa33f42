"""Trade markers: where each entry and exit is drawn, and how it looks.

A marker sits on the bar the order filled in and at the fill price, so the arrow's tip
touches the price actually paid. Entries and exits fill at a bar's open; the forced exits
("session close", "end of data") fill at that bar's close, which is why the price comes from
the trade, never from the candle.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["MarkerKind", "MarkerLook", "LOOKS", "Marker", "trade_markers"]

log = logging.getLogger(__name__)


class MarkerKind(enum.Enum):
    """The four things that happen to a position."""

    LONG_ENTRY = "long entry"
    LONG_EXIT = "long exit"
    SHORT_ENTRY = "short entry"
    SHORT_EXIT = "short exit"


@dataclass(frozen=True)
class MarkerLook:
    """How a marker kind is drawn: legend label, fill colour, arrow direction."""

    label: str
    color: str
    direction: Literal["up", "down"]


#: The seed README's convention: green up = long entry, blue down = long exit,
#: red down = short entry, orange up = short exit.
LOOKS: dict[MarkerKind, MarkerLook] = {
    MarkerKind.LONG_ENTRY: MarkerLook("Long entry", "#00b140", "up"),
    MarkerKind.LONG_EXIT: MarkerLook("Long exit", "#1e4fff", "down"),
    MarkerKind.SHORT_ENTRY: MarkerLook("Short entry", "#e8000b", "down"),
    MarkerKind.SHORT_EXIT: MarkerLook("Short exit", "#ff8c00", "up"),
}


@dataclass(frozen=True)
class Marker:
    """One arrow on the chart.

    ``bar`` is the position of the fill bar in the candles; ``stacked`` is True when an exit
    arrow pointing the same way sits on the same bar (a flip: close long and go short at one
    open), so this one is drawn one arrow further out instead of hiding behind it.
    """

    kind: MarkerKind
    trade: int  # row in the cache's trades frame
    bar: int
    time: pd.Timestamp
    price: float
    stacked: bool = False

    @property
    def look(self) -> MarkerLook:
        """Colour, label and direction of this marker's kind."""
        return LOOKS[self.kind]


def _fill_bars(index: pd.DatetimeIndex, times: pd.Series, what: str) -> np.ndarray:
    """Bar positions of fill times; a time between bars goes to the bar containing it."""
    bars = index.get_indexer(pd.DatetimeIndex(times))
    missing = bars < 0
    if missing.any():
        # Not expected from our own cache (fills are at bar starts), but a hand-edited or
        # older file should still draw rather than fail.
        log.warning("%d %s time(s) fall between bars; drawn at the bar before", missing.sum(), what)
        near = index.searchsorted(pd.DatetimeIndex(times[missing]), "right") - 1
        bars[missing] = np.clip(near, 0, len(index) - 1)
    return bars


def trade_markers(index: pd.DatetimeIndex, trades: pd.DataFrame) -> list[Marker]:
    """Two markers per trade (entry, exit), in trade order, placed on ``index`` (the candles'
    times). Trades are the cache's frame: side, entry_time, entry_price, exit_time,
    exit_price, ..."""
    if trades.empty:
        return []
    entry_bars = _fill_bars(index, trades["entry_time"], "entry")
    exit_bars = _fill_bars(index, trades["exit_time"], "exit")
    is_long = (trades["side"] == "long").to_numpy()
    # (bar, direction) of every exit arrow, to find entries that share a spot with one.
    exit_spots = {(int(bar), "down" if long else "up") for bar, long in zip(exit_bars, is_long)}
    markers: list[Marker] = []
    rows = zip(
        range(len(trades)),
        is_long,
        entry_bars,
        trades["entry_time"],
        trades["entry_price"].to_numpy(float),
        exit_bars,
        trades["exit_time"],
        trades["exit_price"].to_numpy(float),
    )
    for row, long, e_bar, e_time, e_price, x_bar, x_time, x_price in rows:
        entry = MarkerKind.LONG_ENTRY if long else MarkerKind.SHORT_ENTRY
        exit_ = MarkerKind.LONG_EXIT if long else MarkerKind.SHORT_EXIT
        stacked = (int(e_bar), LOOKS[entry].direction) in exit_spots
        markers.append(Marker(entry, row, int(e_bar), e_time, float(e_price), stacked))
        markers.append(Marker(exit_, row, int(x_bar), x_time, float(x_price)))
    return markers
