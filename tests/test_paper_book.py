"""The paper trader's pure parts: a book fed bar by bar makes exactly the backtest's orders
(whether it sees each next open live or catches up later), the blotter keeps them exactly,
the ledger rebuilds the engine's position from them, and order ids are stable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from quant_trading.backtesting.datafiles import load_symbol
from quant_trading.backtesting.runner import BacktestOptions, backtest_symbol
from quant_trading.bars import Bar
from quant_trading.sessions import session_close
from quant_trading.strategy import configure
from quant_trading.trading.blotter import Blotter, PaperStateError, ledger
from quant_trading.trading.book import PaperBook
from quant_trading.trading.orders import book_tag, client_order_id, fills_from_trades
from quant_trading.trading.poster import check_dashboard_url

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"


def _data(timeframe: str, bars: int):
    data = load_symbol(SAMPLE, "AAPL", timeframe)
    return replace(data, bars=data.bars.iloc[-bars:])


def _backtest_fills(config, data, options):
    result = backtest_symbol(config, data, options)
    tag = book_tag(config.strategy.name, config.params)
    return fills_from_trades(result.trades, tag=tag, symbol="AAPL", timeframe=config.timeframe,
                             costs=options.costs)  # fmt: skip


@pytest.mark.parametrize("flat_at_close", [False, True])
@pytest.mark.parametrize("live_opens", [True, False])
def test_a_book_fed_bar_by_bar_makes_the_backtests_orders(flat_at_close, live_opens):
    config = configure("MACD", {}, timeframe="5m", params={"FAST": 5, "SLOW": 13, "SIGNAL": 4},
                       source="params")  # fmt: skip
    data = _data("5m", 700)
    bars = data.bars
    start = bars.index[300]
    options = BacktestOptions(start=start, flat_at_close=flat_at_close)
    target = config.positions(bars)
    book = PaperBook(book_tag("MACD", config.params), "AAPL", config.timeframe, options)
    seen: dict[str, object] = {}
    for k, (time, row) in enumerate(bars.iterrows()):
        if live_opens and len(book) and book.follows(time):
            for fill in book.fills(next_open=(time, row.open)):
                seen.setdefault(fill.client_order_id, fill)
        book.add(Bar(time, row.open, row.high, row.low, row.close, row.volume), int(target[k]))
        if live_opens or k % 37 == 0:  # else: caught up in batches, as after a gap
            for fill in book.fills():
                seen.setdefault(fill.client_order_id, fill)
    for fill in book.fills():
        seen.setdefault(fill.client_order_id, fill)
    want = _backtest_fills(config, data, options)
    got = sorted(seen.values(), key=lambda f: (f.time, f.role != "exit"))
    assert len(want) > 20
    assert got == want
    if flat_at_close:
        assert any(f.reason == "session close" for f in got)
        closes = [f for f in got if f.reason == "session close"]
        assert all(f.time == session_close(f.bar_time) for f in closes)
    # The ledger rebuilds the engine's position and realized P&L from the orders alone.
    held = ledger(got)
    assert held.position == pytest.approx(book.status.position)
    assert held.realized == pytest.approx(book.status.realized, abs=1e-6)


def test_a_live_open_fill_is_the_fill_the_finished_bar_confirms():
    config = configure("MACD", {}, timeframe="5m")
    bars = _data("5m", 500).bars
    target = config.positions(bars)
    book = PaperBook("MACD.x", "AAPL", config.timeframe, BacktestOptions(start=bars.index[100]))
    for k, (time, row) in enumerate(bars.iterrows()):
        if len(book) > 100 and book.follows(time):
            early = {f.client_order_id: f for f in book.fills(next_open=(time, row.open))}
            book.add(Bar(time, *row[["open", "high", "low", "close", "volume"]]), int(target[k]))
            late = {f.client_order_id: f for f in book.fills() if f.time == time}
            assert {i: f for i, f in early.items() if f.time == time} == late
        else:
            book.add(Bar(time, *row[["open", "high", "low", "close", "volume"]]), int(target[k]))


def test_session_close_follows_the_exchange_calendar():
    day = pd.Timestamp("2026-11-27 10:00", tz="America/New_York")  # the day after Thanksgiving
    assert session_close(day) == pd.Timestamp("2026-11-27 13:00", tz="America/New_York")
    regular = pd.Timestamp("2026-10-30 15:55", tz="America/New_York")
    assert session_close(regular) == pd.Timestamp("2026-10-30 16:00", tz="America/New_York")


def test_the_blotter_keeps_every_order_exactly_and_refuses_a_damaged_file(tmp_path):
    config = configure("MACD", {}, timeframe="5m")
    data = _data("5m", 400)
    fills = _backtest_fills(config, data, BacktestOptions(start=data.bars.index[50]))
    blotter = Blotter(tmp_path / "blotter.csv")
    now = pd.Timestamp("2026-12-01 12:00", tz="UTC")
    blotter.append(fills[:3], now)
    blotter.append(fills[3:], now)
    assert Blotter(tmp_path / "blotter.csv").fills() == fills
    lines = (tmp_path / "blotter.csv").read_text().splitlines()
    lines[4] = lines[4].replace(",BUY,", ",HOLD,").replace(",SELL,", ",HOLD,")
    (tmp_path / "blotter.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(PaperStateError, match=r"blotter.csv, row 5: action 'HOLD'"):
        Blotter(tmp_path / "blotter.csv").fills()


def test_order_ids_are_stable_and_fit_the_dashboard():
    time = pd.Timestamp("2026-10-30 10:05", tz="America/New_York")
    assert client_order_id("MACD.3f9a1c", "5m", "AAPL", time, "entry") == (
        "MACD.3f9a1c-5m-AAPL-20261030-1005-E"
    )
    assert book_tag("MACD", {"FAST": 12, "SLOW": 26}) == book_tag("MACD", {"SLOW": 26, "FAST": 12})
    assert book_tag("MACD", {"FAST": 12}) != book_tag("MACD", {"FAST": 13})
    long = client_order_id("A" * 80 + ".123456", "15m", "BRK.B", time, "session close")
    assert len(long) <= 64 and long.endswith("-15m-BRK.B-20261030-1005-C")


@pytest.mark.parametrize(
    "url", ["http://example.com:8000", "http://10.0.0.5:8000", "ftp://127.0.0.1"]
)
def test_posting_stays_on_this_machine(url):
    with pytest.raises(ValueError, match="--post-to"):
        check_dashboard_url(url)
    assert check_dashboard_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert check_dashboard_url("http://localhost:8000") == "http://localhost:8000"


def test_the_comparison_counts_in_words():
    from quant_trading.trading.compare import BookComparison, report

    lines: list[str] = []
    start = pd.Timestamp("2026-10-30 09:30", tz="America/New_York")
    assert report([BookComparison("AAPL 5m", start, [], [])], lines.append) == 0
    assert lines == ["AAPL 5m    from 2026-10-30 09:30: paper 0 orders, backtest 0: identical",
                     "identical (1 book, 0 orders)"]  # fmt: skip
