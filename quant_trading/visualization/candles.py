"""Candlesticks and bar charts as a few compound paths, refilled on every move of the chart.

mplfinance draws a candle chart as one polygon per body and one line segment per wick, in
collections it makes anew for every plot, and matplotlib draws a ``PolyCollection`` of bars
the same way: one ``Path`` object per bar. For the ~400 to 2,000 bars of a window that is
most of a move's time in building ``Path`` objects, measuring data limits and rasterising
small paths one at a time (benchmarks/bench_visualizer.py). Here all bars of one colour are
a single path (a rectangle per bar, built with numpy) in one ``PathPatch`` that is made once
and refilled, which Agg renders in one call.

The look stays mplfinance's: :class:`Candlesticks` takes its colours from an mplfinance
style (:func:`mplfinance.make_mpf_style`) and its candle and line widths from mplfinance's
width table, so a candle looks as ``mpf.plot`` draws it, down to the line a flat candle
leaves.
"""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath

__all__ = ["Candlesticks", "SignBars", "boxes_path", "candle_widths"]

#: mplfinance's width table (mplfinance/_widths.py), by the number of candles shown: the
#: body's width as a share of the bar spacing, and the width of its edge and wicks in points.
#: mplfinance interpolates between the rows and keeps the first and last beyond them.
_SHOWN = (30, 60, 90, 120, 150, 180, 210, 240)
_BODY_WIDTH = (0.65, 0.575, 0.50, 0.445, 0.435, 0.425, 0.420, 0.415)
_LINE_WIDTH = (1.00, 0.875, 0.75, 0.625, 0.500, 0.438, 0.435, 0.435)

_BOX = np.array([MplPath.MOVETO, *[MplPath.LINETO] * 3, MplPath.CLOSEPOLY], MplPath.code_type)
_STICK = np.array([MplPath.MOVETO, MplPath.LINETO] * 2, MplPath.code_type)
_EMPTY = MplPath(np.empty((0, 2)))


def candle_widths(shown: int) -> tuple[float, float]:
    """(body width in bars, edge and wick width in points) for ``shown`` candles, as
    mplfinance sizes them."""
    body, line = np.interp(shown, _SHOWN, _BODY_WIDTH), np.interp(shown, _SHOWN, _LINE_WIDTH)
    return float(body), float(line)


def boxes_path(x: np.ndarray, bottom: np.ndarray, top: np.ndarray, width: float) -> MplPath:
    """One path of closed rectangles ``width`` wide centred on ``x``, from ``bottom`` to
    ``top``: five vertices a bar, in the order mplfinance gives a candle body's."""
    vertices = np.empty((len(x), 5, 2))
    vertices[:, (0, 1, 4), 0] = (x - width / 2)[:, None]
    vertices[:, (2, 3), 0] = (x + width / 2)[:, None]
    vertices[:, (0, 3, 4), 1] = bottom[:, None]
    vertices[:, (1, 2), 1] = top[:, None]
    return _compound(vertices, _BOX)


def _sticks_path(x, low, bottom, top, high) -> MplPath:
    """Wicks: a segment from ``low`` up to ``bottom`` and one from ``top`` up to ``high``."""
    vertices = np.empty((len(x), 4, 2))
    vertices[..., 0] = x[:, None]
    for i, y in enumerate((low, bottom, top, high)):
        vertices[:, i, 1] = y
    return _compound(vertices, _STICK)


def _compound(vertices: np.ndarray, codes: np.ndarray) -> MplPath:
    if len(vertices) == 0:
        return _EMPTY
    path = MplPath(vertices.reshape(-1, 2), np.tile(codes, len(vertices)))
    # Drawn as the separate shapes they are: simplification could merge the straight
    # segments of neighbouring wicks.
    path.should_simplify = False
    return path


def _patch(ax: Axes, zorder: float, **style) -> PathPatch:
    # Snapped to whole pixels like the small rectangles of a collection (Agg snaps a path
    # of straight lines by itself only up to 1,024 vertices).
    patch = PathPatch(_EMPTY, snap=True, zorder=zorder, **style)
    ax.add_patch(patch)
    return patch


class Candlesticks:
    """The candles of a price axes in an mplfinance style's colours: a body path and a wick
    path per colour, refilled by :meth:`show`."""

    def __init__(self, ax: Axes, style: dict) -> None:
        colors = style["marketcolors"]
        self.bodies: dict[str, PathPatch] = {}
        self.wicks: dict[str, PathPatch] = {}
        for side in ("up", "down"):
            # mplfinance's zorders: bodies as a PolyCollection (1), wicks over them as a
            # LineCollection (2); its alpha is the bodies' only.
            self.bodies[side] = _patch(
                ax,
                1,
                facecolor=mcolors.to_rgba(colors["candle"][side], colors["alpha"]),
                edgecolor=colors["edge"][side],
                label=f"_{side} candle bodies",
            )
            self.wicks[side] = _patch(
                ax, 2, fill=False, edgecolor=colors["wick"][side], label=f"_{side} candle wicks"
            )

    def show(
        self, x: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> None:
        """Draw a candle at each ``x`` (bar units) from these prices."""
        width, line = candle_widths(len(x))
        up = open_ < close  # as mplfinance: a candle closing at its open is a down candle
        bottom, top = np.minimum(open_, close), np.maximum(open_, close)
        for side, mine in (("up", up), ("down", ~up)):
            body, wick = self.bodies[side], self.wicks[side]
            body.set_path(boxes_path(x[mine], open_[mine], close[mine], width))
            wick.set_path(_sticks_path(x[mine], low[mine], bottom[mine], top[mine], high[mine]))
            body.set_linewidth(line)
            wick.set_linewidth(line)


class SignBars:
    """Bars from zero to a height at each x, in one colour where a mask is true and another
    elsewhere (volume by candle direction, a histogram by sign): one path per colour."""

    def __init__(
        self,
        ax: Axes,
        colors: tuple[str, str],
        width: float,
        alpha: float,
        label: str | None = None,
    ) -> None:
        self.width = width
        self.label = label
        name = label or "bars"
        self.up, self.down = (
            _patch(ax, 1, facecolor=color, linewidth=0, alpha=alpha, label=f"_{name} {side}")
            for color, side in zip(colors, ("up", "down"))
        )

    def show(self, x: np.ndarray, heights: np.ndarray, up: np.ndarray) -> None:
        """Draw a bar of ``heights`` (NaN: none) at each ``x``, coloured by ``up``."""
        heights = np.nan_to_num(heights)
        zeros = np.zeros(len(x))
        for patch, mine in ((self.up, up), (self.down, ~up)):
            patch.set_path(boxes_path(x[mine], zeros[mine], heights[mine], self.width))
