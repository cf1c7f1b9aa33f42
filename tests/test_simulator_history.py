"""reqHistoricalData against the simulator: the bars are the data folder's, aggregated by the
shared core, in TWS's formats; IB's validation, limits and pacing give TWS's errors."""

from __future__ import annotations

import pandas as pd
import pytest

from quant_trading.bars import aggregate
from quant_trading.simulator import HistoryLimits, PacingLimits
from quant_trading.simulator.historical import DEFAULT_MAX_DURATION
from quant_trading.simulator.testing import DEMO_START, ib_async_client, stock

NY = "America/New_York"


def bars_of(client, req_id: int, timeout: float = 5.0) -> list:
    """The bars of a request once it ended (or failed: warnings such as 2174 do not count)."""

    def done():
        failed = [c for c in client.error_codes(req_id) if not 2100 <= c < 2200]
        return client.of("historicalDataEnd", req_id) or failed

    client.wait(done, timeout, f"historical data {req_id}")
    return [a[1] for a in client.of("historicalData", req_id)]


def as_frame(bars, parse) -> pd.DataFrame:
    return pd.DataFrame(
        {"open": [b.open for b in bars], "high": [b.high for b in bars],
         "low": [b.low for b in bars], "close": [b.close for b in bars],
         "volume": [float(b.volume) for b in bars]},
        index=pd.DatetimeIndex([parse(b.date) for b in bars], name="time"),
    )  # fmt: skip


def parse_sv157(text: str) -> pd.Timestamp:
    # Before server version 163 TWS writes "yyyymmdd  hh:mm:ss" (two spaces), local time.
    return pd.Timestamp(pd.to_datetime(text, format="%Y%m%d  %H:%M:%S")).tz_localize(NY)


def test_intraday_bars_are_the_csv_bars(simulator, ibapi_client, sim_data):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    frames = sim_data[1]["AAPL"]
    client.app.reqHistoricalData(1, stock("AAPL"), "", "1 D", "1 min", "TRADES", 1, 1, False, [])
    bars = bars_of(client, 1)
    got = as_frame(bars, parse_sv157)
    source = frames["1m"]
    expected = source[(source.index >= DEMO_START.normalize()) & (source.index < DEMO_START)]
    pd.testing.assert_frame_equal(got, expected, check_freq=False, check_index_type=False)
    assert bars[0].date == "20261030  09:30:00"
    assert all(b.barCount == 12 for b in bars)  # 5-second trades in each minute

    # 5-minute bars over a week: the 5-minute file before the 1-minute file starts, 1-minute
    # bars aggregated by the shared core after; the two agree with the 5-minute file.
    client.app.reqHistoricalData(2, stock("AAPL"), "20261029 16:00:00 US/Eastern", "1 W",
                                 "5 mins", "TRADES", 1, 2, False, [])  # fmt: skip
    bars = bars_of(client, 2)
    got = as_frame(bars, lambda s: pd.Timestamp(int(s), unit="s", tz="UTC").tz_convert(NY))
    five = frames["5m"]
    start = pd.Timestamp("2026-10-22 16:00", tz=NY)
    expected = five[(five.index >= start) & (five.index < pd.Timestamp("2026-10-29 16:00", tz=NY))]
    pd.testing.assert_frame_equal(got, expected, check_freq=False, check_index_type=False)
    assert not client.errors(2)

    # Daily bars: the day's bars aggregated; dates are yyyymmdd whatever formatDate says.
    client.app.reqHistoricalData(3, stock("AAPL"), "20261029 16:00:00 US/Eastern", "1 M",
                                 "1 day", "TRADES", 1, 2, False, [])  # fmt: skip
    bars = bars_of(client, 3)
    got = as_frame(bars, lambda s: pd.Timestamp(s, tz=NY))
    daily = aggregate(five[five.index < pd.Timestamp("2026-10-30", tz=NY)], "1d")
    pd.testing.assert_frame_equal(got, daily, check_freq=False, check_index_type=False)


