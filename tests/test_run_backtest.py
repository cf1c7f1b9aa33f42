"""run_backtest as a user runs it: on the bundled sample data, its output and cache files,
and every kind of bad input."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_runner import read_one_line_and_hang_up, run_module

from quant_trading import backtest
from quant_trading.backtesting.cache import SCHEMA, CacheError, read_cache, write_cache
from quant_trading.backtesting.engine import Costs
from quant_trading.bars import aggregate
from quant_trading.csv_store import read_bars, write_bars

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"


def run(*args, env=None, timeout=120):
    # ACTIVE_STRATEGY is dropped unless the test sets it: the file's setting must decide.
    return run_module(
        "quant_trading.backtesting.run_backtest",
        *args,
        drop=("ACTIVE_STRATEGY",),
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    if not (SAMPLE / "AAPL_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    cache = tmp_path_factory.mktemp("cache")
    result = run("--timeframe", "5m", "--data-dir", str(SAMPLE), "--cache-dir", str(cache))
    return result, cache


def test_readme_command_on_sample_data(sample_run):
    result, cache = sample_run
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MACD backtest on 5m bars: fast=12 slow=26 signal=9 mode=long_short" in out
    for section in (
        "AAPL trades (last 10 of",
        "Symbol    Trades",
        "Portfolio equity by month",
        "Portfolio totals",
        "Sharpe Ratio",
        f"Cache: 3 file(s) in {cache / '5m'}/",
    ):
        assert section in out
    report = out.split("\nCache:")[0]  # the cache paths below it are as long as the folder
    # File paths are as long as the folder too; they end their lines.
    assert max(len(line.split(str(SAMPLE))[0]) for line in report.splitlines()) <= 100
    for symbol in ("AAPL", "MSFT", "SPY"):
        assert (
            f"  {symbol + ':':<5}  38,898 5m bars  2024-10-31 09:30 .. 2026-10-30 15:55  "
            f"{SAMPLE}/{symbol}_5m.csv"
        ) in out.splitlines()
    assert result.stderr == ""


def test_entries_and_their_commission_fit_the_cash(sample_run):
    """All-equity entries leave room for their own commission: the cash (flat before an
    entry, so the equity) pays for shares x price plus the entry's commission, and could not
    pay for one share more."""
    _, cache = sample_run
    for symbol in ("AAPL", "MSFT", "SPY"):
        trades = read_cache(cache / "5m" / f"{symbol}_backtest.json").trades
        cash = 100_000 + np.r_[0.0, np.cumsum(trades["pnl"].to_numpy())[:-1]]
        shares, price = trades["shares"].to_numpy(), trades["entry_price"].to_numpy()
        fee = np.array([Costs().commission(n, p) for n, p in zip(shares, price)])
        more = np.array([Costs().commission(n + 1, p) for n, p in zip(shares, price)])
        assert (shares * price + fee <= cash).all(), symbol
        assert ((shares + 1) * price + more > cash).all(), symbol


def test_cache_files_hold_what_the_console_shows(sample_run):
    result, cache = sample_run
    for symbol in ("AAPL", "MSFT", "SPY"):
        cached = read_cache(cache / "5m" / f"{symbol}_backtest.json")
        stats = cached.statistics
        assert cached.symbol == symbol and cached.timeframe == "5m"
        assert cached.strategy["params"] == {
            "FAST": 12,
            "SLOW": 26,
            "SIGNAL": 9,
            "MODE": "long_short",
        }
        assert cached.data["source_timeframe"] == "5m" and len(cached.data["sha256"]) == 64
        assert list(cached.candles.columns[:8]) == [
            "open",
            "high",
            "low",
            "close",
            "volume",
            "MACD",
            "Signal",
            "Hist",
        ]
        assert len(cached.candles) == 38_898 and str(cached.candles.index.tz) == "America/New_York"
        assert stats.trades == len(cached.trades) > 100
        line = summary_line(result.stdout, symbol)
        assert f"{stats.trades:,}" in line and f"{stats.net_profit:,.2f}" in line
        assert cached.candles["equity"].iloc[-1] == pytest.approx(stats.equity_final)
        pnl = cached.trades["pnl"].sum()
        assert stats.equity_final == pytest.approx(100_000 + pnl)


def test_options_change_the_run(tmp_path):
    if not (SAMPLE / "AAPL_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    result = run(
        "--symbols",
        "aapl",
        "--timeframe",
        "10m",
        "--data-dir",
        str(SAMPLE),
        "--start",
        "2026-01-01",
        "--end",
        "2026-03-31",
        "--commission",
        "0",
        "--size",
        "50",
        "--flat-at-close",
        "--cache-dir",
        str(tmp_path),
        "--trades",
        "0",
    )
    assert result.returncode == 0, result.stderr
    cached = read_cache(tmp_path / "10m" / "AAPL_backtest.json")
    assert cached.period["start"].startswith("2026-01-02T09:30") and cached.period[
        "end"
    ].startswith("2026-03-31T15:50")
    assert cached.data["source_timeframe"] == "5m"  # 10m bars made from the 5m file
    assert (cached.trades["shares"] == 50).all() and (cached.trades["commission"] == 0).all()
    assert set(cached.trades["exit_reason"]) <= {"flip", "signal", "session close"}
    assert "session close" in set(cached.trades["exit_reason"])
    assert result.stdout.count("\nlong ") + result.stdout.count("\nshort ") == len(cached.trades)


def test_strategy_selection_precedence(tmp_path):
    env_file = tmp_path / "strategy.env"
    env_file.write_text("ACTIVE_STRATEGY=NOPE\nMACD_SYMBOLS=SPY\nMACD_FAST=8\n")
    args = ("--data-dir", str(SAMPLE), "--no-cache", "--env-file", str(env_file))
    assert "unknown strategy 'NOPE'; registered: " in run(*args).stderr
    by_env = run(*args, env={"ACTIVE_STRATEGY": "macd", "MACD_FAST": "10"})
    assert (
        by_env.returncode == 0
        and "fast=10 slow=26" in by_env.stdout
        and "SPY trades" in by_env.stdout
    )
    by_flag = run(*args, "--strategy", "MACD", env={"ACTIVE_STRATEGY": "NOPE"})
    assert by_flag.returncode == 0 and "fast=8 slow=26" in by_flag.stdout


def test_report_names_each_symbols_file_and_range(tmp_path, shared_data):
    """A download into the data folder (AAPL_5m_bars_macd.csv) takes precedence over the
    file already there and changes the results: the report says which file each symbol was
    read from, its bars and their range, and which file it shadows."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(SAMPLE / "AAPL_5m.csv", folder / "AAPL_5m.csv")
    shutil.copy(shared_data / "lumibot" / "TSLA_Minute.csv", folder / "TSLA_1m.csv")
    args = ("--symbols", "AAPL", "TSLA", "--timeframe", "5m", "--data-dir", str(folder))
    before = run(*args, "--no-cache")
    assert before.returncode == 0, before.stderr
    sample = read_bars(folder / "AAPL_5m.csv")
    download = write_bars(sample.iloc[-2_000:], folder / "AAPL_5m_bars_macd.csv")
    after = run(*args, "--no-cache")
    assert after.returncode == 0, after.stderr

    def line(symbol, bars, path, suffix=""):
        span = f"{bars.index[0]:%Y-%m-%d %H:%M} .. {bars.index[-1]:%Y-%m-%d %H:%M}"
        return f"  {symbol}: {len(bars):>7,} 5m bars  {span}  {path}{suffix}"

    tsla = aggregate(read_bars(folder / "TSLA_1m.csv"), "5m")
    assert line("AAPL", sample, folder / "AAPL_5m.csv") in before.stdout.splitlines()
    lines = after.stdout.splitlines()
    assert line("AAPL", sample.iloc[-2_000:], download) in lines
    assert f"{'':8}not used: {folder / 'AAPL_5m.csv'}" in lines
    assert line("TSLA", tsla, folder / "TSLA_1m.csv", " (1m, aggregated)") in lines
    assert summary_line(before.stdout, "AAPL") not in lines  # the results did change


