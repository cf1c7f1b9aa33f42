"""The trade chart as a matplotlib figure: header, candlesticks with trade markers and the
strategy's price overlays, volume, one panel per indicator panel the strategy declares, and
an overview strip of the whole period. No tkinter here: the Tk window embeds this figure,
``--export`` saves it, and the tests inspect its artists without a display.

What to draw comes from the cache (:attr:`CachedBacktest.indicators`, the strategy's
:class:`~quant_trading.drawing.Drawing` hints), never from strategy code: a line over the
candles for each ``"price"`` line, and below volume a panel per other ``Plot.panel`` name, in
declaration order, with its lines, sign-coloured histograms, reference levels and limits.

Redrawing. A year of 5-minute bars is ~20,000 candles; only the visible window (a week by
default, at most :data:`~.viewport.MAX_BARS`) is drawn. One full ``mpf.plot`` of a week with
volume and MACD addplots costs ~0.65 s per move on the project's 2-core machine
(benchmarks/bench_visualizer.py), because mplfinance draws volume and histogram bars as one
patch per bar. Even asking mplfinance for the candles alone (its external-axes mode) cost a
third of a move: it makes a polygon and two line segments per candle, in new collections on
every call. So mplfinance only defines the look (:data:`STYLE`, and its candle widths), and
every artist is made once per panel layout and updated in place: candles, volume and
histogram bars are one path per colour (:mod:`.candles`: Agg renders hundreds of bars in one
call), overlays and indicator lines are ``Line2D``, trade markers a ``PathCollection`` per
kind. Rendering the whole figure still took ~130 ms, half of it the header text and the
overview, which a move does not change: :meth:`TradeChart.draw` renders those once into a
saved background and afterwards only the stacked panels and the overview's window marker on
top of it (matplotlib's blitting). Of what is left, text cost the most (matplotlib 3.11
rasterises every glyph on every draw: ~2 ms a tick label, ~15 ms the window's dates), so
texts and legends are rendered once and pasted afterwards, a new text in one FreeType call
(:mod:`.bitmaps`), and the panels' axes draw their ticks without measuring every tick label
first (:func:`_draw_ticks_only`). A move takes 60-90 ms.

Arrows are sized in points, so whether they fit and whether they collide depends on the
zoom: each move widens the price range until the arrows at its top and bottom fit, leaves
half an arrow's width beside the first and last candle, and moves apart the arrows of one
bar that would overlap (:func:`_arrow_tips`).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from pathlib import Path

import mplfinance as mpf
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.textpath import text_to_path
from matplotlib.ticker import FuncFormatter, NullFormatter
from matplotlib.transforms import IdentityTransform

from ..backtesting.cache import CachedBacktest
from ..drawing import Drawing, Line
from .bitmaps import TextBitmaps, paste_unchanged
from .candles import Candlesticks, SignBars
from .header import ChartHeader
from .markers import LOOKS, Marker, MarkerKind, trade_markers
from .viewport import Viewport, default_width

__all__ = [
    "TradeChart",
    "render_png",
    "arrow_marker",
    "CANDLE_UP",
    "CANDLE_DOWN",
    "MARKER_SIZE",
]

log = logging.getLogger(__name__)

CANDLE_UP = "#26a69a"
CANDLE_DOWN = "#ef5350"
STYLE = mpf.make_mpf_style(
    base_mpf_style="yahoo",
    marketcolors=mpf.make_marketcolors(up=CANDLE_UP, down=CANDLE_DOWN, inherit=True),
    gridstyle=":",
)
#: Colours for lines that declare none, in order: matplotlib's, without the greens, reds and
#: greys of candles, markers and the close (orange, like the short-exit arrows, comes last).
PALETTE = ("#1f77b4", "#9467bd", "#8c564b", "#17becf", "#e377c2", "#bcbd22", "#ff7f0e")
LEVEL_COLOR = "#888888"
HIST_ALPHA = 0.55
#: Width of volume and histogram bars, in bars.
BAR_WIDTH = 0.7
EQUITY_COLOR = "#3b5bdb"
#: Marker area in points² (scatter's ``s``): arrows 13 pt long and 13 pt wide.
MARKER_SIZE = 26.0**2
ARROW_LENGTH = MARKER_SIZE**0.5 / 2  # points, tip to tail
MARKER_EDGE = 0.6  # points, the black outline
#: Space between arrows moved apart on one bar, in points.
ARROW_GAP = 2.0
#: Room above and below the candles' range, as a share of that range (more where an arrow
#: at the edge needs it: see TradeChart._fit_markers).
PRICE_MARGIN = 0.09
#: Hour-level spacings of the time axis' ticks in minutes, finest first; the first that gives
#: at most MAX_TICKS ticks is used, and beyond the last the ticks mark whole sessions.
TICK_MINUTES = (5, 10, 15, 30, 60, 120, 180)
TICK_FONTSIZE = 8
#: How far beyond the candles' range an overlay (a long moving average far from the price)
#: may stretch the price axis, as a share of that range: the candles keep at least half the
#: panel's height, and what lies further out is cut off at the edge.
OVERLAY_REACH = 0.5
#: Height of an indicator panel relative to the price panel's 5.2; with more than two
#: panels they share 3.8 so the candles stay the largest panel.
PANEL_HEIGHT = 1.9
MAX_TICKS = 8

# An arrow pointing up with its tip at (0, 0): the tip touches the fill price and the arrow
# hangs below it (a down arrow is the mirror image). matplotlib scales a custom marker so
# its largest coordinate is 0.5 without moving the origin, so the tip stays on the point.
_UP_ARROW = np.array(
    [(0, 0), (-0.5, -0.45), (-0.17, -0.45), (-0.17, -1), (0.17, -1), (0.17, -0.45), (0.5, -0.45)]
)


def _arrow_path(direction: str, scale: float = 1.0, shift: float = 0.0) -> MplPath:
    """The arrow, tip at (0, ``shift``), ``scale`` times _UP_ARROW's size."""
    sign = 1.0 if direction == "up" else -1.0
    vertices = np.vstack([_UP_ARROW, _UP_ARROW[:1]]) * (scale, sign * scale) + (0, shift)
    codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(_UP_ARROW) - 1) + [MplPath.CLOSEPOLY]
    return MplPath(vertices, codes)


