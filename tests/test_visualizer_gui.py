"""The visualizer's Tk window on a virtual X display (Xvfb): it starts on a real backtest's
cache, switches symbol and timeframe (also between strategies that draw different indicator
panels), moves to the next trade, shows a chart a screenshot can see, tells the user what to
do when the cache is empty, missing or corrupt, and closes.

The tests start their own Xvfb; without one installed they are skipped (``.ci/run``
installs it). Every wait has a deadline; nothing asserts on elapsed time.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent
from PIL import Image
from test_visualizer import REPO_ROOT, make_cache
from test_visualizer_indicators import legend_texts, lines_by_label, make_indicator_caches

from quant_trading.timeframes import parse_time
from quant_trading.visualization.app import TradeVisualizerApp
from quant_trading.visualization.chart import CANDLE_DOWN, CANDLE_UP, PALETTE
from quant_trading.visualization.markers import LOOKS

WAIT = 20.0  # seconds any single wait may take before the test fails


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb display (``:N``), set as DISPLAY for the module's tests."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb); .ci/run installs it")
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it once it accepts clients.
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_end),
            "-screen",
            "0",
            "1600x1000x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:  # read_end stays open while Xvfb runs: it writes there again when it resets
        ready, _, _ = select.select([read_end], [], [], WAIT)
        number = os.read(read_end, 32).decode().strip() if ready else ""
        if not number:
            pytest.fail("Xvfb did not start")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DISPLAY", f":{number}")
            yield f":{number}"
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(timeout=WAIT)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return make_cache(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def indicator_caches(tmp_path_factory) -> Path:
    return make_indicator_caches(tmp_path_factory.getbasetemp())


def pump(root: tk.Tk, done: Callable[[], bool], what: str) -> None:
    """Run Tk's event loop until ``done()`` (or fail after WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        root.update()
        time.sleep(0.005)  # yield the CPU; the condition, not the time, ends the wait


@pytest.fixture
def open_app(display) -> Iterator[Callable[..., TradeVisualizerApp]]:
    """Makes a window (closed at the end of the test if the test did not)."""
    made: list[TradeVisualizerApp] = []

    def make(cache: Path, **kwargs) -> TradeVisualizerApp:
        app = TradeVisualizerApp(tk.Tk(), cache, **kwargs)
        made.append(app)
        pump(app.root, lambda: not app._render_pending, "the first render")
        return app

    yield make
    for app in made:
        app.close()


def choose(box, value: str, root: tk.Tk) -> None:
    """Pick ``value`` in a read-only drop-down as a user does."""
    assert value in box.cget("values")
    box.set(value)
    box.event_generate("<<ComboboxSelected>>")
    root.update()


def test_window_starts_switches_moves_to_next_trade_and_closes(open_app, cache_dir):
    app = open_app(cache_dir, timeframe="5m")
    root = app.root
    assert app.backtest.symbol == "AAPL" and app.message == ""
    assert app.first_draw_seconds is not None
    assert list(app.timeframe_box.cget("values")) == ["5m", "10m"]
    assert list(app.symbol_box.cget("values")) == ["AAPL", "MSFT", "SPY"]
    assert app.view.width == 390 and app.view.stop == app.view.total  # the last week
    assert len(app.trade_list.get_children()) == len(app.backtest.trades)

    choose(app.symbol_box, "MSFT", root)
    pump(root, lambda: not app._render_pending, "the MSFT chart")
    assert app.backtest.symbol == "MSFT" and "MSFT" in app.chart.title_text.get_text()
    week = app.chart.time_of(app.view.center)

    choose(app.timeframe_box, "10m", root)
    pump(root, lambda: not app._render_pending, "the 10m chart")
    assert (app.backtest.symbol, app.backtest.timeframe) == ("MSFT", "10m")
    assert app.view.width == 195
    # The same moment stays in view when switching.
    assert abs(app.chart.time_of(app.view.center) - week).days <= 1

    app.go_to_date("2026-07-15")
    pump(root, lambda: not app._render_pending, "the jump")
    assert f"{app.chart.time_of(app.view.center):%Y-%m-%d}" == "2026-07-15"
    center = app.view.center
    trades = app.backtest.trades
    entries = app.chart.entry_bars
    after = int(np.searchsorted(entries, center, "right"))

    app.next_trade()
    pump(root, lambda: not app._render_pending, "the next trade")
    assert app.selected_trade == after
    assert app.trade_list.selection() == (str(after),)
    assert app.view.contains(int(entries[after])) and app.view.contains(
        int(app.chart.exit_bars[after])
    )
    shown = {(m.trade, m.kind.value) for m in app.chart.visible_markers()}
    assert {(after, "long entry"), (after, "long exit")} <= shown or {
        (after, "short entry"),
        (after, "short exit"),
    } <= shown
    assert f"Trade {after + 1}: {trades.side.iloc[after]}" in app.status.get()

    app.next_trade()
    pump(root, lambda: not app._render_pending, "the trade after")
    assert app.selected_trade == after + 1

    # Selecting a row in the list shows that trade.
    app.trade_list.selection_set("3")
    pump(root, lambda: app.selected_trade == 3, "the selected trade")
    pump(root, lambda: not app._render_pending, "its chart")
    assert app.view.contains(int(entries[3]))

    start, width = app.view.start, app.view.width
    app.scroll(-50)
    app.zoom(1 / 1.5)
    pump(root, lambda: not app._render_pending, "scroll and zoom")
    assert app.view.width == round(width / 1.5) and app.view.start != start
    first, last = (float(x) for x in app.scrollbar.get())
    assert (first, last) == pytest.approx(app.view.fractions(), abs=1e-6)

    app.close()
    with pytest.raises(tk.TclError):
        root.winfo_exists()


