"""Throughput of the shared core on two years of 1-minute bars, next to the reference tools.

    python benchmarks/bench_core.py [--repeat 7]

Prints one table: batch MACD, SMA, EMA and RSI (vs TA-Lib's C functions), incremental MACD,
a strategy run bar by bar as the live tracker runs it (the last day of bars after a year of
history), batch aggregation to 3/5/10-minute bars (vs pandas ``resample``) and streaming
aggregation per trade (vs pandas ``resample`` over the same trades). Times are the best of
``--repeat`` runs on one core; ratio = ours / reference (below 1 means faster). Needs the test
extras (TA-Lib).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import talib

from quant_trading.bars import BarAggregator, aggregate
from quant_trading.indicators import EMA, RSI, SMA
from quant_trading.macd import MacdState, macd
from quant_trading.strategy import configure

TZ = "America/New_York"
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def two_years_of_minutes(seed: int = 1) -> pd.DataFrame:
    """~196k regular-session 1-minute bars (504 weekdays x 390), seeded random walk."""
    days = pd.bdate_range("2024-11-01", periods=504)
    minutes = np.arange(390) * 60_000_000_000
    opens = (days + pd.Timedelta(hours=9, minutes=30)).tz_localize(TZ).as_unit("ns").asi8
    index = pd.DatetimeIndex((opens[:, None] + minutes).ravel(), tz="UTC").tz_convert(TZ)
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0008, len(index))))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.0005, len(index))) * close
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(100, 10_000, len(index)).astype(float),
        },
        index=index.rename("time"),
    )


def best(func, repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in seconds (after one warm-up call)."""
    func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def resample(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    out = frame.resample(f"{minutes}min", label="left", closed="left").agg(AGG)
    return out.dropna(subset=["open"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--trades", type=int, default=1_000_000)
    args = parser.parse_args()

    bars = two_years_of_minutes()
    close = bars["close"].to_numpy()
    n = len(bars)
    rows = []

    ours = best(lambda: macd(close), args.repeat)
    ref = best(lambda: talib.MACD(close, 12, 26, 9), args.repeat)
    rows.append(("batch MACD(12,26,9)", n, ours, "TA-Lib MACD", ref))

    data = {"close": close}
    for indicator, reference in (
        (SMA(30), lambda: talib.SMA(close, 30)),
        (EMA(30), lambda: talib.EMA(close, 30)),
        (RSI(14), lambda: talib.RSI(close, 14)),
    ):
        ours = best(lambda i=indicator: i.compute(data), args.repeat)
        ref = best(reference, args.repeat)
        label = indicator.lines[0].label
        rows.append((f"batch {label}", n, ours, f"TA-Lib {type(indicator).__name__}", ref))

    def incremental():
        update = MacdState().update
        for value in close.tolist():
            update(value)

    ours = best(incremental, max(1, args.repeat // 3))
    rows.append(("incremental MACD, per close", n, ours, "", None))

    # The live tracker's cost per finished bar: indicators updated and positions decided
    # over the history so far (a year of 5m bars before, then a day of bars).
    five = aggregate(bars, "5m")
    history, day = five.iloc[: len(five) // 2], list(five.iloc[len(five) // 2 :][:78].itertuples())
    config = configure("MACD", {})

    def live_day():
        stream = config.stream()
        for bar in history.itertuples():
            stream.update(bar)
        start = time.perf_counter()
        for bar in day:
            stream.update(bar)
        return time.perf_counter() - start

    per_bar = min(live_day() for _ in range(3)) / len(day)
    rows.append(("MACD strategy stream, per bar", 1, per_bar, "", None))

    for minutes in (3, 5, 10):
        ours = best(lambda m=minutes: aggregate(bars, f"{m}m"), args.repeat)
        ref = best(lambda m=minutes: resample(bars, m), args.repeat)
        rows.append((f"batch 1m -> {minutes}m bars", n, ours, "pandas resample", ref))

    rng = np.random.default_rng(2)
    start = bars.index[0].timestamp()
    times = start + np.sort(rng.uniform(0, 6.5 * 3600 * 20, args.trades)).round(3)
    prices = 100 + np.cumsum(rng.normal(0, 0.01, args.trades))
    sizes = rng.integers(1, 500, args.trades).astype(float)
    trades = pd.DataFrame(
        {"open": prices, "high": prices, "low": prices, "close": prices, "volume": sizes},
        index=pd.to_datetime(times, unit="s", utc=True).tz_convert(TZ),
    )
    feed = list(zip(times.tolist(), prices.tolist(), sizes.tolist()))

    def stream():
        add = BarAggregator("1m").add_trade
        for t, p, s in feed:
            add(t, p, s)

    ours = best(stream, max(1, args.repeat // 3))
    ref = best(lambda: resample(trades, 1), max(1, args.repeat // 3))
    rows.append(("streaming trades -> 1m bars", args.trades, ours, "pandas resample", ref))

    print(f"Shared core on {n:,} one-minute bars (two years of RTH); best of {args.repeat} runs\n")
    line = "{:<30} {:>9} {:>9} {:>12}  {:<16} {:>8} {:>6}"
    header = line.format("task", "items", "ours ms", "items/s", "reference", "ref ms", "ratio")
    print(header)
    print("-" * len(header))
    for task, items, ours, ref_name, ref in rows:
        ratio = f"{ours / ref:6.2f}" if ref else ""
        ref_ms = f"{ref * 1e3:8.2f}" if ref else ""
        print(
            line.format(
                task,
                f"{items:,}",
                f"{ours * 1e3:.2f}",
                f"{items / ours:,.0f}",
                ref_name,
                ref_ms.strip(),
                ratio.strip(),
            )
        )
    print("\nratio = ours / reference; below 1.00 means ours is faster.")


if __name__ == "__main__":
    main()
