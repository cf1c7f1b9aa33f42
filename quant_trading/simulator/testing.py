"""Helpers for tests that run real clients against the simulator (this project's and yours).

* :func:`write_demo_data`: a small deterministic data folder (AAPL and MSFT with 1-minute bars
  for three sessions and 5-minute bars for fifteen, SPY with 5-minute bars only).
* :func:`write_long_history`: one symbol with years of 5-minute bars, as the downloader keeps
  them, for tests of how the simulator copes with real amounts of history.
* :func:`running_simulator`: a context manager that starts a :class:`Simulator` on a free
  loopback port in a thread and stops it afterwards.
* :class:`RecordingClient`: an ibapi ``EClient``/``EWrapper`` that records every callback and
  lets a test wait, always with a timeout, until a condition on the record holds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..bars import EXCHANGE_TZ, aggregate
from ..csv_store import write_bars
from .server import Simulator

__all__ = [
    "DEMO_START",
    "RecordingClient",
    "ib_async_client",
    "running_simulator",
    "stock",
    "write_demo_data",
    "write_long_history",
]

#: Market time the demo data is meant to be replayed from: mid-morning of its last session.
DEMO_START = pd.Timestamp("2026-10-30 10:00", tz=EXCHANGE_TZ)
ONE_MINUTE_DAYS = ("2026-10-28", "2026-10-29", "2026-10-30")
FIVE_MINUTE_ONLY_DAYS = (
    "2026-10-12", "2026-10-13", "2026-10-14", "2026-10-15", "2026-10-16",
    "2026-10-19", "2026-10-20", "2026-10-21", "2026-10-22", "2026-10-23",
    "2026-10-26", "2026-10-27",
)  # fmt: skip


def _session_bars(days, minutes: int, start_price: float, seed: int) -> pd.DataFrame:
    """A seeded random walk of regular-hours bars: prices in cents, integer volumes."""
    rng = np.random.default_rng(seed)
    index = []
    for day in days:
        open_ = pd.Timestamp(f"{day} 09:30", tz=EXCHANGE_TZ)
        index.extend(open_ + pd.Timedelta(minutes=minutes * k) for k in range(390 // minutes))
    n = len(index)
    closes = np.round(start_price + np.cumsum(rng.normal(0, 0.15, n)), 2)
    opens = np.round(np.concatenate([[start_price], closes[:-1]]), 2)
    highs = np.round(np.maximum(opens, closes) + rng.uniform(0, 0.2, n), 2)
    lows = np.round(np.minimum(opens, closes) - rng.uniform(0, 0.2, n), 2)
    volumes = rng.integers(1_000, 50_000, n).astype(float)
    return pd.DataFrame(
        {"open": opens, "high": highs, "low": lows, "close": closes, "volume": volumes},
        index=pd.DatetimeIndex(index, name="time"),
    )


def write_demo_data(folder: str | Path) -> dict[str, dict[str, pd.DataFrame]]:
    """Write the demo data folder (see the module doc); return the frames by symbol, tf."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for k, (symbol, price) in enumerate([("AAPL", 300.0), ("MSFT", 500.0), ("SPY", 650.0)]):
        early = _session_bars(FIVE_MINUTE_ONLY_DAYS, 5, price - 5, seed=100 + k)
        if symbol == "SPY":
            frames = {"5m": pd.concat([early, _session_bars(ONE_MINUTE_DAYS, 5, price, 200 + k)])}
        else:
            one = _session_bars(ONE_MINUTE_DAYS, 1, price, seed=300 + k)
            # Over the 1-minute sessions the 5-minute file agrees with it, as real files do.
            frames = {"1m": one, "5m": pd.concat([early, aggregate(one, "5m")])}
        for tf, frame in frames.items():
            write_bars(frame, folder / f"{symbol}_{tf}.csv")
        out[symbol] = frames
    return out