def arrow_marker(direction: str) -> MarkerStyle:
    """A filled arrow marker (``"up"`` or ``"down"``) whose tip is at the data point."""
    return MarkerStyle(_arrow_path(direction))


def _arrow_tips(tips: np.ndarray, up: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """Where the arrows of one bar put their tips (points, upwards) so none covers another.

    An arrow starts with its tip at its price (``tips``): an up arrow hangs below it, a down
    arrow stands above it. Arrows pointing the same way stack outwards from the price, the
    exit nearest (a flip's entry sits beyond the exit it shares the bar with). If then an up
    arrow and a down arrow still overlap (an entry at the open and an exit at the close of
    one bar, prices a few pixels apart), the bar is split at the middle between the highest
    up tip and the lowest down tip: up arrows below, down arrows above. Every arrow keeps
    pointing at its price from its own side.
    """
    slot = ARROW_LENGTH + MARKER_EDGE + ARROW_GAP
    ups = sorted(np.flatnonzero(up), key=lambda i: (-tips[i], not exits[i]))
    downs = sorted(np.flatnonzero(~up), key=lambda i: (tips[i], not exits[i]))

    def place(ceiling: float, floor: float) -> np.ndarray:
        placed = tips.astype(np.float64)
        below = ceiling + slot
        for i in ups:
            placed[i] = below = min(tips[i], ceiling, below - slot)
        above = floor - slot
        for i in downs:
            placed[i] = above = max(tips[i], floor, above + slot)
        return placed

    placed = place(math.inf, -math.inf)
    if ups and downs:
        reach = ARROW_LENGTH + MARKER_EDGE
        low_up = placed[ups] - reach  # each up arrow spans low_up .. its tip
        high_down = placed[downs] + reach
        clash = (placed[ups][:, None] > placed[downs][None, :] - ARROW_GAP) & (
            low_up[:, None] < high_down[None, :] + ARROW_GAP
        )
        if clash.any():
            middle = (tips[ups[0]] + tips[downs[0]]) / 2
            placed = place(middle - ARROW_GAP / 2, middle + ARROW_GAP / 2)
    return placed


def _line_colors(lines: list[Line]) -> list[str]:
    """Each line's declared colour, else the next palette colour no line here declares (so
    two undeclared moving averages never share one)."""
    taken = {line.color for line in lines}
    free = itertools.cycle([c for c in PALETTE if c not in taken] or PALETTE)
    return [line.color or next(free) for line in lines]


def _short_number(value: float, _pos=None) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def _draw_ticks_only(axis) -> None:
    """Make ``axis`` draw just its ticks while it has no axis label and no offset text.

    Before drawing its ticks, matplotlib measures every tick label (laying out its text
    again) to place the axis label and the offset text beside them; the panels have
    neither, and that measuring costs a tenth of a move."""
    direct = type(axis).draw

    def draw(renderer) -> None:
        ticks = axis._update_ticks() if axis.get_visible() else None
        if ticks is None or axis.label.get_text() or axis.major.formatter.get_offset():
            direct(axis, renderer)
            return
        renderer.open_group(type(axis).__module__, gid=axis.get_gid())
        for tick in ticks:
            tick.draw(renderer)
        renderer.close_group(type(axis).__module__)
        axis.stale = False

    axis.draw = draw  # an instance attribute shadows the class's method


@functools.lru_cache(maxsize=1024)
def _label_width(label: str) -> float:
    """Width of a time-axis label in points (labels repeat: measuring one costs ~1 ms)."""
    font = FontProperties(size=TICK_FONTSIZE)
    return text_to_path.get_text_width_height_descent(label, font, False)[0]


def _every(positions: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``positions``, evenly spaced."""
    step = max(1, math.ceil(len(positions) / most))
    return positions[::step]


class _Panel:
    """One indicator panel below the candles: its axes, made once per layout, and the lines
    and histograms that each move refills from the visible bars."""

    def __init__(self, ax: Axes, drawings: list[Drawing]) -> None:
        self.ax = ax
        plots = [d.plot for d in drawings]
        lines = [line for d in drawings for line in d.lines]
        self.limits = next((p.limits for p in plots if p.limits), None)
        self.lines: list[tuple[Line2D, str]] = []
        self.bars: list[tuple[SignBars, str]] = []
        handles = []
        colors = iter(_line_colors([x for x in lines if x.style == "line"]))
        for x in lines:
            if x.style == "histogram":  # coloured by sign, drawn under the lines
                bars = SignBars(ax, (CANDLE_UP, CANDLE_DOWN), BAR_WIDTH, HIST_ALPHA, x.label)
                self.bars.append((bars, x.column))
                handles.append(
                    Rectangle((0, 0), 1, 1, color=CANDLE_UP, alpha=HIST_ALPHA, label=x.label)
                )
            else:
                (line,) = ax.plot([], [], color=next(colors), lw=1.1, label=x.label)
                self.lines.append((line, x.column))
                handles.append(line)
        for level in dict.fromkeys(v for p in plots for v in p.levels):
            # A zero line reads as an axis (solid); other levels as thresholds (dashed).
            dashed = level != 0
            ax.axhline(
                level, color=LEVEL_COLOR, lw=0.8 if dashed else 0.6, ls="--" if dashed else "-"
            )
        if self.limits:
            ax.set_ylim(*self.limits)
        if handles:
            legend = ax.legend(
                handles=handles, loc="upper left", fontsize=8, ncol=len(handles), frameon=False
            )
            paste_unchanged(legend, lambda: tuple(ax.bbox.bounds))  # it never changes

    def show(self, x: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        """Fill the artists with the visible bars and fit the y range to them."""
        values = []
        for line, column in self.lines:
            line.set_data(x, columns[column])
            values.append(columns[column])
        for bars, column in self.bars:
            heights = np.nan_to_num(columns[column])
            bars.show(x, heights, heights >= 0)
            values.append(heights)
        if self.limits:
            return
        values = np.concatenate(values) if values else np.empty(0)
        values = values[np.isfinite(values)]
        self.ax.set_ylim(*_padded(values.min(), values.max(), 0.12) if len(values) else (-1, 1))


class TradeChart:
    """One figure showing one backtest; :meth:`show` draws a window of bars.

    Build it on a fresh ``Figure`` (Agg, for files and tests) or on the one a Tk canvas owns.
    The panels follow the backtest's indicators: setting a backtest whose strategy draws
    different panels rebuilds the axes on the same figure.
    """

    def __init__(self, figure: Figure | None = None) -> None:
        self.figure = figure if figure is not None else Figure(figsize=(16, 9), dpi=100)
        self.backtest: CachedBacktest | None = None
        self.header: ChartHeader | None = None
        self.markers: list[Marker] = []
        self.entry_bars = np.empty(0, np.int64)
        self.exit_bars = np.empty(0, np.int64)
        self.window = (0, 0)
        self.highlight: tuple[int, int] | None = None  # bars of the selected trade
        self._background = None  # saved render of everything a move leaves alone
        self._background_bounds = None
        self._layout_size = None
        self._text_bitmaps = TextBitmaps()
        self._build_texts()
        self._build_axes(())

    # -- layout ------------------------------------------------------------------------------

    def _build_texts(self) -> None:
        fig = self.figure
        fig.set_facecolor("white")
        self.title_text = fig.text(0, 1, "", va="top", fontsize=13, weight="bold")
        self.summary_text = fig.text(0, 1, "", va="top", fontsize=10)
        self.message_text = fig.text(
            0.5, 0.5, "", ha="center", va="center", fontsize=13, wrap=True, visible=False
        )
        handles = [
            Line2D(
                [],
                [],
                linestyle="none",
                marker=arrow_marker(look.direction),
                markersize=15,
                markerfacecolor=look.color,
                markeredgecolor="black",
                markeredgewidth=0.6,
                label=look.label,
            )
            for look in LOOKS.values()
        ]
        self.legend = fig.legend(
            handles=handles,
            loc="lower left",
            ncol=4,
            fontsize=9,
            frameon=False,
            handletextpad=0.3,
            columnspacing=1.2,
        )

    def _build_axes(self, drawings: tuple[Drawing, ...]) -> None:
        """(Re)make every axes and the artists a move updates, for ``drawings``' panels."""
        fig = self.figure
        for ax in list(fig.axes):
            ax.remove()
        self._drawings = drawings
        overlays = [line for d in drawings if d.plot.overlay for line in d.lines]
        groups: dict[str, list[Drawing]] = {}
        for drawing in drawings:
            if not drawing.plot.overlay:
                groups.setdefault(drawing.plot.panel, []).append(drawing)
        share = min(PANEL_HEIGHT, 3.8 / len(groups)) if groups else 0
        # Margins are set in pixels by relayout(): the header and tick labels keep their size
        # when the window is resized, the panels take the rest.
        ratios = [5.2, 1.1, *[share] * len(groups), 0.42, 0.85]
        self._grid = grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.06)
        self.price_ax = fig.add_subplot(grid[0])
        self.volume_ax = fig.add_subplot(grid[1])
        self.indicator_panels = [
            _Panel(fig.add_subplot(grid[2 + i]), group) for i, group in enumerate(groups.values())
        ]
        self.overview_ax = fig.add_subplot(grid[-1])
        self.equity_ax = self.overview_ax.twinx()
        for ax in self.panels + (self.overview_ax,):
            self._style_axes(ax)
        for ax in self.panels:
            _draw_ticks_only(ax.xaxis)
            _draw_ticks_only(ax.yaxis)

        # Overlays, volume and the indicator panels: made once per layout, updated in place
        # on every move (see module docstring).
        self.overlay_lines: list[tuple[Line2D, str]] = []
        for x, color in zip(overlays, _line_colors(overlays)):
            # Over the candles (zorder 3), under the trade markers (6).
            (line,) = self.price_ax.plot([], [], color=color, lw=1.2, label=x.label, zorder=3)
            self.overlay_lines.append((line, x.column))
        if overlays:  # framed: candles may run under it
            legend = self.price_ax.legend(
                handles=[line for line, _ in self.overlay_lines],
                loc="upper left",
                fontsize=8,
                ncol=len(overlays),
                framealpha=0.8,
            )
            paste_unchanged(legend, lambda: tuple(self.price_ax.bbox.bounds))
        # One collection per marker kind, refilled on every move (over candles and lines).
        self.marker_collections: dict[MarkerKind, PathCollection] = {}
        for kind, look in LOOKS.items():
            markers = PathCollection(
                [_arrow_path(look.direction, ARROW_LENGTH)],
                sizes=[1.0],  # paths in points
                offsets=np.empty((0, 2)),
                offset_transform=self.price_ax.transData,
                transform=IdentityTransform(),  # paths in points around each offset
                facecolors=look.color,
                edgecolors="black",
                linewidths=MARKER_EDGE,
                zorder=6,
                gid=kind.value,
                label=look.label,
            )
            self.price_ax.add_collection(markers, autolim=False)
            self.marker_collections[kind] = markers
        self._arrow_paths: dict[tuple[str, float], MplPath] = {}
        # Grid and ticks under the candles (over the highlight), as mplfinance sets them.
        self.price_ax.set_axisbelow(True)
        self.candles = Candlesticks(self.price_ax, STYLE)
        self.highlight_span = Rectangle(
            (0, 0),
            1,
            1,
            transform=self.price_ax.get_xaxis_transform(),
            color="#ffd54f",
            alpha=0.3,
            lw=0,
            zorder=0,
            visible=False,
        )
        self.price_ax.add_patch(self.highlight_span)
        self.volume_bars = SignBars(self.volume_ax, (CANDLE_UP, CANDLE_DOWN), BAR_WIDTH, 0.75)
        self.volume_ax.yaxis.set_major_formatter(FuncFormatter(_short_number))
        self.volume_ax.text(
            0.005, 0.95, "Volume", transform=self.volume_ax.transAxes, va="top", fontsize=8
        )
        for ax in self.panels[:-1]:  # only the lowest panel labels the shared time axis
            ax.xaxis.set_major_formatter(NullFormatter())

        (self.close_line,) = self.overview_ax.plot([], [], color="#777777", lw=0.8, label="Close")
        (self.equity_line,) = self.equity_ax.plot(
            [], [], color=EQUITY_COLOR, lw=0.9, label="Equity"
        )
        self.overview_span = self.overview_ax.axvspan(
            0, 1, color="#f0a000", alpha=0.4, lw=0, label="On screen"
        )
        self.overview_ax.set_yticks([])
        self.equity_ax.set_yticks([])
        self.equity_ax.legend(
            handles=[self.close_line, self.equity_line, self.overview_span],
            loc="lower left",
            bbox_to_anchor=(0.0, 0.98),
            fontsize=7,
            ncol=3,
            frameon=False,
            borderaxespad=0.1,
        )
        self.overview_ax.tick_params(axis="x", labelsize=8)
        for ax in self.figure.axes:
            # Fixed axis label positions: matplotlib otherwise measures every tick label on
            # every draw to place axis labels this chart does not have.
            ax.xaxis.set_label_coords(0.5, 0.0)
            ax.yaxis.set_label_coords(1.0, 0.5)
        self._place()

    def relayout(self) -> None:
        """Fit margins, header and legend to the figure's current size in pixels, and the
        shown window to the new size (its margins and arrows are measured in pixels)."""
        self._place()
        if self.backtest is not None and self.window[1] > self.window[0]:
            self.show(*self.window)

    def _place(self) -> None:
        width, height = self.figure.bbox.width, self.figure.bbox.height
        left, right = 12 / width, 1 - 58 / width
        top = 1 - 96 / height
        self._grid.update(left=left, right=right, top=top, bottom=26 / height)
        for ax in self.figure.axes:  # GridSpec.update only moves axes of pyplot figures
            spec = ax.get_subplotspec()
            if spec is not None:
                ax.set_position(spec.get_position(self.figure))
        self.title_text.set_position((left, 1 - 8 / height))
        self.summary_text.set_position((left, 1 - 38 / height))
        # The legend shares the row above the price panel with the window's dates (right).
        self.legend.set_bbox_to_anchor((left - 6 / width, top), transform=self.figure.transFigure)
        self._layout_size = (width, height)

    @property
    def panels(self) -> tuple[Axes, ...]:
        """The stacked panels that share the visible window: price, volume, indicators."""
        return (self.price_ax, self.volume_ax, *(p.ax for p in self.indicator_panels))

    @staticmethod
    def _style_axes(ax) -> None:
        ax.set_facecolor(STYLE["facecolor"])
        ax.grid(True, color=STYLE["gridcolor"], linestyle=STYLE["gridstyle"], lw=0.7)
        ax.yaxis.tick_right()
        ax.yaxis.set_label_position("right")
        ax.tick_params(labelsize=TICK_FONTSIZE)

    # -- content -----------------------------------------------------------------------------

    def set_backtest(self, backtest: CachedBacktest) -> None:
        """Show ``backtest``: header, overview and markers; call :meth:`show` next."""
        drawings = tuple(backtest.indicators)
        if drawings != self._drawings:
            self._build_axes(drawings)
        self.backtest = backtest
        self.header = ChartHeader.from_backtest(backtest)
        candles = backtest.candles
        self._times = candles.index
        columns = ["open", "high", "low", "close", "volume"]
        columns += [line.column for d in drawings for line in d.lines]
        self._columns = {name: candles[name].to_numpy(np.float64) for name in columns}
        self._up = self._columns["close"] >= self._columns["open"]
        # Wall-clock minute and day of each bar, for tick placement (New York time). In
        # seconds first: the index may count in ns, us or s (pandas 2 or 3, or a cache).
        self._minute = candles.index.tz_localize(None).as_unit("s").asi8 // 60
        self._day = self._minute // 1440
        month = candles.index.year * 12 + candles.index.month
        self._month_starts = np.flatnonzero(np.r_[True, np.diff(month) != 0])

        self.markers = trade_markers(candles.index, backtest.trades)
        self.entry_bars = np.array([m.bar for m in self.markers[0::2]], np.int64)
        self.exit_bars = np.array([m.bar for m in self.markers[1::2]], np.int64)
        # Every marker by bar (a window is a slice), with what its drawing needs.
        by_bar = sorted(self.markers, key=lambda m: m.bar)
        kinds = list(MarkerKind)
        self._marker_bar = np.array([m.bar for m in by_bar], np.int64)
        self._marker_price = np.array([m.price for m in by_bar], np.float64)
        self._marker_kind = np.array([kinds.index(m.kind) for m in by_bar], np.int64)
        self._marker_up = np.array([m.look.direction == "up" for m in by_bar], bool)
        self._marker_exit = np.array(
            [m.kind in (MarkerKind.LONG_EXIT, MarkerKind.SHORT_EXIT) for m in by_bar], bool
        )

        self.highlight = None
        self.message_text.set_visible(False)
        for ax in self.panels + (self.overview_ax, self.equity_ax):
            ax.set_visible(True)
        self.legend.set_visible(True)
        self.title_text.set_text(self.header.title)
        self.summary_text.set_text(self.header.summary)
        self._draw_overview(candles)
        self._background = None

    def _draw_overview(self, candles: pd.DataFrame) -> None:
        close = self._columns["close"]
        equity = candles["equity"].to_numpy(np.float64)
        self.close_line.set_data(*_envelope(close))
        self.equity_line.set_data(*_envelope(equity))
        self.overview_ax.set_xlim(0, max(len(candles) - 1, 1))
        self.overview_ax.set_ylim(*_padded(close.min(), close.max(), 0.08))
        self.equity_ax.set_ylim(*_padded(np.nanmin(equity), np.nanmax(equity), 0.08))
        if len(self._month_starts) >= 3:
            ticks, spec = _every(self._month_starts, 12), "%b %Y"
        else:  # a month or two: label days instead
            days = np.flatnonzero(np.r_[True, np.diff(self._day) != 0])
            ticks, spec = _every(days, 12), "%b %d"
        self.overview_ax.set_xticks(ticks)
        # Left-aligned: a label starts where its month (day) starts, and fits at the edge.
        self.overview_ax.set_xticklabels([f"{self._times[i]:{spec}}" for i in ticks], ha="left")

    def show_message(self, text: str) -> None:
        """Replace the chart with ``text`` (e.g. no cache files found)."""
        self.backtest = None
        self.header = None
        for ax in self.panels + (self.overview_ax, self.equity_ax):
            ax.set_visible(False)
        self.legend.set_visible(False)
        self.title_text.set_text("Trade visualizer")
        self.summary_text.set_text("")
        self.message_text.set_text(text)
        self.message_text.set_visible(True)
        self._background = None

    @property
    def message(self) -> str:
        """The message shown instead of a chart, or '' when a chart is shown."""
        return self.message_text.get_text() if self.message_text.get_visible() else ""

    # -- the visible window -----------------------------------------------------------------

    def show(self, first: int, stop: int) -> None:
        """Draw bars ``first .. stop - 1``. Only these are handed to matplotlib."""
        if self.backtest is None:
            raise RuntimeError("no backtest to show")
        total = len(self._times)
        first, stop = max(0, first), min(total, stop)
        if stop <= first:
            raise ValueError(f"empty window {first}..{stop} of {total} bars")
        self.window = (first, stop)
        n = stop - first
        x = np.arange(n, dtype=np.float64)
        cols = {k: v[first:stop] for k, v in self._columns.items()}
        margin = self._x_margin(n)
        xlim = (-margin, n - 1 + margin)

        shown = slice(*np.searchsorted(self._marker_bar, (first, stop)))
        ylim, shifts = self._fit_markers(_padded(*self._price_range(cols), PRICE_MARGIN), shown)
        self.price_ax.set_ylim(*ylim)
        self.candles.show(x, cols["open"], cols["high"], cols["low"], cols["close"])
        if self.highlight is not None:
            self.highlight_span.set_x(self.highlight[0] - first - 0.5)
            self.highlight_span.set_width(self.highlight[1] - self.highlight[0] + 1)
        self.highlight_span.set_visible(self.highlight is not None)
        self._draw_markers(first, shown, shifts)
        for line, column in self.overlay_lines:
            line.set_data(x, cols[column])

        self.volume_bars.show(x, cols["volume"], self._up[first:stop])
        self.volume_ax.set_ylim(0, max(float(np.nanmax(cols["volume"])), 1.0) * 1.08)
        for panel in self.indicator_panels:
            panel.show(x, cols)

        ticks, labels = self._ticks(first, stop)
        for ax in self.panels:
            ax.set_xlim(*xlim)
            ax.set_xticks(ticks - first)
        lowest = self.panels[-1]
        lowest.set_xticklabels(labels)
        for tick, align in zip(
            lowest.xaxis.get_major_ticks(len(ticks)), self._label_alignment(ticks - first, labels)
        ):
            tick.label1.set_horizontalalignment(align)

        in_view = ((self.entry_bars >= first) & (self.entry_bars < stop)) | (
            (self.exit_bars >= first) & (self.exit_bars < stop)
        )
        self.price_ax.set_title(
            f"{self._times[first]:%a %Y-%m-%d %H:%M} – {self._times[stop - 1]:%a %Y-%m-%d %H:%M}"
            f"  ·  {n:,} bars  ·  {int(in_view.sum()):,} trades in view",
            loc="right",
            fontsize=9,
            y=1.0,  # a fixed position spares matplotlib a layout pass per draw
        )
        self.overview_span.set_x(first)
        self.overview_span.set_width(max(n - 1, 1))

    def draw(self) -> None:
        """Render what :meth:`show` set up on the figure's canvas.

        The first time (and after a resize, a new backtest or a message) everything is
        rendered and the parts a move does not touch are saved; later calls repaint the
        panels and the overview's window marker over that saved background."""
        canvas = self.figure.canvas
        moving = self._dynamic_artists()
        bounds = tuple(self.figure.bbox.bounds)
        if self._layout_size != (self.figure.bbox.width, self.figure.bbox.height):
            self.relayout()
        if hasattr(canvas, "get_renderer"):  # Agg-based (the Tk window, the tests)
            self._text_bitmaps.install(canvas.get_renderer())
        if self.backtest is None or not canvas.supports_blit:
            canvas.draw()
            return
        if self._background is None or self._background_bounds != bounds:
            for artist in moving:
                artist.set_visible(False)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_bounds = bounds
            for artist in moving:
                artist.set_visible(True)
        else:
            canvas.restore_region(self._background)
        for artist in moving:
            self.figure.draw_artist(artist)
        canvas.blit(self.figure.bbox)

    def _dynamic_artists(self) -> list:
        return [*self.panels, self.overview_span]

    def _price_range(self, cols: dict[str, np.ndarray]) -> tuple[float, float]:
        """The candles' low and high, widened to the overlays by at most OVERLAY_REACH."""
        low, high = np.nanmin(cols["low"]), np.nanmax(cols["high"])
        if self.overlay_lines:
            values = np.concatenate([cols[column] for _, column in self.overlay_lines])
            values = values[np.isfinite(values)]  # NaN while an average warms up
            if len(values):
                reach = (high - low) * OVERLAY_REACH
                low = max(min(low, values.min()), low - reach)
                high = min(max(high, values.max()), high + reach)
        return low, high

    def _x_margin(self, n: int) -> float:
        """Bars of room left of the first candle and right of the last: half an arrow's
        width in pixels (arrows at the edges stay whole), at least one bar."""
        width = self.price_ax.bbox.width
        half = (ARROW_LENGTH / 2 + MARKER_EDGE + 1) * self.figure.dpi / 72
        if width <= 4 * half:
            return 1.0
        # margin * width / (n - 1 + 2 * margin) pixels per bar = half
        return max(1.0, half * (n - 1) / (width - 2 * half))

    def _fit_markers(
        self, ylim: tuple[float, float], shown: slice
    ) -> tuple[tuple[float, float], np.ndarray]:
        """The price range ``ylim`` widened so the ``shown`` markers fit inside the panel,
        and how far each arrow's tip is moved from its price, in points (see _arrow_tips).

        Arrows are sized in points, so how much price they cover depends on the range
        itself: the range is widened until it holds them (a few rounds; each widening makes
        the arrows cover less price)."""
        prices = self._marker_price[shown]
        if len(prices) == 0:
            return ylim, prices
        bars, up = self._marker_bar[shown], self._marker_up[shown]
        exits = self._marker_exit[shown]
        # Bars with more than one marker: only there can arrows collide.
        starts = np.flatnonzero(np.r_[True, bars[1:] != bars[:-1]])
        ends = np.r_[starts[1:], len(bars)]
        crowded = [(a, b) for a, b in zip(starts, ends) if b - a > 1]
        height = self.price_ax.bbox.height * 72 / self.figure.dpi  # points
        reach = ARROW_LENGTH + MARKER_EDGE + 1

        def layout(low: float, high: float) -> tuple[float, np.ndarray]:
            per_point = (high - low) / height
            tips = prices / per_point  # in points
            for a, b in crowded:
                tips[a:b] = _arrow_tips(tips[a:b], up[a:b], exits[a:b])
            return per_point, tips

        low, high = ylim
        for _ in range(6):
            per_point, tips = layout(low, high)
            need_low = float(np.min(np.where(up, tips - reach, tips - 1))) * per_point
            need_high = float(np.max(np.where(up, tips + 1, tips + reach))) * per_point
            wider = (min(ylim[0], need_low), max(ylim[1], need_high))
            if wider[0] >= low - 1e-9 * abs(low) and wider[1] <= high + 1e-9 * abs(high):
                break
            low, high = wider
        else:
            per_point, tips = layout(low, high)
        return (low, high), tips - prices / per_point

    def _draw_markers(self, first: int, shown: slice, shifts: np.ndarray) -> None:
        """Fill each kind's collection with the ``shown`` markers. An arrow moved away from
        its price (``shifts``, points) is drawn with its tip offset within the marker, so the
        marker's position stays the fill bar and price."""
        kinds = self._marker_kind[shown]
        bars, prices = self._marker_bar[shown], self._marker_price[shown]
        shifts = np.round(shifts, 2)  # a few distinct paths, shared between moves
        for number, (kind, markers) in enumerate(self.marker_collections.items()):
            mine = kinds == number
            markers.set_offsets(np.column_stack([bars[mine] - first, prices[mine]]))
            direction = LOOKS[kind].direction
            moved = shifts[mine]
            markers.set_paths(
                [self._arrow_path(direction, v) for v in moved]
                if np.any(moved)
                else [self._arrow_path(direction, 0.0)]
            )

    def _arrow_path(self, direction: str, shift: float) -> MplPath:
        key = (direction, float(shift))
        path = self._arrow_paths.get(key)
        if path is None:
            if len(self._arrow_paths) > 1000:
                self._arrow_paths.clear()
            path = self._arrow_paths[key] = _arrow_path(direction, ARROW_LENGTH, shift)
        return path

    def _ticks(self, first: int, stop: int) -> tuple[np.ndarray, list[str]]:
        """Tick positions (absolute bars) and labels for the time axis.

        The finest of TICK_MINUTES that gives at most MAX_TICKS ticks: a tick where a bar
        crosses a multiple of the spacing or starts a session (a crossing within half a
        spacing after a session start is left out: 09:30 and 10:00 would crowd). The first
        tick of each day names the day (``Oct 26 09:30``), the others the time. A window too
        long for that marks session starts (``Mon Oct 26``)."""
        minute, day = self._minute, self._day
        stop = min(stop, len(day))
        before = first - 1 if first > 0 else None
        new_day = (
            day[first:stop]
            != np.r_[day[before] if before is not None else -1, day[first : stop - 1]]
        )
        for step in TICK_MINUTES:
            slot = minute[first:stop] // step
            previous = np.r_[minute[before] // step if before is not None else -1, slot[:-1]]
            crossed = slot != previous
            ticks = np.flatnonzero(crossed | new_day)
            if len(ticks) > 1:
                gap = np.diff(minute[first + ticks])
                ticks = ticks[np.r_[True, new_day[ticks[1:]] | (gap * 2 >= step)]]
            if len(ticks) <= MAX_TICKS:
                break
        else:
            ticks = _every(np.flatnonzero(new_day), MAX_TICKS)
            return first + ticks, [f"{self._times[first + i]:%a %b %d}" for i in ticks]
        dated = np.r_[True, day[first + ticks[1:]] != day[first + ticks[:-1]]]
        labels = [
            f"{self._times[first + i]:%b %d %H:%M}" if named else f"{self._times[first + i]:%H:%M}"
            for i, named in zip(ticks, dated)
        ]
        return first + ticks, labels

    def _label_alignment(self, positions: np.ndarray, labels: list[str]) -> list[str]:
        """Horizontal alignment of each time label: centred on its tick, except a label that
        would stick out left of the panels (it starts at its tick instead) or past the
        figure's right edge (it ends at its tick)."""
        aligned = ["center"] * len(labels)
        if not labels:
            return aligned
        box, (x0, x1) = self.panels[-1].bbox, self.panels[-1].get_xlim()
        right = self.figure.bbox.width - 2
        for i in {0, len(labels) - 1}:
            x = box.x0 + (positions[i] - x0) / (x1 - x0) * box.width
            half = _label_width(labels[i]) * self.figure.dpi / 72 / 2
            if x - half < box.x0:
                aligned[i] = "left"
            elif x + half > right:
                aligned[i] = "right"
        return aligned

    # -- queries the window uses ------------------------------------------------------------

    @property
    def total(self) -> int:
        """Number of candles in the backtest."""
        return 0 if self.backtest is None else len(self._times)

    def bars_between(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> tuple[int, int]:
        """Bar positions [first, stop) of the times ``start`` (inclusive) .. ``end``
        (exclusive); None means the beginning or the end of the data."""
        first = 0 if start is None else int(self._times.searchsorted(start, "left"))
        stop = self.total if end is None else int(self._times.searchsorted(end, "left"))
        return first, stop

    def time_of(self, bar: int) -> pd.Timestamp:
        """The start time of bar ``bar``."""
        return self._times[bar]

    def visible_markers(self) -> list[Marker]:
        """Markers inside the current window (what :meth:`show` drew)."""
        first, stop = self.window
        return [m for m in self.markers if first <= m.bar < stop]


def _envelope(values: np.ndarray, bins: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of a line through each bin's low and high: looks like the full series in a
    strip a thousand pixels wide, at a fraction of the points to render."""
    n = len(values)
    if n <= 2 * bins:
        return np.arange(n), values
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    starts = edges[:-1]
    lows = np.fmin.reduceat(values, starts)
    highs = np.fmax.reduceat(values, starts)
    x = np.repeat(starts, 2) + np.tile([0, 1], bins) * (np.diff(edges) // 2).repeat(2)
    y = np.column_stack([lows, highs]).ravel()
    return x, y


def _padded(low: float, high: float, share: float) -> tuple[float, float]:
    span = high - low
    pad = span * share if span > 0 else max(abs(high) * 0.01, 1.0)
    return low - pad, high + pad


def render_png(
    backtest: CachedBacktest,
    path: str | Path,
    first: int | None = None,
    stop: int | None = None,
    size: tuple[float, float] = (16, 9),
    dpi: int = 100,
) -> TradeChart:
    """Draw bars ``first .. stop - 1`` of ``backtest`` (default: its last week) into a PNG
    file without a window. Returns the chart (for callers that inspect it)."""
    figure = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(figure)
    chart = TradeChart(figure)
    chart.set_backtest(backtest)
    total = chart.total
    if first is None and stop is None:
        view = Viewport.ending_at(total, default_width(backtest.timeframe, total), total)
        first, stop = view.start, view.stop
    chart.show(0 if first is None else first, total if stop is None else stop)
    figure.savefig(path, dpi=dpi)
    log.info("wrote %s (bars %d..%d of %d)", path, *chart.window, total)
    return chart
