"""The backtest cache as the visualizer and the web chart read it: schema 4 gives a run back
exactly (prices and equity bit for bit, trades and statistics exactly, indicator lines to 7
significant digits), a year of 5-minute bars fits in 1.2 MB, files of schemas 1, 2 and 3 still
open, and a run that fails or cannot write leaves the cache as it was."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from cache_layouts import write_schema1, write_schema2, write_schema3
from cli_runner import run_module

from quant_trading import backtest
from quant_trading.backtesting._packing import (
    pack_exact,
    pack_floats,
    pack_ints,
    pack_marked,
    pack_runs,
    pack_text,
    unpack,
)
from quant_trading.backtesting.cache import (
    SCHEMA,
    TRADE_COLUMNS,
    CacheError,
    CacheWriteError,
    read_cache,
)
from quant_trading.backtesting.runner import BacktestOptions, run_symbols
from quant_trading.bars import OHLCV
from quant_trading.csv_store import DataFileError, write_bars
from quant_trading.sample_data import generate_sample_data
from quant_trading.strategy import configure

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
MB = 1_000_000


def bits(values) -> np.ndarray:
    """The floats' bit patterns: equal only if every value is the very same float."""
    return np.asarray(values, np.float64).view(np.int64)


def same_statistics(a, b) -> bool:
    def equal(x, y):
        return x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))

    return all(equal(x, b.as_dict()[k]) for k, x in a.as_dict().items())


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    if not (SAMPLE / "AAPL_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    cache = tmp_path_factory.mktemp("cache")
    run = backtest("MACD", ["AAPL", "SPY"], "5m", data_dir=SAMPLE, start="2026-06-01",
                   cache_dir=cache)  # fmt: skip
    return run, cache


def test_a_cache_gives_the_run_back_exactly(sample_run):
    run, cache = sample_run
    assert [p.name for p in run.cache_files] == ["AAPL_backtest.json", "SPY_backtest.json"]
    for result in run.results:
        path = cache / "5m" / f"{result.symbol}_backtest.json"
        doc = orjson.loads(path.read_bytes())
        assert doc["schema"] == SCHEMA == "quant_trading.backtest/4"
        assert doc["candles"]["columns"]["equity"]["codec"] == "marked"
        cached = read_cache(path)
        candles = cached.candles
        assert candles.index.equals(result.candles.index)
        assert list(candles.columns) == [*OHLCV, "MACD", "Signal", "Hist", "equity", "position"]
        for column in OHLCV:  # the very floats the data file gave
            np.testing.assert_array_equal(bits(candles[column]), bits(result.candles[column]))
        np.testing.assert_array_equal(bits(candles["equity"]), bits(result.equity))
        np.testing.assert_array_equal(bits(candles["position"]), bits(result.position))
        for column in ("MACD", "Signal", "Hist"):  # 4-byte floats: 7 significant digits
            np.testing.assert_allclose(candles[column], result.candles[column], rtol=2**-24)
        assert len(cached.trades) == len(result.trades) > 10
        for column in TRADE_COLUMNS:
            mine, theirs = cached.trades[column], result.trades[column]
            if mine.dtype.kind == "f":
                np.testing.assert_array_equal(bits(mine), bits(theirs), err_msg=column)
            else:
                assert mine.astype(str).tolist() == theirs.astype(str).tolist(), column
        assert same_statistics(cached.statistics, result.statistics)
        assert cached.data["sha256"] == result.source.sha256
        assert cached.data["rows"] == result.source.rows


def test_a_cache_file_is_a_third_of_the_old_layout(sample_run, tmp_path):
    _, cache = sample_run
    path = cache / "5m" / "AAPL_backtest.json"
    old = write_schema2(read_cache(path), tmp_path / "5m" / "AAPL_backtest.json")
    assert path.stat().st_size < 0.4 * old.stat().st_size


def test_a_year_of_5_minute_bars_takes_at_most_1_2_mb(tmp_path):
    (year,) = generate_sample_data(["AAPL"], end="2026-10-30", years=1.0)
    write_bars(year.five_minute, tmp_path / "AAPL_5m.csv")
    run = backtest("MACD", "AAPL", "5m", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    (path,) = run.cache_files
    assert run.results[0].bar_count > 19_000  # a whole year of sessions
    assert path.stat().st_size <= 1.2 * MB, path.stat().st_size


# -- packing: lossless for prices whatever their decimals ------------------------------------


@pytest.mark.parametrize("decimals", [0, 1, 2, 3, 4, 6, 8])
def test_decimal_prices_come_back_bit_for_bit(decimals):
    rng = np.random.default_rng(decimals)
    walk = 150 * np.exp(np.cumsum(rng.normal(0, 0.002, 5_000)))
    prices = np.round(walk, decimals)
    prices[[10, 20]] = [np.round(prices[9] * 50, decimals), 0.0]  # steps too big to be narrow
    packed = pack_exact(prices)
    assert packed["codec"] == "int" and packed["decimals"] <= decimals
    np.testing.assert_array_equal(bits(unpack(orjson.loads(orjson.dumps(packed)), 5_000)),
                                  bits(prices))  # fmt: skip


def test_floats_that_are_no_decimals_are_kept_whole():
    rng = np.random.default_rng(1)
    noisy = np.round(rng.uniform(140, 150, 1_000), 2).astype(np.float32).astype(np.float64)
    cases = (noisy, rng.normal(size=1_000), np.r_[1.5, np.nan, 2.5], np.r_[1.0, np.inf],
             np.r_[1.0, -0.0])  # fmt: skip
    for values in cases:
        packed = pack_exact(values)
        assert packed["codec"] == "f8"
        np.testing.assert_array_equal(bits(unpack(packed, len(values))), bits(values))
    big = np.array([2.0**60, 1.0])  # an integer beyond what floats hold exactly
    np.testing.assert_array_equal(unpack(pack_exact(big), 2), big)


def test_later_values_with_more_decimals_still_come_back():
    values = np.r_[np.full(100, 101.25), 101.125, 0.0001]
    np.testing.assert_array_equal(bits(unpack(pack_exact(values), 102)), bits(values))


def test_integers_of_every_size_come_back():
    rng = np.random.default_rng(2)
    times = 1_700_000_000 + 300 * np.arange(2_000)
    times[500:] += 63_300  # an overnight gap
    cases = [
        times,
        np.array([], np.int64),
        np.array([7]),
        np.array([-(2**62), 2**62, 0]),
        rng.integers(-130, 130, 1_000),
        rng.integers(-40_000, 40_000, 1_000),
        rng.integers(1, 5_000_000, 1_000),  # volumes: better stored as they are than as steps
        np.r_[rng.integers(-100, 100, 1_000), 1 << 40, -(1 << 40)],
    ]
    for values in cases:
        packed = orjson.loads(orjson.dumps(pack_ints(values)))
        np.testing.assert_array_equal(unpack(packed, len(values)), values)
    assert pack_ints(times)["width"] == 1  # steps of one bar, apart from the gap


def test_indicator_lines_keep_seven_digits_and_levels_stay_exact():
    rng = np.random.default_rng(3)
    line = np.r_[np.full(33, np.nan), rng.normal(0, 0.5, 1_000)]
    packed = pack_floats(line)
    assert packed["codec"] == "f4"
    np.testing.assert_allclose(unpack(packed, len(line)), line, rtol=2**-24, equal_nan=True)
    level = np.round(rng.uniform(100, 110, 1_000), 2)  # a price level, e.g. a rolling high
    np.testing.assert_array_equal(bits(unpack(pack_floats(level), 1_000)), bits(level))


def test_positions_are_stored_as_runs():
    held = np.repeat([0.0, 120.0, -118.0, 0.0, 33.5], [50, 400, 300, 10, 240])
    packed = pack_runs(held)
    np.testing.assert_array_equal(bits(unpack(packed, len(held))), bits(held))
    assert len(orjson.dumps(packed)) < 200


def test_an_equity_curve_is_stored_as_its_cash_when_that_is_exact():
    """Equity marked to market (cash that changes at trades, plus shares x close) comes back
    bit for bit from the runs of its cash, in a fraction of the bytes; a column that is not
    that is left to the other codecs."""
    rng = np.random.default_rng(5)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 5_000))), 2)
    shares = np.repeat([0.0, 731.0, -690.0, 0.0, 12.5], [100, 1_900, 1_500, 500, 1_000])
    cash = np.repeat(100_000 + np.cumsum(rng.normal(0, 500, 5)), [100, 1_900, 1_500, 500, 1_000])
    equity = cash + shares * close
    packed = pack_marked(equity, ("position", shares), ("close", close))
    assert packed["codec"] == "marked" and len(orjson.dumps(packed)) < 300
    columns = {"position": shares, "close": close}
    back = unpack(orjson.loads(orjson.dumps(packed)), 5_000, columns)
    np.testing.assert_array_equal(bits(back), bits(equity))
    noisy = equity + rng.normal(0, 1e-3, 5_000)  # no cash gives these back row after row
    assert pack_marked(noisy, ("position", shares), ("close", close)) is None
    with pytest.raises(ValueError, match="without its position and close"):
        unpack(packed, 5_000)