def test_a_minute_file_without_dates_is_refused(tmp_path, shared_data):
    """A real minute file whose time column lost its dates used to be backtested as bars of
    today (exit 0); now one line names the file and line, and no cache is written."""
    rows = (shared_data / "lumibot" / "AAPL_Minute.csv").read_text().splitlines()
    assert rows[0] == "Datetime,Open,High,Low,Close,Volume"
    folder = tmp_path / "data"
    folder.mkdir()
    undated = ["Time,Open,High,Low,Close,Volume"]
    undated += [row[11:19] + row[row.index(",") :] for row in rows[1:]]  # "09:30:00,..."
    (folder / "AAPL_1m.csv").write_text("\n".join(undated) + "\n")
    cache = tmp_path / "cache"
    result = run("--symbols", "AAPL", "--timeframe", "1m", "--data-dir", str(folder),
                 "--cache-dir", str(cache))  # fmt: skip
    line = one_line_error(result, 1)
    assert line == (
        f"run_backtest: error: {folder / 'AAPL_1m.csv'}, line 2: time '09:30:00' has no date "
        "(the time column must hold dates, or add a date column)"
    )
    assert not cache.exists()


def test_fixed_size_beyond_the_cash_warns_once_per_symbol(tmp_path, shared_data):
    """``--size`` shares that cost more than the cash are not bought (no leverage): one
    warning line per symbol, naming it, says how many entries were refused and the first."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(shared_data / "lumibot" / "AMZN_1M.CSV", folder / "AMZN_1m.csv")
    shutil.copy(shared_data / "lumibot" / "MSFT_Minute.csv", folder / "MSFT_1m.csv")
    result = run("--symbols", "AMZN", "MSFT", "--timeframe", "1m", "--data-dir", str(folder),
                 "--size", "450", "--no-cache")  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert [w.split(":")[1].strip() for w in warnings] == ["AMZN", "MSFT"], result.stderr
    for warning, first in zip(warnings, ("2025-01-", "2021-08-")):
        assert " entries refused: 450 shares cost more than the cash (first " + first in warning
        assert warning.endswith("there is no leverage, so lower the size or raise the capital")
    assert "AMZN trades (" in result.stdout and "MSFT: no trades" in result.stdout


def test_infinite_statistic_survives_the_cache_and_prints(tmp_path):
    """Sortino without a losing day is +inf: the cache keeps it and the report shows it."""
    if not (SAMPLE / "SPY_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    run_ = backtest("MACD", "SPY", "5m", data_dir=SAMPLE, start="2026-10-01")
    result = run_.results[0]
    result.statistics = dataclasses.replace(result.statistics, sortino=math.inf)
    path = write_cache(result, tmp_path)
    assert b'"sortino":"Infinity"' in path.read_bytes()
    assert read_cache(path).statistics.sortino == math.inf
    run_.portfolio.statistics = result.statistics
    assert "Sortino Ratio                                inf" in run_.report(trades=None)


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(SAMPLE / "AAPL_1m.csv", folder / "AAPL_1m.csv")
    shutil.copy(SAMPLE / "AAPL_1m.csv", folder / "MSFT_1m.csv")
    return folder


def test_each_blotter_shows_the_symbol_s_newest_trades(sample_run):
    """``--trades 10`` (the default): the title counts them all, and the ten lines are the
    last ten round trips the cache holds, oldest first, in New York time."""
    result, cache = sample_run
    lines = result.stdout.splitlines()
    short = {"session close": "close", "end of data": "end"}
    for symbol in ("AAPL", "MSFT", "SPY"):
        trades = read_cache(cache / "5m" / f"{symbol}_backtest.json").trades
        title = lines.index(f"{symbol} trades (last 10 of {len(trades):,})")
        assert lines[title + 1].startswith("Side  Entry time       ")
        shown = lines[title + 2 : title + 12]
        for line, t in zip(shown, trades.tail(10).itertuples(), strict=True):
            assert line == (
                f"{t.side:<5} {t.entry_time:%Y-%m-%d %H:%M} {t.entry_price:>8.2f} "
                f"{t.exit_time:%Y-%m-%d %H:%M} {t.exit_price:>8.2f} {t.shares:>6,.0f} "
                f"{t.commission:>5.2f} {t.pnl:>10,.2f} {t.return_pct:>6.2f} {t.bars_held:>4} "
                f"{short.get(t.exit_reason, t.exit_reason)}"
            )
        assert lines[title + 12] == ""


def summary_line(out: str, symbol: str) -> str:
    """The symbol's row of the per-symbol summary table."""
    lines = out.splitlines()
    table = lines.index(next(x for x in lines if x.startswith("Symbol    Trades")))
    return next(x for x in lines[table:] if x.startswith(f"{symbol}  "))


