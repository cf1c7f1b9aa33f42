"""Fixtures for the web backend's tests: DRF's test client on a real (SQLite) test database,
with the toolkit's folders pointed at temporary ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "market_data"


@pytest.fixture
def api(db, settings, tmp_path):
    """A DRF test client; ``settings.DATA_DIR``/``CACHE_DIR`` are empty temporary folders
    (tests put there what they need) and no API token is required."""
    from rest_framework.test import APIClient

    settings.DATA_DIR = tmp_path / "market_data"
    settings.CACHE_DIR = tmp_path / "backtest_results"
    settings.DATA_DIR.mkdir()
    settings.API_TOKEN = None
    return APIClient()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """The test database is a SQLite *file* (with the settings' WAL and IMMEDIATE
    transactions), not Django's default in-memory one: with an in-memory database the
    ``live_server`` hands every request thread the test's own connection, so parallel
    requests would share one connection and its transaction state, which no real server
    does. With a file each thread opens its own connection, as in production."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = tmp_path_factory.mktemp("web_db")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test_db.sqlite3")


# --- backtest caches made by the real engine ------------------------------------------------

#: The generated bars: 5-minute regular sessions from this day on.
BARS_FROM = "2026-09-01"


def write_bars_file(folder, symbol: str, days: int, start_price: float, seed: int):
    """``<folder>/<SYMBOL>_5m.csv``: ``days`` weekday sessions (09:30-16:00 New York) of
    5-minute OHLCV bars, a seeded random walk; returns the bars frame."""
    import numpy as np
    import pandas as pd

    from quant_trading.csv_store import write_bars

    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range(BARS_FROM, periods=days)
    minutes = pd.timedelta_range("09:30:00", "15:55:00", freq="5min")
    index = pd.DatetimeIndex([day + minute for day in sessions for minute in minutes])
    index = index.tz_localize("America/New_York").rename("time")
    close = np.round(start_price * np.exp(np.cumsum(rng.normal(0, 0.002, len(index)))), 2)
    open_ = np.round(np.concatenate(([start_price], close[:-1])), 2)
    spread = np.round(np.abs(rng.normal(0, 0.1, len(index))), 2)
    high, low = np.maximum(open_, close) + spread, np.minimum(open_, close) - spread
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.round(high, 2),
            "low": np.round(low, 2),
            "close": close,
            "volume": rng.integers(1_000, 50_000, len(index)).astype(float),
        },
        index=index,
    )
    write_bars(frame, folder / f"{symbol}_5m.csv")
    return frame


@pytest.fixture(scope="session")
def backtest_caches(tmp_path_factory):
    """A cache folder written by real MACD backtests on generated bars: ``5m`` for AAPL
    (20 sessions) and MSFT (10), and ``15m`` for AAPL from data one session longer (so its
    newest bar is a day later than the 5m one). Made once per session."""
    from quant_trading import backtest

    base = tmp_path_factory.mktemp("web_caches")
    data, later = base / "data", base / "later"
    data.mkdir()
    later.mkdir()
    write_bars_file(data, "AAPL", 20, 200.0, seed=1)
    write_bars_file(data, "MSFT", 10, 400.0, seed=2)
    write_bars_file(later, "AAPL", 21, 200.0, seed=1)
    cache = base / "backtest_results"
    backtest("MACD", ["AAPL", "MSFT"], "5m", data_dir=data, cache_dir=cache)
    backtest("MACD", "AAPL", "15m", data_dir=later, cache_dir=cache)
    return cache


@pytest.fixture
def caches(api, settings, backtest_caches):
    """``settings.CACHE_DIR`` filled with a copy of :func:`backtest_caches` (tests may
    change their copy)."""
    import shutil

    shutil.copytree(backtest_caches, settings.CACHE_DIR)
    return settings.CACHE_DIR


# --- the paper TWS (tests/web/test_web_account.py) ------------------------------------------


@pytest.fixture
def held_tws(simulator, monkeypatch):
    """The process's held TWS connection (``dashboard.api.tws.HELD``) with a short reconnect
    backoff; disconnected afterwards, before any simulator stops (this fixture comes after
    the simulator factory), and no reader or reconnect thread of it is left running."""
    import threading
    import time

    from dashboard.api import tws

    monkeypatch.setattr(tws.HeldTracker, "RECONNECT_BACKOFF", (0.05, 0.2))
    yield tws.HELD
    tws.HELD.disconnect()
    deadline = time.monotonic() + 5
    while leftover := [
        t.name for t in threading.enumerate() if t.name in ("ibkr-reader", "ibkr-reconnect")
    ]:
        assert time.monotonic() < deadline, f"threads left running: {leftover}"
        time.sleep(0.02)


@pytest.fixture
def paper_tws(simulator, settings):
    """A simulator as the paper TWS, its market clock frozen (speed 0) so the account's
    values hold still; ``settings.TWS`` points at it (client id 21), IBKR_TIMEOUT is 5 s."""
    from quant_trading.core.ibkr_connection import ConnectionSettings

    sim = simulator(speed=0.0)
    settings.TWS = ConnectionSettings("127.0.0.1", sim.port, 21)
    settings.TWS_TIMEOUT = 5.0
    return sim


@pytest.fixture
def sample_data(api, settings):
    """``settings.DATA_DIR`` holding the bundled 1-minute samples of AAPL, MSFT and SPY
    (``market_data/<SYM>_1m.csv``: 22 sessions, about 8,600 bars each), which the engine also
    aggregates to 3m, 5m, ... Returns the folder."""
    if not (SAMPLE / "AAPL_1m.csv").is_file():
        pytest.skip("bundled sample data missing")
    for symbol in ("AAPL", "MSFT", "SPY"):
        shutil.copy(SAMPLE / f"{symbol}_1m.csv", settings.DATA_DIR / f"{symbol}_1m.csv")
    return settings.DATA_DIR


@pytest.fixture
def fresh_throttle():
    """An empty Django cache, so no earlier test's requests count against a rate limit."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
