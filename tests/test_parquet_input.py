"""Parquet bar files: the backtest reads ``<SYMBOL>_<tf>.parquet`` and the downloader's
``<SYMBOL>_<tf>_bars_macd.parquet`` like their CSVs, with the same results and the same
one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading import backtest
from quant_trading.backtesting.datafiles import estimate_rows, load_symbol
from quant_trading.bars import with_macd
from quant_trading.csv_store import DataFileError, bars_filename, read_bars, write_bars

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
OHLCV = ["open", "high", "low", "close", "volume"]


def run(*args):
    return run_module("quant_trading.backtesting.run_backtest", *args, drop=("ACTIVE_STRATEGY",))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(csv folder, parquet folder): the sample AAPL and SPY 5m bars in either format."""
    csv, parquet = tmp_path_factory.mktemp("csv"), tmp_path_factory.mktemp("parquet")
    for symbol in ("AAPL", "SPY"):
        shutil.copy(SAMPLE / f"{symbol}_5m.csv", csv / f"{symbol}_5m.csv")
        write_bars(read_bars(SAMPLE / f"{symbol}_5m.csv"), parquet / f"{symbol}_5m.parquet")
    return csv, parquet


@pytest.mark.slow
def test_parquet_and_csv_give_the_same_backtest(folders):
    csv, parquet = folders
    runs = [backtest("MACD", "AAPL SPY", "5m", data_dir=folder) for folder in (csv, parquet)]
    a, b = runs
    assert [r.data.path.name for r in b.results] == ["AAPL_5m.parquet", "SPY_5m.parquet"]
    assert a.statistics == b.statistics and a.statistics.trades > 1000
    pd.testing.assert_frame_equal(a.trades, b.trades)
    for x, y in zip(a.results, b.results):
        assert x.statistics == y.statistics
        pd.testing.assert_frame_equal(x.trades, y.trades)
        pd.testing.assert_frame_equal(x.candles, y.candles)
        np.testing.assert_array_equal(x.equity.to_numpy(), y.equity.to_numpy())


@pytest.mark.slow
def test_the_cli_reads_parquet_and_says_so(folders):
    csv, parquet = folders
    args = ("--symbols", "AAPL", "--timeframe", "5m", "--no-cache")
    from_csv, from_parquet = (
        run(*args, "--data-dir", str(csv)),
        run(*args, "--data-dir", str(parquet)),
    )
    assert from_csv.returncode == from_parquet.returncode == 0, from_parquet.stderr
    assert f"{parquet / 'AAPL_5m.parquet'}" in from_parquet.stdout
    strip = lambda out: [line for line in out.splitlines() if not line.startswith("  AAPL:")]  # noqa: E731
    assert strip(from_csv.stdout) == strip(from_parquet.stdout)


def test_precedence_downloads_first_parquet_before_csv(tmp_path):
    bars = read_bars(SAMPLE / "SPY_5m.csv")
    names = ["SPY_5m_bars_macd.parquet", "SPY_5m_bars_macd.csv", "SPY_5m.parquet", "SPY_5m.csv"]
    for i, name in enumerate(names):  # each file a different length, to tell them apart
        write_bars(bars.iloc[: 1000 + i], tmp_path / name)
    write_bars(read_bars(SAMPLE / "SPY_1m.csv"), tmp_path / "SPY_1m.parquet")
    for i, name in enumerate(names):
        data = load_symbol(tmp_path, "spy", "5m")
        assert data.path.name == name and len(data.bars) == 1000 + i
        assert [p.name for p in data.unused] == names[i + 1 :]
        (tmp_path / name).unlink()
    data = load_symbol(tmp_path, "SPY", "5m")  # then the finer files, aggregated
    assert data.path.name == "SPY_1m.parquet" and str(data.source_timeframe) == "1m"


def test_a_users_parquet_with_the_time_as_index(tmp_path):
    """pandas' to_parquet keeps the time as the index; names in any case; naive times are
    New York's, like in a CSV."""
    bars = read_bars(SAMPLE / "SPY_1m.csv")
    user = bars.tz_localize(None).rename(columns=str.title).rename_axis("Datetime")
    user.to_parquet(tmp_path / "SPY_1m.parquet")
    got = read_bars(tmp_path / "SPY_1m.parquet")
    pd.testing.assert_frame_equal(got, bars)


def test_bad_parquet_files_get_one_line(tmp_path):
    bars = read_bars(SAMPLE / "SPY_1m.csv").iloc[:10].copy()
    bars.iloc[4, bars.columns.get_loc("low")] = -1.0
    bad = write_bars(bars, tmp_path / "SPY_1m.parquet")
    with pytest.raises(DataFileError) as error:
        read_bars(bad)
    assert str(error.value) == f"{bad}, row 5: low -1 is not positive"
    garbage = tmp_path / "MSFT_1m.parquet"
    garbage.write_text("time,open\n")
    with pytest.raises(DataFileError, match=rf"^{garbage}: not a readable Parquet file \("):
        read_bars(garbage)
    no_close = tmp_path / "AAPL_1m.parquet"
    bars.drop(columns="close").to_parquet(no_close)
    with pytest.raises(DataFileError, match="missing column close"):
        read_bars(no_close)
    result = run("--symbols", "SPY", "--timeframe", "1m", "--data-dir", str(tmp_path), "--no-cache")
    assert result.returncode == 1
    assert result.stderr.strip() == f"run_backtest: error: {bad}, row 5: low -1 is not positive"


def test_write_then_read_parquet_with_macd(tmp_path):
    bars = with_macd(read_bars(SAMPLE / "AAPL_1m.csv"))
    path = write_bars(bars, tmp_path / bars_filename("aapl", "1 min", "parquet"))
    assert path.name == "AAPL_1m_bars_macd.parquet"
    back = read_bars(path)
    pd.testing.assert_frame_equal(back, bars, check_freq=False)
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    assert schema.names == ["time", *OHLCV, "MACD", "Signal", "Hist"]
    assert str(schema.field("time").type) == "timestamp[ns, tz=America/New_York]"
    assert str(schema.field("volume").type) == "int64"
    assert estimate_rows(tmp_path, ["AAPL"], "1m") == [len(bars)]
    with pytest.raises(ValueError, match="unknown bar file format 'xlsx'"):
        bars_filename("AAPL", "1m", "xlsx")