def one_line_error(result, code):
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_malformed_file_leaves_existing_cache_untouched(tmp_path, data_dir):
    cache = tmp_path / "cache"
    ok = run(
        "--symbols",
        "AAPL",
        "MSFT",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data_dir),
        "--cache-dir",
        str(cache),
    )
    assert ok.returncode == 0, ok.stderr
    before = {p.name: p.read_bytes() for p in (cache / "1m").iterdir()}
    lines = (data_dir / "MSFT_1m.csv").read_text().splitlines()
    lines[500] = lines[500].replace(",", ",-", 1)  # a negative open price on line 501
    (data_dir / "MSFT_1m.csv").write_text("\n".join(lines) + "\n")
    bad = run(
        "--symbols",
        "AAPL",
        "MSFT",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data_dir),
        "--cache-dir",
        str(cache),
    )
    line = one_line_error(bad, 1)
    assert line.startswith("run_backtest: error: ") and "MSFT_1m.csv, line 501: open -" in line
    assert line.endswith("is not positive")
    assert {p.name: p.read_bytes() for p in (cache / "1m").iterdir()} == before


def test_missing_symbol_warns_and_the_rest_run(tmp_path, data_dir):
    result = run(
        "--symbols", "AAPL", "XYZ", "--timeframe", "1m", "--data-dir", str(data_dir), "--no-cache"
    )
    assert result.returncode == 0
    assert result.stderr.strip() == (
        f"warning: XYZ skipped: {data_dir}: no 1m data for XYZ (looked for "
        "XYZ_1m_bars_macd.parquet/.csv, XYZ_1m.parquet/.csv or a finer file to aggregate)"
    )
    assert "AAPL trades" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--symbols", "XYZ"], 1, "nothing to backtest: "),
        (["--data-dir", "/nonexistent"], 1, "error: /nonexistent: data folder not found"),
        (["--strategy", "NOPE"], 2, "unknown strategy 'NOPE'; registered: "),
        (["--timeframe", "7m"], 2, "--timeframe='7m': bars must divide a day"),
        (["--timeframe", "fast"], 2, "--timeframe: unknown timeframe 'fast'"),
        (["--commission", "-1"], 2, "argument --commission: '-1' must not be negative"),
        (["--initial-capital", "lots"], 2, "argument --initial-capital: 'lots' is not a number"),
        (["--jobs", "0"], 2, "argument --jobs: '0' must be at least 1"),
        (["--start", "someday"], 2, "--start 'someday': not a date or time"),
        (["--start", "2026-02-01", "--end", "2026-01-01"], 2, "--start must be before --end"),
        (["--start", "2030-01-01"], 1, "no bars in the period"),
        (["--size", "10", "--allocation", "0.5"], 2, "not allowed with argument"),
        (["--allocation", "1.5"], 2, "--allocation: '1.5' must be at most 1 (there is no lev"),
        (["--bogus"], 2, "unrecognized arguments: --bogus"),
        (["--size", "1.5"], 2, "size 1.5: whole shares only, unless fractional shares are all"),
        (["--trades", "-1"], 2, "argument --trades: '-1' must not be negative"),
        (["--trades", "x"], 2, "argument --trades: 'x' is not a whole number"),
    ],
)
def test_bad_input_gives_one_clear_line(data_dir, args, code, message):
    base = ["--data-dir", str(data_dir), "--timeframe", "1m", "--no-cache"]
    line = one_line_error(run(*base, *args), code)
    assert line.startswith("run_backtest: error: ") and message in line, line


