"""How quickly the trade visualizer shows a year of 5-minute bars, and how quickly it moves.

    python benchmarks/bench_visualizer.py [--repeat 20]

Backtests AAPL over the last year of the bundled sample data (~19,500 five-minute bars) into
a temporary cache, then measures:

* start to first chart: wall time from launching the README's command to the window's first
  drawn chart (the app logs when it has drawn; the whole process start is included);
* one move each of scroll, page, zoom in/out, next trade and jump to a date in the window:
  the app's method plus the redraw, median and worst of ``--repeat``;
* for comparison, one ``mplfinance.plot`` of the same week with volume and MACD panels per
  move (the approach the chart avoids; see quant_trading/visualization/chart.py).

The window needs an X display: DISPLAY, or an Xvfb the script starts itself. Targets (not
asserted anywhere): first chart under 1.5 s, a move under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI = "quant_trading.visualization.trade_visualizer"


def make_cache(folder: Path) -> Path:
    """One year of AAPL 5-minute bars backtested into ``folder``; returns the cache file."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "quant_trading.backtesting.run_backtest",
            "--timeframe",
            "5m",
            "--data-dir",
            str(REPO / "market_data"),
            "--symbols",
            "AAPL",
            "--start",
            "2025-10-31",
            "--cache-dir",
            str(folder),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return folder / "5m" / "AAPL_backtest.json"


def start_display() -> subprocess.Popen | None:
    """Start Xvfb on a free display and set DISPLAY, unless one is set already."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("needs an X display: set DISPLAY or install Xvfb (apt-get install xvfb)")
    read_end, write_end = os.pipe()
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
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    if not select.select([read_end], [], [], 20)[0]:
        server.kill()
        sys.exit("Xvfb did not start")
    os.environ["DISPLAY"] = ":" + os.read(read_end, 32).decode().strip()
    # read_end stays open: Xvfb writes to it again when it resets, and dies if it is closed.
    return server


def first_chart(cache: Path, runs: int) -> list[float]:
    """Seconds from launching the CLI to its 'first chart drawn' log line, ``runs`` times."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        gui = subprocess.Popen(
            [sys.executable, "-m", CLI, "--timeframe", "5m", "--cache-dir", str(cache), "-v"],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            said = []
            for line in gui.stderr:
                said.append(line)
                if "first chart drawn" in line:
                    times.append(time.perf_counter() - began)
                    break
            else:
                sys.exit("the visualizer exited before drawing:\n" + "".join(said))
        finally:
            gui.terminate()
            gui.wait(timeout=20)
    return times


def moves(cache: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds per move in a live window (the method call plus the redraw)."""
    import tkinter as tk

    from quant_trading.visualization.app import ZOOM_STEP, TradeVisualizerApp
    from quant_trading.visualization.viewport import MAX_BARS, Viewport

    root = tk.Tk()
    app = TradeVisualizerApp(root, cache, "5m", "AAPL")
    root.update()
    week = app.view.width
    total = app.view.total

    def run(step, i: int, width: int = week) -> float:
        # Every move starts from a week's window somewhere mid-year (not timed).
        app.view = Viewport(total // 3 + 211 * i, width, total).clamped()
        app.selected_trade = None
        app.render_now()
        began = time.perf_counter()
        step()
        app.render_now()
        root.update_idletasks()
        return time.perf_counter() - began

    steps = {
        "scroll a tenth (Right)": lambda: app.scroll(app._step()),
        "page (Shift+Right)": lambda: app.page(1),
        "zoom in": lambda: app.zoom(1 / ZOOM_STEP),
        "zoom out": lambda: app.zoom(ZOOM_STEP),
        "next trade": app.next_trade,
        "jump to a date": lambda: app.go_to_date("2026-03-02 10:30"),
    }
    result = {name: [run(step, i) for i in range(repeat)] for name, step in steps.items()}
    result[f"scroll, widest window ({MAX_BARS:,})"] = [
        run(lambda: app.scroll(app._step()), i, MAX_BARS) for i in range(max(3, repeat // 4))
    ]
    result["(candles on screen)"] = [week]
    result["(bars in the cache)"] = [total]
    app.close()
    return result


def full_mplfinance(cache: Path, repeat: int) -> list[float]:
    """One mpf.plot of a week with volume and MACD panels, rendered, per move (Agg)."""
    import mplfinance as mpf
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from quant_trading.backtesting.cache import read_cache

    candles = read_cache(cache).candles
    figure = Figure(figsize=(15, 9))
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(3, 1, height_ratios=[5, 1.2, 2])
    axes = [figure.add_subplot(grid[i]) for i in range(3)]
    times = []
    for i in range(repeat):
        week = candles.iloc[5000 + 39 * i : 5390 + 39 * i]
        began = time.perf_counter()
        for ax in axes:
            ax.clear()
        panels = [
            mpf.make_addplot(week["MACD"], ax=axes[2]),
            mpf.make_addplot(week["Signal"], ax=axes[2]),
            mpf.make_addplot(week["Hist"], ax=axes[2], type="bar"),
        ]
        mpf.plot(
            week.rename(columns=str.capitalize),
            ax=axes[0],
            volume=axes[1],
            type="candle",
            addplot=panels,
        )
        figure.canvas.draw()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="moves of each kind (20)")
    parser.add_argument("--starts", type=int, default=3, help="process starts timed (3)")
    args = parser.parse_args()
    server = start_display()
    try:
        with tempfile.TemporaryDirectory() as folder:
            cache_file = make_cache(Path(folder))
            cache = cache_file.parent.parent
            starts = first_chart(cache, args.starts)
            per_move = moves(cache, args.repeat)
            reference = full_mplfinance(cache_file, max(3, args.repeat // 4))
    finally:
        if server is not None:
            server.terminate()
    bars = per_move.pop("(bars in the cache)")[0]
    width = per_move.pop("(candles on screen)")[0]
    print(f"Trade visualizer on one year of AAPL 5-minute bars ({bars:,} candles, TkAgg)\n")
    print(f"{'':34}{'median ms':>10}{'worst ms':>10}")
    print("-" * 54)
    print(f"{'start to first chart (process)':34}{_ms(starts)}")
    for name, times in per_move.items():
        print(f"{name:34}{_ms(times)}")
    print(f"{'full mpf.plot per move (Agg)':34}{_ms(reference)}")
    print(f"\nMoves start from a {width}-candle window (one week); targets (not asserted):")
    print("first chart < 1500 ms, move < 150 ms")


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:10.0f}{max(times) * 1000:10.0f}"


if __name__ == "__main__":
    main()
