"""The trade visualizer without a display: the figure it draws from a real backtest's cache
(markers, header, window), navigation arithmetic, the cache folder scan, and the CLI's
``--export`` and errors. The window itself is tested in test_visualizer_gui.py."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib
import matplotlib.colors as mcolors
import mplfinance as mpf
import numpy as np
import pytest
from cli_runner import run_module
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from quant_trading.backtesting.cache import CacheError, read_cache
from quant_trading.timeframes import parse_time
from quant_trading.visualization.bitmaps import TextBitmaps
from quant_trading.visualization.catalog import scan_cache
from quant_trading.visualization.chart import CANDLE_DOWN, CANDLE_UP, STYLE, TradeChart
from quant_trading.visualization.header import ChartHeader
from quant_trading.visualization.markers import MarkerKind, trade_markers
from quant_trading.visualization.viewport import (
    MAX_BARS,
    MIN_BARS,
    Viewport,
    default_width,
    first_window,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
# A quarter of the sample data keeps the backtests (and the tests) quick.
PERIOD = ("--start", "2026-06-01", "--end", "2026-08-31")


def make_cache(base: Path) -> Path:
    """A cache folder from real ``run_backtest`` runs on the bundled sample data: 5m for AAPL,
    MSFT and SPY, and 10m with ``--flat-at-close`` (forced exits at a bar's close). Made once
    per test session, whichever test module asks first."""
    cache = base / "viz_cache"
    if (cache / "done").exists():
        return cache
    if not (SAMPLE / "AAPL_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    for extra in (("--timeframe", "5m"), ("--timeframe", "10m", "--flat-at-close")):
        args = ["--data-dir", str(SAMPLE), "--cache-dir", str(cache), *PERIOD, *extra]
        done = subprocess.run(
            [sys.executable, "-m", "quant_trading.backtesting.run_backtest", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    (cache / "done").touch()
    return cache


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return make_cache(tmp_path_factory.getbasetemp())


def visualizer(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    # --export needs no display: run it without one, as on a server.
    return run_module(
        "quant_trading.visualization.trade_visualizer",
        *args,
        drop=("DISPLAY",),
        timeout=60,
        cwd=cwd,
    )


def drawn_markers(chart: TradeChart) -> dict[MarkerKind, list[PathCollection]]:
    """The scatter collections on the price panel, by the marker kind they carry."""
    found: dict[MarkerKind, list[PathCollection]] = {kind: [] for kind in MarkerKind}
    for collection in chart.price_ax.collections:
        if isinstance(collection, PathCollection) and collection.get_gid():
            found[MarkerKind(collection.get_gid())].append(collection)
    return found


def arrow_direction(collection: PathCollection) -> str:
    """'up' or 'down' from the drawn shape: an arrow's head is its widest part."""
    vertices = collection.get_paths()[0].vertices
    widest = np.abs(vertices[:, 0]) >= np.abs(vertices[:, 0]).max() - 1e-9
    return "up" if vertices[widest, 1].mean() > vertices[:, 1].mean() else "down"


def drawn_boxes(*patches) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(x, bottom, top, colour) of every rectangle the paths of ``patches`` draw (candle
    bodies, volume or histogram bars: five vertices a rectangle), ordered by x."""
    found = []
    for patch in patches:
        colour = mcolors.to_hex(patch.get_facecolor())
        for box in patch.get_path().vertices.reshape(-1, 5, 2):
            found.append((round(box[:4, 0].mean(), 9), box[0, 1], box[1, 1], colour))
    found.sort()
    x, bottom, top, colours = zip(*found) if found else ((), (), (), ())
    return np.array(x), np.array(bottom), np.array(top), list(colours)


def hue_name(rgba) -> str:
    hue = mcolors.rgb_to_hsv(np.asarray(rgba[:3]))[0] * 360
    ranges = {"red": (345, 375), "orange": (20, 45), "green": (90, 160), "blue": (200, 250)}
    for name, (low, high) in ranges.items():
        if low <= hue <= high or low <= hue + 360 <= high:
            return name
    return f"hue {hue:.0f}"


def new_chart(backtest) -> TradeChart:
    figure = Figure(figsize=(16, 9), dpi=100)
    FigureCanvasAgg(figure)
    chart = TradeChart(figure)
    chart.set_backtest(backtest)
    return chart


# -- the figure --------------------------------------------------------------------------


@pytest.mark.parametrize(("timeframe", "symbol"), [("5m", "AAPL"), ("10m", "SPY")])
def test_one_marker_per_entry_and_exit_with_colour_direction_bar_and_price(
    cache_dir, timeframe, symbol
):
    backtest = read_cache(cache_dir / timeframe / f"{symbol}_backtest.json")
    trades, candles = backtest.trades, backtest.candles
    assert len(trades) > 50
    chart = new_chart(backtest)
    chart.show(0, len(candles))  # the whole quarter: every trade on screen
    chart.figure.canvas.draw()

    expected = {
        MarkerKind.LONG_ENTRY: ("long", "entry", "green", "up"),
        MarkerKind.LONG_EXIT: ("long", "exit", "blue", "down"),
        MarkerKind.SHORT_ENTRY: ("short", "entry", "red", "down"),
        MarkerKind.SHORT_EXIT: ("short", "exit", "orange", "up"),
    }
    drawn = drawn_markers(chart)
    total = 0
    for kind, (side, end, colour, direction) in expected.items():
        rows = trades[trades["side"] == side]
        want_bars = candles.index.get_indexer(rows[f"{end}_time"])
        assert (want_bars >= 0).all(), "every fill time is a bar's start time"
        want = sorted(zip(want_bars.tolist(), rows[f"{end}_price"].round(6).tolist()))
        got = []
        for collection in drawn[kind]:
            assert hue_name(collection.get_facecolor()[0]) == colour
            assert arrow_direction(collection) == direction
            first = chart.window[0]  # x is the position in the window
            got += [(first + round(x), round(y, 6)) for x, y in collection.get_offsets()]
        assert sorted(got) == want, kind
        total += len(got)
    assert total == 2 * len(trades)
    assert [t.get_text() for t in chart.legend.get_texts()] == [
        "Long entry",
        "Long exit",
        "Short entry",
        "Short exit",
    ]


def test_markers_sit_at_the_fill_price_of_the_fill_bar(cache_dir):
    # Fills are at a bar's open; exits forced by --flat-at-close fill at that bar's close.
    backtest = read_cache(cache_dir / "10m" / "MSFT_backtest.json")
    candles = backtest.candles
    markers = trade_markers(candles.index, backtest.trades)
    reasons = backtest.trades["exit_reason"].astype(str)
    assert (reasons == "session close").sum() > 10
    for marker in markers:
        bar = candles.iloc[marker.bar]
        assert candles.index[marker.bar] == marker.time
        forced = marker.kind in (MarkerKind.LONG_EXIT, MarkerKind.SHORT_EXIT) and reasons[
            marker.trade
        ] in ("session close", "end of data")
        assert marker.price == pytest.approx(bar["close"] if forced else bar["open"])
    # A flip exits and enters on one bar: the entry arrow is stacked beyond the exit arrow.
    flips = [m for m in markers if m.stacked]
    assert flips and all(m.kind in (MarkerKind.LONG_ENTRY, MarkerKind.SHORT_ENTRY) for m in flips)


def test_a_window_draws_only_its_bars_and_markers(cache_dir):
    backtest = read_cache(cache_dir / "5m" / "AAPL_backtest.json")
    chart = new_chart(backtest)
    view = Viewport.ending_at(chart.total, default_width("5m", chart.total), chart.total)
    assert view.width == 390  # a week of 5-minute bars
    chart.show(view.start, view.stop)
    chart.draw()
    in_view = [m for m in chart.markers if view.start <= m.bar < view.stop]
    drawn = sum(len(c.get_offsets()) for cs in drawn_markers(chart).values() for c in cs)
    assert drawn == len(in_view) == len(chart.visible_markers()) > 0
    candles = backtest.candles.iloc[view.start : view.stop]
    x, _, _, _ = drawn_boxes(*chart.candles.bodies.values())
    assert list(x) == list(range(390))  # a candle per bar, at its position
    x, _, top, colours = drawn_boxes(chart.volume_bars.up, chart.volume_bars.down)
    assert list(x) == list(range(390))
    np.testing.assert_array_equal(top, candles["volume"])
    up = (candles["close"] >= candles["open"]).to_numpy()
    assert colours == list(np.where(up, CANDLE_UP, CANDLE_DOWN))
    (macd,) = chart.indicator_panels  # MACD, Signal and the Hist bars of the window
    assert [len(line.get_xdata()) for line, _ in macd.lines] == [390, 390]
    ((hist, _),) = macd.bars
    assert len(drawn_boxes(hist.up, hist.down)[0]) == 390
    span = (
        chart.overview_span.get_x(),
        chart.overview_span.get_x() + chart.overview_span.get_width(),
    )
    assert span[0] == view.start and span[1] == pytest.approx(view.stop - 1)
    assert f"{candles_time(chart, view.start):%Y-%m-%d %H:%M}" in chart.price_ax.get_title("right")


def test_candles_look_as_mplfinance_draws_them(cache_dir):
    # The candles are drawn without mplfinance (see chart.py) in its look: for windows of
    # each size, a body from open to close and wicks to the low and high at every bar, in
    # the style's colours, as wide as mplfinance makes them; a flat candle is a down
    # candle and still shows as a line.
    backtest = read_cache(cache_dir / "5m" / "AAPL_backtest.json")
    chart = new_chart(backtest)
    colours = STYLE["marketcolors"]
    scratch = Figure().add_subplot()
    for width in (20, 60, 390, MAX_BARS):
        first = chart.total - width - 7
        chart.show(first, first + width)
        bars = backtest.candles.iloc[first : first + width]
        high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
        open_, close = bars["open"].to_numpy(), bars["close"].to_numpy()
        up = close > open_
        x, bottom, top, faces = drawn_boxes(*chart.candles.bodies.values())
        assert list(x) == list(range(width))
        np.testing.assert_array_equal(bottom, open_)
        np.testing.assert_array_equal(top, close)
        assert faces == list(np.where(up, CANDLE_UP, CANDLE_DOWN))
        for side, mine in (("up", up), ("down", ~up)):
            wicks = chart.candles.wicks[side].get_path().vertices.reshape(-1, 4, 2)
            np.testing.assert_array_equal(wicks[:, 0, 0], np.flatnonzero(mine))
            np.testing.assert_array_equal(wicks[:, 0, 1], low[mine])
            np.testing.assert_array_equal(wicks[:, 1, 1], np.minimum(open_, close)[mine])
            np.testing.assert_array_equal(wicks[:, 2, 1], np.maximum(open_, close)[mine])
            np.testing.assert_array_equal(wicks[:, 3, 1], high[mine])
            body, wick = chart.candles.bodies[side], chart.candles.wicks[side]
            assert body.get_facecolor() == mcolors.to_rgba(colours["candle"][side], 0.9)
            assert mcolors.to_hex(body.get_edgecolor()) == colours["edge"][side]
            assert mcolors.to_hex(wick.get_edgecolor()) == colours["wick"][side]
        widths: dict = {}
        mpf.plot(bars, ax=scratch, type="candle", style=STYLE, return_width_config=widths,
                 columns=("open", "high", "low", "close", "volume"),
                 warn_too_much_data=10**9)  # fmt: skip
        scratch.clear()
        box = chart.candles.bodies["up"].get_path().vertices[:4, 0]
        assert box.max() - box.min() == pytest.approx(widths["candle_width"])
        for patch in [*chart.candles.bodies.values(), *chart.candles.wicks.values()]:
            assert patch.get_linewidth() == pytest.approx(widths["candle_linewidth"])

    flat = np.flatnonzero(backtest.candles["open"] == backtest.candles["close"])[3]
    chart.show(flat - 50, flat + 50)
    chart.figure.canvas.draw()
    pixels = np.asarray(chart.figure.canvas.buffer_rgba())[..., :3].astype(int)
    bar = backtest.candles.iloc[flat]
    # Between the wick and the body's edge (its half width is ~0.23 bars at 100 bars).
    line_x, line_y = chart.price_ax.transData.transform((50.15, bar["open"]))
    row = round(chart.figure.bbox.height - line_y)
    seen = pixels[row - 1 : row + 2, round(line_x)]
    down = np.array(mcolors.to_rgb(CANDLE_DOWN)) * 255
    assert np.abs(seen - down).max(axis=1).min() < 40, seen


def candles_time(chart: TradeChart, bar: int):
    return chart.time_of(bar)


def marker_boxes(chart: TradeChart) -> list[tuple[MarkerKind, int, Bbox]]:
    """(kind, bar, extent in display pixels, outline included) of every drawn arrow, from
    the collections as the renderer draws them: each path scaled from points (the marker
    size) and placed at its offset."""
    dpi = chart.figure.dpi
    boxes = []
    for kind, collections in drawn_markers(chart).items():
        for collection in collections:
            paths, sizes = collection.get_paths(), collection.get_sizes()
            offsets = collection.get_offsets()
            placed = collection.get_offset_transform().transform(offsets)
            outline = collection.get_linewidths()[0] / 2 * dpi / 72
            for i, (x, point) in enumerate(zip(offsets[:, 0], placed)):
                scale = np.sqrt(sizes[i % len(sizes)]) * dpi / 72
                corners = paths[i % len(paths)].vertices * scale + point
                low, high = corners.min(axis=0) - outline, corners.max(axis=0) + outline
                boxes.append((kind, chart.window[0] + round(x), Bbox([low, high])))
    return boxes


def bar_of(chart: TradeChart, when: str) -> int:
    return chart.bars_between(parse_time(when), None)[0]


def test_markers_at_the_edges_of_the_window_are_whole(cache_dir):
    # Windows that start or end at a marker's bar: no arrow may stick out of the price panel
    # (the left and right margins are half an arrow wide, the price range makes room for
    # arrows above and below the candles), at a week, a day and the widest window.
    backtest = read_cache(cache_dir / "5m" / "AAPL_backtest.json")
    chart = new_chart(backtest)
    bars = sorted({m.bar for m in chart.markers})
    checked = 0
    for width in (390, 78, MAX_BARS):
        for bar in bars[5:-5:25]:
            for first in (bar, bar + 1 - width):
                if first < 0 or first + width > chart.total:
                    continue
                chart.show(first, first + width)
                panel = chart.price_ax.bbox
                boxes = marker_boxes(chart)
                assert {b for _, b, _ in boxes} >= {bar}
                for kind, at, box in boxes:
                    assert panel.x0 <= box.x0 and box.x1 <= panel.x1, (width, first, kind, at)
                    assert panel.y0 <= box.y0 and box.y1 <= panel.y1, (width, first, kind, at)
                checked += 1
    assert checked > 30


@pytest.mark.parametrize("symbol", ["AAPL", "MSFT", "SPY"])
def test_arrows_on_one_bar_never_overlap_at_any_zoom(cache_dir, symbol):
    # --flat-at-close gives every kind of crowded bar: flips (exit and entry at the open,
    # up or down), and a flip whose new trade is closed at the same bar's close, a few
    # pixels or a few dozen away depending on the zoom.
    backtest = read_cache(cache_dir / "10m" / f"{symbol}_backtest.json")
    chart = new_chart(backtest)
    on_bar = defaultdict(list)
    for marker in chart.markers:
        on_bar[marker.bar].append(marker.look.direction)
    shapes = defaultdict(list)  # e.g. ("down", "down", "up") -> its bars
    for bar, directions in on_bar.items():
        if len(directions) > 1:
            shapes[tuple(sorted(directions))].append(bar)
    assert {("down", "down"), ("up", "up")} <= set(shapes) and any(len(k) > 2 for k in shapes)
    for width in (20, 78, 390, MAX_BARS):
        for bars in shapes.values():
            for bar in bars[:4]:
                first = max(0, min(bar - width // 2, chart.total - width))
                chart.show(first, first + width)
                mine = sorted(
                    (b for _, at, b in marker_boxes(chart) if at == bar), key=lambda b: b.y0
                )
                assert len(mine) == len(on_bar[bar])
                for lower, upper in zip(mine, mine[1:]):
                    assert lower.y1 <= upper.y0, (width, bar, on_bar[bar])


def test_the_first_date_under_the_panels_is_whole(cache_dir):
    # A window starting at a session's open has its first tick at the left edge: the label
    # starts there instead of being centred half outside the figure ("n Jul 06").
    backtest = read_cache(cache_dir / "5m" / "AAPL_backtest.json")
    chart = new_chart(backtest)
    for when, width in (("2026-07-06", 390), ("2026-07-06", 100), ("2026-07-07 15:00", 60)):
        first = bar_of(chart, when)
        chart.show(first, first + width)
        chart.figure.canvas.draw()
        renderer = chart.figure.canvas.get_renderer()
        lowest = chart.panels[-1]
        labels = [t for t in lowest.get_xticklabels() if t.get_text()]
        assert labels and labels[0].get_text().startswith(("Mon Jul 06", "Jul 06", "Jul 07"))
        for label in labels:
            box = label.get_window_extent(renderer)
            assert lowest.bbox.x0 - 1 <= box.x0 and box.x1 <= chart.figure.bbox.x1, (
                when,
                label.get_text(),
            )


def test_the_time_axis_labels_hours_when_zoomed_in(cache_dir):
    backtest = read_cache(cache_dir / "5m" / "AAPL_backtest.json")
    chart = new_chart(backtest)

    def labels(when: str, width: int) -> list[str]:
        first = bar_of(chart, when)
        chart.show(first, first + width)
        return [t.get_text() for t in chart.panels[-1].get_xticklabels()]

    # A session and a bit: hours, and the next session's open with its date.
    assert labels("2026-07-07", 100) == ["Jul 07 09:30", "12:00", "14:00", "Jul 08 09:30"]
    # Within a session: the hours, the first naming the day.
    assert labels("2026-07-07 10:00", 40) == [
        "Jul 07 10:00",
        "10:30",
        "11:00",
        "11:30",
        "12:00",
        "12:30",
        "13:00",
    ]
    assert labels("2026-07-07 13:00", 78) == [
        "Jul 07 13:00",
        "14:00",
        "15:00",
        "Jul 08 09:30",
        "10:00",
        "11:00",
        "12:00",
    ]
    # A week: one label per session.
    assert labels("2026-07-06", 390) == [
        "Mon Jul 06",
        "Tue Jul 07",
        "Wed Jul 08",
        "Thu Jul 09",
        "Fri Jul 10",
    ]
    # The same from candles indexed in nanoseconds (pandas 2) rather than microseconds.
    candles = backtest.candles.copy()
    candles.index = candles.index.as_unit("ns")
    chart = new_chart(dataclasses.replace(backtest, candles=candles))
    assert labels("2026-07-07", 100) == ["Jul 07 09:30", "12:00", "14:00", "Jul 08 09:30"]
    assert labels("2026-07-06", 390)[0] == "Mon Jul 06"


def test_texts_and_legends_pasted_from_images_look_as_drawn(cache_dir):
    # TradeChart.draw pastes texts and legends rendered once (quant_trading/visualization/
    # bitmaps.py). The figure must look as matplotlib draws it: the same pixels everywhere
    # but in the texts, and each text the same ink within a pixel of where it belongs.
    backtest = read_cache(cache_dir / "5m" / "AAPL_backtest.json")
    week = (3_000, 3_390)
    direct = new_chart(backtest)  # the same chart drawn by matplotlib itself,
    texts: list[Text] = []  # noting the texts it draws

    def note_texts(renderer) -> None:  # instead of installing the cache
        draw_text = type(renderer).draw_text.__get__(renderer)

        def noting(gc, x, y, s, prop, angle, ismath=False, mtext=None):
            texts.append(mtext)
            draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        renderer.draw_text = noting

    direct._text_bitmaps.install = note_texts
    for legend in direct.figure.findobj(lambda a: "draw" in vars(a)):
        del legend.draw  # the class's own draw again
    direct.show(*week)
    direct.draw()
    pasted = new_chart(backtest)
    for window in (week, (3_039, 3_429), week):  # the last draw pastes what the first made
        pasted.show(*window)
        pasted.draw()
    assert pasted._text_bitmaps.hits > 20
    drawn = np.asarray(direct.figure.canvas.buffer_rgba())[..., :3].astype(int)
    shown = np.asarray(pasted.figure.canvas.buffer_rgba())[..., :3].astype(int)
    renderer = direct.figure.canvas.get_renderer()
    height = drawn.shape[0]
    in_text = np.zeros(drawn.shape[:2], bool)
    boxes = []
    for text in texts:
        if text is not None:
            box = text.get_window_extent(renderer)
            rows = slice(max(0, int(height - box.y1) - 2), int(height - box.y0) + 2)
            cols = slice(max(0, int(box.x0) - 2), int(box.x1) + 2)
            in_text[rows, cols] = True
            boxes.append((text.get_text(), rows, cols))
    assert len(boxes) > 30
    # Outside the texts at most a rounding step: a legend's translucent patch is blended
    # onto transparency first, then onto the panel.
    differs = np.abs(drawn - shown).max(axis=2) > 1
    assert not differs[~in_text].any(), np.argwhere(differs & ~in_text)[:5]
    for content, rows, cols in boxes:
        ink = [(255 - image[rows, cols]).sum() for image in (drawn, shown)]
        assert ink[1] == pytest.approx(ink[0], rel=0.03), content


@pytest.mark.skipif(
    tuple(int(part) for part in matplotlib.__version__.split(".")[:2]) < (3, 11),
    reason="before 3.11 matplotlib drew a text as one FreeType bitmap itself",
)
def test_a_new_text_is_rasterised_with_matplotlibs_pixels():
    # A text not seen before is rasterised by FreeType in one call (bitmaps.py): the same
    # pixels where matplotlib's own draw_text puts them, whatever the first glyph (an
    # overhanging "T" or "J"), size, weight, colour or alpha; only where two glyphs touch
    # may a pixel or two differ.
    dates = "Tue 2026-07-07 09:30 – Mon 2026-07-13 15:55  ·  390 bars  ·  12 trades in view"
    texts = ["262.5", "−0.25", "1.5M", "Thu Mar 05", "Jul 07 09:30", "Year", "Short exit", dates]
    for size, weight in ((8, "normal"), (9, "normal"), (13, "bold")):
        font = FontProperties(size=size, weight=weight)
        for text in texts:
            for rgba, alpha in (((0.06, 0.06, 0.06, 1.0), None), ((0.2, 0.4, 0.8, 1.0), 0.55)):
                drawn = []
                for bitmaps in (None, TextBitmaps()):
                    renderer = RendererAgg(900, 60, 100)
                    if bitmaps is not None:
                        bitmaps.install(renderer)
                    gc = renderer.new_gc()
                    gc.set_foreground(rgba, isRGBA=True)
                    gc.set_alpha(alpha)
                    renderer.draw_text(gc, 20, 35, text, font, 0)
                    drawn.append(np.asarray(renderer.buffer_rgba()).astype(int))
                assert bitmaps.misses == 1 and bitmaps.hits == 0
                assert drawn[1][..., 3].sum() > 0
                off = np.abs(drawn[0] - drawn[1]).max(axis=2) > 2
                assert off.sum() <= 2, (text, size, np.argwhere(off)[:5])


def test_header_shows_the_cache_statistics(cache_dir):
    backtest = read_cache(cache_dir / "5m" / "MSFT_backtest.json")
    stats = backtest.statistics
    chart = new_chart(backtest)
    header = chart.header
    assert header == ChartHeader.from_backtest(backtest)
    assert (header.symbol, header.timeframe) == ("MSFT", "5m")
    assert header.trades == stats.trades == len(backtest.trades)
    assert header.net_profit == stats.net_profit
    assert header.return_pct == stats.return_pct
    assert header.max_drawdown_pct == stats.max_drawdown_pct
    title = chart.title_text.get_text()
    summary = chart.summary_text.get_text()
    assert "MSFT" in title and "5m" in title
    assert "MACD (FAST=12, SLOW=26, SIGNAL=9, MODE=long_short)" in title
    assert "Period 2026-06-01 09:30 – 2026-08-31 15:" in summary
    assert f"Closed trades {stats.trades:,}" in summary
    assert f"Net Profit [$] {stats.net_profit:,.2f}" in summary
    assert f"Return [%] {stats.return_pct:+.2f}" in summary
    assert f"Max. Drawdown [%] {stats.max_drawdown_pct:.2f}" in summary


def test_message_replaces_the_chart():
    chart = TradeChart()
    chart.show_message("No *_backtest.json files in x/5m. Run a backtest first")
    assert "Run a backtest first" in chart.message
    assert not chart.price_ax.get_visible()


# -- navigation ----------------------------------------------------------------------------


def test_the_first_window_from_a_start_an_end_both_or_neither():
    assert first_window(None, None, 390, 10_000) == (9_610, 10_000)  # the last week
    assert first_window(100, None, 390, 10_000) == (100, 490)  # a week from --start
    assert first_window(None, 5_000, 390, 10_000) == (4_610, 5_000)  # a week up to --end
    assert first_window(100, 5_000, 390, 10_000) == (100, 5_000)  # both: as asked
    assert first_window(9_900, None, 390, 10_000) == (9_900, 10_000)  # not past the data
    assert first_window(None, 200, 390, 10_000) == (0, 200)
    assert first_window(None, None, 390, 100) == (0, 100)


def test_viewport_moves_stay_inside_the_data():
    view = Viewport.ending_at(20_000, 390, 20_000)
    assert (view.start, view.stop) == (19_610, 20_000)
    assert view.scrolled(100) == view  # already at the end
    assert view.scrolled(-39).start == 19_571
    assert view.moved_to(0.0).start == 0 and view.moved_to(0.5).start == 10_000
    assert view.fractions() == pytest.approx((19_610 / 20_000, 1.0))
    zoomed = view.moved_to(0.5).zoomed(0.5)
    assert zoomed.width == 195 and zoomed.center == view.moved_to(0.5).center
    assert view.zoomed(1e-6).width == MIN_BARS and view.zoomed(1e6).width == MAX_BARS
    shown = view.moved_to(0.1).showing(5_000, 5_010)
    assert shown.contains(5_000) and shown.contains(5_010) and shown.width == 390
    long_trade = view.showing(1_000, 1_900)
    assert long_trade.contains(1_000) and long_trade.contains(1_900)
    assert Viewport(0, 390, 100).clamped() == Viewport(0, 100, 100)
    assert default_width("5m", 40_000) == 390 and default_width("10m", 40_000) == 195
    assert default_width("1m", 40_000) == 1_000 and default_width("1d", 40_000) == 120


# -- the cache folder ----------------------------------------------------------------------


def test_scan_lists_timeframes_and_symbols_and_skips_unreadable_files(cache_dir, tmp_path):
    catalog = scan_cache(cache_dir)
    assert catalog.timeframes == ["5m", "10m"]
    assert catalog.symbols("5m") == ["AAPL", "MSFT", "SPY"]

    broken = tmp_path / "cache"
    (broken / "5m").mkdir(parents=True)
    (broken / "notes").mkdir()  # not a timeframe: ignored
    shutil.copy(cache_dir / "5m" / "AAPL_backtest.json", broken / "5m")
    (broken / "5m" / "MSFT_backtest.json").write_text('{"schema": "quant_trading.backtest/1", ')
    (broken / "5m" / "SPY_backtest.json").write_text('{"schema": "something/else"}')
    catalog = scan_cache(broken)
    assert catalog.timeframes == ["5m"]
    assert catalog.load("5m", "AAPL").symbol == "AAPL"
    for symbol in ("MSFT", "SPY"):
        with pytest.raises(CacheError, match=f"{symbol}_backtest.json"):
            catalog.load("5m", symbol)
    assert catalog.symbols("5m") == ["AAPL"]
    assert sorted(p.name for p in catalog.skipped) == ["MSFT_backtest.json", "SPY_backtest.json"]

    missing = scan_cache(tmp_path / "nowhere")
    assert missing.timeframes == [] and "does not exist" in missing.missing_message("5m")
    assert "run_backtest --timeframe 5m" in missing.missing_message("5m")
    (tmp_path / "empty" / "5m").mkdir(parents=True)
    empty = scan_cache(tmp_path / "empty").missing_message("5m")
    assert "No *_backtest.json files in" in empty and "Run a backtest first" in empty


# -- the command line ----------------------------------------------------------------------


def test_export_writes_a_png_of_the_chosen_week(cache_dir, tmp_path):
    out = tmp_path / "aapl.png"
    result = visualizer(
        "--timeframe",
        "5m",
        "--cache-dir",
        str(cache_dir),
        "--export",
        str(out),
        "--symbol",
        "aapl",
        "--start",
        "2026-07-06",
        "--end",
        "2026-07-10",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"Wrote {out}: AAPL 5m, 2026-07-06 09:30 .. 2026-07-10 15:55")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1600, 900)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 500  # a chart, not a blank page


def test_export_without_dates_shows_the_last_week(cache_dir, tmp_path):
    out = tmp_path / "spy.png"
    result = visualizer("--cache-dir", str(cache_dir), "--export", str(out), "--symbol", "SPY")
    assert result.returncode == 0, result.stderr
    assert "SPY 5m, 2026-08-25 09:30 .. 2026-08-31 15:55 (390 bars" in result.stdout
    assert out.stat().st_size > 50_000


@pytest.mark.parametrize("side", ["--start 2026-07-06", "--end 2026-07-10"])
def test_export_with_one_end_shows_the_week_from_or_up_to_it(cache_dir, tmp_path, side):
    out = tmp_path / "aapl.jpg"
    result = visualizer("--cache-dir", str(cache_dir), "--export", str(out), "--symbol",
                        "AAPL", *side.split())  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "AAPL 5m, 2026-07-06 09:30 .. 2026-07-10 15:55 (390 bars" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--export", "x.png"), 2, "--export needs --symbol"),
        (("--export", "x.png", "--symbol", "TSLA"), 2, "no 5m cache for TSLA"),
        (("--export", "x.png", "--symbol", "AAPL", "--start", "soon"), 2, "--start 'soon'"),
        (
            (
                "--export",
                "x.png",
                "--symbol",
                "AAPL",
                "--start",
                "2026-08-01",
                "--end",
                "2026-07-01",
            ),
            2,
            "--start must be before --end",
        ),
        (
            (
                "--export",
                "x.png",
                "--symbol",
                "AAPL",
                "--start",
                "2020-01-01",
                "--end",
                "2020-02-01",
            ),
            2,
            "no AAPL bars in that period",
        ),
        (("--export", "x.txt", "--symbol", "AAPL"), 2, "use a .png"),
        (("--timeframe", "3m", "--export", "x.png", "--symbol", "AAPL"), 1, "run_backtest"),
        (("--colour", "red"), 2, "unrecognized arguments: --colour red"),
    ],
)
def test_bad_arguments_get_one_line(cache_dir, tmp_path, args, code, message):
    result = visualizer("--cache-dir", str(cache_dir), *args, cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr
    assert result.stderr.startswith("trade_visualizer: error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_export_reports_a_corrupt_cache_by_name(tmp_path):
    (tmp_path / "5m").mkdir()
    (tmp_path / "5m" / "AAPL_backtest.json").write_text("{ half a file")
    result = visualizer("--cache-dir", str(tmp_path), "--export", "x.png", "--symbol", "AAPL")
    assert result.returncode == 1
    assert "AAPL_backtest.json: not valid JSON" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_window_without_a_display_points_to_export(cache_dir):
    result = visualizer("--cache-dir", str(cache_dir))  # DISPLAY removed
    assert result.returncode == 1
    assert result.stderr.startswith("trade_visualizer: error: cannot open a window")
    assert "use --export FILE.png" in result.stderr and "Traceback" not in result.stderr


def test_a_timeframe_no_backtest_can_make_is_refused_before_suggesting_one(tmp_path):
    done = visualizer("--timeframe", "7m", "--cache-dir", str(tmp_path), "--export", "x.png",
                      "--symbol", "AAPL")  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("trade_visualizer: error: argument --timeframe: '7m'")
    assert "run_backtest --timeframe 7m" not in line
