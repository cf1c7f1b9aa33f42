"""CSV store: users' files as they come, the project's own files, and clear errors."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest

from quant_trading.atomic import atomic_write
from quant_trading.bars import with_macd
from quant_trading.csv_store import DataFileError, bars_filename, read_bars, write_bars

TZ = "America/New_York"
GOOD = "time,open,high,low,close,volume\n"
ROWS = [
    "2024-03-01 09:30:00,10.0,10.5,9.9,10.2,100",
    "2024-03-01 09:31:00,10.2,10.4,10.1,10.3,200",
    "2024-03-01 09:32:00,10.3,10.3,10.0,10.1,300",
]


def write(tmp_path, text, name="bars.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "rows", "first", "last"),
    [
        ("lumibot/AAPL_Minute.csv", 1167, "2021-08-23 09:30", "2021-08-25 15:59"),
        ("lumibot/AMZN_1M.CSV", 3569, "2025-01-13 04:00", "2025-01-17 19:59"),  # UTC in file
        ("lumibot/UPRO_Minute.csv", 59121, "2020-01-02 09:20", "2020-11-30 18:17"),
        ("lumibot/spy_test.csv", 1794, "2020-01-06 07:08", "2020-01-09 16:40"),
        ("mplfinance/SP500_NOV2019_IDay.csv", 1563, "2019-11-05 09:30", "2019-11-08 15:59"),
        ("pyalgotrade/ib-spy-5min-20120627.csv", 166, "2012-06-27 10:10", "2012-06-27 23:55"),
        ("backtrader/2006-min-005.txt", 2142, "2006-01-02 09:05", "2006-01-30 17:30"),
        ("backtrader/2006-day-001.txt", 255, "2006-01-02 00:00", "2006-12-29 00:00"),
        ("backtrader/ticksample.csv", 134, "2015-09-23 20:57", "2015-09-23 21:00"),
    ],
)
def test_real_files_load(shared_data, name, rows, first, last):
    bars = read_bars(shared_data / name)
    assert len(bars) == rows
    assert str(bars.index.tz) == TZ and bars.index.name == "time"
    assert bars.index[0].strftime("%Y-%m-%d %H:%M") == first
    assert bars.index[-1].strftime("%Y-%m-%d %H:%M") == last
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert (bars.high >= bars.low).all()


def test_column_order_and_case_do_not_matter(shared_data):
    bars = read_bars(shared_data / "mplfinance" / "SP500_NOV2019_IDay.csv")  # O,C,H,L order
    first = bars.iloc[0]
    assert (first.open, first.high, first.low, first.close) == (3080.8, 3081.47, 3080.3, 3080.49)


def test_out_of_order_rows_are_sorted_and_duplicates_counted(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        upro = read_bars(shared_data / "lumibot" / "UPRO_Minute.csv")
        ticks = read_bars(shared_data / "backtrader" / "ticksample.csv")
    assert "out of time order" in caplog.text
    assert "dropped 1 row(s) with a duplicate timestamp" in caplog.text
    assert ticks.attrs["duplicates_dropped"] == 1 and upro.attrs["duplicates_dropped"] == 0
    assert pd.Timestamp("2020-10-21 15:10", tz=TZ) in upro.index


def test_headerless_export_is_refused_clearly(shared_data):
    path = shared_data / "pyalgotrade" / "nt-spy-minute-2011-03.csv"
    with pytest.raises(DataFileError, match="no header row"):
        read_bars(path)


@pytest.mark.parametrize("header_lost", ["the date column", "only the date's name"])
def test_minute_file_without_dates_is_refused(shared_data, tmp_path, header_lost):
    """The real 5-minute file with its Date column dropped (or only its name dropped from the
    header) used to load as bars on today's date; now one line names the file and line."""
    lines = (shared_data / "backtrader" / "2006-min-005.txt").read_text().splitlines()
    assert lines[0].startswith("Date,Time,")
    rows = lines[1:]
    if header_lost == "the date column":
        rows = [row.split(",", 1)[1] for row in rows]
    path = write(tmp_path, "\n".join([lines[0].removeprefix("Date,"), *rows]) + "\n")
    before = path.read_bytes()
    with pytest.raises(DataFileError) as error:
        read_bars(path)
    message = str(error.value)
    assert message.startswith(f"{path}, line 2: ") and "\n" not in message
    if header_lost == "the date column":
        assert message.endswith("time '09:05:00' has no date (the time column must hold dates, "
                                "or add a date column)")  # fmt: skip
    else:
        assert message.endswith("8 values but the header names 7 columns "
                                "(is a column name missing from the first line?)")  # fmt: skip
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [("9:30", "9:30"), ("09:30:00.250", "09:30:00.250"), ("9:30 AM", "9:30 AM"),
     ("93000", "93000"), ("930", "930")],
)  # fmt: skip
def test_clock_times_of_every_form_are_refused(tmp_path, stamp, shown):
    path = write(tmp_path, f"time,open,high,low,close\n{stamp},1,2,1,2\n{stamp},1,2,1,2\n")
    with pytest.raises(DataFileError) as error:
        read_bars(path)
    assert str(error.value).startswith(f"{path}, line 2: time '{shown}' has no date")