def test_the_writer_s_fragments_are_the_same_json_as_text():
    """The cache writer hands orjson its base64 as ready JSON (``fragments=True``): the very
    bytes the text gives, whatever the length (padding) and codec, outliers included."""
    rng = np.random.default_rng(4)
    prices = np.round(150 * np.exp(np.cumsum(rng.normal(0, 0.002, 1_001))), 2)
    prices[[7, 500]] = [prices[6] * 40, 0.0]  # outliers: "at" and "big" fields
    cases = [
        (pack_exact, prices),
        (pack_exact, rng.normal(size=1_000)),  # f8
        (pack_floats, np.r_[np.nan, rng.normal(size=998)]),  # f4
        (pack_ints, np.array([], np.int64)),
        (pack_ints, rng.integers(-(2**40), 2**40, 2)),
        (pack_runs, np.repeat([0.0, 12.0, -3.5], [5, 6, 7])),
        (pack_text, pd.Categorical(["long", "short", "long", "long"])),
        (pack_text, ["flip", "signal", "end of data"]),
    ]
    for pack, values in cases:
        assert orjson.dumps(pack(values, fragments=True)) == orjson.dumps(pack(values))
    for size in range(12):  # every remainder of 3 bytes, and none
        values = rng.integers(-100, 100, size)
        assert orjson.dumps(pack_ints(values, fragments=True)) == orjson.dumps(pack_ints(values))