def write_long_history(folder: str | Path, symbol: str = "LONG", years: int = 2) -> pd.DataFrame:
    """Write ``<symbol>_5m.csv``: ``years`` of weekday sessions of 5-minute bars ending on the
    demo data's last day (2026-10-30); return the frame."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    last = DEMO_START.normalize().tz_localize(None)
    days = pd.bdate_range(last - pd.DateOffset(years=years), last)
    minutes = pd.to_timedelta(np.arange(570, 960, 5), unit="min")  # 09:30 .. 15:55
    wall = (days.values[:, None] + minutes.values[None, :]).ravel()
    index = pd.DatetimeIndex(wall).tz_localize(EXCHANGE_TZ).rename("time")
    rng = np.random.default_rng(7)
    n = len(index)
    closes = np.round(100.0 + np.cumsum(rng.normal(0, 0.15, n)), 2)
    opens = np.round(np.concatenate([[100.0], closes[:-1]]), 2)
    bars = pd.DataFrame(
        {"open": opens, "high": np.round(np.maximum(opens, closes) + rng.uniform(0, 0.2, n), 2),
         "low": np.round(np.minimum(opens, closes) - rng.uniform(0, 0.2, n), 2),
         "close": closes, "volume": rng.integers(1_000, 50_000, n).astype(float)},
        index=index,
    )  # fmt: skip
    # Naive New York times (as users' files have them) write ten times faster than tz-aware
    # ones; a plain write, as a test folder needs no fsync.
    bars.tz_localize(None).to_csv(folder / f"{symbol}_5m.csv")
    return bars


@contextlib.contextmanager
def running_simulator(**config) -> Iterator[Simulator]:
    """A simulator on a free loopback port (``sim.port``), stopped on exit."""
    config = {"host": "127.0.0.1", "port": 0, **config}
    sim = Simulator(**config)
    sim.start_in_thread()
    try:
        yield sim
    finally:
        sim.stop()


def ib_async_client(timeout: float = 10.0):
    """An ``ib_async.IB`` whose requests give up after ``timeout`` seconds (its default is to
    wait forever), so a test cannot hang on a missing answer."""
    from ib_async import IB

    ib = IB()
    ib.RequestTimeout = timeout
    return ib


def stock(symbol: str, exchange: str = "SMART", currency: str = "USD"):
    """An ibapi ``Contract`` for a stock."""
    from ibapi.contract import Contract

    contract = Contract()
    contract.symbol, contract.secType = symbol, "STK"
    contract.exchange, contract.currency = exchange, currency
    return contract


_CALLBACKS = (
    "nextValidId", "managedAccounts", "error", "connectionClosed", "updateAccountValue",
    "updatePortfolio", "updateAccountTime", "accountDownloadEnd", "position", "positionEnd",
    "accountSummary", "accountSummaryEnd", "pnl", "pnlSingle", "tickPrice", "tickSize",
    "tickString", "tickReqParams", "tickSnapshotEnd", "marketDataType", "realtimeBar",
    "historicalData", "historicalDataEnd", "historicalDataUpdate", "headTimestamp",
    "contractDetails", "contractDetailsEnd", "currentTime", "openOrderEnd", "execDetailsEnd",
    "accountUpdateMulti", "accountUpdateMultiEnd",
)  # fmt: skip


class RecordingClient:
    """An ibapi client that records callbacks as ``(name, args)``; see the module doc.

    ``client.app`` is the ``EClient`` to send requests with; :meth:`wait` blocks until a
    predicate holds or fails with AssertionError after the timeout, so nothing can hang.
    """

    def __init__(self) -> None:
        from ibapi.client import EClient
        from ibapi.wrapper import EWrapper

        self.events: list[tuple[str, tuple]] = []
        self.times: list[float] = []  # time.monotonic() at which each event arrived
        self._cond = threading.Condition()
        namespace = {name: _recorder(self, name) for name in _CALLBACKS}

        def init(app) -> None:
            EWrapper.__init__(app)
            EClient.__init__(app, app)

        namespace["__init__"] = init
        self.app = type("RecordingApp", (EWrapper, EClient), namespace)()
        self._thread: threading.Thread | None = None

    def record(self, name: str, args: tuple) -> None:
        """Add one callback to the record (called from ibapi's message loop)."""
        with self._cond:
            self.events.append((name, args))
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def connect(self, port: int, client_id: int = 1, timeout: float = 10.0,
                wait_ready: bool = True) -> None:  # fmt: skip
        """Connect, run the message loop in a thread; wait for nextValidId if asked."""
        self.app.connect("127.0.0.1", port, client_id)
        self._thread = threading.Thread(target=self.app.run, name="ibapi-loop", daemon=True)
        self._thread.start()
        if wait_ready:
            self.wait(lambda: self.of("nextValidId"), timeout, "nextValidId")

    def of(self, name: str, req_id: int | None = None) -> list[tuple]:
        """Arguments of every recorded ``name`` callback (whose first argument is ``req_id``,
        if given)."""
        with self._cond:
            return [a for n, a in self.events if n == name and (req_id is None or a[0] == req_id)]

    def arrivals(self, name: str, req_id: int | None = None) -> list[tuple[float, tuple]]:
        """``(time.monotonic() on arrival, args)`` of every recorded ``name`` callback."""
        with self._cond:
            return [(t, a) for t, (n, a) in zip(self.times, self.events, strict=True)
                    if n == name and (req_id is None or a[0] == req_id)]  # fmt: skip

    def errors(self, req_id: int | None = None) -> list[tuple[int, int, str]]:
        """Recorded ``(reqId, code, text)`` errors."""
        return [tuple(a[:3]) for a in self.of("error", req_id)]

    def error_codes(self, req_id: int | None = None) -> list[int]:
        """Recorded error codes (for ``req_id`` if given)."""
        return [e[1] for e in self.errors(req_id)]

    def wait(self, predicate: Callable[[], object], timeout: float = 10.0, what: str = ""):
        """Return ``predicate()`` once truthy; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
                self._cond.wait(min(left, 0.1))

    def disconnect(self) -> None:
        """Disconnect and join the message loop."""
        self.app.disconnect()
        if self._thread is not None:
            self._thread.join(5)


def _recorder(client: RecordingClient, name: str):
    def callback(app, *args):
        client.record(name, args)

    callback.__name__ = name
    return callback
