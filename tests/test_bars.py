"""Bar aggregation: batch == streaming == pandas resample; clock alignment; no empty bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_trading.bars import OHLCV, BarAggregator, aggregate, bars_to_frame, with_macd
from quant_trading.csv_store import read_bars
from quant_trading.macd import macd

TZ = "America/New_York"
REAL_MINUTE_FILES = [
    "lumibot/AAPL_Minute.csv",
    "lumibot/MSFT_Minute.csv",
    "lumibot/TSLA_Minute.csv",
    "lumibot/AMZN_1M.CSV",
    "lumibot/UPRO_Minute.csv",
    "lumibot/spy_test.csv",
    "mplfinance/SP500_NOV2019_IDay.csv",
]


def minute_bars(days: int = 5, seed: int = 0, drop: float = 0.1) -> pd.DataFrame:
    """Random RTH 1-minute bars over ``days`` sessions around a DST change, with holes."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range("2024-03-06", periods=days)
    index = pd.DatetimeIndex(
        [t for d in sessions for t in pd.date_range(f"{d.date()} 09:30", periods=390, freq="1min")]
    ).tz_localize(TZ)
    keep = rng.random(len(index)) > drop
    n = int(keep.sum())
    close = 100 + np.cumsum(rng.normal(0, 0.05, n))
    open_ = close + rng.normal(0, 0.02, n)
    high = np.maximum(open_, close) + rng.uniform(0, 0.05, n)
    low = np.minimum(open_, close) - rng.uniform(0, 0.05, n)
    volume = rng.integers(0, 5_000, n).astype(float)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index[keep].rename("time").as_unit("ns"),
    )


