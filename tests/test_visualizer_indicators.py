"""The chart draws whatever indicators a backtest's cache declares: lines over the candles,
a panel per declared panel (levels, limits, legend), none at all for a strategy without
indicators, MACD as it always looked (also from a schema-1 cache), and a new panel layout
when the next backtest draws different panels. Every cache comes from a real backtest on the
bundled sample data, of a strategy written here as a user writes one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import orjson
import pytest
from cache_layouts import write_schema1
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image
from test_visualizer import REPO_ROOT, SAMPLE, drawn_boxes, new_chart, visualizer

from quant_trading import Parameter, Strategy, backtest
from quant_trading.backtesting.cache import read_cache
from quant_trading.drawing import Drawing, Line, Plot, macd_drawing
from quant_trading.indicators import MACD, RSI, SMA
from quant_trading.signals import crosses, hold
from quant_trading.strategy import configure, registered_strategies
from quant_trading.visualization.chart import (
    CANDLE_DOWN,
    CANDLE_UP,
    PALETTE,
    TradeChart,
    render_png,
)

# -- strategies, as a user writes them -------------------------------------------------------


def _ma_rsi_positions(data, params):
    """Long while the fast average is above the slow one, unless RSI says overbought."""
    trend = hold(crosses(data["fast"], data["slow"]))
    return np.where((trend > 0) & (data["RSI"] > 70), 0, trend).astype(np.int8)


MA_RSI = Strategy(
    name="MA_RSI",
    description="moving-average cross filtered by RSI",
    parameters=(Parameter("FAST", 10, int), Parameter("SLOW", 30, int)),
    indicators=lambda p: [
        SMA(p["FAST"], name="fast"),  # no colour: the chart picks one
        SMA(p["SLOW"], name="slow", color="#8c564b"),
        RSI(14),
    ],
    positions=_ma_rsi_positions,
)

BARS_ONLY = Strategy(
    name="BARS_ONLY",
    description="the side of the last bar's body, no indicators",
    parameters=(),
    indicators=lambda p: [],
    positions=lambda data, p: hold(np.sign(data["close"] - data["open"]).astype(np.int8)),
)

MACD_RSI = Strategy(
    name="MACD_RSI",
    description="MACD cross, two panels",
    parameters=(),
    indicators=lambda p: [MACD(), RSI(14, levels=(20, 80))],
    positions=lambda data, p: hold(crosses(data["Hist"])),
)

#: (symbol, timeframe) -> the strategy its cache is made with (one cache per pair).
RUNS = {
    ("AAPL", "5m"): "MACD",  # the bundled strategy
    ("SPY", "5m"): MA_RSI,
    ("MSFT", "5m"): BARS_ONLY,
    ("SPY", "15m"): MACD_RSI,
}


def make_indicator_caches(base: Path) -> Path:
    """A cache folder from real backtests since 2026-09-01 of :data:`RUNS`; made once per
    test session, whichever test module asks first."""
    cache = base / "indicator_cache"
    if (cache / "done").exists():
        return cache
    if not (SAMPLE / "SPY_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    for (symbol, timeframe), strategy in RUNS.items():
        backtest(strategy, symbol, timeframe, data_dir=SAMPLE, start="2026-09-01", cache_dir=cache)
    (cache / "done").touch()
    return cache


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> Path:
    return make_indicator_caches(tmp_path_factory.getbasetemp())


def shown(path: Path) -> TradeChart:
    """The chart of a cache file, showing its last week, rendered."""
    chart = new_chart(read_cache(path))
    chart.show(chart.total - 390, chart.total)
    chart.figure.canvas.draw()
    return chart


def lines_by_label(ax) -> dict:
    """The labelled lines of an axes (the declared ones, not reference levels or grid)."""
    return {line.get_label(): line for line in ax.get_lines() if line.get_label()[0] != "_"}


def levels(ax) -> dict[float, str]:
    """Horizontal reference lines of a panel: y -> line style."""
    return {
        line.get_ydata()[0]: line.get_linestyle()
        for line in ax.get_lines()
        if line.get_label().startswith("_") and list(line.get_xdata()) == [0, 1]
    }


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def hex_color(artist) -> str:
    return mcolors.to_hex(artist.get_color())


# -- overlays and panels ---------------------------------------------------------------------


def test_moving_averages_are_drawn_over_the_candles_of_the_window(caches):
    chart = shown(caches / "5m" / "SPY_backtest.json")
    candles = chart.backtest.candles.iloc[chart.total - 390 :]
    overlays = lines_by_label(chart.price_ax)
    assert list(overlays) == ["SMA(10)", "SMA(30)"]
    # The declared colour, and for the undeclared one the palette's first.
    assert hex_color(overlays["SMA(30)"]) == "#8c564b"
    assert hex_color(overlays["SMA(10)"]) == PALETTE[0]
    for label, column in (("SMA(10)", "fast"), ("SMA(30)", "slow")):
        x, y = overlays[label].get_data()
        assert list(x) == list(range(390))  # the visible window only, like the candles
        np.testing.assert_array_equal(y, candles[column].to_numpy())
    low, high = chart.price_ax.get_ylim()
    for column in ("low", "high", "fast", "slow"):
        assert low < candles[column].min() and candles[column].max() < high
    assert legend_texts(chart.price_ax) == ["SMA(10)", "SMA(30)"]
    assert not any("MACD" in t.get_text() for t in chart.figure.findobj(Text))


def test_rsi_gets_a_panel_with_its_levels_and_fixed_range(caches):
    chart = shown(caches / "5m" / "SPY_backtest.json")
    assert len(chart.indicator_panels) == 1
    ax = chart.indicator_panels[0].ax
    assert chart.panels == (chart.price_ax, chart.volume_ax, ax)
    rsi = lines_by_label(ax)
    assert list(rsi) == ["RSI(14)"] and hex_color(rsi["RSI(14)"]) == "#7048e8"
    assert levels(ax) == {30.0: "--", 70.0: "--"}
    assert ax.get_ylim() == (0, 100)
    assert legend_texts(ax) == ["RSI(14)"]
    # The lowest panel carries the time axis' labels; the ones above it do not.
    assert "Oct" in ax.get_xticklabels()[1].get_text()
    assert all(t.get_text() == "" for t in chart.volume_ax.get_xticklabels())


def test_panels_follow_the_declaration_order_and_share_a_name(caches, tmp_path):
    chart = shown(caches / "15m" / "SPY_backtest.json")
    macd, rsi = (p.ax for p in chart.indicator_panels)
    assert legend_texts(macd) == ["MACD", "Signal", "Hist"]
    assert legend_texts(rsi) == ["RSI(14)"] and levels(rsi) == {20.0: "--", 80.0: "--"}
    assert macd.get_position().y0 > rsi.get_position().y0  # MACD declared first: above
    assert rsi.get_position().y0 > chart.overview_ax.get_position().y1
    assert chart.price_ax.get_position().height > 2 * macd.get_position().height

    # A second drawing naming the RSI panel joins it instead of opening a third.
    doc = orjson.loads((caches / "15m" / "SPY_backtest.json").read_bytes())
    extra = Drawing(Plot(panel="RSI", levels=(50.0,)), (Line("Signal", "Signal again"),))
    doc["indicators"].append(extra.as_dict())
    path = tmp_path / "SPY_backtest.json"
    path.write_bytes(orjson.dumps(doc))
    chart = shown(path)
    assert len(chart.indicator_panels) == 2
    rsi = chart.indicator_panels[1].ax
    assert legend_texts(rsi) == ["RSI(14)", "Signal again"]
    assert levels(rsi) == {20.0: "--", 80.0: "--", 50.0: "--"}
    assert rsi.get_ylim() == (0, 100)  # the RSI's limits hold for the panel


def test_a_strategy_without_indicators_gets_no_indicator_panel(caches):
    chart = shown(caches / "5m" / "MSFT_backtest.json")
    assert chart.backtest.indicators == [] and chart.indicator_panels == []
    assert chart.panels == (chart.price_ax, chart.volume_ax)
    assert len(chart.figure.axes) == 4  # price, volume, overview and its equity axis
    assert lines_by_label(chart.price_ax) == {} and chart.price_ax.get_legend() is None
    assert "Oct" in chart.volume_ax.get_xticklabels()[1].get_text()
    assert chart.volume_ax.get_position().y0 > chart.overview_ax.get_position().y1
    assert not any("MACD" in t.get_text() for t in chart.figure.findobj(Text))


def test_an_overlay_far_from_the_price_keeps_the_candles_dominant(caches):
    bt = read_cache(caches / "5m" / "SPY_backtest.json")
    far = bt.candles.assign(slow=bt.candles["slow"] + 1000.0)  # an average far away
    chart = new_chart(dataclasses.replace(bt, candles=far))
    chart.show(chart.total - 390, chart.total)
    candles = far.iloc[chart.total - 390 :]
    span = candles["high"].max() - candles["low"].min()
    low, high = chart.price_ax.get_ylim()
    assert low < candles["low"].min() and candles["high"].max() < high
    assert span / (high - low) > 0.45  # the candles keep about half the panel's height


# -- MACD as it always looked ----------------------------------------------------------------


def assert_macd_panel(chart: TradeChart) -> None:
    """One panel: MACD blue and Signal orange lines over a Hist histogram coloured by sign,
    a solid zero line, the legend MACD, Signal, Hist."""
    assert len(chart.indicator_panels) == 1
    ax = chart.indicator_panels[0].ax
    candles = chart.backtest.candles.iloc[chart.window[0] : chart.window[1]]
    drawn = lines_by_label(ax)
    assert list(drawn) == ["MACD", "Signal"]
    assert hex_color(drawn["MACD"]) == "#1f77b4" and hex_color(drawn["Signal"]) == "#ff7f0e"
    np.testing.assert_array_equal(drawn["MACD"].get_ydata(), candles["MACD"].to_numpy())
    ((hist, column),) = chart.indicator_panels[0].bars
    assert hist.label == column == "Hist"
    assert {hist.up, hist.down} <= set(ax.patches)
    x, bottom, tops, colours = drawn_boxes(hist.up, hist.down)
    assert list(x) == list(range(len(candles))) and not bottom.any()
    np.testing.assert_allclose(tops, np.nan_to_num(candles["Hist"].to_numpy()))
    want = np.where(candles["Hist"].to_numpy() >= 0, CANDLE_UP, CANDLE_DOWN)
    assert colours == list(want) and {CANDLE_UP, CANDLE_DOWN} <= set(colours)
    assert levels(ax) == {0.0: "-"}
    assert legend_texts(ax) == ["MACD", "Signal", "Hist"]
    assert lines_by_label(chart.price_ax) == {}  # nothing over the candles


def test_a_macd_cache_draws_the_macd_panel_as_before(caches):
    chart = shown(caches / "5m" / "AAPL_backtest.json")
    assert chart.backtest.indicators == [macd_drawing()]
    assert_macd_panel(chart)


def test_a_schema_1_cache_still_draws_macd(caches, tmp_path):
    cached = read_cache(caches / "5m" / "AAPL_backtest.json")
    chart = shown(write_schema1(cached, tmp_path / "5m" / "AAPL_backtest.json"))
    assert chart.backtest.indicators == [macd_drawing()]
    assert_macd_panel(chart)
    out = tmp_path / "old.png"
    result = visualizer("--cache-dir", str(tmp_path), "--export", str(out), "--symbol", "AAPL")
    assert result.returncode == 0, result.stderr


def test_one_figure_switches_between_panel_layouts(caches):
    # The window keeps one figure while the user switches symbols with other strategies.
    figure = Figure(figsize=(16, 9), dpi=100)
    FigureCanvasAgg(figure)
    chart = TradeChart(figure)
    layouts = (("5m/AAPL", 1), ("5m/SPY", 1), ("5m/MSFT", 0), ("15m/SPY", 2), ("5m/AAPL", 1))
    for name, panels in layouts:
        chart.set_backtest(read_cache(caches / f"{name}_backtest.json"))
        chart.show(chart.total - 390, chart.total)
        chart.draw()
        assert len(chart.indicator_panels) == panels, name
        assert len(chart.figure.axes) == 4 + panels, name  # the old panels are gone
        assert all(ax.get_visible() for ax in chart.panels)
    assert_macd_panel(chart)
    first_axes = chart.price_ax
    chart.set_backtest(read_cache(caches / "5m" / "AAPL_backtest.json"))
    assert chart.price_ax is first_axes  # same layout: the axes are kept


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "timeframe"), [("SPY", "5m"), ("MSFT", "5m"), ("SPY", "15m")])
def test_export_of_other_strategies(caches, tmp_path, symbol, timeframe):
    out = tmp_path / f"{symbol}.png"
    result = visualizer(
        "--cache-dir",
        str(caches),
        "--timeframe",
        timeframe,
        "--export",
        str(out),
        "--symbol",
        symbol,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"Wrote {out}: {symbol} {timeframe}, ")
    with Image.open(out) as image:
        assert image.size == (1600, 900)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 500


def test_the_chart_needs_neither_the_engine_nor_numba(caches, tmp_path):
    out = tmp_path / "spy.png"
    script = f"""
