"""Live bars without a network: each timeframe runs the strategy bar by bar and gives what
the backtest computes over the same bars; bars the 5-second feed did not cover come from
history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_trading.bars import EXCHANGE_TZ, OHLCV, aggregate
from quant_trading.csv_store import read_bars
from quant_trading.data.live_bars import LiveBars
from quant_trading.strategy import configure

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=EXCHANGE_TZ)


@pytest.fixture(scope="module")
def one_minute() -> pd.DataFrame:
    """Five sessions of the sample's 1-minute AAPL bars."""
    return read_bars(SAMPLE / "AAPL_1m.csv").loc["2026-10-26":"2026-10-30"]


def feed(live: LiveBars, bars: pd.DataFrame, second: int = 0):
    """Each 1-minute bar as one 5-second bar ``second`` seconds into its minute."""
    finished, gaps = [], {}
    for time, row in bars[OHLCV].iterrows():
        done, missing = live.add_realtime_bar(time.timestamp() + second, *row)
        finished += done
        gaps.update(missing)
    return finished, gaps


@pytest.mark.parametrize("name", ["MACD", "RSI", "MA_CROSS"])
def test_every_timeframe_gives_the_backtest_numbers(name, one_minute):
    config = configure(name, {})
    timeframes = ["1m", "5m", "15m"]
    live = LiveBars("AAPL", timeframes, config)
    split = at("2026-10-30 10:00")
    finished = []
    for tf in timeframes:
        finished += live.add_history(tf, aggregate(one_minute[one_minute.index < split], tf))
    done, gaps = feed(live, one_minute.loc[split : at("2026-10-30 12:00")])
    assert gaps == {} and done  # the feed covered every live bar from its first second
    finished += done
    for tf in timeframes:
        frame = live.timeframes[tf].frame()
        assert list(frame.columns) == [*OHLCV, *config.columns]
        want = aggregate(one_minute, tf).loc[: frame.index[-1]]
        pd.testing.assert_frame_equal(frame[OHLCV], want, check_freq=False)
        batch = config.compute(frame)
        for column in config.columns:
            np.testing.assert_allclose(frame[column], batch[column], rtol=0, atol=1e-9)
        items = [f for f in finished if f.timeframe.name == tf]
        assert [f.bar.time for f in items] == list(frame.index)
        positions = config.positions(frame)
        assert [f.position for f in items] == list(positions)
        assert [f.previous for f in items] == [0, *positions[:-1]]
        last = items[-1]
        assert last.source == "live" and last.values.keys() == set(config.columns)
        assert last.values == pytest.approx(frame.iloc[-1][list(config.columns)].to_dict())


def test_bars_the_feed_did_not_cover_come_from_history(one_minute):
    live = LiveBars("AAPL", ["1m", "5m"], configure("MACD", {}))
    before = one_minute[one_minute.index < at("2026-10-30 10:00")]
    for tf in ("1m", "5m"):
        live.add_history(tf, aggregate(before, tf))
    # The feed starts half way through 10:02: that bar (and 10:00, 10:01) must come from
    # history; 10:03 is live.
    feed(live, one_minute.loc[at("2026-10-30 10:02") : at("2026-10-30 10:02")], 30)
    done, gaps = feed(live, one_minute.loc[at("2026-10-30 10:03") : at("2026-10-30 10:03")])
    assert done == [] and gaps == {"1m": at("2026-10-30 10:02")}
    added = live.add_history("1m", aggregate(one_minute, "1m"), through=gaps["1m"])
    assert [f"{f.bar.time:%H:%M}" for f in added] == ["10:00", "10:01", "10:02"]
    assert {f.source for f in added} == {"history"}
    done, gaps = feed(live, one_minute.loc[at("2026-10-30 10:04") : at("2026-10-30 10:05")])
    assert [(f.timeframe.name, f"{f.bar.time:%H:%M}", f.source) for f in done] == [
        ("1m", "10:03", "live"),
        ("1m", "10:04", "live"),
    ]
    assert gaps == {"5m": at("2026-10-30 10:00")}  # its first minutes were before the feed

    # A hole in the feed (bars 10:06-10:09 never arrived): the next bar needs history too.
    done, gaps = feed(live, one_minute.loc[at("2026-10-30 10:10") : at("2026-10-30 10:11")])
    assert gaps["1m"] == at("2026-10-30 10:10")

    # After a reconnect the feed restarts: a half-built bar is dropped, not finished.
    live.restart_feed()
    done, gaps = feed(live, one_minute.loc[at("2026-10-30 10:20") : at("2026-10-30 10:21")], 5)
    assert done == [] and gaps == {"1m": at("2026-10-30 10:20")}


