"""IB's official 10.x client (a third, independent decoder) against the simulator at the server
versions it negotiates. Runs where QT_IBAPI10_PYTHON names a Python with ``ibapi-latest``
(CI sets it up); skipped elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

PYTHON = os.environ.get("QT_IBAPI10_PYTHON")
REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not PYTHON, reason="QT_IBAPI10_PYTHON (a Python with ibapi 10.x) is not set"
)

# Runs in the 10.x Python: every request a tool of this project makes, then a summary.
CLIENT = r"""
import json, sys
from ibapi.execution import ExecutionFilter
from quant_trading.simulator.testing import RecordingClient, stock
c = RecordingClient()
c.connect(int(sys.argv[1]), 1)
a = c.app
a.reqAccountUpdates(True, "")
a.reqPositions()
a.reqAccountSummary(2, "All", "NetLiquidation,$LEDGER:ALL")
a.reqPnL(3, "DU1234567", "")
a.reqPnLSingle(4, "DU1234567", "", 265598)
a.reqContractDetails(5, stock("AAPL"))
a.reqMktData(6, stock("AAPL"), "233", False, False, [])
a.reqRealTimeBars(7, stock("AAPL"), 5, "TRADES", False, [])
a.reqHistoricalData(8, stock("AAPL"), "", "1800 S", "1 min", "TRADES", 1, 1, True, [])
a.reqHeadTimeStamp(9, stock("AAPL"), "TRADES", 1, 1)
a.reqExecutions(10, ExecutionFilter())
a.reqAccountUpdatesMulti(11, "DU1234567", "", True)
a.reqOpenOrders()
a.reqCompletedOrders(False)
a.reqHistoricalData(12, stock("AAPL"), "", "2 D", "1 min", "TRADES", 1, 1, False, [])
wanted = ("accountDownloadEnd", "positionEnd", "accountSummaryEnd", "pnl", "pnlSingle",
          "contractDetailsEnd", "realtimeBar", "historicalDataUpdate", "headTimestamp",
          "execDetailsEnd", "accountUpdateMultiEnd", "openOrderEnd", "tickString")
c.wait(lambda: all(c.of(n) for n in wanted) and len(c.of("error")) >= 4, 20, "answers")
bar = c.of("historicalData", 8)[0][1]
print(json.dumps({
    "version": a.serverVersion(),
    "callbacks": sorted({n for n, _ in c.events}),
    "errors": [[e[0], e[2]] for e in c.of("error")],
    "bar": [bar.date, bar.open, float(bar.volume), bar.barCount],
    "conId": c.of("contractDetails", 5)[0][1].contract.conId,
}))
c.disconnect()
"""


@pytest.mark.parametrize("server_version", [176, 178])
def test_official_10x_client_decodes_every_answer(simulator, server_version):
    sim = simulator(server_version=server_version, speed=60)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([PYTHON, "-c", CLIENT, str(sim.port)], capture_output=True,
                            text=True, timeout=60, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"] == server_version
    assert report["errors"] == [[-1, 2104], [-1, 2106], [-1, 2158], [12, 162]]
    assert report["conId"] == 265598
    date, _, volume, count = report["bar"]
    assert date.endswith(" US/Eastern") and volume > 0 and count == 12
    assert "Traceback" not in result.stderr
