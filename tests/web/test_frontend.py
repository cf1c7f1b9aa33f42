"""The React dashboard (``web/frontend``): its unit tests (Vitest), its production build, and
an end-to-end run in headless Chromium (``npm run e2e``) against the real backend serving
that build, with the TWS simulator as the paper TWS.

Needs ``npm ci`` in web/frontend and Debian's ``chromium`` (``/usr/bin/chromium``); skipped
with the reason when either is missing. ``QT_UPDATE_SCREENSHOTS=1`` writes the end-to-end
run's screenshots to ``docs/dashboard_backtest.png`` and ``docs/dashboard_simulated.png``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import REPO_ROOT, backend_env, free_port, running_server

FRONTEND = REPO_ROOT / "web" / "frontend"
CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = REPO_ROOT / "market_data"

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if shutil.which("npm") is None:
        return "npm is not installed (Node 20+)"
    if not (FRONTEND / "node_modules").is_dir():
        return "web/frontend/node_modules is missing: run `npm ci` in web/frontend"
    if not CHROMIUM.is_file():
        return "/usr/bin/chromium is missing: apt-get install -y chromium"
    if not (SAMPLE / "AAPL_1m.csv").is_file():
        return "the bundled sample data (market_data/*_1m.csv) is missing"
    return None


def npm(*args: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    """``npm args...`` in web/frontend; its output is printed (shown when a test fails)."""
    done = subprocess.run(
        ["npm", *args],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CI": "1", "NO_COLOR": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    print(f"$ npm {' '.join(args)}  (exit {done.returncode})\n{done.stdout}\n{done.stderr}")
    return done


@contextlib.contextmanager
def running_simulator(timeout: float = 30) -> Iterator[int]:
    """``python -m quant_trading.simulator --port <free> --speed 0``; yields its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "quant_trading.simulator", "--port", str(port), "--speed", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                err = process.stderr.read()
                raise RuntimeError(f"simulator exited with {process.returncode}: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator did not listen on {port} within {timeout} s")
            time.sleep(0.05)  # polling for start-up
        yield port
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)


@pytest.fixture(scope="module")
def frontend():
    """The unit tests' result and a fresh production build (``dist``), once per module."""
    if reason := _missing():
        pytest.skip(reason)
    unit = npm("run", "test", timeout=900)
    build = npm("run", "build", timeout=600)
    return unit, build


def test_unit_tests_pass(frontend):
    unit, _ = frontend
    assert unit.returncode == 0, unit.stdout[-4000:] + unit.stderr[-4000:]
    assert " passed" in unit.stdout


def test_build_makes_the_bundle(frontend):
    _, build = frontend
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    index = FRONTEND / "dist" / "index.html"
    assert index.is_file()
    assert "/assets/" in index.read_text()


def test_end_to_end_in_chromium(frontend, tmp_path):
    _, build = frontend
    assert build.returncode == 0, "the build failed (see test_build_makes_the_bundle)"
    data = tmp_path / "market_data"
    data.mkdir()
    for symbol in ("AAPL", "MSFT", "SPY"):
        shutil.copy(SAMPLE / f"{symbol}_1m.csv", data / f"{symbol}_1m.csv")
    dist = str(FRONTEND / "dist")
    update = os.environ.get("QT_UPDATE_SCREENSHOTS") == "1"
    shots = REPO_ROOT / "docs" if update else tmp_path / "shots"

    with running_simulator() as sim_port:
        up = backend_env(tmp_path / "up", QT_FRONTEND_DIST=dist, IBKR_PORT=str(sim_port))
        # A second backend whose TWS port nothing listens on: "TWS down".
        down = backend_env(tmp_path / "down", QT_FRONTEND_DIST=dist, IBKR_PORT=str(free_port()))
        for env in (up, down):
            Path(env["QT_CACHE_DIR"]).parent.mkdir(parents=True, exist_ok=True)
            env["QT_DATA_DIR"] = str(data)
            env["IBKR_TIMEOUT"] = "3"
        with running_server(up) as server, running_server(down) as no_tws:
            e2e = npm(
                "run",
                "e2e",
                timeout=900,
                env={
                    "DASHBOARD_URL": server.base,
                    "DASHBOARD_URL_NO_TWS": no_tws.base,
                    "SCREENSHOT_DIR": str(shots),
                    "CHROMIUM": str(CHROMIUM),
                },
            )
    assert e2e.returncode == 0, f"npm run e2e failed:\n{e2e.stdout[-6000:]}\n{e2e.stderr[-3000:]}"
    assert "all good" in e2e.stdout
    for name in ("dashboard_backtest.png", "dashboard_simulated.png"):
        assert (shots / name).stat().st_size > 20_000, name
