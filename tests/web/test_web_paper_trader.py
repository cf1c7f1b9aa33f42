"""The paper trader posting to a real running dashboard: its fills appear in
/api/simulated-orders/ and in the summary, once each, even when the dashboard was down
(the next run posts what is left) and when every post is repeated (answers lost)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from server_process import REPO_ROOT, backend_env, free_port, running_server

from quant_trading.bars import EXCHANGE_TZ
from quant_trading.simulator.pacing import PacingLimits
from quant_trading.simulator.testing import running_simulator
from quant_trading.trading.blotter import PaperFolder, ledger
from quant_trading.trading.orders import PaperFill
from quant_trading.trading.poster import Poster

TOKEN = "paper-s3cret"


def _paper_trader(port: int, folder, url: str, seconds: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "DJANGO_"))}
    command = [sys.executable, "-m", "quant_trading.trading.paper_trader", "--port", str(port),
               "--dir", str(folder), "--symbols", "AAPL", "MSFT", "--timeframe", "1m",
               "--env-file", str(REPO_ROOT / "strategy.env"), "--quiet", "--post-to", url,
               "--api-token", TOKEN, "--duration", str(seconds)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _stored(server) -> list[dict]:
    answer = server.request(
        "GET", "/api/simulated-orders/?page_size=500", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status == 200, answer.body
    assert answer.json()["count"] <= 500
    return answer.json()["results"]


@pytest.mark.slow
def test_fills_reach_the_dashboard_once_after_an_outage_and_repeated_posts(tmp_path):
    folder = tmp_path / "paper"
    start = pd.Timestamp("2026-10-29 10:00", tz=EXCHANGE_TZ).timestamp()
    with running_simulator(data_dir=REPO_ROOT / "market_data", speed=600.0, loop=True,
                           start=start, pacing=PacingLimits(enabled=False)) as sim:  # fmt: skip
        # The dashboard is down: fills are kept in the blotter and said to be unposted.
        down = _paper_trader(sim.port, folder, f"http://127.0.0.1:{free_port()}", 8)
        assert "could not post to http://127.0.0.1:" in down.stdout
        assert "not posted yet: they are posted on the next run" in down.stdout
        assert not PaperFolder(folder).posted()
        with running_server(backend_env(tmp_path, DJANGO_API_TOKEN=TOKEN)) as server:
            # Up: the next run posts what the last one could not, then its own fills.
            _paper_trader(sim.port, folder, server.base, 4)
            fills = PaperFolder(folder).blotter.fills()
            stored = _stored(server)
            assert sorted(o["client_order_id"] for o in stored) == sorted(
                f.client_order_id for f in fills
            )
            assert len(fills) >= 4
            # Every answer lost: all posted again, none stored twice.
            (folder / "posted.csv").unlink()
            _paper_trader(sim.port, folder, server.base, 2)
            fills = PaperFolder(folder).blotter.fills()
            stored = _stored(server)
            ids = [o["client_order_id"] for o in stored]
            assert len(ids) == len(set(ids)) == len(fills)
            by_id = {o["client_order_id"]: o for o in stored}
            for fill in fills:
                order = by_id[fill.client_order_id]
                assert (order["symbol"], order["side"], order["quantity"], order["price"],
                        order["commission"]) == (fill.symbol, fill.action, fill.shares,
                                                 fill.price, fill.commission)  # fmt: skip
                assert pd.Timestamp(order["executed_at"]) == fill.time
            # The summary holds each book's position as the blotter does.
            for symbol in ("AAPL", "MSFT"):
                answer = server.request(
                    "GET",
                    f"/api/simulated-orders/summary/?symbol={symbol}&strategy=MACD%201m",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert answer.status == 200, answer.body
                (row,) = answer.json()["positions"]
                mine = [f for f in fills if f.symbol == symbol]
                assert row["fills"] == len(mine)
                assert row["position"] == pytest.approx(ledger(mine).position)


def test_a_running_poster_retries_until_the_dashboard_is_up(tmp_path):
    """Posts that fail while the dashboard is down are retried in the background, in order,
    and land once it is up; what landed is remembered."""
    folder = PaperFolder(tmp_path / "paper")
    when = pd.Timestamp("2026-10-30 10:05", tz=EXCHANGE_TZ)
    fills = [
        PaperFill(f"T.1-5m-AAPL-20261030-10{5 + k:02d}-E", "T.1", "AAPL", "5m", when, when,
                  "BUY" if k % 2 == 0 else "SELL", 10.0, 300.0 + k, 1.0, "entry", 10.0)
        for k in range(3)
    ]  # fmt: skip
    folder.blotter.append(fills, pd.Timestamp.now(tz="UTC"))
    port, lines = free_port(), []
    poster = Poster(f"http://127.0.0.1:{port}", folder, token=TOKEN, output=lines.append,
                    retry_every=0.1, timeout=2)  # fmt: skip
    poster.start(folder.blotter.fills())
    try:
        deadline = time.monotonic() + 30
        while not lines:  # the first failure is said once
            assert time.monotonic() < deadline, "no failure was told"
            time.sleep(0.05)
        assert lines[0].startswith(f"could not post to http://127.0.0.1:{port}")
        assert poster.pending == 3
        with running_server(backend_env(tmp_path, DJANGO_API_TOKEN=TOKEN), port=port) as server:
            deadline = time.monotonic() + 60
            while poster.pending:
                assert time.monotonic() < deadline, f"still {poster.pending} to post: {lines}"
                time.sleep(0.05)
            stored = _stored(server)
    finally:
        assert poster.close(wait=1) == 0
    assert sorted(o["client_order_id"] for o in stored) == [f.client_order_id for f in fills]
    assert lines[-1] == f"posting to http://127.0.0.1:{port}/api/simulated-orders/ works again"
    assert folder.posted() == {f.client_order_id: "posted" for f in fills}