def test_real_minute_prices_with_float_noise_round_trip(shared_data, tmp_path):
    """lumibot's files carry float32 noise in their prices (148.5800018310547): no decimals
    hold them, so they are stored whole and still come back bit for bit."""
    shutil.copy(shared_data / "lumibot" / "AAPL_Minute.csv", tmp_path / "AAPL_1m.csv")
    run = backtest("MACD", "AAPL", "1m", data_dir=tmp_path, cache_dir=tmp_path / "cache",
                   keep_series=True)  # fmt: skip
    (result,) = run.results
    cached = read_cache(run.cache_files[0])
    for column in OHLCV:
        np.testing.assert_array_equal(bits(cached.candles[column]), bits(result.candles[column]))
    columns = orjson.loads(run.cache_files[0].read_bytes())["candles"]["columns"]
    assert columns["close"]["codec"] == "f8"


# -- older schemas ---------------------------------------------------------------------------


def test_schema_3_2_and_1_files_still_open(sample_run, tmp_path):
    _, cache = sample_run
    path = cache / "5m" / "AAPL_backtest.json"
    new = read_cache(path)
    three = write_schema3(path, tmp_path / "3" / "5m" / "AAPL_backtest.json")
    assert three.stat().st_size > 1.2 * path.stat().st_size  # the equity as 8-byte floats
    older = [read_cache(three)]
    for writer, schema in ((write_schema2, 2), (write_schema1, 1)):
        older.append(read_cache(writer(new, tmp_path / str(schema) / "5m" / path.name)))
    for old in older:
        pd.testing.assert_frame_equal(old.candles, new.candles, check_exact=True)
        pd.testing.assert_frame_equal(old.trades, new.trades, check_exact=True)
        assert same_statistics(old.statistics, new.statistics)
        assert old.indicators == new.indicators  # schema 1: MACD's, as before
        assert (old.period, old.data, old.settings) == (new.period, new.data, new.settings)