def test_parallel_jobs_give_the_same_results(tmp_path, data_dir):
    serial = run(
        "--symbols",
        "AAPL",
        "MSFT",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data_dir),
        "--cache-dir",
        str(tmp_path / "a"),
    )
    parallel = run(
        "--symbols",
        "AAPL",
        "MSFT",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data_dir),
        "--cache-dir",
        str(tmp_path / "b"),
        "--jobs",
        "2",
        # Small data would run in one process; the test is about worker processes.
        env={"QT_JOBS_MIN_BARS": "1"},
    )
    assert serial.returncode == parallel.returncode == 0, parallel.stderr
    strip = lambda out: [x for x in out.splitlines() if not x.startswith(("Cache:", "  "))]  # noqa: E731
    assert strip(serial.stdout) == strip(parallel.stdout)
    a = read_cache(tmp_path / "a" / "1m" / "MSFT_backtest.json")
    b = read_cache(tmp_path / "b" / "1m" / "MSFT_backtest.json")
    np.testing.assert_array_equal(a.candles["equity"], b.candles["equity"])


def test_read_cache_rejects_foreign_files(tmp_path):
    (tmp_path / "x.json").write_text('{"schema": "other/9"}')
    with pytest.raises(CacheError, match=f"not a backtest cache of schema {SCHEMA}"):
        read_cache(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(CacheError, match="not valid JSON"):
        read_cache(tmp_path / "y.json")


def test_a_missing_data_folder_is_reported_once():
    line = one_line_error(run("--data-dir", "/nonexistent", "--no-cache"), 1)
    assert line == "run_backtest: error: /nonexistent: data folder not found"


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    """``run_backtest --trades 0 | head -1``: the report (megabytes with every trade) meets
    a closed pipe; the run ends as a shell tool does (141), without a traceback, and its
    cache is written all the same (it was complete before the report was printed)."""
    if not (SAMPLE / "AAPL_5m.csv").exists():
        pytest.skip("bundled sample data missing")
    cache = tmp_path / "cache"
    line, code, err = read_one_line_and_hang_up(
        "quant_trading.backtesting.run_backtest", "--timeframe", "5m", "--data-dir",
        str(SAMPLE), "--trades", "0", "--cache-dir", str(cache),
    )  # fmt: skip
    assert (line.startswith("MACD backtest on 5m bars"), code, err) == (True, 141, "")
    assert sorted(p.name for p in (cache / "5m").iterdir()) == [
        "AAPL_backtest.json", "MSFT_backtest.json", "SPY_backtest.json",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (
            b"MACD_FAST=30\nMACD_SLOW=10\n",
            "MACD fast period (30) must be shorter than slow period (10)",
        ),
        (b"\xff\xfeMACD_FAST=30\n", "not a text file (UTF-8): byte 0 cannot be read"),
    ],
)
def test_a_bad_settings_file_is_named_in_its_one_line(data_dir, tmp_path, contents, message):
    env = tmp_path / "mine.env"
    env.write_bytes(contents)
    result = run("--data-dir", str(data_dir), "--timeframe", "1m", "--no-cache", "--env-file",
                 str(env))  # fmt: skip
    assert one_line_error(result, 2) == f"run_backtest: error: {env}: {message}"