def test_keys_and_mouse_move_the_window(open_app, cache_dir):
    app = open_app(cache_dir, timeframe="5m", symbol="spy")
    root = app.root
    assert app.backtest.symbol == "SPY"
    app.canvas.get_tk_widget().focus_force()
    start = app.view.start
    for key, check in (
        ("<Left>", lambda: app.view.start == start - 39),
        ("<minus>", lambda: app.view.width == 585),
        ("<Home>", lambda: app.view.start == 0),
        ("<End>", lambda: app.view.stop == app.view.total),
        ("<Prior>", lambda: app.view.stop == app.view.total - round(0.9 * 585)),
    ):
        root.event_generate(key, when="tail")
        pump(root, check, key)
    # n: the first trade entered after the window's centre; p: the one before it.
    after = int(np.searchsorted(app.chart.entry_bars, app.view.center, "right"))
    root.event_generate("<n>", when="tail")
    pump(root, lambda: app.selected_trade == after, "n")
    root.event_generate("<p>", when="tail")
    pump(root, lambda: app.selected_trade == after - 1, "p")

    # A click in the overview strip centres the window there; the wheel scrolls, Ctrl zooms.
    overview = app.chart.overview_ax
    x, y = overview.transData.transform((1000, overview.get_ylim()[0]))
    MouseEvent("button_press_event", app.canvas, x, y + 5, button=1)._process()
    pump(root, lambda: not app._render_pending, "the click")
    assert abs(app.view.center - 1000) <= 1
    x, y = app.chart.price_ax.transAxes.transform((0.5, 0.5))
    MouseEvent("scroll_event", app.canvas, x, y, step=-1)._process()
    assert app.view.center > 1000
    width = app.view.width
    MouseEvent("scroll_event", app.canvas, x, y, step=1, modifiers={"ctrl"})._process()
    pump(root, lambda: not app._render_pending, "the wheel")
    assert app.view.width < width


def test_switching_between_strategies_redraws_their_indicators(open_app, indicator_caches):
    # 5m: AAPL backtested with MACD, SPY with two moving averages and RSI, MSFT with none;
    # 15m: SPY with MACD and RSI. One figure, panels rebuilt as the strategy changes.
    app = open_app(indicator_caches, timeframe="5m", symbol="AAPL")
    root = app.root

    def panels() -> list[list[str]]:
        return [legend_texts(p.ax) for p in app.chart.indicator_panels]

    assert panels() == [["MACD", "Signal", "Hist"]]
    assert_screen_shows(root, {"MACD": "#1f77b4", "Signal": "#ff7f0e"})

    choose(app.symbol_box, "SPY", root)
    pump(root, lambda: not app._render_pending, "the SPY chart")
    assert panels() == [["RSI(14)"]]
    assert list(lines_by_label(app.chart.price_ax)) == ["SMA(10)", "SMA(30)"]
    assert "MA_RSI" in app.chart.title_text.get_text()
    assert "MACD" not in app.chart.title_text.get_text() + root.title()
    wanted = {"RSI": "#7048e8", "SMA(10)": PALETTE[0], "SMA(30)": "#8c564b"}
    assert_screen_shows(root, wanted)

    app.scroll(-100)  # moves redraw the new panels over the saved background
    pump(root, lambda: not app._render_pending, "the scroll")
    assert app.chart.window == (app.view.start, app.view.stop)
    assert len(lines_by_label(app.chart.indicator_panels[0].ax)["RSI(14)"].get_xdata()) == 390
    assert_screen_shows(root, wanted)

    choose(app.symbol_box, "MSFT", root)
    pump(root, lambda: not app._render_pending, "the MSFT chart")
    assert panels() == [] and len(app.chart.panels) == 2
    assert_screen_shows(root, {"up candle": CANDLE_UP}, absent={"RSI": "#7048e8"})

    choose(app.timeframe_box, "15m", root)
    pump(root, lambda: not app._render_pending, "the 15m chart")
    assert (app.backtest.symbol, app.backtest.timeframe) == ("SPY", "15m")
    assert panels() == [["MACD", "Signal", "Hist"], ["RSI(14)"]]

    choose(app.timeframe_box, "5m", root)
    choose(app.symbol_box, "AAPL", root)
    pump(root, lambda: not app._render_pending, "the AAPL chart again")
    assert panels() == [["MACD", "Signal", "Hist"]]
    assert_screen_shows(root, {"MACD": "#1f77b4"}, absent={"RSI": "#7048e8"})


