"""The Tk window: drop-downs for timeframe and symbol, the chart, a scrollbar and buttons to
move through the period, and the trade list. All drawing is :class:`~.chart.TradeChart`'s;
this module only turns clicks and keys into a new :class:`~.viewport.Viewport`.

Moves are coalesced: every event only records the wanted viewport and asks Tk for one
render when it is idle, so holding an arrow key or dragging the scrollbar never queues up a
backlog of redraws.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import tkinter as tk
from pathlib import Path
from tkinter import font as tkfont
from tkinter import messagebox, ttk

import numpy as np
import pandas as pd
from matplotlib.backends.backend_tkagg import FigureCanvasTkAgg
from matplotlib.figure import Figure

from ..backtesting.cache import CachedBacktest, CacheError
from ..timeframes import parse_time
from .catalog import CacheCatalog, scan_cache
from .chart import TradeChart
from .viewport import Viewport, default_width, first_window

__all__ = ["TradeVisualizerApp", "KEYS"]

log = logging.getLogger(__name__)

#: Keyboard and mouse controls (the Keys button and F1 show them).
KEYS = {
    "Left / Right": "scroll a tenth of the window",
    "Shift+Left / Shift+Right, Page Up / Page Down": "scroll a whole window",
    "Home / End": "first / last bars",
    "+ / -": "zoom in / out",
    "n / p": "next / previous trade",
    "Ctrl+G": "type a date to jump to",
    "F1": "this list",
    "Ctrl+Q": "quit",
    "mouse wheel (Ctrl+wheel)": "scroll (zoom) the chart",
    "click or drag in the overview strip": "jump there",
    "select a row in the trade list": "show that trade",
}

ZOOM_STEP = 1.5
TRADE_COLUMNS = (  # heading, widest content, alignment
    ("#", "0000", "e"),
    ("Side", "short", "w"),
    ("Entry", "2026-10-28 10:35", "w"),
    ("P&L", "-10,000.00", "e"),
    ("Ret %", "+10.00", "e"),
)  # the exit is in the status line when a trade is selected


class TradeVisualizerApp:
    """The visualizer window over one cache folder.

    ``timeframe`` and ``symbol`` choose what is shown first (default: 5m if present, else the
    first timeframe folder; the first symbol). ``start``/``end`` choose the first window
    (default: the last week of the data).
    """

    def __init__(
        self,
        root: tk.Tk,
        cache_dir: str | Path,
        timeframe: str | None = None,
        symbol: str | None = None,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        started: float | None = None,
    ) -> None:
        self.root = root
        self.started = time.perf_counter() if started is None else started
        self.catalog: CacheCatalog = scan_cache(cache_dir)
        self.timeframe = timeframe or self.catalog.default_timeframe()
        self.symbol = symbol.upper() if symbol else None
        self.view: Viewport | None = None
        self.selected_trade: int | None = None
        self.first_draw_seconds: float | None = None
        self.last_render_seconds: float | None = None
        self._initial_span = (start, end)
        self._render_pending = False
        self._selecting = False  # True while the app itself changes the list's selection
        self._trade_status = ""

        root.title("Trade visualizer")
        root.protocol("WM_DELETE_WINDOW", self.close)
        width = min(1560, root.winfo_screenwidth())
        height = min(960, root.winfo_screenheight())
        root.geometry(f"{width}x{height}")
        self._build_widgets()
        self._bind_keys()
        # Let Tk map the window and size the canvas first: the resize makes matplotlib
        # render the figure, which is cheap while it only holds this line, and the chart is
        # then rendered once, at its final size.
        self.chart.show_message(f"Reading {self.catalog.root} …")
        root.update()
        self.select_timeframe(self.timeframe)

    # -- widgets -----------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        root = self.root
        bar = ttk.Frame(root, padding=(6, 4))
        bar.pack(side=tk.TOP, fill=tk.X)
        ttk.Label(bar, text="Timeframe").pack(side=tk.LEFT)
        self.timeframe_box = ttk.Combobox(bar, width=6, state="readonly")
        self.timeframe_box.pack(side=tk.LEFT, padx=(4, 12))
        self.timeframe_box.bind(
            "<<ComboboxSelected>>", lambda e: self.select_timeframe(self.timeframe_box.get())
        )
        ttk.Label(bar, text="Symbol").pack(side=tk.LEFT)
        self.symbol_box = ttk.Combobox(bar, width=8, state="readonly")
        self.symbol_box.pack(side=tk.LEFT, padx=(4, 12))
        self.symbol_box.bind(
            "<<ComboboxSelected>>", lambda e: self.select_symbol(self.symbol_box.get())
        )
        for text, action in (
            ("◀ Prev trade", self.previous_trade),
            ("Next trade ▶", self.next_trade),
            ("Zoom in +", lambda: self.zoom(1 / ZOOM_STEP)),
            ("Zoom out −", lambda: self.zoom(ZOOM_STEP)),
        ):
            ttk.Button(bar, text=text, command=action).pack(side=tk.LEFT, padx=2)
        ttk.Label(bar, text="Go to date").pack(side=tk.LEFT, padx=(12, 4))
        self.date_entry = ttk.Entry(bar, width=17)
        self.date_entry.pack(side=tk.LEFT)
        self.date_entry.bind("<Return>", lambda e: self.go_to_date(self.date_entry.get()))
        ttk.Button(
            bar, text="Go", width=4, command=lambda: self.go_to_date(self.date_entry.get())
        ).pack(side=tk.LEFT, padx=2)
        ttk.Button(bar, text="Keys", command=self.show_keys).pack(side=tk.RIGHT, padx=2)
        ttk.Button(bar, text="Reload", command=self.reload).pack(side=tk.RIGHT, padx=2)

        status = ttk.Frame(root, padding=(6, 2))
        status.pack(side=tk.BOTTOM, fill=tk.X)
        self.status = tk.StringVar(master=root)
        self.problems = tk.StringVar(master=root)
        ttk.Label(status, textvariable=self.status).pack(side=tk.LEFT)
        ttk.Label(status, textvariable=self.problems, foreground="#b00020").pack(side=tk.RIGHT)

        panes = ttk.Panedwindow(root, orient=tk.HORIZONTAL)
        panes.pack(side=tk.TOP, fill=tk.BOTH, expand=True)
        left = ttk.Frame(panes)
        right = ttk.Frame(panes)
        panes.add(left, weight=4)
        panes.add(right, weight=1)

        self.chart = TradeChart(Figure(figsize=(11, 8), dpi=100))
        self.canvas = FigureCanvasTkAgg(self.chart.figure, master=left)
        self.scrollbar = ttk.Scrollbar(left, orient=tk.HORIZONTAL, command=self._on_scrollbar)
        self.scrollbar.pack(side=tk.BOTTOM, fill=tk.X)
        self.canvas.get_tk_widget().pack(side=tk.TOP, fill=tk.BOTH, expand=True)
        self.canvas.mpl_connect("resize_event", lambda e: self.chart.relayout())
        self.canvas.mpl_connect("scroll_event", self._on_wheel)
        self.canvas.mpl_connect("button_press_event", self._on_overview_click)
        self.canvas.mpl_connect("motion_notify_event", self._on_overview_click)

        ttk.Label(right, text="Trades (select one to show it)").pack(side=tk.TOP, anchor="w")
        self.trade_list = ttk.Treeview(
            right,
            columns=[c[0] for c in TRADE_COLUMNS],
            show="headings",
            selectmode="browse",
        )
        font = tkfont.nametofont("TkDefaultFont")
        for name, widest, anchor in TRADE_COLUMNS:
            self.trade_list.heading(name, text=name)
            width = font.measure(widest) + 14
            self.trade_list.column(name, width=width, minwidth=width, anchor=anchor, stretch=False)
        self.trade_list.tag_configure("win", foreground="#00796b")
        self.trade_list.tag_configure("loss", foreground="#c62828")
        scroll = ttk.Scrollbar(right, orient=tk.VERTICAL, command=self.trade_list.yview)
        self.trade_list.configure(yscrollcommand=scroll.set)
        scroll.pack(side=tk.RIGHT, fill=tk.Y)
        self.trade_list.pack(side=tk.LEFT, fill=tk.BOTH, expand=True)
        self.trade_list.bind("<<TreeviewSelect>>", self._on_trade_selected)

    def _bind_keys(self) -> None:
        bindings = {
            "<Left>": lambda: self.scroll(-self._step()),
            "<Right>": lambda: self.scroll(self._step()),
            "<Shift-Left>": lambda: self.page(-1),
            "<Shift-Right>": lambda: self.page(1),
            "<Prior>": lambda: self.page(-1),
            "<Next>": lambda: self.page(1),
            "<Home>": lambda: self.scroll(-(self.view.total if self.view else 0)),
            "<End>": lambda: self.scroll(self.view.total if self.view else 0),
            "<plus>": lambda: self.zoom(1 / ZOOM_STEP),
            "<equal>": lambda: self.zoom(1 / ZOOM_STEP),
            "<KP_Add>": lambda: self.zoom(1 / ZOOM_STEP),
            "<minus>": lambda: self.zoom(ZOOM_STEP),
            "<KP_Subtract>": lambda: self.zoom(ZOOM_STEP),
            "<n>": self.next_trade,
            "<p>": self.previous_trade,
        }
        for sequence, action in bindings.items():
            self.root.bind(sequence, self._unless_typing(action))
        self.root.bind("<Control-g>", lambda e: self.date_entry.focus_set())
        self.root.bind("<Control-q>", lambda e: self.close())
        self.root.bind("<F1>", lambda e: self.show_keys())

    @staticmethod
    def _unless_typing(action):
        def handler(event):
            # Keys typed into the date field or a drop-down are text, not navigation.
            if isinstance(event.widget, (tk.Entry, ttk.Entry)):
                return None
            action()
            return "break"

        return handler

    # -- what is shown -----------------------------------------------------------------------

    @property
    def backtest(self) -> CachedBacktest | None:
        """The backtest on screen (None while a message is shown)."""
        return self.chart.backtest

    @property
    def message(self) -> str:
        """The message shown instead of a chart ('' while a chart is shown)."""
        return self.chart.message

    def select_timeframe(self, timeframe: str) -> None:
        """Show ``timeframe``'s cache: the current symbol if it has one, else the first."""
        self.timeframe = timeframe
        self.timeframe_box.configure(
            values=sorted({*self.catalog.timeframes, timeframe}, key=self._tf_order)
        )
        self.timeframe_box.set(timeframe)
        symbols = self.catalog.symbols(timeframe)
        wanted = self.symbol if self.symbol in symbols else None
        if self.symbol and wanted is None and symbols:
            log.warning("no %s cache for %s; showing %s", timeframe, self.symbol, symbols[0])
        self.select_symbol(wanted or (symbols[0] if symbols else None))

    def select_symbol(self, symbol: str | None) -> None:
        """Show ``symbol`` in the current timeframe; an unreadable file is reported and the
        next symbol shown instead."""
        symbols = self.catalog.symbols(self.timeframe)
        order = ([symbol] if symbol in symbols else []) + [s for s in symbols if s != symbol]
        for candidate in order:
            try:
                backtest = self.catalog.load(self.timeframe, candidate)
            except CacheError as exc:
                log.warning("skipped %s", exc)
                continue
            self._show_backtest(backtest)
            break
        else:
            self._show_message(self.catalog.missing_message(self.timeframe))
        self.symbol_box.configure(values=self.catalog.symbols(self.timeframe))
        self.symbol_box.set(self.symbol if self.backtest is not None else "")
        skipped = [Path(p).name for p in self.catalog.skipped]
        self.problems.set(f"Skipped unreadable: {', '.join(skipped)}" if skipped else "")

    def show_keys(self) -> None:
        """A dialog listing the keyboard and mouse controls."""
        text = "\n".join(f"{keys}:  {does}" for keys, does in KEYS.items())
        messagebox.showinfo("Trade visualizer keys", text, parent=self.root)

    def reload(self) -> None:
        """Scan the cache folder again (after a new ``run_backtest``)."""
        root = self.catalog.root
        self.catalog = scan_cache(root)
        self.select_timeframe(self.timeframe)

    def close(self) -> None:
        """Close the window and end the Tk main loop."""
        gc.unfreeze()  # the window's objects may go now
        with contextlib.suppress(tk.TclError):  # already gone
            self.root.destroy()

    def _tf_order(self, name: str):
        timeframes = self.catalog.timeframes
        return (timeframes.index(name) if name in timeframes else len(timeframes), name)

    def _show_backtest(self, backtest: CachedBacktest) -> None:
        anchor = None
        if self.backtest is not None and self.view is not None:
            anchor = self.chart.time_of(self.view.center)  # keep the same moment in view
        self.chart.set_backtest(backtest)
        self.symbol = backtest.symbol
        self.selected_trade = None
        total = self.chart.total
        width = default_width(backtest.timeframe, total)
        start, end = self._initial_span
        if anchor is not None:
            bar = min(self.chart.bars_between(anchor, None)[0], total - 1)
            self.view = Viewport(bar - width // 2, width, total).clamped()
        elif start is not None or end is not None:
            first, stop = first_window(
                None if start is None else self.chart.bars_between(start, None)[0],
                None if end is None else self.chart.bars_between(None, end)[1],
                width,
                total,
            )
            if stop <= first:
                log.warning("no bars between %s and %s; showing the last week", start, end)
                self.view = Viewport.ending_at(total, width, total)
            else:
                self.view = Viewport.spanning(first, stop, total)
        else:
            self.view = Viewport.ending_at(total, width, total)
        self.root.title(f"Trade visualizer — {backtest.symbol} {backtest.timeframe}")
        self.trade_list.delete(*self.trade_list.get_children())
        self.request_render()
        # After the chart: thousands of rows take a moment, and the chart matters first.
        self.root.after_idle(self._fill_trade_list, backtest)

    def _show_message(self, text: str) -> None:
        log.warning("%s", text)
        self.chart.show_message(text)
        self.view = None
        self.selected_trade = None
        self.trade_list.delete(*self.trade_list.get_children())
        self.status.set(text.splitlines()[0])
        self.chart.draw()

    def _fill_trade_list(self, backtest: CachedBacktest) -> None:
        if backtest is not self.backtest:
            return  # another symbol was chosen meanwhile
        tree = self.trade_list
        tree.delete(*tree.get_children())
        trades = backtest.trades
        columns = zip(
            trades["side"],
            trades["entry_time"].dt.strftime("%Y-%m-%d %H:%M"),
            trades["pnl"],
            trades["return_pct"],
        )
        for row, (side, entry, pnl, ret) in enumerate(columns):
            tree.insert(
                "",
                tk.END,
                iid=str(row),
                values=(row + 1, side, entry, f"{pnl:,.2f}", f"{ret:+.2f}"),
                tags=("win" if pnl > 0 else "loss",),
            )
        self._show_trades_in_view()
        self._settle_memory()

    @staticmethod
    def _settle_memory() -> None:
        """Move what is alive now (chart, backtest, widgets) out of the garbage collector's
        way until the next backtest. A full collection walks every object: during a move it
        took ~60 ms, one move in forty; frozen objects make it ~1 ms. Collecting first
        frees what the previous backtest left in reference cycles (its axes, say)."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _show_trades_in_view(self) -> None:
        """Scroll the trade list (selecting nothing) so its last visible row is the last
        trade entered before the window's end: the rows above it are the trades on the
        chart (the window opens on the last week, not at the first trade)."""
        if self.view is None or not self.trade_list.get_children():
            return
        last = int(np.searchsorted(self.chart.entry_bars, self.view.stop, "left")) - 1
        # "see" scrolls a row below the visible ones to the bottom, but only once the list
        # knows which rows are visible: until it has laid out the rows just inserted it
        # scrolls the row to the top.
        self.trade_list.update_idletasks()
        self.trade_list.see(str(max(last, 0)))

    # -- moving ------------------------------------------------------------------------------

    def _step(self) -> int:
        return max(1, self.view.width // 10) if self.view else 1

    def _move(self, view: Viewport) -> None:
        if self.view is not None and view != self.view:
            self.view = view
            self.request_render()

    def scroll(self, bars: int) -> None:
        """Move the window right by ``bars`` (left if negative)."""
        if self.view:
            self._move(self.view.scrolled(bars))

    def page(self, pages: float) -> None:
        """Move by whole windows."""
        if self.view:
            self._move(self.view.paged(pages))

    def zoom(self, factor: float, anchor: int | None = None) -> None:
        """Change the window's width by ``factor`` (< 1 zooms in) around ``anchor``."""
        if self.view:
            self._move(self.view.zoomed(factor, anchor))

    def next_trade(self) -> None:
        """Show the trade after the selected one (or after the window's centre)."""
        self._step_trade(+1)

    def previous_trade(self) -> None:
        """Show the trade before the selected one (or before the window's centre)."""
        self._step_trade(-1)

    def _step_trade(self, direction: int) -> None:
        entries = self.chart.entry_bars
        if self.view is None or len(entries) == 0:
            return
        current = self.selected_trade
        if current is not None and self.view.contains(int(entries[current])):
            target = current + direction
        elif direction > 0:
            target = int(np.searchsorted(entries, self.view.center, "right"))
        else:
            target = int(np.searchsorted(entries, self.view.center, "left")) - 1
        if 0 <= target < len(entries):
            self.go_to_trade(target)
        else:
            self.status.set("No later trade" if direction > 0 else "No earlier trade")

    def go_to_trade(self, trade: int) -> None:
        """Centre the window on trade number ``trade`` (0-based) and select it in the list."""
        if self.view is None:
            return
        self.selected_trade = trade
        self.chart.highlight = (int(self.chart.entry_bars[trade]), int(self.chart.exit_bars[trade]))
        first, last = int(self.chart.entry_bars[trade]), int(self.chart.exit_bars[trade])
        self._trade_status = self._describe_trade(trade)
        self.view = self.view.showing(first, last)
        self.request_render()  # even if the window stays: the status names the trade
        iid = str(trade)
        if self.trade_list.selection() != (iid,):
            self._selecting = True
            self.trade_list.selection_set(iid)
            self._selecting = False
        self.trade_list.see(iid)

    def _describe_trade(self, trade: int) -> str:
        t = self.backtest.trades.iloc[trade]
        return (
            f"Trade {trade + 1}: {t.side} {t.shares:g} shares, {t.entry_time:%Y-%m-%d %H:%M} "
            f"@ {t.entry_price:.2f} → {t.exit_time:%Y-%m-%d %H:%M} @ {t.exit_price:.2f} "
            f"({t.exit_reason}), P&L {t.pnl:,.2f} ({t.return_pct:+.2f}%)"
        )

    def go_to_date(self, text: str) -> None:
        """Centre the window on a date or time (``2026-03-02`` or ``2026-03-02 10:30``)."""
        if self.view is None or not text.strip():
            return
        try:
            when = parse_time(text.strip())
        except ValueError:
            self.status.set(f"Not a date: {text!r} (use e.g. 2026-03-02 or 2026-03-02 10:30)")
            return
        bar = min(self.chart.bars_between(when, None)[0], self.view.total - 1)
        self._move(self.view.showing(bar))
        self.canvas.get_tk_widget().focus_set()

    def _on_scrollbar(self, action: str, *args: str) -> None:
        if self.view is None:
            return
        if action == "moveto":
            self._move(self.view.moved_to(float(args[0])))
        elif action == "scroll" and args[1] == "pages":
            self.page(int(args[0]))
        elif action == "scroll":
            self.scroll(int(args[0]) * self._step())

    def _on_wheel(self, event) -> None:
        if self.view is None:
            return
        if "ctrl" in event.modifiers and event.inaxes in self.chart.panels:
            anchor = self.view.start + round(event.xdata)
            self.zoom(1 / ZOOM_STEP if event.step > 0 else ZOOM_STEP, anchor)
        else:
            self.scroll(-int(np.sign(event.step)) * self._step())

    def _on_overview_click(self, event) -> None:
        if self.view is None or event.inaxes not in (self.chart.overview_ax, self.chart.equity_ax):
            return
        if event.name == "motion_notify_event" and event.button != 1:
            return
        if event.xdata is not None:
            bar = round(event.xdata)
            self._move(
                Viewport(bar - self.view.width // 2, self.view.width, self.view.total).clamped()
            )

    def _on_trade_selected(self, _event) -> None:
        chosen = self.trade_list.selection()
        if chosen and not self._selecting and int(chosen[0]) != self.selected_trade:
            self.go_to_trade(int(chosen[0]))

    # -- drawing -----------------------------------------------------------------------------

    def request_render(self) -> None:
        """Draw the current viewport once Tk is idle (several requests make one render)."""
        if not self._render_pending:
            self._render_pending = True
            self.root.after_idle(self._render)

    def render_now(self) -> None:
        """Draw the current viewport immediately."""
        self._render_pending = True
        self._render()

    def _render(self) -> None:
        if not self._render_pending:
            return
        self._render_pending = False
        if self.view is None or self.backtest is None:
            return
        began = time.perf_counter()
        self.chart.show(self.view.start, self.view.stop)
        self.chart.draw()
        self.scrollbar.set(*self.view.fractions())
        self.last_render_seconds = time.perf_counter() - began
        where = (
            f"bars {self.view.start + 1:,}–{self.view.stop:,} of {self.view.total:,} "
            f"(drawn in {self.last_render_seconds * 1000:.0f} ms)"
        )
        trade = self._trade_status if self.selected_trade is not None else ""
        self.status.set(f"{trade}   {where}" if trade else where)
        if self.first_draw_seconds is None:
            self.root.update_idletasks()
            self.first_draw_seconds = time.perf_counter() - self.started
            log.info(
                "first chart drawn %.2f s after start (%s %s, %d candles, %d trades)",
                self.first_draw_seconds,
                self.backtest.symbol,
                self.backtest.timeframe,
                self.view.total,
                len(self.backtest.trades),
            )