def test_a_bar_is_finished_by_its_last_5_second_bar_so_the_sessions_last_bars_show(one_minute):
    """At the close no later input comes: the bars must not wait for the next session."""
    live = LiveBars("AAPL", ["1m", "5m"], configure("MACD", {}))
    before = one_minute[one_minute.index < at("2026-10-30 15:50")]
    for tf in ("1m", "5m"):
        live.add_history(tf, aggregate(before, tf))
    last = one_minute.loc[at("2026-10-30 15:50") :]
    feed(live, last.iloc[:1])  # the feed starts at 15:50:00
    feed(live, last.iloc[1:-1], 55)  # then each minute as its last 5-second bar
    done, gaps = feed(live, last.iloc[-1:], 55)  # 15:59:55, ending at the 16:00 close
    assert [(f.timeframe.name, f"{f.bar.time:%H:%M}", f.source) for f in done] == [
        ("1m", "15:59", "live"),
        ("5m", "15:55", "live"),
    ]
    assert gaps == {}
    pd.testing.assert_frame_equal(
        live.timeframes["1m"].frame()[OHLCV], aggregate(one_minute, "1m"), check_freq=False
    )


def test_the_close_finishes_bars_built_from_trades(one_minute):
    live = LiveBars("AAPL", ["1m", "5m"], configure("MACD", {}))
    before = one_minute[one_minute.index < at("2026-10-30 15:55")]
    for tf in ("1m", "5m"):
        live.add_history(tf, aggregate(before, tf))
    finished = []
    for time, row in one_minute.loc[at("2026-10-30 15:55") :].iterrows():
        start = time.timestamp()  # a trade at the open, the high, the low and the close
        for offset, price in ((0, row.open), (10, row.high), (20, row.low), (50, row.close)):
            finished += live.add_trade(start + offset, price, row.volume / 4)[0]
    assert f"{finished[-1].bar.time:%H:%M}" == "15:58"  # a trade finishes no bar of its own
    done, gaps = live.close(at("2026-10-30 16:00").timestamp())
    assert [(f.timeframe.name, f"{f.bar.time:%H:%M}") for f in done] == [
        ("1m", "15:59"),
        ("5m", "15:55"),
    ]
    assert gaps == {}
    pd.testing.assert_frame_equal(
        live.timeframes["5m"].frame()[OHLCV], aggregate(one_minute, "5m"), check_freq=False
    )


def trades(live: LiveBars, bars: pd.DataFrame, first_second: int = 0):
    """Each 1-minute bar as trades at its open, high, low and close (those before
    ``first_second`` into the first minute left out: the feed began there). Returns the
    bars finished and the first gap of each timeframe."""
    finished, gaps = [], {}
    for k, (time, row) in enumerate(bars.iterrows()):
        start = time.timestamp()
        for offset, price in ((0, row.open), (10, row.high), (20, row.low), (50, row.close)):
            if k == 0 and offset < first_second:
                continue
            done, missing = live.add_trade(start + offset, price, row.volume / 4)
            finished += done
            for name, time in missing.items():
                gaps.setdefault(name, time)
    return finished, gaps


@pytest.mark.parametrize("today", [True, False])
def test_delayed_datas_first_tick_from_the_last_session_is_not_a_gap(one_minute, today):
    """Delayed data (15 minutes behind) starts with the last trade it knows: early in a
    session, the previous one's 15:59:55, whose bar the history holds. It is neither asked
    for again nor taken as the feed's start. The feed then begins 40 seconds into 09:30: a
    bar the history holds is not asked for (a span ending before our last bar), one it does
    not hold comes from history, as the feed saw only part of it."""
    live = LiveBars("AAPL", ["1m", "5m"], configure("MACD", {}))
    # Today: 1m history through 09:34, 5m through the previous session (09:30 is not over);
    # else both through the previous session.
    ends = {"1m": at("2026-10-30 09:35"), "5m": at("2026-10-30 09:30")}
    for tf in ("1m", "5m"):
        end = ends[tf] if today else at("2026-10-30 09:30")
        live.add_history(tf, aggregate(one_minute[one_minute.index < end], tf))
    previous = one_minute.loc[: at("2026-10-29 16:00")].iloc[-1]
    done, gaps = live.add_trade(at("2026-10-29 15:59:55").timestamp(), previous.close, 100.0)
    assert (done, gaps, live.live_since) == ([], {}, float("inf"))
    done, gaps = trades(live, one_minute.loc[at("2026-10-30 09:30") : at("2026-10-30 09:45")], 40)
    assert {f.source for f in done} == {"live"}
    first_live = {tf: min(f.bar.time for f in done if f.timeframe.name == tf) for tf in ends}
    if today:  # 1m holds 09:30-09:34 already: no gap there, 09:35 is the first live bar
        assert gaps == {"5m": at("2026-10-30 09:30")}
        assert first_live == {"1m": at("2026-10-30 09:35"), "5m": at("2026-10-30 09:35")}
    else:  # 09:30 was half seen: history through it, then live
        assert gaps == {"1m": at("2026-10-30 09:30"), "5m": at("2026-10-30 09:30")}
        assert first_live == {"1m": at("2026-10-30 09:31"), "5m": at("2026-10-30 09:35")}
