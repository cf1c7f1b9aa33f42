"""The paper trader against the simulator: several sessions replayed at high speed on two
symbols and two timeframes; its blotter equals the backtest over the bars it saw, trade by
trade (times, sides, prices, shares, commissions), also with a dropped socket and a lost
link in the middle, with --session-close, and across a kill -9 and restart of the real
command. Its bars equal the simulator's source bars, so "the bars it saw" are the market's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import REPO_ROOT, run_module

from quant_trading import backtest
from quant_trading.bars import EXCHANGE_TZ, OHLCV, aggregate
from quant_trading.core.pacing import PacingLimiter, PacingRules
from quant_trading.csv_store import read_bars
from quant_trading.simulator.pacing import PacingLimits
from quant_trading.simulator.testing import running_simulator
from quant_trading.strategy import configure
from quant_trading.trading.blotter import PaperFolder, PaperSettings
from quant_trading.trading.compare import compare_folder
from quant_trading.trading.orders import book_tag
from quant_trading.trading.paper_trader import PaperTrader

SAMPLE = REPO_ROOT / "market_data"
SYMBOLS = ("AAPL", "MSFT")
TIMEFRAMES = ("1m", "5m")
PARAMS = {"FAST": 5, "SLOW": 13, "SIGNAL": 4}  # quick: many trades in a few sessions


def at(text: str) -> float:
    return pd.Timestamp(text, tz=EXCHANGE_TZ).timestamp()


def replay(start: str, speed: float = 1200.0):
    """The sample data from ``start``, closed hours skipped, unpaced history."""
    return running_simulator(data_dir=SAMPLE, speed=speed, loop=True, start=at(start),
                             pacing=PacingLimits(enabled=False))  # fmt: skip


def settings(session_close: bool = False) -> PaperSettings:
    paper = PaperSettings(strategy="MACD", params={**PARAMS, "MODE": "long_short"},
                          tag=book_tag("MACD", {**PARAMS, "MODE": "long_short"}),
                          capital=100_000.0, commission=0.005, slippage=0.01, allocation=1.0,
                          size=None, fractional=False, session_close=session_close)  # fmt: skip
    return paper


def paper_trader(sim, folder: Path, lines: list[str], session_close: bool = False) -> PaperTrader:
    paper = settings(session_close)
    config = configure("MACD", {}, timeframe="1m", params=PARAMS, source="params")
    trader = PaperTrader(
        list(SYMBOLS), list(TIMEFRAMES), strategy=config, settings=paper,
        folder=folder, output=lines.append, port=sim.port, env_file=None, timeout=10,
        pacing=PacingLimiter(PacingRules(per_contract=1_000, identical_window=0)),
    )  # fmt: skip
    trader.RECONNECT_BACKOFF = (0.05, 0.5)
    return trader


def run_until(trader: PaperTrader, sim, until: str, events=(), timeout: float = 120.0) -> None:
    """Track until the market is past ``until`` and every book has its bars up to there;
    ``events`` are (market time, action) pairs done once the market passes them."""
    deadline, end = time.monotonic() + timeout, pd.Timestamp(until, tz=EXCHANGE_TZ)
    pending = sorted(((at(t), action) for t, action in events), key=lambda e: e[0])
    assert trader.connect_to_tws()
    try:
        assert trader.resolve_symbols() == []
        trader.backfill()
        trader.subscribe()
        while not all(
            b.last_time is not None and b.last_time >= end - pd.Timedelta(minutes=5)
            for b in trader.books.values()
        ):
            assert time.monotonic() < deadline, f"timed out before the market reached {until}"
            while pending and sim.clock.now() >= pending[0][0]:
                pending.pop(0)[1]()
            trader.track(duration=0.1)
    finally:
        trader.finish()
        trader.disconnect_from_tws()


def round_trips(fills) -> list[tuple]:
    """The blotter's orders of one book paired into round trips, as the backtest lists them:
    (side, entry time, entry price, exit time, exit price, shares, commission)."""
    trips, opened = [], None
    for fill in fills:
        if fill.reason == "entry":
            opened = fill
            continue
        exit_time = fill.bar_time  # the backtest names a trade's exit by its bar
        side = "long" if opened.action == "BUY" else "short"
        trips.append((side, opened.time, opened.price, exit_time, fill.price, opened.shares,
                      opened.commission + fill.commission))  # fmt: skip
        opened = None
    return trips


def assert_blotter_is_the_backtest(folder: Path) -> int:
    """The blotter's trades equal a backtest (the public ``backtest()``, not the report's
    code) over the bars the paper trader saved, from each book's window start; returns how
    many orders were checked."""
    paper = PaperFolder(folder)
    stored, starts = paper.load_state()
    fills = paper.blotter.fills()
    checked = 0
    for key, start in starts.items():
        symbol, tf = key.split()
        mine = [f for f in fills if (f.symbol, f.timeframe) == (symbol, tf)]
        saved = read_bars(
            paper.bars_dir / f"{symbol}_{tf}_bars_macd.csv", indicators=("MACD", "Signal", "Hist")
        )
        mine = [f for f in mine if f.time < saved.index[-1] + pd.Timedelta(tf)]  # finished bars
        run = backtest("MACD", symbol, tf, data_dir=paper.bars_dir, params=stored.params,
                       start=start, commission=stored.commission, slippage=stored.slippage,
                       flat_at_close=stored.session_close)  # fmt: skip
        trades = run.results[0].trades
        # The trade still open at the end: the backtest closes it at the last bar ("end of
        # data", or with flat-at-close "session close", as it counts the data's last bar as
        # a session's last even mid-session), where the paper trader still holds it.
        closed = trades
        if len(trades) and (
            trades["exit_reason"].iloc[-1] == "end of data"
            or trades["exit_time"].iloc[-1].time() < pd.Timestamp("15:59").time()
            and trades["exit_reason"].iloc[-1] == "session close"
        ):
            closed = trades.iloc[:-1]
            entry = [f for f in mine if f.reason == "entry"][-1]
            last = trades.iloc[-1]
            assert (entry.time, entry.price, entry.shares) == (
                last.entry_time,
                last.entry_price,
                last.shares,
            )
        want = [
            (str(t.side), t.entry_time, t.entry_price, t.exit_time, t.exit_price, t.shares,
             t.commission)
            for t in closed.itertuples()
        ]  # fmt: skip
        assert round_trips(mine) == want, key
        assert len(want) >= 2, f"{key}: too few trades to prove anything"
        checked += len(mine)
    books = compare_folder(folder)
    assert [b.differences for b in books] == [[]] * len(books)
    return checked


def assert_saved_bars_are_the_source(folder: Path) -> None:
    for symbol in SYMBOLS:
        source = read_bars(SAMPLE / f"{symbol}_1m.csv")
        for tf in TIMEFRAMES:
            got = read_bars(
                folder / "bars" / f"{symbol}_{tf}_bars_macd.csv",
                indicators=("MACD", "Signal", "Hist"),
            )
            want = aggregate(source, tf).loc[got.index[0] : got.index[-1]]
            missing, extra = want.index.difference(got.index), got.index.difference(want.index)
            assert not len(missing) and not len(extra), (
                f"{symbol} {tf}: bars missing {list(missing)}, not in the source {list(extra)}"
            )
            wrong = ~np.isclose(got[OHLCV], want[OHLCV], rtol=0, atol=1e-6).all(axis=1)
            assert not wrong.any(), (
                f"{symbol} {tf}: bars differ from the source at {list(got.index[wrong])}:\n"
                f"{got[OHLCV][wrong]}\n{want[OHLCV][wrong]}"
            )


@pytest.mark.slow
def test_blotter_equals_the_backtest_across_sessions_a_socket_drop_and_a_link_loss(tmp_path):
    lines: list[str] = []
    folder = tmp_path / "paper"
    with replay("2026-10-28 14:40") as sim:
        trader = paper_trader(sim, folder, lines)
        run_until(trader, sim, "2026-10-30 10:30", events=[
            ("2026-10-28 15:20", sim.drop_connections),
            ("2026-10-29 10:05", sim.lose_link),
            ("2026-10-29 10:12", lambda: sim.restore_link(data_lost=True)),
        ])  # fmt: skip
    text = "\n".join(lines)
    assert "Connection lost" in text and "Reconnected" in text
    assert "TWS lost its connection to IB" in text and "connection to IB is back" in text
    live = [line for line in lines if line.startswith("FILL ") and "caught up" not in line]
    assert len(live) >= 10, text[-2000:]  # most fills happen live, at the next bar's open
    assert_saved_bars_are_the_source(folder)
    # All but the orders filled at the open of a bar still forming at the stop (at most a
    # flip per book) are checked.
    total = len(PaperFolder(folder).blotter.fills())
    assert total - 2 * 4 <= assert_blotter_is_the_backtest(folder) <= total


@pytest.mark.slow
def test_session_close_flattens_at_each_sessions_last_bar_as_the_backtest(tmp_path):
    lines: list[str] = []
    folder = tmp_path / "paper"
    with replay("2026-10-28 14:50") as sim:
        run_until(paper_trader(sim, folder, lines, session_close=True), sim, "2026-10-29 10:30")
    closes = [f for f in PaperFolder(folder).blotter.fills() if f.reason == "session close"]
    assert closes and {f.time for f in closes} == {pd.Timestamp("2026-10-28 16:00", tz=EXCHANGE_TZ)}
    assert_blotter_is_the_backtest(folder)


def _cli(port: int, folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "quant_trading.trading.paper_trader", "--port", str(port),
            "--dir", str(folder), "--symbols", *SYMBOLS, "--timeframe", *TIMEFRAMES,
            "--strategy", "MACD", "--env-file", str(folder.parent / "strategy.env"),
            "--slippage", "0.01", "--quiet", *extra]  # fmt: skip


def _blotter_rows(folder: Path) -> int:
    path = folder / "blotter.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


@pytest.mark.slow
def test_killed_and_restarted_the_command_goes_on_without_doubling_or_skipping(tmp_path):
    """The real command, killed with SIGKILL mid-run and started again: the restart rebuilds
    its position from the blotter, catches up the bars it missed from history, and the
    parity report finds the blotter identical to the backtest."""
    folder = tmp_path / "paper"
    (tmp_path / "strategy.env").write_text(
        "".join(f"MACD_{name}={value}\n" for name, value in PARAMS.items())
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "MACD_"))}
    with replay("2026-10-28 15:00", speed=600.0) as sim:
        first = subprocess.Popen(_cli(sim.port, folder, "--duration", "120"), cwd=tmp_path,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while _blotter_rows(folder) < 8:
                assert first.poll() is None, first.stdout.read()
                assert time.monotonic() < deadline, "no fills from the first run"
                time.sleep(0.2)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        before = PaperFolder(folder).blotter.fills()
        time.sleep(2)  # twenty market minutes pass while it is down
        second = subprocess.run(_cli(sim.port, folder, "--duration", "6"), cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    assert "from the blotter:" in second.stdout
    after = PaperFolder(folder).blotter.fills()
    assert after[: len(before)] == before  # nothing rewritten
    assert len(after) > len(before)
    ids = [f.client_order_id for f in after]
    assert len(ids) == len(set(ids))  # nothing doubled
    assert_blotter_is_the_backtest(folder)
    report = run_module("quant_trading.trading.paper_trader", "--compare", str(folder))
    assert report.returncode == 0, report.stdout + report.stderr
    assert report.stdout.strip().splitlines()[-1].startswith("identical (4 books, ")