def test_midpoint_bid_ask_and_sub_minute_bars(simulator, ibapi_client, sim_data):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    end = "20261030 10:00:00 US/Eastern"
    for req_id, what in ((1, "TRADES"), (2, "MIDPOINT"), (3, "BID"), (4, "ASK")):
        client.app.reqHistoricalData(req_id, stock("MSFT"), end, "1800 S", "1 min", what, 1, 1,
                                     False, [])  # fmt: skip
    trades = bars_of(client, 1)
    for req_id, shift in ((2, 0.0), (3, -0.01), (4, 0.01)):
        other = bars_of(client, req_id)
        assert [b.date for b in other] == [b.date for b in trades]
        for a, b in zip(trades, other, strict=True):
            assert b.open == pytest.approx(a.open + shift) and b.close == pytest.approx(
                a.close + shift
            )
            assert (b.volume, b.barCount) == (-1, -1)
    # 30-second bars come from the replay's trades and add up to the minute bars.
    client.app.reqHistoricalData(5, stock("MSFT"), end, "1800 S", "30 secs", "TRADES", 1, 1,
                                 False, [])  # fmt: skip
    halves = bars_of(client, 5)
    assert len(halves) == 2 * len(trades)
    for k, minute in enumerate(trades):
        a, b = halves[2 * k], halves[2 * k + 1]
        assert (a.open, b.close) == (minute.open, minute.close)
        assert max(a.high, b.high) == minute.high and min(a.low, b.low) == minute.low
        assert a.volume + b.volume == minute.volume


@pytest.mark.parametrize(("args", "code", "text"), [
    (("", "1 D", "1 minute", "TRADES"), 321, "Historical data bar size setting is invalid. "
     "Legal ones are: 1 secs, 5 secs"),
    (("", "1 X", "1 min", "TRADES"), 321, "duration format is invalid"),
    (("", "1 W", "1 min", "TRADES"), 162, "invalid step: 60 (1 W of 1 min bars exceeds"),
    (("", "2 W", "5 mins", "TRADES"), 162, "exceeds the maximum duration of 1 W"),
    (("", "2 Y", "1 day", "TRADES"), 162, "exceeds the maximum duration of 1 Y"),
    (("20260301 12:00:00 US/Eastern", "1800 S", "30 secs", "TRADES"), 162,
     "limited to the last six months"),
    (("20250101 12:00:00 US/Eastern", "1 D", "1 min", "TRADES"), 162,
     "HMDS query returned no data: AAPL@SMART Trades"),
    (("2026-10-30", "1 D", "1 min", "TRADES"), 321, "end date/time string [2026-10-30]"),
])  # fmt: skip
def test_invalid_requests_get_tws_errors(simulator, ibapi_client, args, code, text):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    end, duration, size, what = args
    client.app.reqHistoricalData(7, stock("AAPL"), end, duration, size, what, 1, 1, False, [])
    client.wait(lambda: client.errors(7), 5, "error")
    (req_id, got_code, got_text), *_ = client.errors(7)
    assert (req_id, got_code) == (7, code)
    assert text in got_text
    assert not client.of("historicalData", 7)


@pytest.mark.parametrize("size", ["1 min", "2 mins", "5 mins", "1 hour"])
def test_the_longest_duration_of_the_step_size_table_is_served(simulator, ibapi_client, size):
    """A request at the table's limit for its bar size (timeframes.IB_MAX_DURATION, which the
    simulator's copy equals) is served, not refused."""
    count, unit = DEFAULT_MAX_DURATION[size]
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    client.app.reqHistoricalData(1, stock("AAPL"), "20261029 16:00:00 US/Eastern",
                                 f"{count} {unit}", size, "TRADES", 1, 1, False, [])  # fmt: skip
    assert bars_of(client, 1) and client.error_codes(1) == [], client.errors(1)


def test_end_time_formats_and_implied_zone_warning(simulator, ibapi_client):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    # The same instant three ways: New York zone name, UTC with a dash, no zone (2174).
    ends = ["20261029 12:00:00 US/Eastern", "20261029-16:00:00", "20261029 12:00:00"]
    for req_id, end in enumerate(ends, start=1):
        client.app.reqHistoricalData(req_id, stock("SPY"), end, "3600 S", "5 mins", "TRADES",
                                     1, 1, False, [])  # fmt: skip
    results = [[b.date for b in bars_of(client, r)] for r in (1, 2, 3)]
    assert results[0] == results[1] == results[2]
    assert results[0][0] == "20261029  11:00:00" and results[0][-1] == "20261029  11:55:00"
    assert client.error_codes(1) == client.error_codes(2) == []
    assert client.error_codes(3) == [2174]
    assert "without explicit time zone" in client.errors(3)[0][2]