def stream_bars(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    aggregator = BarAggregator(timeframe)
    finished = []
    times = bars.index.as_unit("ns").asi8 / 1e9
    for t, row in zip(times, bars[OHLCV].itertuples(index=False)):
        bar = aggregator.add_bar(t, *row)
        if bar is not None:
            finished.append(bar)
    last = aggregator.flush()
    if last is not None:
        finished.append(last)
    return bars_to_frame(finished)


def resampled(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Independent reference: pandas resample with start labels, empty bins dropped."""
    rule = {"m": "min", "h": "h", "d": "D"}[timeframe[-1]]
    out = bars.resample(f"{timeframe[:-1]}{rule}", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = bars["close"].resample(f"{timeframe[:-1]}{rule}").count()
    return out[counts > 0]


@pytest.mark.parametrize("timeframe", ["1m", "3m", "5m", "10m", "15m", "30m", "1h", "1d"])
def test_batch_equals_resample_and_streaming_on_generated_data(timeframe):
    bars = minute_bars(seed=len(timeframe))
    batch = aggregate(bars, timeframe)
    pd.testing.assert_frame_equal(batch, resampled(bars, timeframe), check_freq=False)
    pd.testing.assert_frame_equal(stream_bars(bars, timeframe), batch)


@pytest.mark.parametrize("name", REAL_MINUTE_FILES)
@pytest.mark.parametrize("timeframe", ["1m", "3m", "5m", "10m"])
def test_streaming_equals_batch_on_real_minute_data(shared_data, name, timeframe):
    bars = read_bars(shared_data / name)
    batch = aggregate(bars, timeframe)
    pd.testing.assert_frame_equal(stream_bars(bars, timeframe), batch)
    pd.testing.assert_frame_equal(batch, resampled(bars, timeframe), check_freq=False)


def test_trades_stream_into_the_same_bars_as_batch(shared_data):
    ticks = read_bars(shared_data / "backtrader" / "ticksample.csv")
    aggregator = BarAggregator("1m")
    finished = [
        bar
        for t, price, size in zip(ticks.index.asi8 / 1e9, ticks["close"], ticks["volume"])
        if (bar := aggregator.add_trade(t, price, size)) is not None
    ]
    finished.append(aggregator.flush())
    streamed = bars_to_frame(finished)
    trades_as_bars = ticks.assign(open=ticks.close, high=ticks.close, low=ticks.close)
    pd.testing.assert_frame_equal(streamed, aggregate(trades_as_bars, "1m"))
    assert list(streamed.index.strftime("%H:%M")) == ["20:57", "20:58", "20:59", "21:00"]


def test_random_trades_and_five_second_bars_agree_with_batch():
    rng = np.random.default_rng(11)
    start = pd.Timestamp("2024-11-01 09:30", tz=TZ).timestamp()
    times = start + np.sort(rng.uniform(0, 3 * 3600, 20_000)).round(3)
    prices = 50 + np.cumsum(rng.normal(0, 0.01, times.size))
    sizes = rng.integers(1, 500, times.size).astype(float)
    trades = pd.DataFrame(
        {"open": prices, "high": prices, "low": prices, "close": prices, "volume": sizes},
        index=pd.to_datetime(times, unit="s", utc=True).tz_convert(TZ).rename("time"),
    )
    five_sec = aggregate(trades, "5s")
    for timeframe in ("1m", "5m"):
        aggregator = BarAggregator(timeframe)
        bars = [b for t, p, s in zip(times, prices, sizes) if (b := aggregator.add_trade(t, p, s))]
        bars.append(aggregator.flush())
        expected = aggregate(trades, timeframe)
        pd.testing.assert_frame_equal(bars_to_frame(bars), expected)
        pd.testing.assert_frame_equal(stream_bars(five_sec, timeframe), expected)
        pd.testing.assert_frame_equal(aggregate(five_sec, timeframe), expected)


def test_bars_are_start_labelled_and_clock_aligned_across_dst(shared_data):
    bars = read_bars(shared_data / "lumibot" / "UPRO_Minute.csv")  # crosses both DST changes
    for timeframe, minutes in (("5m", 5), ("10m", 10), ("30m", 30)):
        out = aggregate(bars, timeframe)
        assert (out.index.minute % minutes == 0).all() and (out.index.second == 0).all()
        assert out.index.is_unique and out.index.is_monotonic_increasing
    hourly = aggregate(bars, "1h")
    assert (hourly.index.minute == 0).all()  # aligned to the New York clock, not UTC


def test_empty_bins_produce_no_bar():
    bars = minute_bars(days=1, drop=0.0)
    holes = bars.drop(bars.between_time("10:00", "10:09").index)
    out = aggregate(holes, "5m")
    assert "10:00" not in set(out.index.strftime("%H:%M")) and len(out) == 78 - 2
    first = out.iloc[0]
    window = holes.iloc[:5]
    assert (first.open, first.close) == (window.open.iloc[0], window.close.iloc[-1])
    assert (first.high, first.low) == (window.high.max(), window.low.min())
    assert first.volume == window.volume.sum()


def test_coarser_source_is_refused():
    bars = aggregate(minute_bars(days=1), "5m")
    with pytest.raises(ValueError, match="cannot build 3m bars"):
        aggregate(bars, "3m")
    with pytest.raises(ValueError, match="cannot align"):
        aggregate(bars, "7m")


def test_streaming_emits_each_bar_once_and_drops_late_input():
    aggregator = BarAggregator("1m")
    t0 = pd.Timestamp("2024-11-01 09:30", tz=TZ).timestamp()
    assert aggregator.add_trade(t0 + 1, 10.0, 100) is None
    assert aggregator.add_trade(t0 + 59, 11.0, 50) is None
    assert aggregator.flush(now=t0 + 59.9) is None  # clock not past the bar's end yet
    bar = aggregator.flush(now=t0 + 60)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.0, 11.0, 10.0, 11.0, 150)
    assert bar.time == pd.Timestamp("2024-11-01 09:30", tz=TZ)
    assert aggregator.flush(now=t0 + 120) is None  # nothing open: nothing emitted twice
    assert aggregator.add_trade(t0 + 30, 12.0, 1) is None  # late: its bar was already sent
    assert aggregator.late == 1 and not aggregator.has_open_bar
    assert aggregator.add_trade(t0 + 61, 9.0, 5) is None
    assert aggregator.add_trade(t0 + 185, 9.5, 5).time == pd.Timestamp("2024-11-01 09:31", tz=TZ)


def test_with_macd_adds_the_core_columns():
    bars = minute_bars(days=1)
    out = with_macd(bars)
    expected = macd(bars["close"].to_numpy())
    np.testing.assert_array_equal(out["Hist"].to_numpy(), expected.hist)
    assert list(out.columns) == [*OHLCV, "MACD", "Signal", "Hist"] and "MACD" not in bars


def test_a_few_bars_on_any_grid_still_aggregate():
    bars = minute_bars(days=1).iloc[[0]]  # one bar: its "grid" is its own time of day
    assert len(aggregate(bars, "1m")) == 1 and len(aggregate(bars, "5m")) == 1
