"""``python -m quant_trading.simulator``: run the TWS simulator until Ctrl-C.

Example::

    python -m quant_trading.simulator --port 7497 --data-dir market_data --speed 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import pandas as pd

from ..bars import EXCHANGE_TZ
from .account import AccountError, default_account, load_account
from .faults import FaultPlan
from .messages import MAX_SERVER_VERSION, MIN_SERVER_VERSION
from .pacing import PacingLimits
from .server import RemoteHostError, Simulator, SimulatorConfig, default_data_dir


def build_parser() -> argparse.ArgumentParser:
    """The command line, flags as documented in the README."""
    p = argparse.ArgumentParser(
        prog="python -m quant_trading.simulator",
        description="An offline TWS: a loopback server speaking the TWS API socket protocol, "
        "replaying market_data/ CSVs as live ticks and serving historical bars, a paper "
        "account, IB's limits and error codes.",
    )
    p.add_argument("--port", type=int, default=7497, help="listen port (default 7497; 0 = any)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (off by default, as TWS trusts 127.0.0.1)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of <SYMBOL>_<tf>.csv bar files (default market_data/)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="market seconds per real second (default 60: a minute per second)",
    )
    p.add_argument(
        "--start",
        default=None,
        help="replay start, New York time, e.g. '2026-10-30 09:30' "
        "(default: one hour after the last session's open)",
    )
    p.add_argument(
        "--server-version",
        type=int,
        default=176,
        help=f"highest API server version to offer ({MIN_SERVER_VERSION}.."
        f"{MAX_SERVER_VERSION}, default 176)",
    )
    p.add_argument(
        "--account-file",
        type=Path,
        default=None,
        help="JSON account (cash, positions); default: a DU... paper account",
    )
    p.add_argument(
        "--tick-interval",
        type=float,
        default=5.0,
        help="market seconds between replayed trades (default 5)",
    )
    p.add_argument(
        "--unsubscribed",
        default="",
        help="comma-separated symbols without a live data subscription (354/10167)",
    )
    p.add_argument(
        "--loop",
        action="store_true",
        help="keep the market open: skip the closed hours between sessions, and after the "
        "last session replay the replayed sessions again on the following weekdays "
        "(default: the market closes after the last session)",
    )
    p.add_argument("--no-pacing", action="store_true", help="disable historical-data pacing")
    p.add_argument(
        "--pace-all-bar-sizes",
        action="store_true",
        help="apply IB's pacing rules to every historical request, stricter than IB, which "
        "publishes them for bars of 30 s or less (the default scope)",
    )
    # The old opt-in to IB's scope, which is now the default; still accepted.
    p.add_argument("--pace-small-bars-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every message")
    p.add_argument(
        "--link-loss-at",
        type=float,
        default=None,
        help="seconds after start at which TWS loses its link to IB (1100)",
    )
    p.add_argument(
        "--link-loss-for",
        type=float,
        default=10.0,
        help="how long the link stays down (default 10 s)",
    )
    p.add_argument(
        "--link-keeps-data",
        action="store_true",
        help="restore with 1102 (data maintained) instead of 1101 (data lost)",
    )
    p.add_argument(
        "--drop-at",
        type=float,
        default=None,
        help="seconds after start at which every client socket is dropped",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    return p


def _parse_start(text: str | None) -> float | None:
    if not text:
        return None
    ts = pd.Timestamp(text)
    ts = ts.tz_localize(EXCHANGE_TZ) if ts.tz is None else ts
    return ts.timestamp()


def main(argv: list[str] | None = None) -> int:
    """Run the simulator; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        account = load_account(args.account_file) if args.account_file else default_account()
        start = _parse_start(args.start)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: --start {args.start!r}: {exc}", file=sys.stderr)
        return 2
    if not MIN_SERVER_VERSION <= args.server_version <= MAX_SERVER_VERSION:
        print(f"error: --server-version must be {MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}",
              file=sys.stderr)  # fmt: skip
        return 2
    data_dir = args.data_dir or default_data_dir()
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        data_dir=data_dir,
        speed=args.speed,
        start=start,
        server_version=args.server_version,
        account=account,
        allow_remote=args.allow_remote,
        tick_interval=args.tick_interval,
        unsubscribed=frozenset(s.strip().upper() for s in args.unsubscribed.split(",") if s),
        pacing=PacingLimits(enabled=not args.no_pacing, all_bar_sizes=args.pace_all_bar_sizes),
        loop=args.loop,
        faults=FaultPlan(
            link_loss_at=args.link_loss_at,
            link_loss_for=args.link_loss_for,
            link_loss_data_lost=not args.link_keeps_data,
            drop_at=args.drop_at,
            latency=args.latency,
        ),
    )
    try:
        sim = Simulator(config)
    except RemoteHostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(sim, data_dir))


def _shown(folder: Path) -> Path:
    """``folder`` relative to the current one when it lies inside (as the user gave it)."""
    try:
        return folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return folder


async def _run(sim: Simulator, data_dir: Path) -> int:
    try:
        port = await sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {sim.config.host}:{sim.config.port}: {exc.strerror}",
              file=sys.stderr)  # fmt: skip
        return 1
    now = pd.Timestamp(sim.now(), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
    symbols = ", ".join(sim.market.symbols) or "none"
    print(
        f"TWS simulator listening on {sim.config.host}:{port} (server version "
        f"{sim.server_version}, account {sim.account.account}, symbols {symbols} from "
        f"{_shown(data_dir)}, market time {now:%Y-%m-%d %H:%M} New York at {sim.clock.speed:g}x"
        f"{', looping' if sim.config.loop else ''}); Ctrl-C to stop",
        flush=True,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers in asyncio: Ctrl-C arrives as KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, sim._stop_event.set)
    try:
        await sim.serve()
    except (KeyboardInterrupt, asyncio.CancelledError):
        await sim._shutdown()
    print("TWS simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    from ..cli import exit_with

    # Everything is closed and said; skip the interpreter's teardown of numba, pandas and the
    # loaded data, which can take longer than the shutdown itself, so that a SIGTERM (a
    # service manager, a test) stops the simulator within a second.
    exit_with(main, fast=True)
