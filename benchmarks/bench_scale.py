"""Backtests at scale: whole ``run_backtest`` processes on many symbols and long histories.

    python benchmarks/bench_scale.py [--runs 3] [--quick] [--case TEXT] [--jobs N] [--no-peer]

Every figure is a whole process, from start to exit with the results cache written, as a
user runs it: ``python -m quant_trading.backtesting.run_backtest --timeframe 5m --data-dir D
--symbols ...``. The table has one row per case:

* 10, 50 and 200 symbols of two years of 5-minute bars;
* one symbol of 1, 2, 5 and 10 years of 5-minute bars, and of 2 and 10 years of 1-minute
  bars, every bar traded (``--start`` at the first day), to see the cost per bar hold with
  the length;
* a start-up row (one symbol, one week of 5m), the fixed cost every run pays.

Columns: the median wall time of ``--runs`` runs after one that fills the parsed-bars cache
(``<data>/.qt_cache``, timed apart as "first"), the peak memory of the whole process tree
("tree MB": the sum of the proportional set sizes of the process and its worker processes,
sampled from /proc every 20 ms, so pages a forked worker shares with its parent count once;
elsewhere the largest single process), the peak resident size of the largest single process
("max RSS", MB, what ``/usr/bin/time -v`` shows), the results cache written (MB) and the
parsed-bars cache the first run wrote, bars per second, and microseconds per bar above the
start-up row's time (the work that grows with the bars).

Then the same MACD(12,26,9) cross, long/short, next-open fills and IBKR commission written
with backtesting.py (TA-Lib's MACD, which ours equals to 1e-9, ``exclusive_orders``, a
commission function with IBKR's minimum and cap, all equity per entry) on the 10-symbol
case, also as whole processes, with the ratio and both trade counts (the sizing differs
slightly where the $1 minimum applies; see the README).

The data comes from the bundled generator (:mod:`quant_trading.sample_data`) into
``<tmp>/quant_trading_bench/`` (``--data-root``), one folder per set of parameters, made once
and reused by later runs. Generating the 200 symbols takes a few minutes the first time.
Times on a shared machine are noisy: compare rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULE = "quant_trading.backtesting.run_backtest"
END = "2026-10-30"
SEED = 7


@dataclass(frozen=True)
class DataSet:
    """Generated bars: ``symbols`` of ``years`` of 5m bars, with 1m bars for ``minute_days``
    sessions (the generator's 1m files)."""

    symbols: int
    years: float
    minute_days: int = 1

    @property
    def names(self) -> list[str]:
        return [f"S{i:03d}" for i in range(self.symbols)]


@dataclass(frozen=True)
class Case:
    label: str
    data: DataSet
    symbols: int
    timeframe: str = "5m"
    whole: bool = False  # trade every bar (--start at the first day), not the last two years


TWO_YEARS = DataSet(200, 2)
CASES = [
    Case("start-up: 1 x 1 week 5m", DataSet(1, 7 / 365.25), 1, whole=True),
    Case("10 symbols x 2y 5m", TWO_YEARS, 10),
    Case("50 symbols x 2y 5m", TWO_YEARS, 50),
    Case("200 symbols x 2y 5m", TWO_YEARS, 200),
    Case("1 symbol x 1y 5m", DataSet(1, 1), 1, whole=True),
    Case("1 symbol x 2y 5m", DataSet(1, 2), 1, whole=True),
    Case("1 symbol x 5y 5m", DataSet(1, 5), 1, whole=True),
    Case("1 symbol x 10y 5m", DataSet(1, 10), 1, whole=True),
    Case("1 symbol x 2y 1m", DataSet(1, 2, minute_days=504), 1, "1m", whole=True),
    Case("1 symbol x 10y 1m", DataSet(1, 10, minute_days=2516), 1, "1m", whole=True),
]
QUICK = {"start-up: 1 x 1 week 5m", "10 symbols x 2y 5m", "1 symbol x 10y 5m", "1 symbol x 2y 1m"}
PEER_CASE = "10 symbols x 2y 5m"


# -- data ------------------------------------------------------------------------------------


def data_folder(root: Path, data: DataSet) -> Path:
    """The folder holding ``data``, generated on first use (a marker file says it is whole)."""
    generator = (REPO / "quant_trading" / "sample_data.py").read_bytes()
    key = hashlib.sha256(
        json.dumps([data.symbols, data.years, data.minute_days, END, SEED]).encode() + generator
    ).hexdigest()[:12]
    folder = root / f"{data.symbols}x{data.years:g}y-{key}"
    if (folder / ".complete").exists():
        return folder
    print(f"generating {data.symbols} symbol(s) x {data.years:g} years into {folder} ...",
          file=sys.stderr, flush=True)  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    names = data.names
    for i in range(0, len(names), 20):  # 20 at a time: 200 symbols' minutes at once are GBs
        # In a process of its own, so this one stays small: a child forked from a big
        # process would start with its memory counted.
        subprocess.run([sys.executable, "-m", "quant_trading.tools.make_sample_data",
                        "--output-dir", str(folder), "--years", repr(data.years),
                        "--minute-days", str(data.minute_days), "--seed", str(SEED),
                        "--end", END, "--symbols", *names[i : i + 20]],
                       check=True, stdout=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
    (folder / ".complete").write_text("")
    return folder


def file_rows(folder: Path, symbols: list[str], timeframe: str) -> int:
    """Bars in the symbols' files (lines less the header)."""
    total = 0
    for name in symbols:
        with open(folder / f"{name}_{timeframe}.csv", "rb") as handle:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        total -= 1
    return total


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


# -- measuring a process ---------------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    peak_bytes: int  # the process tree's memory (PSS sum)
    max_rss: int  # the largest single process's peak resident size
    stdout: str


def _tree_memory(root: int) -> int:
    """Bytes of memory of ``root`` and all its descendants, from /proc: the sum of their
    proportional set sizes (PSS: a page shared by n processes counts 1/n in each, so the
    modules a forked worker shares with its parent are not counted twice), or of their
    resident sizes where the kernel has no smaps_rollup."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    parents[int(entry.name)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except OSError:
                continue
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _process_memory(pid)
        stack += children.get(pid, [])
    return total


def _process_memory(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def measure(cmd: list[str], env: dict[str, str]) -> Measured:
    """Run ``cmd``; its wall time, the peak memory of its process tree, and its output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=env, cwd=REPO)
        peak, done = [0], threading.Event()
        if os.path.isdir("/proc"):

            def sample():
                while not done.wait(0.02):
                    peak[0] = max(peak[0], _tree_memory(process.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{stderr.decode()}")
        out.seek(0)
        # ru_maxrss: the largest single process of the tree (KiB on Linux), what
        # /usr/bin/time -v shows; without /proc also the tree's figure.
        max_rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        return Measured(seconds, peak[0] or max_rss, max_rss, out.read().decode())


# -- the cases -------------------------------------------------------------------------------


@dataclass
class Row:
    case: Case
    bars: int
    first: float
    times: list[float]
    peak_bytes: int
    max_rss: int
    results_bytes: int
    parsed_bytes: int
    trades: int

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_case(case: Case, root: Path, runs: int, jobs: str | None, env: dict) -> Row:
    folder = data_folder(root, case.data)
    symbols = case.data.names[: case.symbols]
    cmd = [sys.executable, "-m", MODULE, "--timeframe", case.timeframe, "--data-dir",
           str(folder), "--trades", "1", "--symbols", *symbols]  # fmt: skip
    if case.whole:
        cmd += ["--start", "1970-01-01"]
    if jobs:
        cmd += ["--jobs", jobs]
    shutil.rmtree(folder / ".qt_cache", ignore_errors=True)
    with tempfile.TemporaryDirectory() as results:
        first = measure([*cmd, "--cache-dir", results], env)
        parsed = folder_bytes(folder / ".qt_cache")
        times, peak, rss, written = [], first.peak_bytes, first.max_rss, 0
        for i in range(runs):
            target = Path(results) / str(i)
            got = measure([*cmd, "--cache-dir", str(target)], env)
            times.append(got.seconds)
            peak, rss = max(peak, got.peak_bytes), max(rss, got.max_rss)
            written = folder_bytes(target)
    trades = re.search(r"# Trades\s+([\d,]+)", first.stdout)
    return Row(case, file_rows(folder, symbols, case.timeframe), first.seconds, times, peak,
               rss, written, parsed,
               int(trades.group(1).replace(",", "")) if trades else 0)  # fmt: skip


# -- backtesting.py, the same strategy --------------------------------------------------------

PEER_SCRIPT = r"""
import sys, warnings
import numpy as np, pandas as pd, talib
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

warnings.filterwarnings("ignore")


def ibkr(size, price):  # USD 0.005 a share, at least USD 1.00, at most 1% of the value
    size = abs(size)
    return min(max(size * 0.005, 1.0), 0.01 * size * price)


class MacdCross(Strategy):
    def init(self):
        self.macd, self.signal, _ = self.I(talib.MACD, self.data.Close, 12, 26, 9)

    def next(self):
        if crossover(self.macd, self.signal):
            self.buy()  # exclusive_orders closes the short first
        elif crossover(self.signal, self.macd):
            self.sell()


folder, *symbols = sys.argv[1:]
trades = 0
for symbol in symbols:
    frame = pd.read_csv(f"{folder}/{symbol}_5m.csv")
    times = pd.to_datetime(frame.pop("time"), utc=True).dt.tz_convert("America/New_York")
    frame.index = times.dt.tz_localize(None)
    frame.columns = [c.title() for c in frame.columns]
    bt = Backtest(frame, MacdCross, cash=100_000, commission=ibkr, exclusive_orders=True,
                  finalize_trades=True)
    trades += bt.run()["# Trades"]
print(f"# Trades {trades}")
"""


def run_peer(root: Path, runs: int, env: dict) -> tuple[list[float], int] | None:
    # Looked up, not imported: this process stays small (see measure()).
    missing = [name for name in ("backtesting", "talib") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"backtesting.py comparison skipped: {', '.join(missing)} not installed "
              "(pip install -e '.[test]')")  # fmt: skip
        return None
    folder = data_folder(root, TWO_YEARS)
    cmd = [sys.executable, "-c", PEER_SCRIPT, str(folder), *TWO_YEARS.names[:10]]
    first = measure(cmd, env)
    times = [measure(cmd, env).seconds for _ in range(runs)]
    trades = re.search(r"# Trades (\d+)", first.stdout)
    return times, int(trades.group(1)) if trades else 0


# -- report ----------------------------------------------------------------------------------


def main() -> None:
    """Generate the data if needed, time every case, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per case (median)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only: {', '.join(sorted(QUICK))}; one timed run each")  # fmt: skip
    parser.add_argument("--case", action="append", metavar="TEXT",
                        help="only the cases whose label contains TEXT (repeatable), "
                        "e.g. --case '200 symbols'")  # fmt: skip
    parser.add_argument("--jobs", help="pass --jobs N to every run (default: its own choice)")
    parser.add_argument("--no-peer", action="store_true", help="skip backtesting.py")
    parser.add_argument("--data-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "quant_trading_bench")  # fmt: skip
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    cases = [c for c in CASES if c.label in QUICK] if args.quick else CASES
    if args.case:
        cases = [c for c in cases if any(text in c.label for text in args.case)]
        if not cases:
            parser.error(f"no case matches {args.case}")
    env = {**os.environ, "ACTIVE_STRATEGY": "MACD", "TQDM_DISABLE": "1"}
    env.pop("QT_JOBS_MIN_BARS", None)
    # As a user's Python does, the processes keep the modules' bytecode (written by the first
    # run): with PYTHONDONTWRITEBYTECODE set, every run would also time compiling them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    args.data_root.mkdir(parents=True, exist_ok=True)
    for case in cases:  # all data first, so generating does not disturb the timings
        data_folder(args.data_root, case.data)
    # One run first, so numba's disk cache is warm for every case.
    run_case(cases[0], args.data_root, 0, args.jobs, env)

    print(f"run_backtest, whole processes: median of {runs} run(s) after a first run that "
          f"fills the parsed-bars cache; {os.cpu_count()} core(s), --jobs "
          f"{args.jobs or 'default'}\n")  # fmt: skip
    head = (f"{'case':<26} {'bars':>10} {'first s':>8} {'median s':>9} {'tree MB':>8} "
            f"{'max RSS':>8} {'results MB':>10} {'parsed MB':>9} {'bars/s':>11} "
            f"{'us/bar net':>10}")  # fmt: skip
    print(head)
    print("-" * len(head))
    rows, startup = {}, None
    for case in cases:
        row = run_case(case, args.data_root, runs, args.jobs, env)
        rows[case.label] = row
        if case is CASES[0]:
            startup = row.median
        net = (row.median - startup) / row.bars * 1e6 if row.bars and startup else float("nan")
        print(f"{case.label:<26} {row.bars:>10,} {row.first:>8.2f} {row.median:>9.2f} "
              f"{row.peak_bytes / 2**20:>8,.0f} {row.max_rss / 2**20:>8,.0f} "
              f"{row.results_bytes / 1e6:>10,.1f} "
              f"{row.parsed_bytes / 1e6:>9,.1f} {row.bars / row.median:>11,.0f} "
              f"{net:>10.2f}", flush=True)  # fmt: skip

    if args.no_peer or PEER_CASE not in rows:
        return
    peer = run_peer(args.data_root, runs, env)
    if peer is None:
        return
    times, trades = peer
    ours = rows[PEER_CASE]
    theirs = statistics.median(times)
    print(f"\n{PEER_CASE}, MACD cross long/short, next-open fills, IBKR commission, whole "
          "processes:")  # fmt: skip
    print(f"  quant_trading (cache written) {ours.median:>7.2f} s  {ours.trades:>7,} trades")
    print(f"  backtesting.py                {theirs:>7.2f} s  {trades:>7,} trades")
    print(f"  backtesting.py / quant_trading: {theirs / ours.median:.1f}x")


if __name__ == "__main__":
    main()