def test_keep_up_to_date_streams_the_bar_in_progress(simulator, ibapi_client, sim_data):
    sim = simulator(speed=120)
    client = ibapi_client(sim.port, 1)
    client.app.reqHistoricalData(4, stock("AAPL"), "20261030 10:00:00", "1 D", "1 min",
                                 "TRADES", 1, 1, True, [])  # fmt: skip
    client.wait(lambda: client.errors(4), 5, "321 for an end time with keepUpToDate")
    assert client.error_codes(4) == [321]
    client.app.reqHistoricalData(5, stock("AAPL"), "", "1 D", "1 min", "TRADES", 1, 2, True, [])
    bars_of(client, 5)
    client.wait(lambda: len({a[1].date for a in client.of("historicalDataUpdate", 5)}) >= 3, 10,
                "updates spanning three minutes")  # fmt: skip
    client.app.cancelHistoricalData(5)
    source = sim_data[1]["AAPL"]["1m"]
    updates = [a[1] for a in client.of("historicalDataUpdate", 5)]
    last_of_minute = {}
    for bar in updates:
        last_of_minute[bar.date] = bar  # the final update of each minute is the whole bar
    finished = sorted(last_of_minute)[:-1]  # the newest minute may still be in progress
    assert finished
    for date in finished[1:]:  # the first may have started before the subscription
        bar = last_of_minute[date]
        row = source.loc[pd.Timestamp(int(date), unit="s", tz="UTC")]
        assert (bar.open, bar.high, bar.low, bar.close, float(bar.volume)) == (
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["volume"],
        )


def _paced_request(client, end="20261029 12:00:00 US/Eastern"):
    """A function sending one historical request and returning its error codes."""

    def request(req_id, symbol="AAPL", what="TRADES", duration="1800 S", size="30 secs",
                format_date=1):  # fmt: skip
        client.app.reqHistoricalData(req_id, stock(symbol), end, duration, size, what, 1,
                                     format_date, False, [])  # fmt: skip
        client.wait(lambda: client.of("historicalDataEnd", req_id) or client.errors(req_id), 5,
                    f"answer to {req_id}")  # fmt: skip
        return client.error_codes(req_id)

    return request


def test_pacing_violations_get_162(simulator, ibapi_client):
    limits = PacingLimits(max_requests=5, window=60, identical_window=15, same_contract_max=2,
                          same_contract_window=30)  # fmt: skip
    sim = simulator(speed=0, pacing=limits)
    client = ibapi_client(sim.port, 1)
    request = _paced_request(client)
    assert request(1) == []
    assert request(2) == [162]  # identical within 15 s
    assert "pacing violation" in client.errors(2)[0][2]
    assert request(3, duration="3600 S") == [162]  # 3rd for AAPL/TRADES within the window
    assert request(4, what="MIDPOINT") == []  # another tick type is another bucket
    assert request(5, symbol="MSFT") == []
    assert request(6, symbol="SPY") == [162]  # the 6th request in 60 s
    # IB publishes the rules for bars of 30 s or less, and by default so does the simulator:
    # larger bars are never refused...
    assert request(7, size="1 min") == [] and request(8, size="1 min") == []
    assert sim.paced_requests == 3
    # ...while all_bar_sizes (--pace-all-bar-sizes) paces every request.
    sim.pacer.limits = PacingLimits(all_bar_sizes=True)
    assert request(9, size="1 min", duration="3600 S") == []
    assert request(10, size="1 min", duration="3600 S") == [162]  # identical within 15 s


def test_default_pacing_lets_minute_bar_downloads_through(simulator, ibapi_client):
    """The README's downloader (5-minute bars) and then the tracker (1-minute bars) ask for
    the same contract within seconds; with IB's scope as the default nothing is refused."""
    sim = simulator(speed=0)  # the default pacing, as `python -m quant_trading.simulator`
    client = ibapi_client(sim.port, 1)
    request = _paced_request(client, end="")
    for req_id, size in enumerate(["5 mins"] * 5 + ["1 min"] * 4, start=1):
        duration = "1 W" if size == "5 mins" else "1 D"
        assert request(req_id, duration=duration, size=size) == [], (req_id, size)
    assert sim.paced_requests == 0


