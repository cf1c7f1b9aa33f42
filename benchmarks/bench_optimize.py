"""Parameter search speed: 1,000 MACD combinations with full statistics, ours next to
vectorbt's broadcast sweep and backtesting.py's ``optimize``.

    python benchmarks/bench_optimize.py [--repeat 5] [--vbt-repeat 1] [--bt-sample 12]

The combinations: fast 4..29, slow 10..78 step 2, signal 3..14, fast < slow, the first
1,000 in that order (fast varies slowest), long/short, on two years of 5-minute bars of one
symbol from the bundled generator (:mod:`quant_trading.sample_data`, made once into
``<tmp>/quant_trading_bench/``). Every peer fills at the next bar's open with all the
equity and no commission, and computes every statistic it has for every combination:

* ours: the optimizer's search (:class:`~quant_trading.backtesting.optimize._Search`, what
  ``optimize()`` runs per combination) and the ranked table, on one core. "warm" is the
  median of ``--repeat`` searches in one process, each with a new search (so every MACD
  line is computed again; only the compiled code is reused); "cold" is a new process with
  numba's disk cache filled, from the imports to the table; "first run" also compiles
  (an empty numba cache);
* vectorbt: ``vbt.MACD.run`` with the parameter lists (EWM MACD, pandas' definition, not
  TA-Lib's: the numbers differ slightly, the work is the same), crosses shifted one bar,
  ``Portfolio.from_signals(direction="both", price=open)``, then ``stats(agg_func=None)``
  (every statistic per combination); timed after a warm-up run, the median of
  ``--vbt-repeat``. The same without ``stats()`` is shown too;
* backtesting.py: ``Backtest.optimize`` over ``--bt-sample`` combinations of the same grid
  (one fast and slow, that many signal periods), in threads so one core works as for the
  others, scaled up to 1,000.

Times on a shared machine are noisy: compare rows of one run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SYMBOL = "S000"
END = "2026-10-30"
SEED = 7
COMBINATIONS = 1_000
CAPITAL = 100_000.0
warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")


def combinations() -> list[tuple[int, int, int]]:
    """(fast, slow, signal): the first 1,000 of the grid with fast < slow."""
    grid = [
        (fast, slow, signal)
        for fast in range(4, 30)
        for slow in range(10, 79, 2)
        for signal in range(3, 15)
        if fast < slow
    ]
    return grid[:COMBINATIONS]


def data_folder(root: Path) -> Path:
    """Two years of generated 5m bars of one symbol (made on first use)."""
    generator = (REPO / "quant_trading" / "sample_data.py").read_bytes()
    key = hashlib.sha256(json.dumps([SYMBOL, 2, END, SEED]).encode() + generator).hexdigest()
    folder = root / f"optimize-1x2y-{key[:12]}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "quant_trading.tools.make_sample_data",
                        "--output-dir", str(folder), "--years", "2", "--minute-days", "1",
                        "--seed", str(SEED), "--end", END, "--symbols", SYMBOL],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
        (folder / ".complete").write_text("")
    return folder


# -- ours ------------------------------------------------------------------------------------


def ours(folder: Path):
    """One search over the combinations, as optimize() runs it; the ranked table."""
    from quant_trading.backtesting.engine import Costs
    from quant_trading.backtesting.optimize import _load, _Search, _search_table, search_space
    from quant_trading.backtesting.runner import BacktestOptions
    from quant_trading.strategy import configure

    config = configure("MACD", {}, timeframe="5m", symbols=[SYMBOL], source="params")
    grid = {"FAST": "4:29", "SLOW": "10:78:2", "SIGNAL": "3:14"}
    space = search_space(config.strategy, config.params, grid)
    # No commission, as the peers.
    options = BacktestOptions(capital=CAPITAL, costs=Costs(commission_per_share=0.0))
    datas, _ = _load(config, str(folder), options)
    search = _Search(config, datas, options, tuple(space.values))
    combos = (space.complete(dict(zip(space.values, c))) for c in combinations())
    table, _, _ = _search_table(search, space, combos, COMBINATIONS, "grid", None, "sharpe",
                                True, 1, 1, False)  # fmt: skip
    return table


def ours_cold(folder: Path, cache_dir: Path | None) -> float:
    """Seconds of a new process from its imports to the table (``cache_dir``: numba's
    cache there, empty the first time)."""
    paths = [str(REPO), str(REPO / "benchmarks")]
    code = (
        f"import time; t = time.perf_counter(); import sys; sys.path[:0] = {paths!r}; "
        "from bench_optimize import ours; from pathlib import Path; "
        f"table = ours(Path({str(folder)!r})); assert len(table) == {COMBINATIONS}; "
        "print(time.perf_counter() - t)"
    )
    env = dict(os.environ)
    # As a user's Python does, the processes keep the modules' bytecode (written by the first
    # run): with PYTHONDONTWRITEBYTECODE set, every run would also time compiling them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=env, cwd=REPO)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


# -- vectorbt --------------------------------------------------------------------------------


def vectorbt(bars, with_stats: bool) -> int:
    import vectorbt as vbt

    fast, slow, signal = (list(x) for x in zip(*combinations()))
    close, open_ = bars["close"].to_numpy(), bars["open"].to_numpy()
    macd = vbt.MACD.run(close, fast_window=fast, slow_window=slow, signal_window=signal,
                        macd_ewm=True, signal_ewm=True)  # fmt: skip
    up = macd.macd_crossed_above(macd.signal).to_numpy()
    down = macd.macd_crossed_below(macd.signal).to_numpy()
    # Decided at bar t's close, filled at bar t+1's open.
    none = np.zeros((1, up.shape[1]), bool)
    up, down = np.vstack([none, up[:-1]]), np.vstack([none, down[:-1]])
    portfolio = vbt.Portfolio.from_signals(close[:, None], up, down, direction="both",
                                           price=open_[:, None], init_cash=CAPITAL,
                                           size=np.inf, freq="5min")  # fmt: skip
    if with_stats:
        return len(portfolio.stats(agg_func=None))
    return len(portfolio.total_return())


# -- backtesting.py --------------------------------------------------------------------------


def backtesting_py(bars, sample: int) -> float:
    """Seconds per combination of backtesting.py's optimize over ``sample`` of them."""
    import multiprocessing.dummy

    import backtesting
    from backtesting.lib import crossover

    from quant_trading.macd import macd

    class MacdCross(backtesting.Strategy):
        fast, slow, signal = 4, 10, 3

        def init(self):
            result = macd(self.data.Close, self.fast, self.slow, self.signal)
            self.line = self.I(lambda: result.macd)
            self.sig = self.I(lambda: result.signal)

        def next(self):
            if crossover(self.line, self.sig):
                self.position.close()
                self.buy()
            elif crossover(self.sig, self.line):
                self.position.close()
                self.sell()

    backtesting.Pool = multiprocessing.dummy.Pool  # threads: one core, as the others
    frame = bars.rename(columns=str.title).tz_localize(None)
    test = backtesting.Backtest(frame, MacdCross, cash=CAPITAL, finalize_trades=True)
    signals = list(range(3, 3 + sample))
    start = time.perf_counter()
    test.optimize(fast=[4], slow=[10], signal=signals, maximize="Sharpe Ratio")
    return (time.perf_counter() - start) / len(signals)