def assert_screen_shows(
    root: tk.Tk, colours: dict[str, str], absent: dict[str, str] | None = None
) -> None:
    """Wait until a screenshot of the display has pixels of every colour in ``colours`` and
    none of ``absent`` (fails after WAIT seconds, naming what is wrong)."""
    if shutil.which("import") is None:
        return  # nothing to look with; the artists were checked
    absent = absent or {}
    deadline = time.monotonic() + WAIT
    while True:  # the X server may show the window a moment after Tk drew it
        root.update()
        shot = subprocess.run(
            ["import", "-window", "root", "png:-"], check=True, capture_output=True, timeout=WAIT
        ).stdout
        with Image.open(io.BytesIO(shot)) as image:
            pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
        found = {name: colour_pixels(pixels, colour) for name, colour in (colours | absent).items()}
        wrong = [f"no {n}" for n in colours if found[n] < 20]
        wrong += [f"still {n}" for n in absent if found[n] >= 20]
        if not wrong:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the screen shows {', '.join(wrong)}")


def colour_pixels(pixels: np.ndarray, colour: str) -> int:
    """How many pixels are (within antialiasing) ``colour``."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - rgb).max(axis=1) <= 30).sum())


@pytest.mark.parametrize("start", [None, "2026-07-13"])
def test_trade_list_opens_at_the_trades_in_view(open_app, cache_dir, start):
    # The chart opens on the last week (or on --start's): the list is scrolled so that its
    # last visible row is the last trade entered in that window, and nothing is selected.
    span = {"start": parse_time(start), "end": parse_time(start, end=True)} if start else {}
    app = open_app(cache_dir, timeframe="5m", symbol="MSFT", **span)
    tree, trades = app.trade_list, app.backtest.trades
    pump(app.root, lambda: len(tree.get_children()) == len(trades), "the trade list")
    app.root.update_idletasks()
    in_view = np.flatnonzero(
        (app.chart.entry_bars >= app.view.start) & (app.chart.entry_bars < app.view.stop)
    )
    assert len(in_view) and tree.selection() == () and app.selected_trade is None
    last = int(in_view[-1])

    def visible(row: int) -> bool:  # the whole row (the list may end with part of one)
        box = tree.bbox(str(row)) if 0 <= row < len(trades) else ""
        return box != "" and box[1] + box[3] <= tree.winfo_height()

    assert visible(last) and visible(last - 1)
    assert not visible(last + 1) and not visible(0)


def test_start_and_end_choose_the_first_window(open_app, cache_dir):
    start, end = parse_time("2026-07-06"), parse_time("2026-07-07", end=True)
    app = open_app(cache_dir, timeframe="10m", symbol="AAPL", start=start, end=end)
    assert app.view.width == 78  # two sessions of 10-minute bars
    assert f"{app.chart.time_of(app.view.start):%Y-%m-%d %H:%M}" == "2026-07-06 09:30"
    assert f"{app.chart.time_of(app.view.stop - 1):%Y-%m-%d %H:%M}" == "2026-07-07 15:50"


@pytest.mark.parametrize("side", ["start", "end"])
def test_start_or_end_alone_opens_on_the_week_from_or_up_to_it(open_app, cache_dir, side):
    when = {"start": parse_time("2026-07-06"), "end": parse_time("2026-07-10", end=True)}
    app = open_app(cache_dir, timeframe="5m", symbol="AAPL", **{side: when[side]})
    assert app.view.width == 390  # a week of 5-minute bars
    assert f"{app.chart.time_of(app.view.start):%Y-%m-%d %H:%M}" == "2026-07-06 09:30"
    assert f"{app.chart.time_of(app.view.stop - 1):%Y-%m-%d %H:%M}" == "2026-07-10 15:55"


def test_screenshot_of_the_real_command_shows_a_chart(display, cache_dir, tmp_path):
    # The README's command, as a user starts it; the window is screenshotted from the X server.
    if shutil.which("import") is None:
        pytest.skip("imagemagick's import is not installed (.ci/run installs it)")
    gui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quant_trading.visualization.trade_visualizer",
            "--timeframe",
            "5m",
            "--cache-dir",
            str(cache_dir),
            "-v",
        ],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "first chart drawn" in read_until(gui, "first chart drawn")
        shot = tmp_path / "screen.png"
        deadline = time.monotonic() + WAIT
        while True:  # the X server may show the window a moment after Tk drew it
            subprocess.run(["import", "-window", "root", str(shot)], check=True, timeout=WAIT)
            problems = chart_problems(shot)
            if not problems or time.monotonic() > deadline:
                break
        assert not problems, problems
    finally:
        gui.terminate()
        gui.wait(timeout=WAIT)


def read_until(process: subprocess.Popen, text: str) -> str:
    """Lines of ``process``'s stderr until one contains ``text`` (fails after WAIT)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr], daemon=True
    ).start()
    seen = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    pytest.fail(f"no {text!r} on stderr within {WAIT} s; got: {''.join(seen)!r}")