def test_times_in_every_form(tmp_path):
    epoch = pd.Timestamp("2024-03-01 09:30", tz=TZ).timestamp()
    forms = {
        "iso_offset": "2024-03-01T09:30:00-05:00",
        "utc_z": "2024-03-01T14:30:00Z",
        "naive_et": "2024-03-01 09:30:00",
        "epoch_s": f"{epoch:.0f}",
        "epoch_ms": f"{epoch * 1000:.0f}",
        "ib_style": "20240301  09:30:00",
    }
    for label, stamp in forms.items():
        bars = read_bars(
            write(tmp_path, f"Timestamp,Open,High,Low,Close,Volume\n{stamp},1,2,1,2,5\n")
        )
        assert bars.index[0] == pd.Timestamp("2024-03-01 09:30", tz=TZ), label
    daily = read_bars(write(tmp_path, "date,open,high,low,close\n20240301,1,2,1,2\n"))
    assert daily.index[0] == pd.Timestamp("2024-03-01", tz=TZ)
    assert daily.volume.iloc[0] == 0  # no volume column: taken as zero


def test_separate_date_and_time_columns(tmp_path):
    bars = read_bars(
        write(tmp_path, "Date,Time,Open,High,Low,Close,Volume\n2024-03-01,09:35:00,1,2,1,2,0\n")
    )
    assert bars.index[0] == pd.Timestamp("2024-03-01 09:35", tz=TZ)


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        ("2024-03-01 09:33:00,10,11,9,10.5,100", None, None),
        ("not a time,10,11,9,10.5,100", 3, "cannot read time 'not a time'"),
        ("2024-03-01 09:33:00,ten,11,9,10.5,100", 3, "open 'ten' is not a number"),
        ("2024-03-01 09:33:00,10,11,9,,100", 3, "close is missing"),
        ("2024-03-01 09:33:00,10,11,-9,10.5,100", 3, "low -9 is not positive"),
        ("2024-03-01 09:33:00,10,11,0,10.5,100", 3, "low 0 is not positive"),
        ("2024-03-01 09:33:00,10,9,11,10.5,100", 3, "high 9 is below low 11"),
        ("2024-03-01 09:33:00,10,11,9,10.5,-1", 3, "volume -1 is negative"),
        ("2024-03-01 09:33:00,10,11,9,10.5,lots", 3, "volume 'lots' is not a number"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, line, message):
    path = write(tmp_path, GOOD + ROWS[0] + "\n" + row + "\n" + ROWS[1] + "\n")
    before = path.read_bytes()
    if message is None:
        assert len(read_bars(path)) == 3
        return
    with pytest.raises(DataFileError) as error:
        read_bars(path)
    assert str(error.value) == f"{path}, line {line}: {message}"
    assert path.read_bytes() == before  # reading never touches the file


def test_first_bad_row_is_reported(tmp_path):
    path = write(
        tmp_path, GOOD + ROWS[0] + "\n" + "2024-03-01 09:31:00,1,1,2,1,1\n" + "x,1,1,1,1,1\n"
    )
    with pytest.raises(DataFileError, match=r", line 3: high 1 is below low 2"):
        read_bars(path)


def test_missing_column_and_empty_and_missing_files(tmp_path):
    with pytest.raises(
        DataFileError, match=r"missing column close \(found: time, open, high, low\)"
    ):
        read_bars(write(tmp_path, "time,open,high,low\n2024-03-01 09:30,1,2,1\n"))
    with pytest.raises(DataFileError, match="no data rows"):
        read_bars(write(tmp_path, GOOD))
    with pytest.raises(DataFileError, match="file is empty"):
        read_bars(write(tmp_path, ""))
    with pytest.raises(DataFileError, match="file not found"):
        read_bars(tmp_path / "nope.csv")


def test_blank_lines_keep_line_numbers_right(tmp_path):
    path = write(tmp_path, GOOD + ROWS[0] + "\n\n" + "2024-03-01 09:31:00,1,1,2,1,1\n")
    with pytest.raises(DataFileError, match=", line 4: high"):
        read_bars(path)


def test_ambiguous_fall_back_times_are_resolved_by_order(tmp_path):
    rows = [f"2024-11-03 01:{m:02d}:00,1,2,1,2,1" for m in (30, 45, 30, 45)]
    bars = read_bars(write(tmp_path, GOOD + "\n".join(rows) + "\n"))
    assert [t.utcoffset().total_seconds() / 3600 for t in bars.index] == [-4, -4, -5, -5]


def test_write_then_read_round_trips_with_macd(tmp_path):
    bars = read_bars(write(tmp_path, GOOD + "\n".join(ROWS) + "\n"))
    index = pd.date_range("2024-03-08 15:00", periods=100, freq="5min", tz=TZ, name="time")
    close = 50 + np.cumsum(np.random.default_rng(1).normal(0, 0.1, 100))
    frame = with_macd(
        pd.DataFrame(
            {"open": close, "high": close + 0.1, "low": close - 0.1, "close": close, "volume": 7.0},
            index=index.as_unit("ns"),
        )
    )
    path = write_bars(frame, tmp_path / bars_filename("aapl", "5 mins"))
    assert path.name == "AAPL_5m_bars_macd.csv"
    text = path.read_text().splitlines()
    assert text[0] == "time,open,high,low,close,volume,MACD,Signal,Hist"
    assert text[1].startswith("2024-03-08T15:00:00-05:00,")
    back = read_bars(path)
    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert len(bars) == 3


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = write(tmp_path, GOOD + ROWS[0] + "\n", name="AAPL_1m_bars_macd.csv")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("time,open\n")
        raise RuntimeError("interrupted half way")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
