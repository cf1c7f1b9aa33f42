"""A run over many symbols pays the per-run costs once: the data folder is listed once, not
once per symbol, and the cache files are flushed to disk while the run goes on, yet every one
is on disk before it is renamed into place, in one process or several."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from quant_trading.backtesting import datafiles
from quant_trading.backtesting.datafiles import MissingDataError, load_symbol
from quant_trading.backtesting.runner import backtest

SAMPLE = Path(__file__).resolve().parent.parent / "market_data"
SYMBOLS = ["AAPL", "MSFT", "SPY"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    for symbol in SYMBOLS:
        shutil.copy(SAMPLE / f"{symbol}_5m.csv", folder / f"{symbol}_5m.csv")
    return folder


def test_a_run_lists_the_data_folder_once(data_dir, monkeypatch):
    listed = []
    listing = datafiles._listing
    monkeypatch.setattr(
        datafiles, "_listing", lambda folder: listed.append(folder) or listing(folder)
    )
    run = backtest("MACD", [*SYMBOLS, "NOPE"], "5m", data_dir=data_dir, start="2026-09-01")
    assert len(listed) == 1
    assert [r.symbol for r in run.results] == SYMBOLS
    with pytest.raises(MissingDataError) as missing:  # the same reason as a lone lookup gives
        load_symbol(data_dir, "NOPE", "5m")
    assert run.skipped == {"NOPE": str(missing.value)}
    assert "no 5m data for NOPE (looked for NOPE_5m_bars_macd.parquet/.csv" in run.skipped["NOPE"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_cache_file_is_on_disk_before_it_is_renamed_into_place(
    data_dir, tmp_path, monkeypatch, jobs
):
    flushed, renamed = set(), {}
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd):
        fsync(fd)
        flushed.add(os.fstat(fd).st_ino)

    def spy_replace(source, target):
        if str(target).endswith("_backtest.json"):
            renamed[Path(target).name] = os.stat(source).st_ino in flushed
        replace(source, target)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    run = backtest("MACD", SYMBOLS, "5m", data_dir=data_dir, start="2026-09-01",
                   cache_dir=tmp_path, jobs=jobs)  # fmt: skip
    names = [f"{symbol}_backtest.json" for symbol in SYMBOLS]
    assert renamed == dict.fromkeys(names, True)
    assert [p.name for p in run.cache_files] == names
    assert sorted(p.name for p in (tmp_path / "5m").iterdir()) == names  # no stage left