def median_time(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time every peer on the same combinations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="our warm searches (median)")
    parser.add_argument("--vbt-repeat", type=int, default=1, help="vectorbt runs after warm-up")
    parser.add_argument("--bt-sample", type=int, default=12, help="backtesting.py combinations")
    parser.add_argument("--data-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "quant_trading_bench")  # fmt: skip
    parser.add_argument("--no-peers", action="store_true", help="ours only")
    args = parser.parse_args()
    folder = data_folder(args.data_root)
    from quant_trading.csv_store import read_bars

    bars = read_bars(folder / f"{SYMBOL}_5m.csv")
    n = COMBINATIONS
    print(f"{n:,} MACD combinations (fast 4..29, slow 10..78 step 2, signal 3..14, fast < slow; "
          f"the first {n:,}), long/short, {len(bars):,} 5-minute bars (two years, generated), "
          "next-open fills, every statistic per combination, one core\n")  # fmt: skip
    with tempfile.TemporaryDirectory() as empty:
        first = ours_cold(folder, Path(empty))
    cold = ours_cold(folder, None)
    ours(folder)  # in this process: compile or load, then time
    warm = median_time(lambda: ours(folder), args.repeat)
    rows = [
        ("quant_trading, warm", warm, f"median of {args.repeat}"),
        ("quant_trading, cold", cold, "new process, numba cache filled"),
        ("quant_trading, first run", first, "new process, compiling"),
    ]
    if not args.no_peers:
        vectorbt(bars, True)  # warm-up: numba compiles
        rows.append(("vectorbt, warm", median_time(lambda: vectorbt(bars, True), args.vbt_repeat),
                     "MACD.run + from_signals + stats()"))  # fmt: skip
        rows.append(("vectorbt, warm, no stats",
                     median_time(lambda: vectorbt(bars, False), args.vbt_repeat),
                     "MACD.run + from_signals"))  # fmt: skip
        per = backtesting_py(bars, args.bt_sample)
        rows.append(
            ("backtesting.py", per * n, f"{args.bt_sample} run, x {n / args.bt_sample:.1f}")
        )
    print(f"{'':<28} {'seconds':>9} {'combos/s':>10} {'vs warm':>8}  note")
    print("-" * 90)
    for name, seconds, note in rows:
        print(f"{name:<28} {seconds:>9.2f} {n / seconds:>10,.0f} {seconds / warm:>7.1f}x  {note}")


if __name__ == "__main__":
    main()