def test_fractional_shares_show_as_such_in_the_blotter(data_dir):
    result = run("--data-dir", str(data_dir), "--timeframe", "1m", "--no-cache", "--symbols",
                 "AAPL", "--size", "1.5", "--fractional", "--trades", "1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, trade = result.stdout.split("AAPL trades (last 1 of ")[1].splitlines()[1:3]
    shares = header.index("Shares")
    assert trade[shares - 1 : shares + 6].split() == ["1.50"]


def test_ctrl_c_during_a_run_is_one_line_and_leaves_the_cache_as_it_was(data_dir, tmp_path):
    """Interrupted while it compiles its kernels (an empty numba cache: half a minute, so
    the signal surely comes mid-run): one line, exit 130, the cache folder as it was, no
    staging folder left behind."""
    cache = tmp_path / "cache"
    (cache / "1m").mkdir(parents=True)
    (cache / "1m" / "AAPL_backtest.json").write_text("{}")  # an earlier run's file
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    process = subprocess.Popen(
        [sys.executable, "-m", "quant_trading.backtesting.run_backtest", "--data-dir",
         str(data_dir), "--timeframe", "1m", "--symbols", "AAPL", "--cache-dir", str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not list((cache / "1m").glob(".staging-*")):  # the run has begun
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert (process.returncode, out) == (130, "")
    assert err == "run_backtest: error: interrupted; the cache is as it was\n"
    assert [p.name for p in (cache / "1m").iterdir()] == ["AAPL_backtest.json"]
    assert (cache / "1m" / "AAPL_backtest.json").read_text() == "{}"
