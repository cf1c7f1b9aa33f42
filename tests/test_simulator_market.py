"""Live market data from the replay: ticks and 5-second bars, seen by ibapi and ib_async.

The proof that the replay is faithful: 1-minute bars a client builds from the ticks (and from
the 5-second bars) equal the source CSV's 1-minute bars, field by field.
"""

from __future__ import annotations

import pandas as pd
import pytest

from quant_trading.bars import BarAggregator, bars_to_frame
from quant_trading.simulator.testing import DEMO_START, ib_async_client, stock

LAST_TIMESTAMP, LAST, LAST_SIZE, VOLUME = 45, 4, 5, 8


def trades_from_ticks(client, req_id: int) -> list[tuple[float, float, float]]:
    """(market time, price, size) of each LAST tick: LAST_TIMESTAMP, then LAST with its size."""
    out, stamp, price = [], None, None
    for name, args in list(client.events):
        if not args or args[0] != req_id:
            continue
        if name == "tickString" and args[1] == LAST_TIMESTAMP:
            stamp = float(args[2])
        elif name == "tickPrice" and args[1] == LAST:
            price = args[2]
        elif name == "tickSize" and args[1] == LAST_SIZE and price is not None:
            out.append((stamp, price, float(args[2])))
            price = None
    return out


def complete_minutes(bars: list, after: pd.Timestamp) -> pd.DataFrame:
    frame = bars_to_frame(bars)
    return frame[frame.index > after]


def test_one_minute_bars_from_ticks_and_5s_bars_equal_the_csv(simulator, ibapi_client,
                                                               sim_data):  # fmt: skip
    sim = simulator(speed=300)  # five market minutes per second
    client = ibapi_client(sim.port, 1)
    client.app.reqMktData(1, stock("AAPL"), "", False, False, [])
    client.app.reqRealTimeBars(2, stock("AAPL"), 5, "TRADES", False, [])
    target = DEMO_START + pd.Timedelta(minutes=7)
    client.wait(lambda: any(a[1] >= target.timestamp() for a in client.of("realtimeBar", 2)),
                15, "seven market minutes of 5-second bars")  # fmt: skip
    client.app.cancelMktData(1)
    client.app.cancelRealTimeBars(2)

    source = sim_data[1]["AAPL"]["1m"]
    from_ticks = BarAggregator("1m")
    bars = []
    trades = trades_from_ticks(client, 1)
    for t, price, size in trades[1:]:  # the first is the snapshot's last trade
        done = from_ticks.add_trade(t, price, size)
        if done is not None:
            bars.append(done)
    first = pd.Timestamp(trades[1][0], unit="s", tz="UTC")
    built = complete_minutes(bars, first)
    assert len(built) >= 4
    expected = source.loc[built.index]
    pd.testing.assert_frame_equal(built, expected, check_freq=False, check_index_type=False)

    from_5s = BarAggregator("1m")
    bars5 = []
    for _, t, o, h, lo, c, v, _wap, count in client.of("realtimeBar", 2):
        assert t % 5 == 0 and lo <= min(o, c) <= max(o, c) <= h and count >= 1
        done = from_5s.add_bar(t, o, h, lo, c, float(v))
        if done is not None:
            bars5.append(done)
    first5 = pd.Timestamp(client.of("realtimeBar", 2)[0][1], unit="s", tz="UTC")
    built5 = complete_minutes(bars5, first5)
    assert len(built5) >= 5
    pd.testing.assert_frame_equal(
        built5, source.loc[built5.index], check_freq=False, check_index_type=False
    )

    # VOLUME is the session's running total: it grows by each trade's size.
    volumes = [a[2] for a in client.of("tickSize", 1) if a[1] == VOLUME]
    sizes = [s for _, _, s in trades[1:]]
    assert volumes[-1] - volumes[0] == pytest.approx(sum(sizes[: len(volumes) - 1]), abs=1)


def test_snapshot_ticks_are_the_current_quote(simulator, ibapi_client, sim_data):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    client.app.reqMktData(5, stock("AAPL"), "", True, False, [])
    client.wait(lambda: client.of("tickSnapshotEnd", 5), 5, "tickSnapshotEnd")
    prices = {a[1]: a[2] for a in client.of("tickPrice", 5)}
    source = sim_data[1]["AAPL"]["1m"]
    today = source[(source.index >= DEMO_START.normalize()) & (source.index < DEMO_START)]
    yesterday = source[source.index < DEMO_START.normalize()]
    last = float(today["close"].iloc[-1])
    assert prices[LAST] == last
    assert prices[1] == pytest.approx(last - 0.01) and prices[2] == pytest.approx(last + 0.01)
    assert prices[6] == today["high"].max() and prices[7] == today["low"].min()  # HIGH, LOW
    assert prices[14] == today["open"].iloc[0]  # OPEN
    assert prices[9] == yesterday["close"].iloc[-1]  # CLOSE = previous session's close
    volume = [a[2] for a in client.of("tickSize", 5) if a[1] == VOLUME][0]
    assert volume == today["volume"].sum()
    _, min_tick, bbo, permissions = client.of("tickReqParams", 5)[0]
    assert min_tick == 0.01


