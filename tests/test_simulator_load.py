"""Load: 100 symbols streamed at about 4 trades a second each, without falling behind; years
of history served without stalling anyone's live data."""

from __future__ import annotations

import socket
import struct
import time

import pandas as pd

from quant_trading.simulator import PacingLimits
from quant_trading.simulator.protocol import FrameDecoder, encode_message, split_fields
from quant_trading.simulator.testing import (
    RecordingClient,
    _session_bars,
    running_simulator,
    stock,
    write_long_history,
)

SYMBOLS = 100


def test_hundred_symbols_at_four_ticks_a_second(tmp_path):
    for k in range(SYMBOLS):
        bars = _session_bars(["2026-10-30"], 1, 50.0 + k, seed=k)
        bars.to_csv(tmp_path / f"S{k:03d}_1m.csv")  # plain write: no fsync needed in a test
    start = pd.Timestamp("2026-10-30 10:00", tz="America/New_York").timestamp()
    # A trade every 5 market seconds at 20x: 4 trades a second per symbol.
    with running_simulator(data_dir=tmp_path, start=start, speed=20.0) as sim:
        sock = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
        sock.sendall(b"API\0" + struct.pack(">I", 9) + b"v100..176")
        sock.sendall(encode_message([71, 2, 1, ""]))
        for k in range(SYMBOLS):
            sock.sendall(encode_message([1, 11, k, 0, f"S{k:03d}", "STK", "", "0.0", "", "",
                                         "SMART", "", "USD", "", "", 0, "", 0, 0, ""]))  # fmt: skip
        decoder = FrameDecoder(expect_handshake=False)
        trades = [0] * SYMBOLS
        latest = 0
        began = time.monotonic()
        while time.monotonic() - began < 2.0:
            for payload in decoder.feed(sock.recv(1 << 20)):
                fields = split_fields(payload)
                if fields[0] == "1" and fields[3] == "4":
                    trades[int(fields[2])] += 1
                elif fields[0] == "46" and fields[3] == "45":
                    latest = max(latest, int(fields[4]))
        elapsed = time.monotonic() - began
        lag = sim.now() - latest  # market seconds between now and the newest trade received
        sock.close()
    rates = [n / elapsed for n in trades]
    assert min(rates) >= 3.0, f"slowest symbol got {min(rates):.2f} trades/s"
    # Trades are 5 market seconds apart (0.25 s real); falling behind would show as lag.
    assert lag < 20, f"{lag:.1f} market seconds behind"


def test_daily_history_does_not_stall_other_clients_real_time_bars(tmp_path):
    """Years of 5-minute bars aggregated to days, weeks and months for one client while
    another watches 5-second bars: the bars keep coming at their pace (a bar every 5 market
    seconds is every 83 ms at 60x; the bound is generous, a stall took seconds)."""
    write_long_history(tmp_path, "LONG", years=2)
    start = pd.Timestamp("2026-10-30 10:00", tz="America/New_York").timestamp()
    with running_simulator(data_dir=tmp_path, start=start, speed=60.0, pump_interval=0.02,
                           pacing=PacingLimits(enabled=False)) as sim:  # fmt: skip
        watcher, history = RecordingClient(), RecordingClient()
        try:
            watcher.connect(sim.port, 1)
            history.connect(sim.port, 2)
            watcher.app.reqRealTimeBars(1, stock("LONG"), 5, "TRADES", False, [])
            watcher.wait(lambda: len(watcher.of("realtimeBar", 1)) >= 3, 5, "bars flowing")
            sizes = ["1 day"] * 8 + ["1 week", "1 month"]
            began = time.monotonic()
            for req_id, size in enumerate(sizes, start=10):
                history.app.reqHistoricalData(req_id, stock("LONG"), "", "1 Y", size, "TRADES",
                                              1, 1, False, [])  # fmt: skip
            ids = range(10, 10 + len(sizes))
            history.wait(lambda: all(history.of("historicalDataEnd", r) for r in ids), 60,
                         "all history")  # fmt: skip
            served = time.monotonic()
            watcher.wait(lambda: watcher.arrivals("realtimeBar", 1)[-1][0] > served + 0.3, 5,
                         "bars after the history was served")  # fmt: skip
        finally:
            watcher.disconnect()
            history.disconnect()
    assert len(history.of("historicalData", 10)) >= 250  # a year of daily bars
    arrivals = [t for t, _ in watcher.arrivals("realtimeBar", 1)]
    during = [b - a for a, b in zip(arrivals, arrivals[1:]) if b > began]
    assert max(during) < 1.0, f"real-time bars stalled for {max(during):.2f} s"
    bar_times = [a[1] for a in watcher.of("realtimeBar", 1)]
    assert all(b - a == 5 for a, b in zip(bar_times, bar_times[1:]))  # none lost either
