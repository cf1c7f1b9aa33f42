"""Shared test fixtures: paths to the real market data kept beside the repo (never copied in)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real bars from public repositories); skips when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data folder {SHARED_DATA} is absent (fresh clone)")
    return SHARED_DATA


# --- TWS simulator (tests/test_simulator_*.py) ---------------------------------------------


@pytest.fixture(scope="session")
def sim_data(tmp_path_factory):
    """(folder, frames): the simulator's small deterministic demo data folder."""
    from quant_trading.simulator.testing import write_demo_data

    folder = tmp_path_factory.mktemp("sim_data")
    return folder, write_demo_data(folder)


@pytest.fixture
def simulator(sim_data):
    """Factory: ``simulator(**config)`` -> a started Simulator on a free loopback port,
    replaying the demo data from its DEMO_START at speed 1 unless told otherwise."""
    from quant_trading.simulator.testing import DEMO_START, running_simulator

    with contextlib.ExitStack() as stack:

        def start(**config):
            defaults = {"data_dir": sim_data[0], "start": DEMO_START.timestamp(),
                        "speed": 1.0, "pump_interval": 0.02}  # fmt: skip
            return stack.enter_context(running_simulator(**{**defaults, **config}))

        yield start


@pytest.fixture
def ibapi_client():
    """Factory: ``ibapi_client(port, client_id)`` -> a connected RecordingClient (ibapi)."""
    from quant_trading.simulator.testing import RecordingClient

    clients = []

    def connect(port, client_id=1, **kwargs):
        client = RecordingClient()
        clients.append(client)
        client.connect(port, client_id, **kwargs)
        return client

    yield connect
    for client in clients:
        client.disconnect()