def chart_problems(path: Path) -> list[str]:
    """What makes a screenshot not look like the chart (empty list: it does)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    problems = []
    colours, counts = np.unique(pixels @ [1 << 16, 1 << 8, 1], return_counts=True)
    if len(colours) < 300:
        problems.append(f"only {len(colours)} distinct colours")
    if counts.max() > 0.85 * len(pixels):
        problems.append("mostly a single colour")
    wanted = {"up candle": CANDLE_UP, "down candle": CANDLE_DOWN}
    wanted |= {look.label: look.color for look in LOOKS.values()}
    for name, colour in wanted.items():
        # Candles are drawn slightly transparent over the panel's near-white background.
        if colour_pixels(pixels, colour) < 20:
            problems.append(f"no {name} colour {colour}")
    return problems


def test_missing_empty_and_corrupt_caches_are_explained(open_app, cache_dir, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    app = open_app(tmp_path / "nowhere", timeframe="5m")
    assert "does not exist" in app.message and "run_backtest --timeframe 5m" in app.message
    assert app.chart.message_text.get_visible()
    assert "does not exist" in app.status.get()
    assert "run_backtest" in caplog.text

    (tmp_path / "empty" / "5m").mkdir(parents=True)
    caplog.clear()
    app = open_app(tmp_path / "empty")
    assert "No *_backtest.json files in" in app.message and "Run a backtest first" in app.message
    assert "run_backtest" in caplog.text

    broken = tmp_path / "broken" / "5m"
    broken.mkdir(parents=True)
    shutil.copy(cache_dir / "5m" / "MSFT_backtest.json", broken)
    (broken / "AAPL_backtest.json").write_text("{ not json")
    (broken / "SPY_backtest.json").write_text('{"schema": "quant_trading.backtest/0"}')
    caplog.clear()
    app = open_app(broken.parent, symbol="AAPL")
    assert app.backtest.symbol == "MSFT" and app.message == ""  # the next readable one
    assert "AAPL_backtest.json: not valid JSON" in caplog.text
    assert list(app.symbol_box.cget("values")) == ["MSFT", "SPY"]  # SPY not read yet
    assert app.problems.get() == "Skipped unreadable: AAPL_backtest.json"
    choose(app.symbol_box, "SPY", app.root)
    assert "SPY_backtest.json: not a backtest cache" in caplog.text
    assert app.backtest.symbol == "MSFT"
    assert list(app.symbol_box.cget("values")) == ["MSFT"]
    assert app.problems.get() == "Skipped unreadable: AAPL_backtest.json, SPY_backtest.json"

    (broken / "MSFT_backtest.json").write_text("[]")
    app.reload()
    assert "No readable backtest cache" in app.message and "Run a backtest first" in app.message


def test_console_tells_to_run_the_backtest_first(display, tmp_path):
    gui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "quant_trading.visualization.trade_visualizer",
            "--timeframe",
            "5m",
            "--cache-dir",
            str(tmp_path / "backtest_results"),
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = read_until(gui, "run_backtest")
        assert seen.startswith("warning: The cache folder")
        assert "python -m quant_trading.backtesting.run_backtest --timeframe 5m" in seen
        assert gui.poll() is None  # the window stays open with the same message
    finally:
        gui.terminate()
        gui.wait(timeout=WAIT)