def test_format_date_is_not_part_of_the_identical_request(simulator, ibapi_client):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    request = _paced_request(client)
    assert request(1, format_date=1) == []
    # The same bars as epoch seconds instead of text: still identical for IB's 15 s rule.
    assert request(2, format_date=2) == [162]


def test_open_request_limit_for_keep_up_to_date(simulator, ibapi_client):
    sim = simulator(speed=0, history_limits=HistoryLimits(max_open_requests=2),
                    pacing=PacingLimits(enabled=False))  # fmt: skip
    client = ibapi_client(sim.port, 1)
    for req_id in (1, 2, 3):
        client.app.reqHistoricalData(req_id, stock("AAPL"), "", "1800 S", "1 min", "TRADES", 1,
                                     1, True, [])  # fmt: skip
    client.wait(lambda: client.errors(3), 5, "error for the third")
    assert client.error_codes(3) == [162] and "Maximum number" in client.errors(3)[0][2]
    assert client.of("historicalDataEnd", 1) and client.of("historicalDataEnd", 2)


def test_head_timestamp_contract_details_and_ib_async_history(simulator, ibapi_client, sim_data):
    sim = simulator(speed=0)
    client = ibapi_client(sim.port, 1)
    client.app.reqHeadTimeStamp(1, stock("AAPL"), "TRADES", 1, 1)
    client.app.reqContractDetails(2, stock("SPY"))
    client.app.reqContractDetails(3, stock("ZZZZ"))
    client.wait(lambda: client.of("headTimestamp") and client.of("contractDetailsEnd", 2)
                and client.errors(3), 5, "answers")  # fmt: skip
    first = sim_data[1]["AAPL"]["5m"].index[0].tz_convert("UTC")
    assert client.of("headTimestamp") == [(1, first.strftime("%Y%m%d-%H:%M:%S"))]
    [(_, details)] = client.of("contractDetails", 2)
    c = details.contract
    assert (c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency, c.conId) == (
        "SPY",
        "STK",
        "SMART",
        "ARCA",
        "USD",
        756733,
    )
    assert details.minTick == 0.01 and details.timeZoneId == "US/Eastern"
    assert client.error_codes(3) == [200]

    from ib_async import Stock

    ib = ib_async_client()
    ib.connect("127.0.0.1", sim.port, clientId=2, timeout=10)
    try:
        contract = Stock("AAPL", "SMART", "USD")
        bars = ib.reqHistoricalData(contract, "20261029 16:00:00 US/Eastern", "1 D", "1 min",
                                    "TRADES", True, 1)  # fmt: skip
        source = sim_data[1]["AAPL"]["1m"]
        day = source[source.index.normalize() == pd.Timestamp("2026-10-29", tz=NY)]
        assert len(bars) == len(day) == 390
        for bar, (when, row) in zip(bars, day.iterrows(), strict=True):
            assert pd.Timestamp(bar.date) == when
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == tuple(row)
        head = ib.reqHeadTimeStamp(contract, "TRADES", True)
        assert pd.Timestamp(head).tz_localize("UTC") == first
        [details] = ib.reqContractDetails(contract)
        assert details.contract.conId == 265598 and details.longName == "APPLE INC"
    finally:
        ib.disconnect()


def test_one_day_before_the_open_is_the_previous_session(simulator, ibapi_client, sim_data):
    before_open = pd.Timestamp("2026-10-30 08:00", tz=NY).timestamp()
    sim = simulator(speed=0, start=before_open)
    client = ibapi_client(sim.port, 1)
    client.app.reqHistoricalData(1, stock("AAPL"), "", "1 D", "1 min", "TRADES", 1, 2, False, [])
    bars = bars_of(client, 1)
    stamps = pd.to_datetime([int(b.date) for b in bars], unit="s", utc=True).tz_convert(NY)
    assert len(bars) == 390 and set(stamps.date.astype(str)) == {"2026-10-29"}
