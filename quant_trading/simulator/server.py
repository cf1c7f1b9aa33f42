"""The simulator: an asyncio TCP server speaking the TWS API, and its control methods.

:class:`Simulator` owns the market (data + replay clock), the account, the historical-data
pacer and one :class:`~.session.Session` per client connection. A single market pump task
advances the replay: every ``pump_interval`` real seconds it takes the trades of the elapsed
market time once per streamed symbol and hands them to every subscribed session, so a hundred
clients watching the same symbol cost one tick computation.

After the last session's close the market is closed: the pump finds no trades, so clients
get no ticks and no 5-second bars, and contract details list the days after the data as
closed. With ``loop`` the pump skips the closed hours instead (market time jumps to the next
open) and extends the data when it runs out (:meth:`.market.Market.extend_loop`).

Run it in-process (tests) with :meth:`Simulator.start_in_thread`, which returns the bound port
(pass port 0 for a free one), or as ``python -m quant_trading.simulator``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..bars import EXCHANGE_TZ, OHLCV, aggregate
from .account import AccountConfig, AccountSnapshot, default_account, value_account
from .faults import FARM_BROKEN, FARM_OK, LINK_LOST, LINK_RESTORED, FaultPlan
from .historical import HistoryLimits
from .market import Market, ReplayClock, SymbolData, contract_for
from .messages import MAX_SERVER_VERSION, MIN_SERVER_VERSION, ContractInfo
from .pacing import Pacer, PacingLimits
from .session import Session
from .streams import MarketUpdate, RealTimeBin

__all__ = ["Simulator", "SimulatorConfig", "RemoteHostError"]

log = logging.getLogger(__name__)

#: The longest stretch of market time one pump step replays; a longer jump (clock moved, the
#: machine slept) skips ahead instead of flooding clients with hours of ticks.
MAX_STEP_SECONDS = 3600.0


class RemoteHostError(ValueError):
    """A non-loopback listen address without ``allow_remote``."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator can be told; the CLI flags map onto these fields."""

    host: str = "127.0.0.1"
    port: int = 7497
    data_dir: Path = Path("market_data")
    speed: float = 60.0
    start: float | None = None  # market epoch seconds; None: the last session's open
    server_version: int = 176
    account: AccountConfig = field(default_factory=default_account)
    allow_remote: bool = False
    tick_interval: float = 5.0
    pump_interval: float = 0.05
    account_refresh: float = 3.0
    history_limits: HistoryLimits = field(default_factory=HistoryLimits)
    pacing: PacingLimits = field(default_factory=PacingLimits)
    unsubscribed: frozenset[str] = frozenset()
    faults: FaultPlan = field(default_factory=FaultPlan)
    next_order_id: int = 1
    loop: bool = False  # keep the market open: skip closed hours, replay again at the end
    #: Bytes queued for one client (unsent or held back by latency) before it is dropped.
    max_backlog_bytes: int = 64 * 1024 * 1024


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse to listen beyond loopback unless told to (TWS's "trusted IPs" default)."""
    if allow_remote:
        return
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise RemoteHostError(f"cannot resolve listen address {host!r}: {exc}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%")[0])
        if not addr.is_loopback:
            raise RemoteHostError(
                f"refusing to listen on {host} ({addr}): not a loopback address; "
                "pass --allow-remote to accept connections from other machines"
            )