def test_market_data_errors(simulator, ibapi_client, sim_data):
    sim = simulator(speed=0, unsubscribed={"MSFT"})
    client = ibapi_client(sim.port, 1)
    client.app.reqMktData(1, stock("NOPE"), "", False, False, [])
    client.app.reqMktData(2, stock("MSFT"), "", False, False, [])
    client.app.reqMktData(3, stock("AAPL", "LSE"), "", False, False, [])
    client.wait(lambda: len(client.errors()) >= 6, 5, "errors")
    assert client.error_codes(1) == [200]
    assert client.errors(1)[0][2] == "No security definition has been found for the request"
    assert client.error_codes(2) == [354]
    assert client.error_codes(3) == [200]
    assert not client.of("tickPrice")
    # Delayed data for the unsubscribed symbol: warning 10167 and delayed tick types.
    client.app.reqMarketDataType(3)
    client.app.reqMktData(4, stock("MSFT"), "", False, False, [])
    client.wait(lambda: client.of("tickPrice", 4), 5, "delayed ticks")
    assert client.error_codes(4) == [10167]
    assert client.of("marketDataType", 4) == [(4, 3)]
    assert {a[1] for a in client.of("tickPrice", 4)} <= {66, 67, 68, 72, 73, 75, 76}
    client.wait(lambda: any(a[1] == 88 for a in client.of("tickString", 4)), 5, "timestamp")
    # Delayed means 15 minutes behind: at 10:00 the last delayed trade is 09:44's close.
    source = sim_data[1]["MSFT"]["1m"]
    delayed_last = [a[2] for a in client.of("tickPrice", 4) if a[1] == 68]
    assert delayed_last == [source.loc[DEMO_START - pd.Timedelta(minutes=16), "close"]]
    stamp = [int(a[2]) for a in client.of("tickString", 4) if a[1] == 88]
    assert stamp == [int((DEMO_START - pd.Timedelta(minutes=15, seconds=5)).timestamp())]


def test_ib_async_ticker_and_realtime_bars(simulator, sim_data):
    from ib_async import Stock

    sim = simulator(speed=120)
    ib = ib_async_client()
    ib.connect("127.0.0.1", sim.port, clientId=2, timeout=10)
    try:
        contract = Stock("MSFT", "SMART", "USD")
        [qualified] = ib.qualifyContracts(contract)
        assert qualified.conId == 272093 and qualified.primaryExchange == "NASDAQ"
        ticker = ib.reqMktData(contract)
        bars = ib.reqRealTimeBars(contract, 5, "TRADES", False)
        deadline = 50
        while len(bars) < 6 and deadline:
            ib.sleep(0.1)
            deadline -= 1
        assert len(bars) >= 6
        source = sim_data[1]["MSFT"]["1m"]
        for bar in bars:
            minute = pd.Timestamp(bar.time).floor("1min")
            row = source.loc[minute]
            assert row["low"] <= bar.low <= bar.high <= row["high"]
        assert ticker.bid == pytest.approx(ticker.last - 0.01)
        assert ticker.ask == pytest.approx(ticker.last + 0.01)
        assert ticker.close == source[source.index < DEMO_START.normalize()]["close"].iloc[-1]
        ib.cancelMktData(contract)
        ib.cancelRealTimeBars(bars)
    finally:
        ib.disconnect()


def test_rt_volume_ticks_carry_each_trade_with_its_market_time(simulator, ibapi_client):
    sim = simulator(speed=120)
    client = ibapi_client(sim.port, 1)
    client.app.reqMktData(1, stock("SPY"), "233", False, False, [])
    client.wait(lambda: len([a for a in client.of("tickString", 1) if a[1] == 48]) >= 5, 5,
                "RTVolume ticks")  # fmt: skip
    client.app.cancelMktData(1)
    rt = [a[2].split(";") for a in client.of("tickString", 1) if a[1] == 48]
    lasts = [a[2] for a in client.of("tickPrice", 1) if a[1] == LAST][1:]  # after the snapshot
    volumes = [a[2] for a in client.of("tickSize", 1) if a[1] == VOLUME][1:]
    for (price, size, ms, volume, vwap, single), last, total in zip(rt, lasts, volumes):
        assert float(price) == last and float(volume) == total and single == "true"
        assert int(ms) % 5000 == 0  # trades are 5 market seconds apart
        assert float(size) > 0 and float(vwap) > 0


LAST_CLOSE = pd.Timestamp("2026-10-30 16:00", tz="America/New_York")


