"""The historical data downloader against the simulator: every bar, the fewest requests,
no pacing violations, merge/update/resume, and clear errors."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading.core.pacing import PacingRules
from quant_trading.csv_store import read_bars
from quant_trading.download.chunks import parse_end, plan_chunks, range_start
from quant_trading.download.downloader import ConnectionLost, DownloadRequest, HistoryDownloader
from quant_trading.macd import macd
from quant_trading.simulator.pacing import PacingLimits
from quant_trading.simulator.server import Simulator

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
END = "20261030 10:30:00"  # the simulator's (frozen) market clock


def paced(**limits) -> PacingLimits:
    """Simulator pacing limits applied to every bar size, as these tests use 5-minute bars
    (IB publishes its rules for bars of 30 s or less, the simulator's default scope)."""
    if "all_bar_sizes" in {f.name for f in dataclasses.fields(PacingLimits)}:
        limits["all_bar_sizes"] = True
    return PacingLimits(**limits)


def source(symbol: str = "AAPL") -> pd.DataFrame:
    return read_bars(SAMPLE / f"{symbol}_5m.csv")


class CountingSimulator:
    """A simulator with a frozen clock (speed 0); it counts the historical requests it gets."""

    def __init__(self, **config):
        self.sim = Simulator(port=0, data_dir=SAMPLE, speed=0.0, **config)
        self.port = self.sim.start_in_thread()

    @property
    def requests(self) -> int:
        return self.sim.historical_requests

    def stop(self):
        self.sim.stop()


@pytest.fixture
def simulator():
    sim = CountingSimulator()
    yield sim
    sim.stop()


def fetch(*args, timeout=120):
    return run_module("quant_trading.tools.fetch_historical_data", *args, timeout=timeout)


def test_six_months_of_5m_bars_exactly_with_the_fewest_requests(simulator, tmp_path):
    result = fetch(
        "--port",
        str(simulator.port),
        "--symbols",
        "AAPL",
        "--duration",
        "6 M",
        "--bar-size",
        "5 mins",
        "--end-datetime",
        END,
        "--output-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    end = parse_end(END)
    start = range_start(end, 6, "M")
    chunks = plan_chunks(start, end, "5 mins")
    assert len(chunks) == 27  # 26 weeks and a bit, one "1 W" request each
    assert simulator.requests == len(chunks)  # historical requests the simulator answered
    assert (
        f"[{len(chunks)} request(s)]" in result.stdout and "0 pacing violation(s)" in result.stdout
    )
    got = read_bars(tmp_path / "AAPL_5m_bars_macd.csv")
    want = source().loc[start:end]
    want = want[want.index < end]  # the 10:30 bar has not started at 10:30:00
    pd.testing.assert_frame_equal(
        got[["open", "high", "low", "close", "volume"]], want, check_freq=False
    )
    reference = macd(got["close"].to_numpy())
    assert (abs(got["Hist"].to_numpy()[40:] - reference.hist[40:]) < 1e-9).all()
    # the downloaded file feeds the backtest unchanged
    backtest = subprocess.run(
        [
            sys.executable,
            "-m",
            "quant_trading.backtesting.run_backtest",
            "--data-dir",
            str(tmp_path),
            "--symbols",
            "AAPL",
            "--timeframe",
            "5m",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert backtest.returncode == 0, backtest.stderr
    assert "Period 2026-04-30 .. 2026-10-30" in backtest.stdout


def test_shrunk_pacing_windows_still_complete_without_violations(tmp_path):
    limits = paced(
        max_requests=4,
        window=3.0,
        identical_window=1.0,
        same_contract_max=2,
        same_contract_window=1.0,
    )
    sim = CountingSimulator(pacing=limits)
    try:
        rules = PacingRules(
            max_requests=4,
            window=3.0,
            identical_window=1.0,
            per_contract=2,
            per_contract_window=1.0,
        )
        downloader = HistoryDownloader(
            tmp_path, pacing=rules, progress=False, port=sim.port, env_file=None, timeout=10
        )
        assert downloader.connect_to_tws()
        try:
            result = downloader.download(DownloadRequest("MSFT", "5 mins", "6 W", parse_end(END)))
        finally:
            downloader.disconnect_from_tws()
        planned = plan_chunks(range_start(parse_end(END), 6, "W"), parse_end(END), "5 mins")
        assert result.ok and result.requests == len(planned) == 7
        assert downloader.pacing_errors == 0
        assert downloader.limiter.waited > 0  # the limiter had to hold requests back
        got = read_bars(result.path)
        want = source("MSFT").loc[range_start(parse_end(END), 6, "W") : parse_end(END)]
        assert got.index.equals(want[want.index < parse_end(END)].index)
    finally:
        sim.stop()


def test_a_pacing_violation_is_retried(tmp_path):
    limits = paced(
        max_requests=100,
        window=600.0,
        identical_window=1.0,
        same_contract_max=2,
        same_contract_window=1.0,
    )
    sim = CountingSimulator(pacing=limits)
    try:
        # lets requests go faster than the sim allows (and retry as soon as it allows)
        lax = PacingRules(per_contract=50, identical_window=1.0, margin=0.0)
        downloader = HistoryDownloader(
            tmp_path, pacing=lax, progress=False, port=sim.port, env_file=None, timeout=10
        )
        downloader.PACING_BACKOFF = (0.5, 1.0)
        assert downloader.connect_to_tws()
        try:
            result = downloader.download(DownloadRequest("SPY", "5 mins", "3 W", parse_end(END)))
        finally:
            downloader.disconnect_from_tws()
        assert result.ok and downloader.pacing_errors >= 1
        start, spy = range_start(parse_end(END), 3, "W"), source("SPY")
        want = spy[(spy.index >= start) & (spy.index < parse_end(END))]
        assert read_bars(result.path).index.equals(want.index)
    finally:
        sim.stop()


@pytest.fixture
def forgetful_simulator():
    """Forgets requests after a second, so re-running a download is not an identical
    request within 15 s (which the real rule would pace; other tests cover pacing)."""
    sim = CountingSimulator(pacing=PacingLimits(identical_window=1.0))
    yield sim
    sim.stop()


def test_interrupted_download_resumes_to_the_same_file(forgetful_simulator, tmp_path):
    simulator = forgetful_simulator
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    args = [
        "--port",
        str(simulator.port),
        "--symbols",
        "AAPL",
        "--duration",
        "2 M",
        "--bar-size",
        "5 mins",
        "--end-datetime",
        END,
    ]
    assert fetch(*args, "--output-dir", str(whole)).returncode == 0

    downloader = HistoryDownloader(broken, progress=False, port=simulator.port, env_file=None)
    assert downloader.connect_to_tws()
    original = downloader._fetch
    calls = []

    def fetch_then_drop(*a):
        calls.append(1)
        if len(calls) == 4:  # TWS goes away while the 4th chunk is being asked for
            simulator.sim.drop_connections()
            threading.Event().wait(0.5)
        return original(*a)

    downloader._fetch = fetch_then_drop
    with pytest.raises(ConnectionLost):
        downloader.download(DownloadRequest("AAPL", "5 mins", "2 M", parse_end(END)))
    downloader.disconnect_from_tws()
    partial = read_bars(broken / "AAPL_5m_bars_macd.csv")  # intact, just shorter
    assert 0 < len(partial) < len(read_bars(whole / "AAPL_5m_bars_macd.csv"))
    assert (broken / ".AAPL_5m_bars_macd.csv.progress.json").exists()

    again = fetch(*args, "--output-dir", str(broken))
    assert again.returncode == 0, again.stderr
    assert "3 done earlier" in again.stdout
    assert (broken / "AAPL_5m_bars_macd.csv").read_bytes() == (
        whole / "AAPL_5m_bars_macd.csv"
    ).read_bytes()
    assert not (broken / ".AAPL_5m_bars_macd.csv.progress.json").exists()


def test_update_adds_only_new_bars(simulator, tmp_path):
    first = fetch(
        "--port",
        str(simulator.port),
        "--symbols",
        "SPY",
        "--duration",
        "1 W",
        "--bar-size",
        "5 mins",
        "--end-datetime",
        "20261028 16:00:00",
        "--output-dir",
        str(tmp_path),
    )
    assert first.returncode == 0, first.stderr
    path = tmp_path / "SPY_5m_bars_macd.csv"
    before = read_bars(path)
    update = fetch(
        "--port", str(simulator.port), "--symbols", "SPY", "--update", "--output-dir", str(tmp_path)
    )
    assert update.returncode == 0, update.stderr
    after = read_bars(path)
    added = after.index.difference(before.index)
    want = source("SPY").loc["2026-10-28 16:00":"2026-10-30 10:25"]
    assert list(added) == list(want.index)
    pd.testing.assert_frame_equal(
        after.loc[before.index, ["open", "high", "low", "close", "volume"]],
        before[["open", "high", "low", "close", "volume"]],
    )
    assert f"({len(added):,} new)" in update.stdout


def test_errors_per_symbol_and_bad_flags(simulator, tmp_path):
    result = fetch(
        "--port",
        str(simulator.port),
        "--symbols",
        "XYZ",
        "MSFT",
        "--duration",
        "2 D",
        "--bar-size",
        "1 min",
        "--end-datetime",
        END,
        "--output-dir",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "XYZ: error: unknown symbol (TWS: no security definition)" in result.stdout
    assert "MSFT: " in result.stdout and (tmp_path / "MSFT_1m_bars_macd.csv").exists()
    for args, message in (
        (["--duration", "6 X"], "--duration '6 X': use '<number> <unit>'"),
        (["--bar-size", "7 mins"], "--bar-size '7 mins': use one of"),
        (["--end-datetime", "tomorrow-ish"], "--end-datetime 'tomorrow-ish'"),
        (["--what-to-show", "volume"], "argument --what-to-show: invalid choice"),
    ):
        bad = fetch("--port", str(simulator.port), "--symbols", "AAPL", *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert message in bad.stderr
    closed = fetch("--port", "1", "--symbols", "AAPL", "--timeout", "5")
    assert closed.returncode == 1 and "cannot connect to TWS" in closed.stderr


def test_existing_damaged_file_is_left_alone(simulator, tmp_path):
    damaged = tmp_path / "AAPL_5m_bars_macd.csv"
    damaged.write_text("time,open,high,low,close,volume\nnot a time,1,1,1,1,1\n")
    before = damaged.read_bytes()
    result = fetch(
        "--port",
        str(simulator.port),
        "--symbols",
        "AAPL",
        "--duration",
        "1 W",
        "--end-datetime",
        END,
        "--output-dir",
        str(tmp_path),
    )
    assert result.returncode == 1 and "line 2: cannot read time" in result.stdout
    assert damaged.read_bytes() == before
    shutil.rmtree(tmp_path)


def test_daily_bars_come_back_as_dates(simulator, tmp_path):
    from quant_trading.bars import aggregate

    result = fetch(
        "--port",
        str(simulator.port),
        "--symbols",
        "SPY",
        "--duration",
        "2 Y",
        "--bar-size",
        "1 day",
        "--end-datetime",
        "2026-10-29",
        "--output-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    got = read_bars(tmp_path / "SPY_1d_bars_macd.csv")
    want = aggregate(source("SPY"), "1d").loc[:"2026-10-29"]
    assert (got.index.hour == 0).all() and got.index.equals(want.index)
    assert (got["close"] == want["close"]).all() and (got["volume"] == want["volume"]).all()


def test_a_warning_does_not_fail_the_request(simulator, caplog):
    """TWS answers an end time without a zone with warning 2174 and still sends the bars."""
    from quant_trading.core.ibkr_connection import IBKRConnection, stock

    connection = IBKRConnection(port=simulator.port, env_file=None, timeout=10)
    assert connection.connect_to_tws()
    try:
        bars = connection.historical_bars(stock("AAPL"), "20261029 16:00:00", "1 D", "5 mins")
    finally:
        connection.disconnect_from_tws()
    assert len(bars) == 78 and "TWS warning 2174" in caplog.text


# --- the default end is TWS's clock ------------------------------------------------------


def test_default_end_is_tws_clock(simulator, tmp_path):
    """The README's command with no --end-datetime ends at TWS's "now": the simulator's
    market clock (2026-10-30 10:30, where its data ends), not this machine's."""
    result = fetch("--port", str(simulator.port), "--symbols", "AAPL", "--duration", "1 M",
                   "--bar-size", "5 mins", "--output-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    got = read_bars(tmp_path / "AAPL_5m_bars_macd.csv")
    end = parse_end(END)
    want = source().loc[range_start(end, 1, "M") : end]
    assert got.index.equals(want[want.index < end].index)


def test_default_end_follows_tws_clock_back_in_time(tmp_path):
    """With TWS's clock in the middle of the data, the download ends there."""
    market_now = pd.Timestamp("2026-06-15 11:00", tz="America/New_York")
    sim = CountingSimulator(start=market_now.timestamp())
    try:
        result = fetch("--port", str(sim.port), "--symbols", "MSFT", "--duration", "1 W",
                       "--output-dir", str(tmp_path))  # fmt: skip
    finally:
        sim.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    got = read_bars(tmp_path / "MSFT_5m_bars_macd.csv")
    assert got.index[-1] == market_now - pd.Timedelta(minutes=5)
    assert got.index[0] == pd.Timestamp("2026-06-08 11:00", tz="America/New_York")


# --- the pacing summary counts every wait --------------------------------------------------


class FakeClock:
    """Shared by the client's limiter and the simulator's pacer: sleeping moves it on at
    once, so pacing windows pass without real waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_after_a_pacing_violation_counts_as_waiting(tmp_path):
    from quant_trading.core.pacing import PacingLimiter
    from quant_trading.simulator.pacing import Pacer

    clock = FakeClock()
    sim = CountingSimulator()
    strict = paced(identical_window=1.0, same_contract_max=2, same_contract_window=1.0)
    sim.sim.pacer = Pacer(strict, clock=clock)
    try:
        downloader = HistoryDownloader(
            tmp_path, progress=False, port=sim.port, env_file=None, timeout=10
        )
        # A client that does not know the simulator's stricter per-contract rule, so TWS
        # answers 162 and the downloader backs off.
        lax = PacingRules(per_contract=50, identical_window=0.01, margin=0.0)
        downloader.limiter = PacingLimiter(lax, clock=clock, sleep=clock.sleep)
        downloader.PACING_BACKOFF = (0.5, 1.0)
        assert downloader.connect_to_tws()
        try:
            result = downloader.download(DownloadRequest("SPY", "5 mins", "3 W", parse_end(END)))
        finally:
            downloader.disconnect_from_tws()
    finally:
        sim.stop()
    assert result.ok, result.error
    assert downloader.pacing_errors >= 1
    # every wait went through the limiter and is in the summary's number...
    assert downloader.limiter.waited == pytest.approx(sum(clock.sleeps))
    # ...including at least one backoff per 162
    assert sum(s for s in clock.sleeps if s >= 0.5) >= 0.5 * downloader.pacing_errors


# --- the output folder is checked before anything is downloaded ---------------------------


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder the current user really cannot write in: read-only permissions for an
    ordinary user; for root (whom permissions do not stop) the immutable attribute."""
    import os

    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        undo = [lambda: folder.chmod(0o700)]
    elif (
        shutil.which("chattr")
        and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    ):
        undo = [lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)]
    else:
        pytest.skip("running as root where chattr +i does not work: no folder here refuses "
                    "root's writes, so the unwritable case cannot be made")  # fmt: skip
    try:
        try:
            (folder / "probe").write_text("x")
        except OSError:
            pass
        else:
            (folder / "probe").unlink()
            pytest.skip(f"{folder} stayed writable for this user; cannot test the case")
        yield folder
    finally:
        undo[0]()


def test_output_dir_under_a_file_or_unwritable_fails_before_downloading(
    simulator, tmp_path, unwritable_dir
):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for output_dir, message in (
        (a_file / "bars", f"--output-dir {a_file / 'bars'}: {a_file} is a file, not a folder"),
        (a_file, f"--output-dir {a_file}: is a file, not a folder"),
        (unwritable_dir, f"--output-dir {unwritable_dir}: cannot write there: "),
        (unwritable_dir / "new", f"--output-dir {unwritable_dir / 'new'}: cannot write there "
                                 f"(in {unwritable_dir}, to create it): "),
    ):  # fmt: skip
        result = fetch("--port", str(simulator.port), "--symbols", "AAPL", "--duration", "1 W",
                       "--end-datetime", END, "--output-dir", str(output_dir))  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"fetch_historical_data: error: {message}")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert simulator.requests == 0  # nothing was downloaded for any of them
    assert list(unwritable_dir.iterdir()) == [] and a_file.read_text() == "not a folder"


def test_check_output_dir(tmp_path, unwritable_dir):
    from quant_trading.download.downloader import OutputDirError, check_output_dir

    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(OutputDirError, match="cannot write there"):
        check_output_dir(unwritable_dir)
    # the library path says it per symbol, before any request
    downloader = HistoryDownloader(unwritable_dir, progress=False, env_file=None)
    result = downloader.download(DownloadRequest("AAPL", "5 mins", "1 W", parse_end(END)))
    assert not result.ok and "cannot write there" in result.error


# --- an end before the data ---------------------------------------------------------------


def test_an_end_before_the_data_says_where_the_data_starts(simulator, tmp_path):
    result = fetch("--port", str(simulator.port), "--symbols", "AAPL", "--duration", "1 M",
                   "--end-datetime", "2020-01-01", "--output-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    first = source().index[0]
    assert result.stdout.splitlines()[0] == (
        f"AAPL: error: no data up to 2020-01-01 23:59: TWS's data for AAPL starts at "
        f"{first:%Y-%m-%d %H:%M}"
    )
    assert simulator.requests == 0 and not list(tmp_path.iterdir())


# --- the live-trading guard ---------------------------------------------------------------


def test_live_account_and_gateway_live_port_are_refused_without_live(tmp_path):
    from quant_trading.simulator.account import AccountConfig

    gateway = fetch("--port", "4001", "--symbols", "AAPL")
    assert gateway.returncode == 2 and len(gateway.stderr.strip().splitlines()) == 1
    assert "port 4001 is IB Gateway's live-trading port; use the paper port 4002" in (
        gateway.stderr
    )
    sim = CountingSimulator(account=AccountConfig(account="U7654321"))
    try:
        args = ["--port", str(sim.port), "--symbols", "AAPL", "--duration", "1 W",
                "--end-datetime", END, "--output-dir", str(tmp_path)]  # fmt: skip
        refused = fetch(*args)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.strip() == (
            f"fetch_historical_data: error: TWS at 127.0.0.1:{sim.port} is logged into the "
            "live account U7654321; this tool runs on paper accounts only (ids starting with "
            "D): log TWS into Paper Trading, or pass --live (allow_live=True) if you really "
            "mean it"
        )
        assert sim.requests == 0 and not list(tmp_path.iterdir())
        allowed = fetch(*args, "--client-id", "14", "--live")
        assert allowed.returncode == 0, allowed.stderr
        assert "warning: connected to the LIVE account(s) U7654321" in allowed.stderr
        assert (tmp_path / "AAPL_5m_bars_macd.csv").exists()
    finally:
        sim.stop()


# --- connection messages ------------------------------------------------------------------


def test_the_checklist_names_the_port_used():
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch("--port", str(port), "--symbols", "AAPL", "--timeout", "5")
    assert result.returncode == 1
    assert f"3. Port {port} is available" in result.stderr and "7497" not in result.stderr


# --- Parquet files (--format parquet) -----------------------------------------------------


@pytest.mark.slow
def test_parquet_download_merges_updates_and_feeds_the_backtest(forgetful_simulator, tmp_path):
    """--format parquet writes <SYMBOL>_<tf>_bars_macd.parquet with the CSV's columns; a
    re-run merges into it, --update adds only new bars, and the backtest reads it."""
    port = str(forgetful_simulator.port)
    base = ["--port", port, "--symbols", "SPY", "--bar-size", "5 mins", "--format", "parquet",
            "--output-dir", str(tmp_path)]  # fmt: skip
    first = fetch(*base, "--duration", "1 W", "--end-datetime", "20261028 16:00:00")
    assert first.returncode == 0, first.stderr
    path = tmp_path / "SPY_5m_bars_macd.parquet"
    assert f"-> {path} " in first.stdout and sorted(p.name for p in tmp_path.iterdir()) == [
        path.name
    ]
    got = read_bars(path)
    want = source("SPY").loc[range_start(parse_end("20261028 16:00:00"), 1, "W") :]
    want = want[want.index < parse_end("20261028 16:00:00")]
    pd.testing.assert_frame_equal(got[want.columns], want, check_freq=False)
    assert list(got.columns) == ["open", "high", "low", "close", "volume", "MACD", "Signal", "Hist"]
    assert (abs(got["Hist"].to_numpy()[40:] - macd(got["close"].to_numpy()).hist[40:]) < 1e-9).all()

    # an overlapping earlier week merges in: nothing lost, nothing doubled
    again = fetch(*base, "--duration", "1 W", "--end-datetime", "20261023 16:00:00")
    assert again.returncode == 0, again.stderr
    merged = read_bars(path)
    assert merged.index.is_unique and merged.index.is_monotonic_increasing
    assert got.index.isin(merged.index).all() and len(merged) > len(got)

    update = fetch("--port", port, "--symbols", "SPY", "--update", "--format", "parquet",
                   "--output-dir", str(tmp_path))  # fmt: skip
    assert update.returncode == 0, update.stderr
    after = read_bars(path)
    added = after.index.difference(merged.index)
    assert list(added) == list(source("SPY").loc["2026-10-28 16:00":"2026-10-30 10:25"].index)
    assert f"({len(added):,} new)" in update.stdout

    backtest = subprocess.run(
        [sys.executable, "-m", "quant_trading.backtesting.run_backtest", "--data-dir",
         str(tmp_path), "--symbols", "SPY", "--timeframe", "5m", "--no-cache"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert backtest.returncode == 0, backtest.stderr
    assert f"{path}" in backtest.stdout and f"{len(after):,} 5m bars" in backtest.stdout


@pytest.mark.slow
def test_a_parquet_download_starts_from_the_csv_of_the_same_name(forgetful_simulator, tmp_path):
    """Switching an existing download to Parquet keeps its history: the new file starts from
    the CSV's bars, and the CSV stays as it was."""
    port = str(forgetful_simulator.port)
    args = ["--port", port, "--symbols", "MSFT", "--bar-size", "5 mins", "--output-dir",
            str(tmp_path), "--duration", "1 W"]  # fmt: skip
    assert fetch(*args, "--end-datetime", "20261016 16:00:00").returncode == 0
    csv = tmp_path / "MSFT_5m_bars_macd.csv"
    before = csv.read_bytes()
    result = fetch(*args, "--end-datetime", "20261030 10:30:00", "--format", "parquet")
    assert result.returncode == 0, result.stderr
    parquet = read_bars(tmp_path / "MSFT_5m_bars_macd.parquet")
    assert read_bars(csv).index.isin(parquet.index).all()
    assert parquet.index[-1] == pd.Timestamp("2026-10-30 10:25", tz="America/New_York")
    assert csv.read_bytes() == before


def test_an_unknown_format_is_refused_in_one_line():
    result = fetch("--port", "1", "--symbols", "AAPL", "--format", "xlsx")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "argument --format: invalid choice: 'xlsx'" in result.stderr