class Simulator:
    """The TWS simulator. Create, then :meth:`start_in_thread` or ``await serve()``."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides) -> None:
        if config is None:
            config = SimulatorConfig(**overrides)
        elif overrides:
            config = SimulatorConfig(**{**_as_dict(config), **overrides})
        if not MIN_SERVER_VERSION <= config.server_version <= MAX_SERVER_VERSION:
            raise ValueError(
                f"server version {config.server_version} is outside "
                f"{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}"
            )
        check_host(config.host, config.allow_remote)
        self.config = config
        self.market = Market(config.data_dir, tick_interval=config.tick_interval,
                             speed=config.speed, start=config.start)  # fmt: skip
        begin = self.market.clock.now()
        for symbol in self.market.symbols:  # read the files now, not on the first request
            try:
                self.market.data(symbol).ensure_loaded()
            except Exception as exc:
                log.warning("cannot read data for %s: %s", symbol, exc)
        _warm_up_aggregation()
        self.market.clock.jump(begin)  # the replay starts now, not before the files were read
        self.account = config.account
        self.pacer = Pacer(config.pacing)
        self.history_limits = config.history_limits
        self.unsubscribed = frozenset(s.upper() for s in config.unsubscribed)
        self.server_version = config.server_version
        self.next_order_id = config.next_order_id
        self.latency = config.faults.latency
        self.link_down = False
        self._told_closed = False
        #: reqHistoricalData requests received (all clients), for tests and diagnostics.
        self.historical_requests = 0
        #: ... and of those, the ones refused with a pacing violation.
        self.paced_requests = 0
        self.sessions: set[Session] = set()
        self._client_ids: dict[int, Session] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self.port: int | None = None
        self._con_ids: dict[int, str] = {}

    # -- clock and lookups ----------------------------------------------------------------

    @property
    def clock(self) -> ReplayClock:
        """The replay clock (market time)."""
        return self.market.clock

    def now(self) -> float:
        """Current market time, epoch seconds."""
        return self.market.clock.now()

    @property
    def market_closed(self) -> bool:
        """True once the replay is past the last session's close and does not loop: no more
        trades, ticks or 5-second bars."""
        return not self.config.loop and self.market.closed_until(self.now()) == math.inf

    def contract(self, symbol: str) -> ContractInfo:
        """The contract the simulator reports for ``symbol``."""
        if self.market.has(symbol):
            return self.market.data(symbol).contract
        return contract_for(symbol)

    def symbol_for_con_id(self, con_id: int) -> str | None:
        """The symbol with this conId, if the data folder or the account has it."""
        if not self._con_ids:
            for symbol in {*self.market.symbols, *(p.symbol for p in self.account.positions)}:
                self._con_ids[self.contract(symbol).con_id] = symbol
        return self._con_ids.get(con_id)

    def account_snapshot(self) -> AccountSnapshot:
        """The account valued at the current simulated prices."""
        now = self.now()

        def price(symbol: str) -> float | None:
            return self.market.data(symbol).price(now) if self.market.has(symbol) else None

        def prev_close(symbol: str) -> float | None:
            if not self.market.has(symbol):
                return None
            return self.market.data(symbol).previous_close(now)

        return value_account(self.account, price, prev_close)

    def trading_hours(self, data: SymbolData) -> tuple[str, str]:
        """contractDetails' tradingHours and liquidHours for the week from today: the days
        with data, and after the data the weekdays only if the replay loops (else the market
        stays closed)."""
        today = pd.Timestamp(self.now(), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ).normalize()
        sessions = set(data.sessions().days.tolist())
        last = max(sessions, default=0)
        trading, liquid = [], []
        for k in range(7):
            day = today + pd.Timedelta(days=k)
            key = int(day.strftime("%Y%m%d"))
            d = day.strftime("%Y%m%d")
            looped = self.config.loop and key > last
            if day.day_of_week >= 5 or (key not in sessions and not looped):
                trading.append(f"{d}:CLOSED")
                liquid.append(f"{d}:CLOSED")
            else:
                trading.append(f"{d}:0400-{d}:2000")
                liquid.append(f"{d}:0930-{d}:1600")
        return ";".join(trading), ";".join(liquid)

    # -- sessions -------------------------------------------------------------------------

    def client_ids(self) -> set[int]:
        """Client ids of the connections that completed startApi (thread-safe)."""
        return set(self.call(lambda: list(self._client_ids)))

    def wait_for_clients(self, predicate, timeout: float = 5.0) -> set[int]:
        """Wait until ``predicate(client_ids)`` holds (tests: a disconnect has been seen)."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.client_ids()
            if predicate(ids):
                return ids
            if time.monotonic() > deadline:
                raise TimeoutError(f"client ids still {sorted(ids)} after {timeout} s")
            time.sleep(0.01)

    def _claim_client_id(self, client_id: int, session: Session) -> bool:
        holder = self._client_ids.get(client_id)
        if holder is not None and holder is not session and not holder.closed:
            return False
        self._client_ids[client_id] = session
        return True

    def _session_ended(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.client_id is not None and self._client_ids.get(session.client_id) is session:
            del self._client_ids[session.client_id]

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = Session(self, reader, writer)
        self.sessions.add(session)
        log.info("client connected from %s", session.peer)
        await session.run()
        log.info("client %s (id %s) disconnected", session.peer, session.client_id)

    # -- running --------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen and start the market pump; return the bound port."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self.config.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(self._loop.create_task(self._pump()))
        self._tasks.append(self._loop.create_task(self._run_fault_plan()))
        return self.port

    async def serve(self) -> None:
        """Start (if not yet) and run until :meth:`stop`."""
        if self._server is None:
            await self.start()
        assert self._stop_event is not None
        await self._stop_event.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        # Let aborted connections finish their handlers, then cancel whatever is left so the
        # loop closes without pending tasks.
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=1)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        self._tasks.clear()

    def start_in_thread(self, timeout: float = 30.0) -> int:
        """Run the server on its own event loop in a daemon thread; return the bound port."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)

            async def main() -> None:
                try:
                    await self.start()
                except BaseException as exc:
                    failure.append(exc)
                    ready.set()
                    return
                ready.set()
                await self.serve()

            try:
                loop.run_until_complete(main())
            finally:
                loop.close()
                self._stopped.set()

        self._thread = threading.Thread(target=run, name="tws-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("simulator did not start")
        if failure:
            raise failure[0]
        assert self.port is not None
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (thread-safe); waits for the server thread if there is one."""
        loop = self._loop
        if loop is not None and self._stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def call(self, func, *args):
        """Run ``func(*args)`` on the server's loop and return its result (thread-safe)."""
        assert self._loop is not None

        async def wrapper():
            return func(*args)

        if threading.current_thread() is self._thread:
            return func(*args)
        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(10)

    # -- market pump ----------------------------------------------------------------------

    async def _pump(self) -> None:
        last = self.now()
        last_account = time.monotonic()
        while True:
            await asyncio.sleep(self.config.pump_interval)
            try:
                now = self.now()
                if now < last or self.link_down:
                    last = now  # a jump back, or no data while TWS has no link to IB
                    continue
                if now - last > MAX_STEP_SECONDS:
                    last = now - MAX_STEP_SECONDS
                self._step(last, now)
                last = self._after_step(now)
                if time.monotonic() - last_account >= self.config.account_refresh:
                    last_account = time.monotonic()
                    self._refresh_accounts()
            except Exception:  # the pump must survive any one bad step
                log.exception("market pump step failed")

    def _after_step(self, now: float) -> float:
        """Market time the next step starts from: ``now``, or with ``loop`` the next open
        when the market is closed (extending the data once the replay has run out)."""
        reopen = self.market.closed_until(now)
        if reopen is None:
            return now
        if not self.config.loop:
            if reopen == math.inf and not self._told_closed:
                self._told_closed = True
                when = pd.Timestamp(self.market.end, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
                log.warning(
                    "the replay reached the end of the data (%s New York): the market is "
                    "closed; --loop keeps it open", f"{when:%Y-%m-%d %H:%M}",
                )  # fmt: skip
            return now
        # Past the end of the data: append the replayed sessions again until one lies ahead
        # (more than once only when the replay started after the data).
        while reopen == math.inf and self.market.extend_loop():
            reopen = self.market.closed_until(now)
        if reopen is None or reopen == math.inf:
            return now  # open in the appended days, or no data at all
        self.clock.jump(reopen)
        return reopen

    def _step(self, t0: float, t1: float) -> None:
        """Replay market time [t0, t1) to every subscriber."""
        by_symbol: dict[str, list[Session]] = {}
        for session in list(self.sessions):
            for symbol in session.subs.symbols():
                by_symbol.setdefault(symbol, []).append(session)
        for symbol, sessions in by_symbol.items():
            data = self.market.data(symbol)
            trades = data.trades(t0, t1)
            bins = self._finished_bins(data, t0, t1)
            delayed = any(
                sub.delayed and sub.symbol == symbol
                for session in sessions
                for sub in session.subs.market.values()
            )
            if not len(trades) and not bins and not delayed:
                continue
            update = MarketUpdate(symbol, trades, bins, t0, t1)
            for session in sessions:
                if not session.closed:
                    session.on_market(update, data)

    def _finished_bins(self, data: SymbolData, t0: float, t1: float) -> tuple[RealTimeBin, ...]:
        """5-second bars whose end falls in (t0, t1]: built from the replay's trades."""
        first_end = math.floor(t0 / 5) * 5 + 5
        if first_end > t1:
            return ()
        out = []
        for end in range(int(first_end), int(math.floor(t1)) + 1, 5):
            start = end - 5
            ticks = data.trades(start, end)
            if len(ticks):
                volume = float(ticks.size.sum())
                wap = (
                    float((ticks.price * ticks.size).sum() / volume)
                    if volume
                    else float(ticks.price.mean())
                )
                out.append(RealTimeBin(start, float(ticks.price[0]), float(ticks.price.max()),
                                       float(ticks.price.min()), float(ticks.price[-1]), volume,
                                       wap, len(ticks)))  # fmt: skip
                continue
            # No trade in the bin: TWS still sends a flat bar while the market is open.
            i = int(np.searchsorted(data.starts, start, side="right")) - 1
            if i >= 0 and data.ends[i] >= end:
                last = data.last_trade(start)
                if last is not None:
                    p = last[1]
                    out.append(RealTimeBin(start, p, p, p, p, 0.0, p, 0))
        return tuple(out)

    def _refresh_accounts(self) -> None:
        interested = [
            s for s in self.sessions if s.subs.account_updates or s.subs.pnl or s.subs.summary
        ]
        if not interested:
            return
        snap = self.account_snapshot()
        for session in interested:
            if not session.closed:
                session.on_account_refresh(snap)

    # -- control (fault injection); thread-safe -------------------------------------------

    def lose_link(self) -> None:
        """TWS loses its connection to IB: 1100 (and farm-broken notices) to every client;
        market data stops until :meth:`restore_link`."""
        self.call(self._lose_link)

    def _lose_link(self) -> None:
        self.link_down = True
        for session in list(self.sessions):
            if session.client_id is not None:
                session.error(-1, *LINK_LOST)
                for code, text in FARM_BROKEN:
                    session.error(-1, code, text)

    def restore_link(self, data_lost: bool = True) -> None:
        """The link is back: 1101 (subscriptions dropped, the client must renew them) or
        1102 (data maintained, streams resume)."""
        self.call(self._restore_link, data_lost)

    def _restore_link(self, data_lost: bool) -> None:
        self.link_down = False
        code, text = LINK_RESTORED[bool(data_lost)]
        for session in list(self.sessions):
            if session.client_id is None:
                continue
            if data_lost:
                session.drop_market_subscriptions()
            session.error(-1, code, text)
            for ok_code, ok_text in FARM_OK[:2]:
                session.error(-1, ok_code, ok_text)

    def drop_connections(self) -> None:
        """Drop every client socket at once (as when TWS dies); new connections still work."""
        self.call(self._drop_connections)

    def _drop_connections(self) -> None:
        for session in list(self.sessions):
            session.abort()

    def set_latency(self, seconds: float) -> None:
        """Delay every message to clients by ``seconds`` from now on."""
        self.latency = max(0.0, float(seconds))

    async def _run_fault_plan(self) -> None:
        plan = self.config.faults
        events = []
        if plan.link_loss_at is not None:
            events.append((plan.link_loss_at, self._lose_link))
            events.append(
                (plan.link_loss_at + plan.link_loss_for,
                 lambda: self._restore_link(plan.link_loss_data_lost))
            )  # fmt: skip
        if plan.drop_at is not None:
            events.append((plan.drop_at, self._drop_connections))
        started = time.monotonic()
        for at, action in sorted(events, key=lambda e: e[0]):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            log.warning("fault injection: %s", getattr(action, "__name__", "restore link"))
            action()


def _warm_up_aggregation() -> None:
    """Compile (or load) the shared core's bar aggregation now: the first intraday history
    request would otherwise stall every client for a second while numba gets ready."""
    index = pd.DatetimeIndex([pd.Timestamp("2026-01-02 09:30", tz=EXCHANGE_TZ)], name="time")
    aggregate(pd.DataFrame({col: [1.0] for col in OHLCV}, index=index), "5m")


def _as_dict(config: SimulatorConfig) -> dict:
    return {name: getattr(config, name) for name in SimulatorConfig.__slots__}


def default_data_dir() -> Path:
    """``market_data`` in the current folder, else the project's."""
    here = Path.cwd() / "market_data"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "market_data"
