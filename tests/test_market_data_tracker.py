"""The market data tracker against the simulator: its finished bars and indicator values on
every timeframe equal the shared core applied to the simulator's source data, also across a
dropped connection and reconnect, for MACD and any other strategy; its output; its errors;
what a newcomer meets: pacing and drops during the back-fill, TWS's link to IB lost and back,
the market's close, request ids as in the seed."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_runner import run_module

from quant_trading.bars import EXCHANGE_TZ, OHLCV, Bar, aggregate
from quant_trading.core.pacing import PacingLimiter, PacingRules
from quant_trading.csv_store import read_bars
from quant_trading.data.live_bars import FinishedBar, LiveBars
from quant_trading.data.market_data_tracker import (
    MIN_HISTORY_BARS,
    MarketDataTracker,
    format_bar,
)
from quant_trading.macd import macd
from quant_trading.simulator.pacing import Pacer, PacingKey, PacingLimits
from quant_trading.simulator.testing import running_simulator
from quant_trading.strategy import configure
from quant_trading.timeframes import parse_timeframe

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = REPO_ROOT / "market_data"
TIMEFRAMES = ["1m", "3m", "5m", "10m"]


def expected_bars(symbol: str, tf: str) -> pd.DataFrame:
    """What the simulator's source data says the bars are (same files it replays)."""
    source = "5m" if parse_timeframe(tf).seconds % 300 == 0 else "1m"
    return aggregate(read_bars(SAMPLE / f"{symbol}_{source}.csv"), tf)


