"""Backtest speed: this engine next to backtesting.py, vectorbt and backtrader.

    python benchmarks/bench_backtest.py [--repeat 5]

All four run the same MACD(12,26,9) long/short target (computed once by the shared core),
on the same two years of 5-minute bars (market_data/AAPL_5m.csv), 100 shares per entry,
fills at the next bar's open, no commission, so each must end with the same equity; the
script checks that before printing. Times are the best of ``--repeat`` runs (backtrader and
backtesting.py: fewer, they are slow); vectorbt is timed warm, after its JIT compile.
Then the CLI itself: a 10-symbol two-year 5m run, process start to exit, cache written.

Needs: pip install backtesting vectorbt backtrader
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from quant_trading.backtesting.engine import Costs, Sizing, simulate
from quant_trading.csv_store import read_bars
from quant_trading.macd import macd
from strategies.macd import positions as macd_positions

REPO = Path(__file__).resolve().parent.parent
PARAMS = {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}


def positions(close):
    """The MACD strategy's target for these closes (its own rule over the core's MACD)."""
    return macd_positions({"Hist": macd(close).hist}, PARAMS)


SIZE = 100
CASH = 1_000_000.0
warnings.filterwarnings("ignore")


def best(func, repeat: int) -> tuple[float, object]:
    result = func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def ours(bars: pd.DataFrame) -> float:
    target = positions(bars["close"])
    sim = simulate(bars, target, capital=CASH, costs=Costs(commission_per_share=0),
                   sizing=Sizing(fixed_shares=SIZE))  # fmt: skip
    return float(sim.equity[-1])


def ours_full(bars: pd.DataFrame) -> float:
    """What the CLI does per symbol after loading: engine, trades table and statistics."""
    from quant_trading.backtesting.statistics import compute_statistics

    target = positions(bars["close"])
    sim = simulate(bars, target, capital=CASH, costs=Costs(commission_per_share=0),
                   sizing=Sizing(fixed_shares=SIZE))  # fmt: skip
    equity = pd.Series(sim.equity, index=bars.index)
    compute_statistics(equity, sim.trades, bars["close"], CASH, sim.position)
    return float(sim.equity[-1])


def with_backtesting_py(bars: pd.DataFrame) -> float:
    import backtesting

    class Follow(backtesting.Strategy):
        def init(self):
            self.target = self.I(
                lambda c: positions(c).astype(float),
                self.data.Close,
            )

        def next(self):
            want, have = int(self.target[-1]), int(np.sign(self.position.size))
            if want == have:
                return
            if want > 0:
                self.buy(size=SIZE)
            elif want < 0:
                self.sell(size=SIZE)
            else:
                self.position.close()

    frame = bars.rename(columns=str.title).tz_localize(None)
    bt = backtesting.Backtest(frame, Follow, cash=CASH, exclusive_orders=True,
                              finalize_trades=True)  # fmt: skip
    # backtesting.py closes the final position at the previous close; add back the
    # difference to the last close so the equities are comparable (see the test).
    stats = bt.run()
    last = stats._trades.iloc[-1]
    return float(stats["Equity Final [$]"] + last.Size * (bars.close.iloc[-1] - last.ExitPrice))


def with_vectorbt(bars: pd.DataFrame) -> float:
    import vectorbt as vbt

    target = positions(bars["close"]).astype(float) * SIZE
    # The target decided at bar t's close is ordered at bar t+1's open.
    size = np.r_[np.nan, target[:-1]]
    close = bars["close"].to_numpy()
    price = bars["open"].to_numpy()
    portfolio = vbt.Portfolio.from_orders(close, size, size_type="targetamount", price=price,
                                          init_cash=CASH, fees=0.0, freq="5min")  # fmt: skip
    return float(portfolio.final_value())


def with_backtrader(bars: pd.DataFrame) -> float:
    import backtrader as bt

    frame = bars.tz_localize(None).assign(target=positions(bars["close"]).astype(float))

    class Feed(bt.feeds.PandasData):
        lines = ("target",)
        params = (("target", -1),)

    class Follow(bt.Strategy):
        def next(self):
            want = int(self.data.target[0]) * SIZE
            if want != self.position.size:
                self.order_target_size(target=want)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(Feed(dataname=frame, openinterest=None))
    cerebro.addstrategy(Follow)
    cerebro.broker.setcash(CASH)
    cerebro.run()
    broker = cerebro.broker
    # backtrader leaves the last position open; mark it at the last close like the others.
    return float(broker.getvalue())


def cli_run(symbols: int = 10) -> float:
    """Seconds for `run_backtest` on ``symbols`` two-year 5m files, cache written."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        sources = sorted((REPO / "market_data").glob("*_5m.csv"))
        names = [f"S{i:02d}" for i in range(symbols)]
        for i, name in enumerate(names):
            shutil.copy(sources[i % len(sources)], data / f"{name}_5m.csv")
        cmd = [sys.executable, "-m", "quant_trading.backtesting.run_backtest", "--timeframe",
               "5m", "--data-dir", str(data), "--cache-dir", str(Path(tmp) / "cache"),
               "--symbols", *names]  # fmt: skip
        env = {**os.environ, "ACTIVE_STRATEGY": "MACD"}
        subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm numba's disk cache
        times = []
        for jobs in ("1", "2"):
            start = time.perf_counter()
            subprocess.run([*cmd, "--jobs", jobs], check=True, capture_output=True, env=env)
            times.append((jobs, time.perf_counter() - start))
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bars = read_bars(REPO / "market_data" / "AAPL_5m.csv")
    rows = [("quant_trading", *best(lambda: ours(bars), args.repeat))]
    for name, func, repeat in (
        ("+ trades, stats", ours_full, args.repeat),
        ("vectorbt (warm)", with_vectorbt, args.repeat),
        ("backtesting.py", with_backtesting_py, 1),
        ("backtrader", with_backtrader, 1),
    ):
        try:
            rows.append((name, *best(lambda f=func: f(bars), repeat)))
        except ImportError:
            rows.append((name, float("nan"), None))
    reference = rows[0][2]
    print(f"MACD(12,26,9) long/short, {len(bars):,} 5-minute bars (two years), {SIZE} shares, "
          "next-open fills, no commission\n")  # fmt: skip
    print(f"{'engine':<18} {'seconds':>9} {'bars/s':>13} {'vs ours':>8}  final equity")
    print("-" * 70)
    ours_time = rows[0][1]
    for name, seconds, equity in rows:
        if equity is None:
            print(f"{name:<18} {'not installed':>9}")
            continue
        same = "same" if abs(equity - reference) < 0.01 else f"DIFFERS ({equity - reference:+.2f})"
        print(f"{name:<18} {seconds:>9.4f} {len(bars) / seconds:>13,.0f} "
              f"{seconds / ours_time:>7.0f}x  {equity:,.2f} {same}")  # fmt: skip
    print("\n'vs ours' = their time / ours (how many times slower).")
    for jobs, seconds in cli_run():
        print(f"CLI: 10 symbols x two years of 5m bars, --jobs {jobs}, process start to exit "
              f"with cache written: {seconds:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