@pytest.mark.slow
def test_the_visualizer_draws_a_schema_2_file(sample_run, tmp_path):
    _, cache = sample_run
    old = tmp_path / "5m" / "SPY_backtest.json"
    write_schema2(read_cache(cache / "5m" / "SPY_backtest.json"), old)
    out = tmp_path / "spy.png"
    done = run_module("quant_trading.visualization.trade_visualizer", "--cache-dir",
                      str(tmp_path), "--export", str(out), "--symbol", "SPY",
                      drop=("DISPLAY",), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Wrote {out}: SPY 5m, ") and out.stat().st_size > 10_000


def test_a_damaged_file_is_named(sample_run, tmp_path):
    _, cache = sample_run
    doc = orjson.loads((cache / "5m" / "AAPL_backtest.json").read_bytes())
    doc["candles"]["columns"]["close"]["data"] = doc["candles"]["columns"]["close"]["data"][:-8]
    path = tmp_path / "AAPL_backtest.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(CacheError, match=f"{path}: damaged backtest cache"):
        read_cache(path)


# -- writing as the run goes -----------------------------------------------------------------


@pytest.fixture
def minute_folder(tmp_path):
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    folder = tmp_path / "data"
    folder.mkdir()
    for symbol in ("AAPL", "MSFT", "SPY"):
        shutil.copy(SAMPLE / f"{symbol}_1m.csv", folder / f"{symbol}_1m.csv")
    return folder


def run_minutes(folder: Path, cache: Path, jobs: int = 1):
    config = configure("MACD", {}, timeframe="1m", symbols=["AAPL", "MSFT", "SPY"])
    return run_symbols(config, str(folder), BacktestOptions(), jobs=jobs, progress=False,
                       cache_dir=cache, keep_series=False)  # fmt: skip


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failed_run_leaves_the_cache_as_it_was(minute_folder, tmp_path, jobs):
    """The first symbols' files are written while the run goes on, but only moved into place
    once every symbol succeeded: a malformed last file changes nothing, leaves no hidden
    folder behind, and creates no cache folder that was not there."""
    cache = tmp_path / "cache"
    run_minutes(minute_folder, cache)
    before = {p.name: p.read_bytes() for p in (cache / "1m").iterdir()}
    assert sorted(before) == ["AAPL_backtest.json", "MSFT_backtest.json", "SPY_backtest.json"]
    lines = (minute_folder / "SPY_1m.csv").read_text().splitlines()
    lines[300] = lines[300].replace(",", ",-", 1)
    (minute_folder / "SPY_1m.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match="SPY_1m.csv"):
        run_minutes(minute_folder, cache, jobs)
    assert {p.name: p.read_bytes() for p in (cache / "1m").iterdir()} == before
    fresh = tmp_path / "fresh" / "cache"
    with pytest.raises(DataFileError):
        run_minutes(minute_folder, fresh, jobs)
    assert not (tmp_path / "fresh").exists()


def test_a_cache_that_cannot_be_written_is_one_clear_line(minute_folder, tmp_path):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    with pytest.raises(CacheWriteError):
        run_minutes(minute_folder, blocked)
    done = run_module("quant_trading.backtesting.run_backtest", "--timeframe", "1m",
                      "--data-dir", str(minute_folder), "--symbols", "AAPL",
                      "--cache-dir", str(blocked))  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"run_backtest: error: cannot write cache in {blocked}: [Errno ")