def assert_matches_source(tracker: MarketDataTracker, symbol: str) -> None:
    for tf in TIMEFRAMES:
        got = tracker.live[symbol].timeframes[tf].frame()
        assert len(got) > 400 if tf != "1m" else len(got) > 390
        want = expected_bars(symbol, tf).loc[got.index[0] : got.index[-1]]
        # every bar, once, in order: nothing lost or doubled across the reconnect
        pd.testing.assert_index_equal(got.index, want.index, check_names=False)
        np.testing.assert_allclose(
            got[["open", "high", "low", "close"]],
            want[["open", "high", "low", "close"]],
            rtol=0,
            atol=1e-9,
        )
        np.testing.assert_allclose(got["volume"], want["volume"], rtol=0, atol=1e-6)
        reference = macd(want["close"].to_numpy())
        np.testing.assert_allclose(got["MACD"], reference.macd, rtol=0, atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(
            got["Signal"], reference.signal, rtol=0, atol=1e-9, equal_nan=True
        )
        np.testing.assert_allclose(got["Hist"], reference.hist, rtol=0, atol=1e-9, equal_nan=True)


@pytest.fixture
def simulator():
    """The sample data replayed from 10:30 of its last session, two market minutes a second."""
    with running_simulator(data_dir=SAMPLE, speed=120.0) as sim:
        yield sim


@pytest.fixture
def fast_simulator():
    """Ten market minutes per second, so 15-minute and hourly bars finish within seconds."""
    with running_simulator(data_dir=SAMPLE, speed=600.0) as sim:
        yield sim


def track_until(tracker: MarketDataTracker, done, timeout: float = 60.0) -> None:
    """Run the tracker until ``done()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        tracker.track(duration=0.2)


def run_until_closed(tracker: MarketDataTracker, lines: list[str], between=None) -> None:
    """Connect, back-fill (then ``between()``), subscribe and track until the tracker says
    the market closed; disconnect."""
    assert tracker.connect_to_tws()
    try:
        assert tracker.resolve_symbols() == []
        tracker.backfill()
        if between is not None:
            between()
        tracker.subscribe()
        track_until(tracker, lambda: any("market closed" in line for line in lines))
    finally:
        tracker.disconnect_from_tws()


def test_live_bars_equal_the_source_across_a_reconnect(simulator, tmp_path):
    lines: list[str] = []
    tracker = MarketDataTracker(
        ["AAPL"],
        TIMEFRAMES,
        strategy=configure("MACD", {}),
        quiet=True,
        port=simulator.port,
        csv_dir=tmp_path,
        output=lines.append,
        env_file=None,
        timeout=10,
        pacing=PacingLimiter(PacingRules(per_contract=1_000, identical_window=0)),
    )
    tracker.RECONNECT_BACKOFF = (0.05, 0.5)
    assert tracker.connect_to_tws()
    try:
        assert tracker.resolve_symbols() == []
        tracker.backfill()
        tracker.subscribe()
        track_until(tracker, lambda: sum(f.source == "live" for f in tracker.finished) > 3)
        threading.Timer(0.2, simulator.drop_connections).start()
        track_until(tracker, lambda: any("Reconnected" in line for line in lines))
        since = len(tracker.finished)

        def after_reconnect() -> bool:
            # a few live bars, and a 5-minute bar whose start the new feed did not see
            after = tracker.finished[since:]
            return sum(f.source == "live" for f in after) > 3 and any(
                f.timeframe.name == "5m" for f in after
            )

        track_until(tracker, after_reconnect)
    finally:
        tracker.disconnect_from_tws()
    assert any("Connection lost" in line for line in lines)
    assert_matches_source(tracker, "AAPL")
    # --csv-dir: the same bars with their MACD, written atomically
    stored = read_bars(tmp_path / "AAPL_5m_bars_macd.csv")
    frame = tracker.live["AAPL"].timeframes["5m"].frame()
    pd.testing.assert_frame_equal(stored, frame, check_freq=False, check_index_type=False)
    bar_lines = [line for line in lines if line.startswith("Bar ")]
    assert bar_lines and all("MACD" in line and "Signal" in line for line in bar_lines)


def tracker_cli(*args, timeout=60, env=None):
    return run_module("quant_trading.data.market_data_tracker", *args, timeout=timeout, env=env)


def test_cli_prints_quotes_in_the_seed_format_and_bars(simulator):
    result = tracker_cli(
        "--port", str(simulator.port), "--symbols", "MSFT", "--timeframes", "1", "--duration", "3"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MSFT 1m: " in out and " bars of history through " in out
    assert "Price Update - ReqID: 1 (MSFT), LAST: " in out  # the seed's ids: 1 for the first
    assert "Size Update - ReqID: " in out and "Bar  1m MSFT" in out


def test_unknown_symbol_and_live_port(simulator):
    result = tracker_cli("--port", str(simulator.port), "--symbols", "NOPE", "--duration", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == "market_data_tracker: error: unknown symbol: NOPE"
    live = tracker_cli("--port", "7496", "--symbols", "AAPL")
    assert live.returncode == 2 and len(live.stderr.strip().splitlines()) == 1
    assert "live-trading port" in live.stderr


def test_any_strategy_on_its_own_15m_timeframe(fast_simulator):
    config = configure("MA_CROSS", {"MA_CROSS_TIMEFRAME": "15m"})
    lines: list[str] = []
    tracker = MarketDataTracker(
        ["AAPL"],
        ["1m", "6m", "1h"],  # 6m and 1h are built from 3- and 30-minute history
        strategy=config,
        quiet=True,
        port=fast_simulator.port,
        output=lines.append,
        env_file=None,
        timeout=10,
    )
    assert [tf.name for tf in tracker.timeframes] == ["1m", "6m", "15m", "1h"]
    assert tracker.connect_to_tws()
    try:
        assert tracker.resolve_symbols() == []
        tracker.backfill()
        tracker.subscribe()

        def live_15m_bars() -> int:
            return sum(f.source == "live" and f.timeframe.name == "15m" for f in tracker.finished)

        track_until(tracker, lambda: live_15m_bars() >= 2)
    finally:
        tracker.disconnect_from_tws()
    history = dict(re.findall(r"^AAPL (\w+): (\d+) bars of history", "\n".join(lines), re.M))
    assert history.keys() == {"1m", "6m", "15m", "1h"}
    assert all(int(n) >= MIN_HISTORY_BARS + 30 for n in history.values())  # + SMA(30) warm-up
    for tf, bars in tracker.live["AAPL"].timeframes.items():
        got = bars.frame()
        want = expected_bars("AAPL", tf).loc[got.index[0] : got.index[-1]]
        pd.testing.assert_frame_equal(got[OHLCV], want, check_freq=False, check_exact=False)
        # streaming == batch: the live values are what StrategyConfig.compute() gives
        batch = config.compute(got)
        for column in ("fast", "slow"):
            np.testing.assert_allclose(got[column], batch[column], rtol=0, atol=1e-9)
        shown = [f for f in tracker.finished if f.timeframe.name == tf]
        assert [f.position for f in shown] == list(config.positions(got))
    bar_lines = [line for line in lines if line.startswith("Bar ")]
    assert bar_lines and not any("MACD" in line for line in lines)
    assert all(re.search(r"\| SMA\(10\) \d+\.\d{4} SMA\(30\) \d+\.\d{4}", x) for x in bar_lines)
    tagged = [line for line in bar_lines if "[MA_CROSS: " in line]
    assert tagged and all(line.startswith("Bar 15m AAPL") for line in tagged)


def test_cli_with_a_bundled_strategy(simulator):
    result = tracker_cli(
        "--port", str(simulator.port), "--symbols", "MSFT", "--timeframes", "1",
        "--strategy", "RSI", "--duration", "3", "--quiet",
        env={"RSI_TIMEFRAME": "1m"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bars = [line for line in result.stdout.splitlines() if line.startswith("Bar ")]
    assert bars and "MACD" not in result.stdout
    line = re.compile(r"Bar  1m MSFT .* \| RSI\(14\) \d+\.\d{4}  .*\[RSI: (LONG|SHORT|FLAT)\]$")
    assert all(line.match(x) for x in bars)


USER_STRATEGY = '''
"""Long while the close is above its 8-bar EMA, else flat; on 15-minute bars."""
import numpy as np

from quant_trading.indicators import EMA
from quant_trading.strategy import Parameter, Strategy


def indicators(params):
    return [EMA(params["PERIOD"], name="ema")]


def positions(data, params):
    return np.where(data["close"] > data["ema"], 1, 0)


STRATEGY = Strategy(
    name="ABOVE_EMA",
    description="close above its EMA",
    parameters=(Parameter("PERIOD", 8, int),),
    indicators=indicators,
    positions=positions,
    default_timeframe="15m",
)
'''


def test_cli_with_a_strategy_from_a_user_folder(simulator, tmp_path):
    (tmp_path / "above_ema.py").write_text(USER_STRATEGY)
    result = tracker_cli(
        "--port", str(simulator.port), "--symbols", "AAPL", "--timeframes", "1",
        "--strategy-path", str(tmp_path), "--strategy", "above_ema", "--duration", "3", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^AAPL 15m: \d+ bars of history", out, re.M)  # its timeframe is added
    bars = [line for line in out.splitlines() if line.startswith("Bar ")]
    assert bars and "MACD" not in out
    assert all(re.match(r"Bar ( 1m|15m) AAPL .* \| EMA\(8\) \d+\.\d{4}", line) for line in bars)
    assert all(line.startswith("Bar 15m") for line in bars if "[ABOVE_EMA: " in line)


def test_unknown_strategy_and_untrackable_timeframe():
    result = tracker_cli("--strategy", "NOPE", "--symbols", "AAPL")
    assert result.returncode == 2
    assert re.fullmatch(
        r"market_data_tracker: error: unknown strategy 'NOPE'; registered: .*MACD.*\n",
        result.stderr,
    )
    result = tracker_cli("--timeframes", "1d", "--symbols", "AAPL")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "cannot track 1d bars" in result.stderr


def finished(tf: str, position: int, previous: int, values, when="2026-10-30 10:35", bar=None):
    time_ = pd.Timestamp(when, tz=EXCHANGE_TZ)
    return FinishedBar("AAPL", parse_timeframe(tf), Bar(time_, *bar), values, position, previous,
                       "live")  # fmt: skip


def test_macd_lines_read_as_in_the_readme():
    config = configure("MACD", {})  # on 5-minute bars
    five = finished("5m", 1, 1, {"MACD": 1.2908, "Signal": 1.2122, "Hist": 0.0785},
                    bar=(308.92, 309.15, 308.73, 308.90, 173856))  # fmt: skip
    assert format_bar(five, config) == (
        "Bar  5m AAPL   2026-10-30 10:35  O 308.92 H 309.15 L 308.73 C 308.90 V 173,856 "
        "| MACD 1.2908 Signal 1.2122 Hist +0.0785  [MACD: LONG]"
    )
    one = finished("1m", -1, 1, {"MACD": 0.2095, "Signal": 0.2204, "Hist": -0.0109},
                   "2026-10-30 10:39", (309.00, 309.10, 308.86, 308.90, 38448))  # fmt: skip
    assert format_bar(one, config) == (
        "Bar  1m AAPL   2026-10-30 10:39  O 309.00 H 309.10 L 308.86 C 308.90 V 38,448 "
        "| MACD 0.2095 Signal 0.2204 Hist -0.0109  v MACD crossed below Signal"
    )
    up = finished("5m", 1, 0, {"MACD": np.nan, "Signal": np.nan, "Hist": np.nan},
                  bar=(1, 1, 1, 1, 0))  # fmt: skip
    assert format_bar(up, config).endswith(
        "| MACD n/a Signal n/a Hist n/a  ^ MACD crossed above Signal  [MACD: LONG]"
    )


def test_default_signal_texts_name_the_strategy_and_side(tmp_path):
    (tmp_path / "above_ema.py").write_text(USER_STRATEGY)
    config = configure("ABOVE_EMA", {}, strategy_path=[tmp_path])
    down = finished("15m", 0, 1, {"ema": 308.123456}, bar=(308.92, 309.15, 308.73, 308.90, 10))
    assert format_bar(down, config).endswith(
        "| EMA(8) 308.1235  v ABOVE_EMA: target down to FLAT  [ABOVE_EMA: FLAT]"
    )


def test_csv_dir_keeps_the_strategy_columns(tmp_path):
    config = configure("RSI", {})
    tracker = MarketDataTracker(["AAPL"], ["5m"], strategy=config, csv_dir=tmp_path,
                                output=lambda line: None, env_file=None)  # fmt: skip
    live = tracker.live["AAPL"] = LiveBars("AAPL", tracker.timeframes, config)
    bars = read_bars(SAMPLE / "AAPL_5m.csv").iloc[-100:]
    tracker._store(live.add_history("5m", bars.iloc[:60]))
    tracker._store(live.add_history("5m", bars))  # a second write merges with the file
    path = tmp_path / "AAPL_5m_bars_macd.csv"
    assert path.read_text().splitlines()[0] == "time,open,high,low,close,volume,RSI"
    stored = read_bars(path, indicators=config.columns)
    want = config.compute(bars)["RSI"]
    np.testing.assert_allclose(stored["RSI"], want, rtol=0, atol=1e-9, equal_nan=True)


# --- faults a newcomer meets: pacing, drops, link loss, the close; request ids -------------

LAST_SESSION = "2026-10-30"


def at(text: str) -> float:
    """Epoch seconds of a New York time."""
    return pd.Timestamp(text, tz=EXCHANGE_TZ).timestamp()


class FakeClock:
    """Time that passes only when something sleeps on it: pacing waits cost nothing."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def macd_on(timeframe: str):
    return configure("MACD", {"MACD_TIMEFRAME": timeframe})


def quick_tracker(sim, lines: list[str], symbols=("AAPL",), timeframes=("1m",), **options):
    """A tracker on ``sim`` that hardly paces itself (the simulators below do not pace) and
    reconnects within a fraction of a second."""
    options.setdefault("quiet", True)
    options.setdefault("pacing", PacingLimiter(PacingRules(per_contract=1_000, identical_window=0)))
    options.setdefault("output", lines.append)
    silences = {k: options.pop(k) for k in ("closed_after", "stale_after") if k in options}
    tracker = MarketDataTracker(
        list(symbols),
        list(timeframes),
        strategy=macd_on(timeframes[0]),
        port=sim.port,
        env_file=None,
        timeout=10,
        **options,
    )
    for name, seconds in silences.items():  # how long a silence is, in seconds
        setattr(tracker, name, seconds)
    tracker.RECONNECT_BACKOFF = (0.05, 0.5)
    return tracker


def unpaced(**config):
    """A simulator that does not pace history (these tests are not about pacing)."""
    return running_simulator(data_dir=SAMPLE, pacing=PacingLimits(enabled=False), **config)


def assert_1m_bars_match_source(tracker: MarketDataTracker, symbol: str) -> None:
    got = tracker.live[symbol].timeframes["1m"].frame()
    want = expected_bars(symbol, "1m").loc[got.index[0] : got.index[-1]]
    pd.testing.assert_index_equal(got.index, want.index, check_names=False)  # none lost/doubled
    np.testing.assert_allclose(got[OHLCV], want[OHLCV], rtol=0, atol=1e-6)


def test_backfill_waits_out_pacing_violations_with_backoff():
    """The README's order: the downloader used up TWS's 60 history requests per 10 minutes,
    then the tracker starts. It must wait (2, 4, 8 ... s) and go on, not exit on error 162."""
    clock = FakeClock()
    with running_simulator(data_dir=SAMPLE, speed=120.0) as sim:
        # IB's rules for every bar size (as the simulator's --pace-all-bar-sizes), on the
        # fake clock
        sim.pacer = Pacer(PacingLimits(all_bar_sizes=True), clock=clock.time)
        for n in range(60):  # an earlier download's requests, in this 10-minute window
            sim.pacer.check(PacingKey(("download", n), 300), ("AAPL", "SMART", "TRADES"))
        lines: list[str] = []
        tracker = quick_tracker(
            sim,
            lines,
            pacing=PacingLimiter(clock=clock.time, sleep=clock.sleep),
        )
        assert tracker.connect_to_tws()
        try:
            assert tracker.resolve_symbols() == []
            tracker.backfill()
        finally:
            tracker.disconnect_from_tws()
    retries = [line for line in lines if "error 162" in line]
    assert retries[0] == (
        "AAPL 1m: TWS refused the history request for pacing (error 162) (IB allows 60 "
        "history requests in 10 minutes, counting every tool); retrying in 2 s"
    )
    waits = [float(re.search(r"retrying in (\d+) s$", line)[1]) for line in retries]
    assert waits[:6] == [2, 4, 8, 16, 32, 60] and set(waits[6:]) <= {60}
    assert clock.now - 1_000.0 >= 600  # it waited (on the fake clock) for the window to pass
    history = int(re.search(r"^AAPL 1m: (\d+) bars of history", "\n".join(lines), re.M)[1])
    assert history >= MIN_HISTORY_BARS


def test_backfill_goes_on_after_the_connection_drops():
    lines: list[str] = []
    with unpaced(speed=120.0) as sim:
        dropped = threading.Event()

        def output(line: str) -> None:
            lines.append(line)
            if line.startswith("AAPL 1m: ") and not dropped.is_set():
                dropped.set()  # TWS goes away between AAPL's history and MSFT's
                sim.drop_connections()

        tracker = quick_tracker(sim, lines, symbols=("AAPL", "MSFT"), output=output)
        assert tracker.connect_to_tws()
        try:
            assert tracker.resolve_symbols() == []
            tracker.backfill()
            assert dropped.is_set()
            tracker.subscribe()
            track_until(
                tracker,
                lambda: (
                    {f.symbol for f in tracker.finished if f.source == "live"} == {"AAPL", "MSFT"}
                ),
                timeout=30,
            )
        finally:
            tracker.disconnect_from_tws()
    text = "\n".join(lines)
    assert "MSFT 1m: connection to TWS lost; retrying once it is back" in text
    assert "Reconnected; continuing the back-fill" in text
    assert re.search(r"^MSFT 1m: \d+ bars of history", text, re.M)
    # the loss was before the subscriptions: nothing is subscribed twice
    assert "Reconnected; resubscribing" not in text
    for symbol in ("AAPL", "MSFT"):
        assert_1m_bars_match_source(tracker, symbol)


def test_quote_request_ids_start_at_1_in_symbol_order_and_stay_after_a_reconnect():
    lines: list[str] = []

    def ids(seen: list[str]) -> set[tuple[str, str]]:
        return set(re.findall(r" - ReqID: (\d+) \((\w+)\)", "\n".join(seen)))

    with unpaced(speed=120.0) as sim:
        tracker = quick_tracker(sim, lines, symbols=("MSFT", "AAPL"), quiet=False)
        assert tracker.connect_to_tws()
        try:
            assert tracker.resolve_symbols() == []
            tracker.backfill()
            tracker.subscribe()
            track_until(tracker, lambda: len(ids(lines)) == 2, timeout=30)
            assert ids(lines) == {("1", "MSFT"), ("2", "AAPL")}
            sim.drop_connections()
            track_until(tracker, lambda: any("Reconnected" in line for line in lines))
            since = len(lines)
            track_until(tracker, lambda: len(ids(lines[since:])) == 2, timeout=30)
        finally:
            tracker.disconnect_from_tws()
    assert ids(lines[since:]) == {("1", "MSFT"), ("2", "AAPL")}


def test_link_loss_and_its_restoration_are_told_and_no_bar_is_lost():
    lines: list[str] = []

    def more_live_bars(count: int) -> None:
        target = sum(f.source == "live" for f in tracker.finished) + count
        track_until(tracker, lambda: sum(f.source == "live" for f in tracker.finished) >= target)

    def seen(text: str) -> bool:
        return any(text in line for line in lines)

    with unpaced(speed=120.0) as sim:
        tracker = quick_tracker(sim, lines)
        assert tracker.connect_to_tws()
        try:
            assert tracker.resolve_symbols() == []
            tracker.backfill()
            tracker.subscribe()
            for data_lost in (False, True):
                more_live_bars(2)
                before = len(lines)
                sim.lose_link()
                track_until(tracker, lambda: seen("TWS lost its connection to IB"))
                sim.restore_link(data_lost=data_lost)
                track_until(tracker, lambda: seen("TWS's connection to IB is back"))
                more_live_bars(3)
                told = [line for line in lines[before:] if "TWS" in line]
                assert told == [
                    "TWS lost its connection to IB; waiting for it to come back...",
                    "TWS's connection to IB is back (data lost); resubscribing and filling "
                    "missed bars from history"
                    if data_lost
                    else "TWS's connection to IB is back (data maintained); missed bars come "
                    "from history",
                ]
        finally:
            tracker.disconnect_from_tws()
    assert not any("Reconnected" in line for line in lines)  # the socket never dropped
    assert_1m_bars_match_source(tracker, "AAPL")


def test_a_tracker_that_fell_sessions_behind_still_fills_its_gaps_from_history():
    """A feed that started mid-bar, processed only once the market is a session further (a
    long pacing wait, a busy machine): the bars it did not see whole come from history that
    ends with them, not from history ending now, which would leave them out for good."""
    lines: list[str] = []
    # The closed hours are skipped (loop), so a stall of minutes crosses into the next day.
    with unpaced(speed=0.0, loop=True, start=at("2026-10-29 15:41:30")) as sim:
        tracker = quick_tracker(sim, lines, timeframes=("1m", "5m"))
        assert tracker.connect_to_tws()
        try:
            assert tracker.resolve_symbols() == []
            tracker.backfill()
            tracker.subscribe()
            next_day = at("2026-10-30 09:45")
            sim.clock.set_speed(1200.0)  # the market runs on; the tracker reads nothing
            deadline = time.monotonic() + 30
            while sim.clock.now() < next_day:
                assert time.monotonic() < deadline, "the replay did not reach the next day"
                time.sleep(0.05)
            sim.clock.set_speed(0.0)
            track_until(tracker, lambda: tracker.live["AAPL"].timeframes["5m"].last_time
                        >= pd.Timestamp("2026-10-30 09:35", tz=EXCHANGE_TZ))  # fmt: skip
        finally:
            tracker.disconnect_from_tws()
    close = pd.Timestamp("2026-10-29 15:59", tz=EXCHANGE_TZ)
    for tf in ("1m", "5m"):
        got = tracker.live["AAPL"].timeframes[tf].frame()
        want = expected_bars("AAPL", tf).loc[got.index[0] : close]
        got = got.loc[:"2026-10-29 15:59"]
        pd.testing.assert_index_equal(got.index, want.index, check_names=False)
        np.testing.assert_allclose(got[OHLCV], want[OHLCV], rtol=0, atol=1e-6)


def test_the_close_is_told_once_and_finishes_the_sessions_last_bars():
    lines: list[str] = []
    with unpaced(speed=60.0, start=at(f"{LAST_SESSION} 15:56")) as sim:
        tracker = quick_tracker(sim, lines, timeframes=("1m", "5m"), closed_after=0.5)
        assert tracker.connect_to_tws()
        try:
            assert tracker.resolve_symbols() == []
            tracker.backfill()
            tracker.subscribe()
            track_until(tracker, lambda: any("market closed" in line for line in lines))
            tracker.track(duration=1.0)  # more silence: still said once
        finally:
            tracker.disconnect_from_tws()
    closed = [line for line in lines if "market closed" in line]
    assert closed == ["AAPL: no trades since 16:00, market closed"]
    last = {f.timeframe.name: f for f in tracker.finished}
    # the session's last bars are shown at the close, before it is said
    assert (f"{last['1m'].bar.time:%H:%M}", f"{last['5m'].bar.time:%H:%M}") == ("15:59", "15:55")
    assert any(f.source == "live" for f in tracker.finished)
    assert lines.index(closed[0]) > lines.index(format_bar(last["1m"], tracker.strategy))
    assert_1m_bars_match_source(tracker, "AAPL")


def test_started_after_the_close_it_says_so_with_the_sessions_last_bar():
    lines: list[str] = []
    with unpaced(speed=60.0, start=at(f"{LAST_SESSION} 18:00")) as sim:
        tracker = quick_tracker(sim, lines, closed_after=0.5)
        run_until_closed(tracker, lines)
    assert lines[-1] == "AAPL: no trades since 16:00, market closed"
    assert lines[-2].startswith(f"Bar  1m AAPL   {LAST_SESSION} 15:59  O 312.43 H 312.44")
    assert_1m_bars_match_source(tracker, "AAPL")


def test_a_close_during_the_backfill_is_told_and_the_sessions_rest_comes_from_history():
    """As after a long wait on pacing: the market closed before the live feed began."""
    lines: list[str] = []
    with unpaced(speed=0.0, start=at(f"{LAST_SESSION} 12:24:30")) as sim:
        tracker = quick_tracker(sim, lines, timeframes=("1m", "5m"), closed_after=0.5)
        # The close passes between the back-fill and the live feed, unseen by the feed.
        run_until_closed(tracker, lines, lambda: sim.clock.jump(at(f"{LAST_SESSION} 17:00")))
    assert lines[-1] == "AAPL: no trades since 16:00, market closed"
    frames = {tf: tracker.live["AAPL"].timeframes[tf].frame() for tf in ("1m", "5m")}
    assert (f"{frames['1m'].index[-1]:%H:%M}", f"{frames['5m'].index[-1]:%H:%M}") == (
        "15:59",
        "15:55",
    )
    assert_1m_bars_match_source(tracker, "AAPL")  # 12:24 .. 15:59 included, once each
    # One batch from history, printed in the order the bars ended (the longest first when
    # they end together), as the live feed prints them.
    rest = [f for f in tracker.finished if f.bar.time.timestamp() >= at(f"{LAST_SESSION} 12:25")]
    ends = [(f.bar.time + pd.Timedelta(seconds=f.timeframe.seconds), f.bar.time) for f in rest]
    assert len(ends) > 200 and ends == sorted(ends)


def test_a_feed_silent_for_minutes_is_told_as_closed():
    """Real-time bars come every 5 s while the market trades; the frozen simulator sends
    none (as TWS on a holiday or after an early close)."""
    lines: list[str] = []
    with unpaced(speed=0.0, start=at(f"{LAST_SESSION} 11:00")) as sim:
        tracker = quick_tracker(sim, lines, stale_after=0.5)
        run_until_closed(tracker, lines)
    assert lines[-1] == "AAPL: no trades since 11:00, market closed"
    assert not any(f.source == "live" for f in tracker.finished)


def test_a_timeframe_that_does_not_divide_a_day_is_one_line():
    result = tracker_cli("--timeframes", "7", "--symbols", "AAPL")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "market_data_tracker: error: cannot track 7m bars: live bars are whole minutes that "
        "divide a day (1m, 3m, 5m, 10m, 15m, 30m, 1h, ...)\n"
    )
