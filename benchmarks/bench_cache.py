"""Size and speed of one symbol's backtest cache file, schema 4 next to schema 2's layout.

    python benchmarks/bench_cache.py [--repeat 9]

Backtests MACD on the bundled AAPL 5-minute sample (the last year, and both years), then
writes its cache file as ``run_backtest`` does (atomically: temporary file, fsync, rename)
and reads it back with ``read_cache``, as the visualizer and the web chart do. The same
result is also written in schema 2's layout (every array a JSON list of numbers, built by
``tests/cache_layouts.py``), which ``read_cache`` still reads. Times are medians of
``--repeat`` runs, alternating the two layouts so both see the same machine load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the schema 2 layout lives with the tests

from cache_layouts import schema2_document  # noqa: E402

from quant_trading import backtest  # noqa: E402
from quant_trading.atomic import atomic_write  # noqa: E402
from quant_trading.backtesting.cache import read_cache, write_cache  # noqa: E402


def write_schema2(document: dict, path: Path) -> None:
    payload = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    with atomic_write(path, "wb") as handle:
        handle.write(payload)


def measure(start: str, repeat: int, folder: Path) -> dict[str, float]:
    run = backtest("MACD", "AAPL", "5m", data_dir=REPO / "market_data", start=start,
                   keep_series=True)  # fmt: skip
    result = run.results[0]
    new_path = write_cache(result, folder / "new")
    old_path = folder / "old" / "5m" / new_path.name
    document = schema2_document(read_cache(new_path))
    write_schema2(document, old_path)
    times: dict[str, list[float]] = {"old write": [], "new write": [], "old read": [],
                                     "new read": []}  # fmt: skip
    for _ in range(repeat):
        for name, action in (
            ("old write", lambda: write_schema2(document, old_path)),
            ("new write", lambda: write_cache(result, folder / "new")),
            ("old read", lambda: read_cache(old_path)),
            ("new read", lambda: read_cache(new_path)),
        ):
            began = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - began)
    out = {name: statistics.median(values) * 1000 for name, values in times.items()}
    out["bars"] = result.bar_count
    out["old size"] = old_path.stat().st_size / 1e6
    out["new size"] = new_path.stat().st_size / 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="runs of each (9)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, start in (("1 year", "2025-10-31"), ("2 years", None)):
            rows.append((label, measure(start, args.repeat, Path(folder))))
    print(f"One symbol's cache file, MACD on AAPL 5-minute bars; medians of {args.repeat}")
    print(f"{'':8} {'':>7}  {'schema 2 (JSON numbers)':^27}  {'schema 4 (packed)':^27}")
    print(f"{'Period':<8} {'Bars':>7}  {'size':>9} {'write':>8} {'read':>8}  "
          f"{'size':>9} {'write':>8} {'read':>8}")  # fmt: skip
    for label, m in rows:
        print(
            f"{label:<8} {m['bars']:>7,}  {m['old size']:>6.2f} MB {m['old write']:>5.1f} ms "
            f"{m['old read']:>5.1f} ms  {m['new size']:>6.2f} MB {m['new write']:>5.1f} ms "
            f"{m['new read']:>5.1f} ms"
        )


if __name__ == "__main__":
    main()
