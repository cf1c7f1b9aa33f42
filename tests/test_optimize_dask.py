"""``optimize --scheduler``: the same table whichever executor ran it (a LocalCluster, and a
real ``dask scheduler`` + ``dask worker`` pair started as processes on loopback), and an
unreachable or misspelt scheduler as one line with nothing written."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import REPO_ROOT, run_module

from quant_trading.backtesting.optimize import optimize

pytest.importorskip("distributed")

SAMPLE = REPO_ROOT / "market_data"
MODULE = "quant_trading.backtesting.optimize"
DROP = ("ACTIVE_STRATEGY", "MACD_", "IBKR_", "DASK_")
GRID = {"FAST": "6:12:2", "SLOW": "20,26", "SIGNAL": [9]}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder with AAPL's and MSFT's one-minute bars, an empty settings file)."""
    if not (SAMPLE / "AAPL_1m.csv").exists():
        pytest.skip("bundled sample data missing")
    root = tmp_path_factory.mktemp("optimize_dask")
    (root / "data").mkdir()
    for symbol in ("AAPL", "MSFT"):
        shutil.copy(SAMPLE / f"{symbol}_1m.csv", root / "data")
    (root / "strategy.env").write_text("")
    return root / "data", root / "strategy.env"


def common(folders, *extra: str) -> list[str]:
    data, env = folders
    return [
        "--strategy",
        "MACD",
        "--symbols",
        "AAPL",
        "MSFT",
        "--timeframe",
        "1m",
        "--data-dir",
        str(data),
        "--env-file",
        str(env),
        *extra,
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_local_cluster_gives_the_in_process_table(folders):
    data, _ = folders
    here = optimize("MACD", ["AAPL", "MSFT"], "1m", data_dir=data, grid=GRID)
    there = optimize(
        "MACD", ["AAPL", "MSFT"], "1m", data_dir=data, grid=GRID, scheduler="local", jobs=2
    )
    assert len(here.table) == 8
    pd.testing.assert_frame_equal(here.table, there.table)


@pytest.mark.slow
def test_a_walk_forward_sends_each_symbols_bars_once(folders, caplog):
    """Every window's search runs on the cluster, and the bars go out once per symbol, not
    once per window; the result is the in-process one."""
    from quant_trading import walk_forward

    data, _ = folders
    grid = {"FAST": "6,8", "SLOW": "26", "SIGNAL": [9]}
    args = dict(in_sample="10D", out_of_sample="1W", data_dir=data, grid=grid)
    here = walk_forward("MACD", ["AAPL", "MSFT"], "1m", **args)
    with caplog.at_level(logging.INFO, logger="quant_trading.backtesting.cluster"):
        there = walk_forward("MACD", ["AAPL", "MSFT"], "1m", **args, scheduler="local", jobs=2)
    assert len(here.windows) == len(there.windows) >= 2
    for a, b in zip(here.windows, there.windows):
        pd.testing.assert_frame_equal(a.search.table, b.search.table)
    pd.testing.assert_series_equal(here.equity, there.equity)
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sent the bars")]
    assert sorted(sent) == [
        "sent the bars of AAPL to the workers",
        "sent the bars of MSFT to the workers",
    ]


def _dask(*args: str, log: Path, code: Path = REPO_ROOT) -> subprocess.Popen:
    """``dask <args>`` as a user starts it, in its own process group (stopped as a whole),
    importing the toolkit and its strategies from ``code`` (by default this checkout)."""
    command = Path(sys.executable).with_name("dask")
    argv = [str(command)] if command.exists() else [sys.executable, "-m", "dask"]
    env = {**os.environ, "PYTHONPATH": str(code)}
    return subprocess.Popen(
        [*argv, *args],
        cwd=code,
        env=env,
        start_new_session=True,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the dask scheduler exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@pytest.mark.slow
def test_a_scheduler_and_workers_give_the_in_process_files(folders, tmp_path):
    """The README's recipe on loopback: `dask scheduler`, `dask worker tcp://...`, then the
    same sweep and walk-forward with --scheduler write the same tables as in-process runs."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask(
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-dashboard",
        log=tmp_path / "scheduler.log",
    )
    worker = None
    try:
        _wait_for_port(port, scheduler)
        worker = _dask(
            "worker",
            address,
            "--host",
            "127.0.0.1",
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            log=tmp_path / "worker.log",
        )
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        search = ["--param", "FAST=6:12:2", "--param", "SLOW=20,26", "--param", "SIGNAL=9"]
        walk = [*search, "--walk-forward", "10D:1W"]
        for name, args in (("sweep", search), ("walk", walk)):
            here = run_module(
                MODULE, *common(folders, *args, "--out-dir", str(tmp_path / name)), drop=DROP
            )
            assert here.returncode == 0, here.stderr
            there = run_module(
                MODULE,
                *common(
                    folders,
                    *args,
                    "--scheduler",
                    address,
                    "--out-dir",
                    str(tmp_path / f"{name}_dask"),
                ),
                drop=DROP,
            )
            assert there.returncode == 0, there.stderr
            assert "INFO" not in there.stderr  # dask's start-up chatter stays out
            mine, theirs = (sorted((tmp_path / d).glob("*.csv")) for d in (name, f"{name}_dask"))
            assert len(mine) == len(theirs) >= 1
            for a, b in zip(mine, theirs):
                assert a.read_bytes() == b.read_bytes(), a.name
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)


ABOVE_SMA = """\
import numpy as np

from quant_trading import Parameter, Strategy
from quant_trading.indicators import SMA


def positions(data, params):
    sma = data["SMA"]
    return np.where(np.isnan(sma), 0, np.where(data["close"] > sma, 1, -1)).astype(np.int8)


STRATEGY = Strategy(
    name="ABOVE_SMA",
    description="long above the SMA, short below",
    parameters=(Parameter("PERIOD", 20, int, bounds=(2, 500)),),
    indicators=lambda params: [SMA(params["PERIOD"])],
    positions=positions,
)
"""


@pytest.mark.slow
def test_a_strategy_path_file_is_sent_to_the_workers(folders, tmp_path):
    """A strategy from a --strategy-path file runs on a cluster whose workers never saw the
    file: it is sent to them, and the table equals the in-process one."""
    mine = tmp_path / "my strategies"
    mine.mkdir()
    (mine / "above_sma.py").write_text(ABOVE_SMA)
    args = ["--strategy", "ABOVE_SMA", "--strategy-path", str(mine), "--param", "PERIOD=10,30,60"]
    tables = []
    for name, extra in (("here", []), ("there", ["--scheduler", "local", "--jobs", "2"])):
        out = tmp_path / name
        result = run_module(
            MODULE, *common(folders, *extra, "--out-dir", str(out)), *args, drop=DROP, timeout=300
        )
        assert result.returncode == 0, result.stderr
        tables.append(sorted(out.glob("*.csv")))
    assert len(tables[0]) == len(tables[1]) >= 1
    for a, b in zip(*tables):
        assert a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.slow
def test_workers_with_other_toolkit_code_are_refused(folders, tmp_path):
    """Workers importing a copy of the toolkit that differs by one comment (the same version
    number) are refused with one line, before anything runs or is written."""
    code = tmp_path / "other checkout"
    for package in ("quant_trading", "strategies"):
        shutil.copytree(REPO_ROOT / package, code / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    with (code / "quant_trading" / "macd.py").open("a") as changed:
        changed.write("# changed\n")
    _, error = _refused(folders, tmp_path, code, code)
    assert error.startswith("optimize: error: Dask worker tcp://127.0.0.1:")
    assert "has quant_trading code" in error


def _refused(folders, tmp_path, scheduler_code: Path, worker_code: Path) -> tuple[str, str]:
    """A two-combination search on a `dask scheduler` and a `dask worker` started as
    processes on loopback, importing the toolkit from these folders, which refuse it: exit
    1, nothing on stdout and nothing written. Returns the scheduler's address and stderr."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                      log=tmp_path / "scheduler.log", code=scheduler_code)  # fmt: skip
    worker = None
    try:
        _wait_for_port(port, scheduler)
        worker = _dask("worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                       "--no-dashboard", log=tmp_path / "worker.log", code=worker_code)  # fmt: skip
        out = tmp_path / "optimize"
        argv = common(folders, "--param", "FAST=6,8", "--param", "SLOW=26", "--scheduler",
                      address, "--out-dir", str(out))  # fmt: skip
        result = run_module(MODULE, *argv, drop=DROP, timeout=180)
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert result.stdout == "" and not out.exists()
    return address, result.stderr


#: A ``sitecustomize`` for a machine without the toolkit: as if neither it nor its bundled
#: strategies were installed (the editable install would otherwise be found anywhere).
NO_TOOLKIT = """\
import sys

class NoToolkit:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("quant_trading", "strategies"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoToolkit())
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bare", "message"),
    [
        ("worker", "a Dask worker of {address} cannot import quant_trading: install this toolkit"),
        ("scheduler", "the Dask scheduler at {address} cannot import quant_trading: install"),
    ],
)
def test_a_cluster_machine_without_the_toolkit_is_one_line(folders, tmp_path, bare, message):
    """The workers, or the scheduler (it unpickles each task, which names the toolkit's
    function), cannot import the toolkit: one line naming which, before anything runs."""
    without = tmp_path / "no toolkit"
    without.mkdir()
    (without / "sitecustomize.py").write_text(NO_TOOLKIT)
    scheduler_code = without if bare == "scheduler" else REPO_ROOT
    worker_code = without if bare == "worker" else REPO_ROOT
    address, error = _refused(folders, tmp_path, scheduler_code, worker_code)
    assert error.startswith("optimize: error: " + message.format(address=address))


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (
            ["--scheduler", "tcp://127.0.0.1:{port}"],
            "cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: Connection refused",
            1,
        ),
        (["--scheduler", "my-cluster"], "--scheduler my-cluster: use tcp://HOST:PORT", 2),
        (["--scheduler", "tcp://127.0.0.1:{port}", "--jobs", "2"], "--jobs 2: the cluster at", 2),
        (
            ["--scheduler", "local", "--method", "optuna", "--trials", "3"],
            "--method optuna asks for one trial at a time",
            2,
        ),
    ],
)
def test_scheduler_problems_are_one_line_nothing_written(folders, tmp_path, args, message, code):
    port = free_port()  # nothing listens there
    out = tmp_path / "optimize"
    args = [a.format(port=port) for a in args]
    result = run_module(
        MODULE,
        *common(folders, "--param", "FAST=6,8", "--param", "SLOW=26", *args, "--out-dir", str(out)),
        drop=DROP,
        timeout=60,
    )
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("optimize: error: ") and result.stderr.count("\n") == 1
    assert message.format(port=port) in result.stderr
    assert result.stdout == "" and not out.exists()


def test_dask_is_imported_only_for_a_scheduler(folders, tmp_path):
    argv = common(folders, "--param", "FAST=6", "--param", "SLOW=26", "--out-dir", str(tmp_path))
    code = (
        "import sys; from quant_trading.cli.optimize import main; "
        f"main({argv!r}); print('distributed' in sys.modules, 'dask' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )
    assert result.stdout.splitlines()[-1] == "False False", result.stderr
