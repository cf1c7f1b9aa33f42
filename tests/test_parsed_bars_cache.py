"""The parsed-bars cache (``<data folder>/.qt_cache/``) and the fast CSV reader: a re-run
reads the bars without parsing, the cache never serves bars of another version of the file,
a read-only data folder works without it, and the fast reader reads what pandas' reader does."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading import bars_cache, csv_store
from quant_trading.bars_cache import CACHE_FOLDER, cache_file, load_bars
from quant_trading.csv_store import DataFileError, parse_bars, read_bars

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
HEADER = "time,open,high,low,close,volume\n"
ROWS = [
    f"2024-03-01T09:{m:02d}:00-05:00,10.{m:02d},11.00,9.50,10.25,{100 + m}" for m in range(30, 60)
]


@pytest.fixture
def csv(tmp_path) -> Path:
    """A small bar CSV alone in a data folder."""
    path = tmp_path / "data" / "AAPL_5m.csv"
    path.parent.mkdir()
    path.write_text(HEADER + "\n".join(ROWS) + "\n")
    return path


def test_a_second_load_is_served_from_the_cache_and_equals_a_parse(csv):
    first, second = load_bars(csv), load_bars(csv)
    assert (first.cached, second.cached) == (False, True)
    assert cache_file(csv) == csv.parent / CACHE_FOLDER / "AAPL_5m.csv.arrow"
    assert cache_file(csv).exists() and (csv.parent / CACHE_FOLDER / "CACHEDIR.TAG").exists()
    want = read_bars(csv, indicators=())
    for got in (first, second):
        pd.testing.assert_frame_equal(got.bars, want, check_freq=True)
        assert got.bars.attrs == want.attrs
    assert first.sha256 == second.sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()
    # the data folder's own listing shows only the user's file
    assert [p.name for p in csv.parent.iterdir() if not p.name.startswith(".")] == [csv.name]


def test_new_content_with_the_same_size_and_mtime_is_parsed_again(csv):
    load_bars(csv)
    before = os.stat(csv)
    text = csv.read_text()
    changed = text.replace("10.45,11.00", "10.46,11.00", 1)  # one digit: same size
    assert changed != text and len(changed) == len(text)
    csv.write_text(changed)
    os.utime(csv, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(csv).st_size == before.st_size and os.stat(csv).st_mtime_ns == before.st_mtime_ns
    again = load_bars(csv)
    assert not again.cached
    assert again.bars["open"].iloc[15] == 10.46
    pd.testing.assert_frame_equal(again.bars, read_bars(csv, indicators=()))
    assert load_bars(csv).cached  # and the new entry serves the new bars
    assert load_bars(csv).bars["open"].iloc[15] == 10.46


def test_a_new_size_is_parsed_again(csv):
    load_bars(csv)
    mtime = os.stat(csv).st_mtime_ns
    with open(csv, "a") as handle:
        handle.write("2024-03-01T10:00:00-05:00,10.5,11,9.5,10.25,7\n")
    os.utime(csv, ns=(mtime, mtime))
    again = load_bars(csv)
    assert not again.cached and len(again.bars) == len(ROWS) + 1


def test_a_new_mtime_is_parsed_again(csv):
    load_bars(csv)
    stat = os.stat(csv)
    os.utime(csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = load_bars(csv)
    assert not again.cached
    pd.testing.assert_frame_equal(again.bars, read_bars(csv, indicators=()))


class _Hashes:
    """Counts the loads that read and hash the file (the rest trusted stat)."""

    def __init__(self, monkeypatch):
        self.count = 0
        digest = bars_cache._digest

        def counting(path):
            self.count += 1
            return digest(path)

        monkeypatch.setattr(bars_cache, "_digest", counting)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


@pytest.fixture
def later(monkeypatch):
    """Every load happens 10 s after the file's last change, as when a run starts on files
    downloaded a while ago."""
    now = time.time_ns
    monkeypatch.setattr(bars_cache, "time", SimpleNamespace(time_ns=lambda: now() + 10**10))


def test_a_file_changed_just_before_it_was_hashed_is_hashed_on_every_load(csv, monkeypatch):
    # Within SETTLED_SECONDS of its last change a rewrite could keep its times: only the
    # content can tell.
    hashes = _Hashes(monkeypatch)
    assert [load_bars(csv).cached for _ in range(3)] == [False, True, True]
    assert hashes.take() == 3  # every load hashed it


def test_stat_vouches_for_a_settled_file_until_anything_about_it_changes(csv, monkeypatch, later):
    hashes = _Hashes(monkeypatch)
    first = load_bars(csv)
    assert not first.cached and hashes.take() == 1
    again = load_bars(csv)
    assert again.cached and hashes.take() == 0  # not read at all
    assert again.sha256 == first.sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()
    pd.testing.assert_frame_equal(again.bars, first.bars, check_freq=True)
    # a new ctime (chmod) without new content: hashed once, served, and trusted again
    csv.chmod(0o600)
    assert load_bars(csv).cached and hashes.take() == 1
    assert load_bars(csv).cached and hashes.take() == 0
    # new content at the same size, mtime put back: its ctime moved, so it is hashed
    before = os.stat(csv)
    time.sleep(0.05)  # past the file system's timestamp step (a clock tick)
    csv.write_text(csv.read_text().replace("10.45,11.00", "10.46,11.00", 1))
    os.utime(csv, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(csv).st_size == before.st_size
    got = load_bars(csv)
    assert not got.cached and got.bars["open"].iloc[15] == 10.46


def test_a_copied_data_folder_is_hashed_once_then_trusted(csv, tmp_path, monkeypatch, later):
    load_bars(csv)
    copy = Path(shutil.copytree(csv.parent, tmp_path / "copy")) / csv.name  # keeps mtimes
    assert (copy.parent / CACHE_FOLDER / f"{csv.name}.arrow").exists()
    hashes = _Hashes(monkeypatch)
    assert load_bars(copy).cached and hashes.take() == 1  # another inode: hashed
    assert load_bars(copy).cached and hashes.take() == 0
    assert load_bars(csv).cached and hashes.take() == 0  # the original's entry is its own


def test_a_damaged_or_foreign_entry_is_never_served(csv):
    load_bars(csv)
    cache_file(csv).write_bytes(b"not arrow at all")
    assert not load_bars(csv).cached
    # an entry made from another file does not serve this one, whatever its name
    other = csv.with_name("MSFT_5m.csv")
    other.write_text(HEADER + ROWS[0] + "\n")
    load_bars(other)
    shutil.copy(cache_file(other), cache_file(csv))
    got = load_bars(csv)
    assert not got.cached and len(got.bars) == len(ROWS)


def test_a_bad_file_is_never_cached_and_fails_the_same_way_each_time(csv):
    csv.write_text(HEADER + ROWS[0] + "\n2024-03-01T09:35:00-05:00,10,11,-9,10.5,100\n")
    for _ in range(2):
        with pytest.raises(DataFileError) as error:
            load_bars(csv)
        assert str(error.value) == f"{csv}, line 3: low -9 is not positive"
    assert not cache_file(csv).exists()


def test_warnings_are_given_on_every_load(csv, caplog):
    csv.write_text(HEADER + ROWS[1] + "\n" + ROWS[0] + "\n" + ROWS[0] + "\n")
    with caplog.at_level(logging.WARNING, logger="quant_trading.csv_store"):
        first = load_bars(csv)
        second = load_bars(csv)
    assert second.cached and second.bars.attrs == first.bars.attrs == {"duplicates_dropped": 1}
    for message in ("rows were out of time order; sorted", "dropped 1 row(s) with a duplicate"):
        assert caplog.text.count(f"{csv}: {message}") == 2


def test_parquet_inputs_need_no_cache(tmp_path):
    frame = read_bars(SAMPLE / "SPY_1m.csv")
    path = csv_store.write_bars(frame, tmp_path / "SPY_1m.parquet")
    got = load_bars(path)
    assert not got.cached and not (tmp_path / CACHE_FOLDER).exists()
    pd.testing.assert_frame_equal(got.bars, frame[["open", "high", "low", "close", "volume"]])


# --- a read-only data folder --------------------------------------------------------------


@pytest.fixture
def read_only(tmp_path):
    """Factory: make a folder refuse new files, for root too (chattr +i) when possible."""
    undo = []

    def lock(folder: Path) -> Path:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            undo.append(lambda: folder.chmod(0o755))
        elif (
            shutil.which("chattr")
            and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        ):
            undo.append(lambda: subprocess.run(["chattr", "-i", str(folder)], check=True))
        else:
            pytest.skip("root without chattr +i: no folder here refuses root's writes")
        try:
            (folder / ".probe").write_text("x")
        except OSError:
            return folder
        (folder / ".probe").unlink()
        pytest.skip(f"{folder} stayed writable for this user")

    yield lock
    for step in undo:
        step()


def test_a_read_only_data_folder_works_without_a_cache(csv, read_only, caplog):
    folder = read_only(csv.parent)
    with caplog.at_level(logging.DEBUG, logger="quant_trading.bars_cache"):
        first, second = load_bars(csv), load_bars(csv)
    assert not first.cached and not second.cached
    pd.testing.assert_frame_equal(second.bars, read_bars(csv, indicators=()))
    assert "cannot write the parsed-bars cache" in caplog.text
    assert not (folder / CACHE_FOLDER).exists()


def test_backtest_on_a_read_only_data_folder(tmp_path, read_only):
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(SAMPLE / "SPY_1m.csv", folder / "SPY_1m.csv")
    read_only(folder)
    result = run_module("quant_trading.backtesting.run_backtest", "--symbols", "SPY",
                        "--timeframe", "5m", "--data-dir", str(folder), "--no-cache", "-v",
                        drop=("ACTIVE_STRATEGY",))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{folder / 'SPY_1m.csv'} (1m, aggregated)" in result.stdout
    assert "cannot write the parsed-bars cache" in result.stderr  # said at debug level only
    assert "warning" not in result.stderr.lower()
    assert sorted(p.name for p in folder.iterdir()) == ["SPY_1m.csv"]


def test_a_read_only_cache_folder_still_serves_its_entries(csv, read_only):
    load_bars(csv)
    read_only(csv.parent / CACHE_FOLDER)
    assert load_bars(csv).cached
    csv.write_text(HEADER + ROWS[0] + "\n")  # a changed file is parsed, not served stale
    got = load_bars(csv)
    assert not got.cached and len(got.bars) == 1


# --- the fast CSV reader reads what pandas' reader reads ----------------------------------


def _both_readers(path: Path, monkeypatch):
    def read():
        try:
            return parse_bars(path)
        except DataFileError as exc:
            return str(exc)

    fast = read()
    with monkeypatch.context() as patch:
        patch.setattr(csv_store, "_arrow_table", lambda data, sep: None)
        exact = read()
    return fast, exact


def _assert_same(fast, exact):
    if isinstance(exact, str):
        assert fast == exact
        return
    pd.testing.assert_frame_equal(fast.bars, exact.bars, check_freq=True)
    assert fast.bars.attrs == exact.bars.attrs and fast.notes == exact.notes


@pytest.mark.parametrize("name", ["AAPL_5m.csv", "SPY_1m.csv"])
def test_fast_reader_on_the_sample_files(name, monkeypatch):
    path = SAMPLE / name
    assert csv_store._arrow_table(path.read_bytes(), ",") is not None  # it is the fast path
    _assert_same(*_both_readers(path, monkeypatch))


@pytest.mark.slow
def test_fast_reader_on_real_files(shared_data, monkeypatch):
    names = sorted(p for p in shared_data.rglob("*") if p.suffix.lower() in (".csv", ".txt"))
    assert len(names) >= 10
    for path in names:
        _assert_same(*_both_readers(path, monkeypatch))


@pytest.mark.parametrize(
    "text",
    [
        HEADER + ROWS[0] + "\n" + ROWS[1] + "\n",  # the project's form
        "Timestamp,Open,High,Low,Close\n2024-03-01 09:30:00,1,2,1,2\n",  # naive, no volume
        "time,open,high,low,close,volume\r\n2024-03-01T14:30:00Z,1,2,1,2,5\r\n",  # CRLF, UTC
        "\ufefftime;open;high;low;close;volume\n2024-03-01 09:30:00.250;1;2;1;2;5\n",  # BOM, ;
        HEADER + "".join(f"2024-11-03 01:{m}:00,1,2,1,2,1\n" for m in (30, 45, 30, 45)),  # DST
        HEADER + "2024-03-10 02:30:00,1,2,1,2,1\n",  # a wall time that does not exist
        HEADER + ROWS[0] + "\n" + "2024-03-01T09:33:00-05:00,10,11,0,10.5,100\n",  # low 0
        HEADER + ROWS[0] + "\n" + "2024-03-01T09:33:00-05:00,10,9,11,10.5,100\n",  # high < low
        HEADER + ROWS[0] + "\n" + "2024-03-01T09:33:00-05:00,10,11,9,10.5,-1\n",  # volume
        HEADER + ROWS[0] + "\n" + "2024-03-01T09:33:00-05:00,10,11,9,,100\n",  # gap
        HEADER + ROWS[0] + "\n" + "not a time,10,11,9,10.5,100\n",
        HEADER + ROWS[0] + "\n\n" + "2024-03-01T09:33:00-05:00,10,9,11,10.5,100\n",  # blank
        "Time,Open,High,Low,Close,Volume\n2006-01-02,09:05:00,1,2,1,2,5\n",  # a name missing
        "time,open,high,low\n2024-03-01 09:30,1,2,1\n",
    ],
)  # fmt: skip
def test_fast_reader_matches_pandas_reader_on_every_form(tmp_path, monkeypatch, text):
    path = tmp_path / "bars.csv"
    path.write_text(text, newline="")
    _assert_same(*_both_readers(path, monkeypatch))