import sys
from quant_trading.visualization.trade_visualizer import main
code = main(["--cache-dir", {str(caches)!r}, "--export", {str(out)!r}, "--symbol", "SPY"])
heavy = {{"numba", "quant_trading.indicators", "quant_trading.backtesting.runner",
         "quant_trading.backtesting.engine"}}
print(code, sorted(heavy & set(sys.modules)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"
    assert out.exists()


# -- every bundled strategy ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(registered_strategies()))
def test_every_bundled_strategy_exports_a_chart_with_its_indicators(name, tmp_path):
    """Backtest each registered strategy, export its chart and find each declared line where
    the strategy said to draw it: over the candles or in its own panel."""
    backtest(name, "SPY", "5m", data_dir=SAMPLE, start="2026-09-01", cache_dir=tmp_path)
    cached = read_cache(tmp_path / "5m" / "SPY_backtest.json")
    declared = configure(name, {}).drawing
    assert cached.indicators == declared
    chart = render_png(cached, tmp_path / f"{name}.png")
    assert Image.open(tmp_path / f"{name}.png").size == (1600, 900)
    overlays = [x.label for d in declared if d.plot.overlay for x in d.lines]
    assert [line.get_label() for line, _ in chart.overlay_lines] == overlays
    panels = list(dict.fromkeys(d.plot.panel for d in declared if not d.plot.overlay))
    assert len(chart.indicator_panels) == len(panels)
    for panel, title in zip(chart.indicator_panels, panels, strict=True):
        drawn = [t.get_text() for t in panel.ax.get_legend().get_texts()]
        want = [x.label for d in declared if d.plot.panel == title for x in d.lines]
        assert drawn == want
        shown = [line for line, _ in panel.lines]
        shown += [patch for bars, _ in panel.bars for patch in (bars.up, bars.down)]
        assert shown and all(artist.get_visible() for artist in shown)
