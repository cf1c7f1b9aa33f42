"""Backtest speed: this engine next to backtesting.py, vectorbt and backtrader, like with like.

    python benchmarks/bench_backtest.py [--repeat 7] [--cli-runs 5]

All run the same MACD(12,26,9) long/short target (computed inside each timed run, by the
shared core), on the same two years of 5-minute bars (market_data/AAPL_5m.csv), 100 shares
per entry, fills at the next bar's open, no commission, so each must end with the same
equity; the script checks that before printing. Two groups, each timed against our own
figure for the same work:

* engine only: fills, positions and the equity per bar (our ``simulate``; vectorbt's
  ``Portfolio.from_orders``; backtrader's ``cerebro.run`` without analyzers). backtesting.py
  has no run without its statistics, so it appears in the second group only;
* with statistics: the above plus a trades table and the performance statistics (ours:
  ``simulate`` + trades + ``compute_statistics``, what the CLI does per symbol; backtesting.py's
  ``Backtest.run``; vectorbt's ``Portfolio.stats()``; backtrader with its TradeAnalyzer,
  DrawDown, SharpeRatio and Returns analyzers).

In-process times are the best of ``--repeat`` runs after one warm-up run (backtesting.py and
backtrader: of 3, they are slow), so vectorbt's JIT compile is not counted. Then the CLI itself:
a 10-symbol two-year 5m run, from process start to exit with the cache written, the median
of ``--cli-runs`` whole-process runs (after one that warms numba's disk cache).

vectorbt and backtrader are optional (``pip install -e '.[test,bench]'``); a peer that is not
installed is listed as such.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from quant_trading.backtesting.engine import Costs, Sizing, simulate
from quant_trading.backtesting.statistics import compute_statistics
from quant_trading.csv_store import read_bars
from quant_trading.macd import macd
from strategies.macd import positions as macd_positions

REPO = Path(__file__).resolve().parent.parent
PARAMS = {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}
SIZE = 100
CASH = 1_000_000.0
SLOW_PEERS_REPEAT = 3
warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar is not its engine


def positions(close):
    """The MACD strategy's target for these closes (its own rule over the core's MACD)."""
    return macd_positions({"Hist": macd(close).hist}, PARAMS)


def best(func: Callable[[], float], repeat: int) -> tuple[float, float]:
    """(best seconds of ``repeat`` runs after a warm-up run, final equity)."""
    equity = func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        equity = func()
        times.append(time.perf_counter() - start)
    return min(times), equity


# -- engine only -----------------------------------------------------------------------------


def _simulate(bars: pd.DataFrame):
    no_cost, size = Costs(commission_per_share=0), Sizing(fixed_shares=SIZE)
    return simulate(bars, positions(bars["close"]), capital=CASH, costs=no_cost, sizing=size)


def ours(bars: pd.DataFrame) -> float:
    """Our engine: fills, positions and equity per bar (the trades table is built lazily)."""
    return float(_simulate(bars).equity[-1])


def _vectorbt_portfolio(bars: pd.DataFrame):
    import vectorbt as vbt

    target = positions(bars["close"]).astype(float) * SIZE
    # The target decided at bar t's close is ordered at bar t+1's open. Plain arrays: with a
    # time-zone-aware index vectorbt is several times slower, and it needs none here.
    size = np.r_[np.nan, target[:-1]]
    return vbt.Portfolio.from_orders(bars["close"].to_numpy(), size, size_type="targetamount",
                                     price=bars["open"].to_numpy(), init_cash=CASH, fees=0.0,
                                     freq="5min")  # fmt: skip


def vectorbt_engine(bars: pd.DataFrame) -> float:
    return float(_vectorbt_portfolio(bars).final_value())


def _backtrader(bars: pd.DataFrame, analyzers: bool) -> float:
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
    if analyzers:
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer)
        cerebro.addanalyzer(bt.analyzers.DrawDown)
        cerebro.addanalyzer(bt.analyzers.SharpeRatio, timeframe=bt.TimeFrame.Days)
        cerebro.addanalyzer(bt.analyzers.Returns)
    strategy = cerebro.run()[0]
    if analyzers:
        for analyzer in strategy.analyzers:
            analyzer.get_analysis()
    # backtrader leaves the last position open, marked at the last close like the others.
    return float(cerebro.broker.getvalue())


def backtrader_engine(bars: pd.DataFrame) -> float:
    return _backtrader(bars, analyzers=False)


# -- with statistics -------------------------------------------------------------------------


def ours_with_statistics(bars: pd.DataFrame) -> float:
    """What the CLI does per symbol after loading: engine, trades table and statistics."""
    sim = _simulate(bars)
    equity = pd.Series(sim.equity, index=bars.index)
    compute_statistics(equity, sim.trades, bars["close"], CASH, sim.position)
    return float(sim.equity[-1])


def backtesting_py(bars: pd.DataFrame) -> float:
    import backtesting

    class Follow(backtesting.Strategy):
        def init(self):
            self.target = self.I(lambda c: positions(c).astype(float), self.data.Close)

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
    stats = bt.run()
    # backtesting.py closes the final position at the last bar's open; add back the
    # difference to the last close so the equities are comparable (see the tests).
    last = stats._trades.iloc[-1]
    return float(stats["Equity Final [$]"] + last.Size * (bars.close.iloc[-1] - last.ExitPrice))


def vectorbt_with_statistics(bars: pd.DataFrame) -> float:
    portfolio = _vectorbt_portfolio(bars)
    portfolio.stats()
    return float(portfolio.final_value())


def backtrader_with_statistics(bars: pd.DataFrame) -> float:
    return _backtrader(bars, analyzers=True)


GROUPS = {
    "Engine only (fills, positions, equity per bar)": [
        ("quant_trading", ours, False),
        ("vectorbt (warm)", vectorbt_engine, False),
        ("backtrader", backtrader_engine, True),
    ],
    "With a trades table and statistics": [
        ("quant_trading", ours_with_statistics, False),
        ("vectorbt (warm)", vectorbt_with_statistics, False),
        ("backtesting.py", backtesting_py, True),
        ("backtrader", backtrader_with_statistics, True),
    ],
}


def cli_runs(runs: int, symbols: int = 10) -> list[tuple[str, list[float]]]:
    """Seconds of whole ``run_backtest`` processes on ``symbols`` two-year 5m files with the
    cache written, ``runs`` times per ``--jobs`` setting."""
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
        # As a user's Python does, the processes keep the modules' bytecode (written by the first
        # run): with PYTHONDONTWRITEBYTECODE set, every run would also time compiling them.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm numba's disk cache
        out = []
        for jobs in ("1", "2"):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                subprocess.run([*cmd, "--jobs", jobs], check=True, capture_output=True, env=env)
                times.append(time.perf_counter() - start)
            out.append((jobs, times))
        return out


def main() -> None:
    """Time every engine, check they agree, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="in-process runs (best taken)")
    parser.add_argument("--cli-runs", type=int, default=5, help="CLI processes (median taken)")
    args = parser.parse_args()
    bars = read_bars(REPO / "market_data" / "AAPL_5m.csv")
    print(f"MACD(12,26,9) long/short, {len(bars):,} 5-minute bars (two years), {SIZE} shares, "
          "next-open fills, no commission")  # fmt: skip
    print(f"Best of {args.repeat} runs (backtesting.py, backtrader: of {SLOW_PEERS_REPEAT}); "
          "'vs ours' = their time / ours for the same work\n")  # fmt: skip
    reference = None
    missing = set()
    for title, engines in GROUPS.items():
        print(title)
        print(f"{'engine':<18} {'seconds':>9} {'bars/s':>13} {'vs ours':>8}  final equity")
        print("-" * 70)
        ours_time = None
        for name, func, slow in engines:
            repeat = SLOW_PEERS_REPEAT if slow else args.repeat
            try:
                seconds, equity = best(lambda f=func: f(bars), repeat)
            except ImportError as exc:
                missing.add(exc.name or name)
                print(f"{name:<18} {'not installed':>23}")
                continue
            if ours_time is None:
                ours_time = seconds
            reference = equity if reference is None else reference
            same = (
                "same" if abs(equity - reference) < 0.01 else f"DIFFERS ({equity - reference:+.2f})"
            )
            print(f"{name:<18} {seconds:>9.4f} {len(bars) / seconds:>13,.0f} "
                  f"{seconds / ours_time:>7.1f}x  {equity:,.2f} {same}")  # fmt: skip
        print()
    if missing:
        print(f"Not installed: {', '.join(sorted(missing))} (pip install -e '.[test,bench]')\n")
    print("CLI: 10 symbols x two years of 5m bars, process start to exit with the cache written")
    for jobs, times in cli_runs(args.cli_runs):
        print(f"  --jobs {jobs}: median {statistics.median(times):.2f} s of {len(times)} runs "
              f"({min(times):.2f} .. {max(times):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
