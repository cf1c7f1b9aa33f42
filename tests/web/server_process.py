"""The dashboard backend as a real server process (``manage.py runserver`` or gunicorn) on a
free loopback port, for tests that talk HTTP to it the way a browser does."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MANAGE = REPO_ROOT / "web" / "backend" / "manage.py"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backend_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell, minus anything that would leak a developer's
    settings in, with the database and the toolkit's folders under ``tmp_path``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IBKR_", "DJANGO_", "QT_", "DATABASE_URL"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        QT_DATA_DIR=str(tmp_path / "market_data"),
        QT_CACHE_DIR=str(tmp_path / "backtest_results"),
        QT_FRONTEND_DIST=str(tmp_path / "no-dist"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python web/backend/manage.py args...`` from the repo root, output captured."""
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
    )


@dataclass
class Response:
    """An HTTP answer: status, headers and body (parsed when it is JSON)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    """A running server: ``request()`` talks to it."""

    base: str
    process: subprocess.Popen
    stderr: str = ""  # what the server logged, once it has stopped

    def request(
        self,
        method: str,
        path: str,
        body=None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> Response:
        """Send one request; HTTP errors are returned, not raised."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate(timeout=5)
            raise RuntimeError(f"server exited with {process.returncode}: {err[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # polling for start-up, not timing anything
    raise TimeoutError(f"server did not listen on {port} within {timeout} s")


@contextlib.contextmanager
def running_server(
    env: dict[str, str], gunicorn: bool = False, timeout: float = 60, port: int | None = None
) -> Iterator[Server]:
    """Migrate, then start ``runserver`` (threaded, no reloader) or gunicorn (2 threads) on
    ``port`` (default: a free one); stopped on exit."""
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    port = port or free_port()
    if gunicorn:
        command = [
            sys.executable, "-m", "gunicorn", "--chdir", str(MANAGE.parent),
            "--bind", f"127.0.0.1:{port}", "--threads", "4", "--timeout", "120",
            "dashboard.wsgi",
        ]  # fmt: skip
    else:
        command = [sys.executable, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_for_port(port, process, timeout)
        yield server
    finally:
        process.terminate()
        try:
            _, server.stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, server.stderr = process.communicate(timeout=10)
