"""Load: 100 symbols streamed at about 4 trades a second each, without falling behind."""

from __future__ import annotations

import socket
import struct
import time

import pandas as pd

from quant_trading.simulator.protocol import FrameDecoder, encode_message, split_fields
from quant_trading.simulator.testing import _session_bars, running_simulator

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
