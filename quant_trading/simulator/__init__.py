"""An offline TWS: a loopback server that speaks the TWS API socket protocol.

Real clients (ibapi's ``EClient``, ib_async, the toolkit's own tools) connect to it as to a
paper-trading TWS. It replays the OHLCV CSVs of a data folder as live ticks and 5-second bars
(until the last session's close, or on and on with ``loop``), serves historical bars with IB's
limits and pacing errors, reports a configurable paper account, and injects faults (lost link
to IB, dropped socket, latency) on demand.

Start it with ``python -m quant_trading.simulator`` or in-process::

    sim = Simulator(port=0, data_dir="market_data", speed=60)
    port = sim.start_in_thread()
    ...
    sim.stop()

Modules: :mod:`.protocol` (framing, handshake), :mod:`.messages` (outgoing layouts per server
version), :mod:`.requests` (incoming requests), :mod:`.account`, :mod:`.market` (data, replay
clock, ticks), :mod:`.historical` (IB's validation and limits), :mod:`.pacing`, :mod:`.faults`,
:mod:`.session` (one connection), :mod:`.server` (the server and its control methods).
"""

from .account import AccountConfig, PositionConfig, default_account, load_account
from .faults import FaultPlan
from .historical import HistoryLimits
from .pacing import PacingLimits
from .server import Simulator, SimulatorConfig

__all__ = [
    "AccountConfig",
    "FaultPlan",
    "HistoryLimits",
    "PacingLimits",
    "PositionConfig",
    "Simulator",
    "SimulatorConfig",
    "default_account",
    "load_account",
]
