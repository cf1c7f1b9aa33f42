"""The synthetic sample data: NYSE sessions only, consistent bars, 1m and 5m agree, same seed
same bytes, and the files shipped in market_data/ read cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from quant_trading.bars import OHLCV, aggregate
from quant_trading.csv_store import read_bars
from quant_trading.sample_data import generate_sample_data, write_sample_data
from quant_trading.tools.make_sample_data import main

TZ = "America/New_York"
MARKET_DATA = Path(__file__).resolve().parent.parent / "market_data"

# exchange_calendars 4.x reads Series.values, which pandas 3.1 deprecates; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning:DeprecationWarning")

# Eleven sessions around Thanksgiving 2025: the holiday (27th) and the 13:00 close (28th).
END, YEARS, MINUTE_DAYS = "2025-12-02", 0.05, 5
SYMBOLS = ("AAPL", "SPY")
ARGS = dict(end=END, years=YEARS, minute_days=MINUTE_DAYS, seed=7)


def session_minutes(first: str, last: str, step: str = "1min") -> pd.DatetimeIndex:
    """Every bar start XNYS has between two dates, straight from the calendar."""
    schedule = xcals.get_calendar("XNYS").schedule.loc[first:last]
    parts = [
        pd.date_range(row.open, row.close, freq=step, inclusive="left")
        for row in schedule.itertuples()
    ]
    return parts[0].append(parts[1:]).tz_convert(TZ)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_sample_data(out, SYMBOLS, **ARGS)
    return out


@pytest.fixture(scope="module")
def files(sample_dir) -> dict[tuple[str, str], pd.DataFrame]:
    """(symbol, "1m"/"5m") -> the bars as read back from disk."""
    return {
        (symbol, tf): read_bars(sample_dir / f"{symbol}_{tf}.csv")
        for symbol in SYMBOLS
        for tf in ("1m", "5m")
    }


def test_bars_cover_exactly_the_nyse_session_minutes(files):
    five = session_minutes("2025-11-15", END, "5min")
    one = session_minutes("2025-11-25", END)  # the last five sessions
    for symbol in SYMBOLS:
        assert files[symbol, "5m"].index.equals(five)
        assert files[symbol, "1m"].index.equals(one)


def test_holiday_is_absent_and_the_half_day_ends_at_1300(files):
    for (_, tf), bars in files.items():
        dates = set(bars.index.strftime("%Y-%m-%d"))
        assert "2025-11-27" not in dates
        times = bars.index.strftime("%H:%M")
        assert times.min() == "09:30"
        assert times.max() == ("15:59" if tf == "1m" else "15:55")
        half_day = bars.loc["2025-11-28"]
        assert half_day.index[-1].strftime("%H:%M") == ("12:59" if tf == "1m" else "12:55")


def test_bars_are_aligned_to_the_clock(files):
    for (_, tf), bars in files.items():
        assert (bars.index.second == 0).all()
        if tf == "5m":
            assert (bars.index.minute % 5 == 0).all()


def test_ohlc_is_consistent_in_cents_with_whole_share_volumes(files):
    for bars in files.values():
        assert (bars[["open", "high", "low", "close"]] > 0).all().all()
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
        cents = bars[["open", "high", "low", "close"]].to_numpy() * 100
        np.testing.assert_allclose(cents, np.round(cents), atol=1e-6)
        volume = bars["volume"].to_numpy()
        assert (volume >= 1).all() and (volume == np.round(volume)).all()


def test_five_minute_file_is_the_one_minute_file_aggregated(files):
    for symbol in SYMBOLS:
        one, five = files[symbol, "1m"], files[symbol, "5m"]
        overlap = five.loc[five.index >= one.index[0]]
        pd.testing.assert_frame_equal(aggregate(one, "5m"), overlap, check_exact=True)


def test_files_read_back_as_generated(files):
    for bars in generate_sample_data(SYMBOLS, **ARGS):
        for tf, frame in (("5m", bars.five_minute), ("1m", bars.one_minute)):
            assert frame.index.name == "time" and str(frame.index.tz) == TZ
            assert frame.index.unit == "ns"
            assert list(frame.columns) == OHLCV and (frame.dtypes == np.float64).all()
            pd.testing.assert_frame_equal(files[bars.symbol, tf], frame, check_exact=True)


def test_times_are_iso_8601_with_the_offset(sample_dir):
    lines = (sample_dir / "SPY_5m.csv").read_text().splitlines()
    assert lines[0] == "time,open,high,low,close,volume"
    assert lines[1].startswith("2025-11-17T09:30:00-05:00,")


def test_same_arguments_give_the_same_bytes(sample_dir, tmp_path):
    write_sample_data(tmp_path / "again", SYMBOLS, **ARGS)
    write_sample_data(tmp_path / "other_seed", SYMBOLS, **{**ARGS, "seed": 8})
    for path in sorted(sample_dir.glob("*.csv")):
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes()
        assert (tmp_path / "other_seed" / path.name).read_bytes() != path.read_bytes()


def test_cli_writes_files_and_prints_one_line_each(tmp_path):
    out = tmp_path / "data"
    command = [sys.executable, "-m", "quant_trading.tools.make_sample_data", "--end", END]
    command += ["--years", str(YEARS), "--symbols", "spy", "--output-dir", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"{out / 'SPY_5m.csv'}: 822 rows, 2025-11-17T09:30:00-05:00 .. 2025-12-02T15:55:00-05:00",
        f"{out / 'SPY_1m.csv'}: 4110 rows, 2025-11-17T09:30:00-05:00 .. 2025-12-02T15:59:00-05:00",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["SPY_1m.csv", "SPY_5m.csv"]
    assert len(read_bars(out / "SPY_1m.csv")) == 4110


@pytest.mark.parametrize(
    "args, message",
    [
        (["--years", "-1"], "argument --years"),
        (["--end", "someday"], "argument --end: not a date"),
        (["--symbols", "../etc"], "argument --symbols: not a ticker symbol"),
        (["--minute-days", "0"], "argument --minute-days"),
    ],
)
def test_bad_arguments_give_one_clear_line(args, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("make_sample_data: error: ") and message in error
    assert not list(tmp_path.iterdir())


def test_unwritable_output_dir_is_one_line_and_exit_1(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = main(["--end", END, "--years", str(YEARS), "--output-dir", str(blocker)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "make_sample_data: error:" in captured.err


# The files shipped in market_data/ (made with the default arguments).

COMMITTED = ("AAPL", "MSFT", "SPY")


@pytest.fixture(scope="module")
def committed() -> dict[tuple[str, str], pd.DataFrame]:
    paths = {(s, tf): MARKET_DATA / f"{s}_{tf}.csv" for s in COMMITTED for tf in ("1m", "5m")}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        pytest.skip(f"sample data not in {MARKET_DATA}: {', '.join(missing)}")
    return {key: read_bars(path) for key, path in paths.items()}


def test_committed_files_cover_two_years_and_the_last_month(committed):
    for symbol in COMMITTED:
        five, one = committed[symbol, "5m"], committed[symbol, "1m"]
        assert five.index[0] == pd.Timestamp("2024-10-31 09:30", tz=TZ)
        assert five.index[-1] == pd.Timestamp("2026-10-30 15:55", tz=TZ)
        assert len(np.unique(five.index.date)) > 495  # ~252 sessions a year
        assert one.index[0] == pd.Timestamp("2026-10-01 09:30", tz=TZ)
        assert one.index[-1] == pd.Timestamp("2026-10-30 15:59", tz=TZ)
        overlap = five.loc[five.index >= one.index[0]]
        pd.testing.assert_frame_equal(aggregate(one, "5m"), overlap, check_exact=True)


def test_committed_files_look_like_the_market(committed):
    starts = {"AAPL": 230.0, "MSFT": 420.0, "SPY": 580.0}
    volatility = {}
    for symbol, start in starts.items():
        bars = committed[symbol, "5m"]
        assert bars["open"].iloc[0] == pytest.approx(start, rel=0.05)
        returns = np.log(bars["close"] / bars["open"])
        volatility[symbol] = returns.std()
        clock = bars.index.strftime("%H:%M")
        # U-shaped intraday profile: the open and the close are busier and jumpier than midday.
        volume = bars["volume"].groupby(clock).mean()
        assert volume["09:30"] > 2 * volume["12:00"] and volume["15:55"] > 2 * volume["12:00"]
        spread = returns.groupby(clock).std()
        assert spread["09:30"] > 1.3 * spread["12:00"]
    assert volatility["SPY"] < min(volatility["AAPL"], volatility["MSFT"])


def test_committed_sample_is_small():
    paths = [MARKET_DATA / f"{s}_{tf}.csv" for s in COMMITTED for tf in ("1m", "5m")]
    sizes = [p.stat().st_size for p in paths if p.is_file()]
    if not sizes:
        pytest.skip(f"no sample data in {MARKET_DATA}")
    assert sum(sizes) < 10.5 * 2**20