def _details_hours(client, req_id) -> dict[str, str]:
    """tradingHours of a contract details answer, by day: ``{"20261102": "CLOSED", ...}``."""
    client.wait(lambda: client.of("contractDetailsEnd", req_id), 5, "contract details")
    [(_, details)] = client.of("contractDetails", req_id)
    return dict(part.split(":", 1) for part in details.tradingHours.split(";"))


def test_without_loop_the_market_closes_after_the_last_session(simulator, ibapi_client):
    start = LAST_CLOSE - pd.Timedelta(minutes=2)
    sim = simulator(speed=600, start=start.timestamp())
    client = ibapi_client(sim.port, 1)
    client.app.reqRealTimeBars(1, stock("AAPL"), 5, "TRADES", False, [])
    client.app.reqMktData(2, stock("AAPL"), "", False, False, [])
    close = LAST_CLOSE.timestamp()
    client.wait(lambda: any(a[1] == close - 5 for a in client.of("realtimeBar", 1)), 10,
                "the session's last 5-second bar")  # fmt: skip
    client.wait(lambda: sim.now() > close + 600, 10, "ten market minutes after the close")
    bars, ticks = len(client.of("realtimeBar", 1)), len(client.of("tickPrice", 2))
    client.wait(lambda: sim.now() > close + 1200, 10, "ten more market minutes")
    # Closed: nothing after 16:00, and nothing new while the clock runs on...
    assert max(a[1] for a in client.of("realtimeBar", 1)) == close - 5
    assert (len(client.of("realtimeBar", 1)), len(client.of("tickPrice", 2))) == (bars, ticks)
    # ...and the contract's trading hours say it will not open again.
    client.app.reqContractDetails(3, stock("AAPL"))
    hours = _details_hours(client, 3)
    assert hours["20261102"] == hours["20261103"] == "CLOSED"  # no data after Friday
    assert sim.market_closed


def test_loop_replays_the_sessions_on_the_next_weekdays(simulator, ibapi_client, sim_data):
    start = LAST_CLOSE - pd.Timedelta(minutes=2)
    sim = simulator(speed=600, start=start.timestamp(), loop=True)
    client = ibapi_client(sim.port, 1)
    client.app.reqRealTimeBars(1, stock("AAPL"), 5, "TRADES", False, [])
    monday = pd.Timestamp("2026-11-02 09:30", tz="America/New_York")  # after the DST change
    client.wait(lambda: any(a[1] >= (monday + pd.Timedelta(minutes=6)).timestamp()
                            for a in client.of("realtimeBar", 1)), 10,
                "bars of the looped session")  # fmt: skip
    times = [a[1] for a in client.of("realtimeBar", 1)]
    assert times == sorted(set(times)) and all(t % 5 == 0 for t in times)
    before = [t for t in times if t < monday.timestamp()]
    assert before[-1] == LAST_CLOSE.timestamp() - 5  # Friday ran to its close...
    assert times[len(before)] == monday.timestamp()  # ...and Monday opens at 09:30 New York
    assert not sim.market_closed

    # Monday is Friday's session again, at the same clock times: its 1-minute bars, built
    # from the 5-second bars, are Friday's CSV bars.
    built = BarAggregator("1m")
    minutes = []
    for _, t, o, h, lo, c, v, _wap, _n in client.of("realtimeBar", 1)[len(before) :]:
        done = built.add_bar(t, o, h, lo, c, float(v))
        if done is not None:
            minutes.append(done)
    got = bars_to_frame(minutes)
    friday = sim_data[1]["AAPL"]["1m"]
    wall = got.index.tz_convert("America/New_York").tz_localize(None)  # the same clock times
    shifted = got.set_axis((wall - pd.Timedelta(days=3)).tz_localize("America/New_York"))
    pd.testing.assert_frame_equal(shifted, friday.loc[shifted.index], check_freq=False,
                                  check_index_type=False)  # fmt: skip

    # History, the clock and the trading hours agree that Monday is a trading day.
    client.app.reqHistoricalData(2, stock("AAPL"), "", "1 D", "1 min", "TRADES", 1, 2, False, [])
    client.wait(lambda: client.of("historicalDataEnd", 2), 5, "history of the looped day")
    first = client.of("historicalData", 2)[0][1]
    assert int(first.date) == monday.timestamp()
    assert first.open == friday["open"].iloc[-390]  # Friday's first minute (390 a day)
    client.app.reqCurrentTime()
    client.wait(lambda: client.of("currentTime"), 5, "currentTime")
    assert client.of("currentTime")[0][0] > monday.timestamp()
    client.app.reqContractDetails(3, stock("AAPL"))
    hours = _details_hours(client, 3)
    assert hours["20261102"] != "CLOSED" and hours["20261103"] != "CLOSED"
