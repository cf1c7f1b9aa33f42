"""Live streams of one connection: market data ticks, 5-second bars, historical bars.

:class:`StreamingMixin` holds the request handlers and the per-step streaming that a
:class:`~.session.Session` mixes in: ``reqMktData`` (live, delayed and snapshot ticks, with
RTVolume for generic tick 233), ``reqRealTimeBars`` and ``reqHistoricalData`` (including the
bar in progress and keepUpToDate updates). The server's market pump calls
:meth:`StreamingMixin.on_market` once per step with what the replay traded.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pandas as pd

from ..bars import EXCHANGE_TZ, BarAggregator
from ..timeframes import parse_timeframe
from . import messages as m
from .historical import (
    HALF_SPREAD,
    HistoryError,
    format_bars,
    no_data_error,
    period_text,
    plan_request,
)
from .market import SymbolData, Ticks
from .messages import DELAYED, Tick
from .pacing import PACING_VIOLATION, PacingKey
from .requests import (
    HistoricalRequest,
    MarketDataRequest,
    MarketDataTypeRequest,
    RealTimeBarsRequest,
)

__all__ = ["MarketUpdate", "RealTimeBin", "StreamingMixin"]

log = logging.getLogger(__name__)

NO_SECURITY = "No security definition has been found for the request"
NOT_SUBSCRIBED = "Requested market data is not subscribed."
DELAYED_INSTEAD = "Requested market data is not subscribed. Displaying delayed market data."
#: How far delayed market data (type 3) lags the live replay, as IB's 15-minute delay.
DELAY_SECONDS = 15 * 60
#: Generic tick list entry asking for RTVolume (tick type 48: price;size;ms;volume;vwap;single).
RT_VOLUME = "233"


@dataclass(frozen=True, slots=True)
class RealTimeBin:
    """A finished 5-second TRADES bar of the replay."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """What the market pump computed for one symbol over one step [t0, t1)."""

    symbol: str
    trades: Ticks
    bins: tuple[RealTimeBin, ...]
    t0: float
    t1: float


@dataclass(slots=True)
class MarketSubscription:
    """A reqMktData stream and what it has told the client so far (to send only changes)."""

    req_id: int
    symbol: str
    delayed: bool
    rt_volume: bool = False
    day: int = 0
    high: float = -math.inf
    low: float = math.inf
    volume: float = 0.0
    bid: float = math.nan
    ask: float = math.nan
    last_second: int = -1
    notional: float = 0.0  # sum of price x size today, for RTVolume's VWAP


@dataclass(slots=True)
class BarSubscription:
    """A reqRealTimeBars stream."""

    req_id: int
    symbol: str
    what: str


@dataclass(slots=True)
class HistorySubscription:
    """A keepUpToDate historical request: the bar in progress, rebuilt from the trades."""

    req_id: int
    symbol: str
    request: HistoricalRequest
    aggregator: BarAggregator
    count: int = 0
    last_sent: tuple = ()


def _rt_volume(sub: MarketSubscription, t: float, price: float, size: float) -> str:
    """RTVolume text: last price;size;epoch ms;day volume;VWAP;single trade flag."""
    vwap = sub.notional / sub.volume if sub.volume else price
    return (f"{price!r};{m.fmt_decimal(size)};{int(round(t * 1000))};"
            f"{m.fmt_decimal(sub.volume)};{vwap:.8f};true")  # fmt: skip


def _bar_seconds(bar_size: str) -> int | None:
    """Seconds of an IB bar-size text, None if unreadable or calendar-sized."""
    try:
        return parse_timeframe(bar_size).seconds
    except ValueError:
        return None


def _session_day(t: float) -> int:
    ts = pd.Timestamp(t, unit="s", tz="UTC").tz_convert(EXCHANGE_TZ)
    return ts.year * 10000 + ts.month * 100 + ts.day


def _quote_size(t: float, salt: int) -> int:
    # Deterministic, varied-looking quote sizes: the replay must be reproducible.
    return 100 * (1 + (int(t) * 7 + salt * 3) % 9)


class StreamingMixin:
    """Market data, real-time bars and historical data handlers of a session (see module doc).

    Relies on the session for ``sv``, ``sim``, ``subs``, ``send``, ``error``, ``peer`` and
    ``_resolve``.
    """

    # -- market data ----------------------------------------------------------------------

    def _market_data_type(self, req: MarketDataTypeRequest) -> None:
        if req.data_type not in (1, 2, 3, 4):
            self.error(-1, 321, f"Error validating request.-'bX' : cause - Invalid market data "
                       f"type {req.data_type}")  # fmt: skip
            return
        self.data_type = req.data_type

    def _market_data(self, req: MarketDataRequest) -> None:
        data = self._resolve(req.req_id, req.contract)
        if data is None:
            return
        delayed = self.data_type in (3, 4)
        if data.symbol in self.sim.unsubscribed:
            if not delayed:
                self.error(req.req_id, 354, NOT_SUBSCRIBED)
                return
            self.error(req.req_id, 10167, DELAYED_INSTEAD)
        elif delayed:
            delayed = False  # subscribed: TWS serves live data even when delayed was asked
        sv = self.sv
        self.send(m.tick_req_params(sv, req.req_id, data.contract.min_tick, "9c0001",
                                    3))  # fmt: skip
        if self.data_type != 1:
            # After reqMarketDataType the client is told which kind it actually gets.
            self.send(m.market_data_type(sv, req.req_id, 3 if delayed else 1))
        generic = {g.strip() for g in req.generic_ticks.split(",")}
        sub = MarketSubscription(req.req_id, data.symbol, delayed, RT_VOLUME in generic)
        self._initial_ticks(sub, data)
        if req.snapshot or req.regulatory_snapshot:
            self.send(m.tick_snapshot_end(sv, req.req_id))
            return
        self.subs.market[req.req_id] = sub

    def _tick(self, sub: MarketSubscription, tick: Tick) -> int:
        return int(DELAYED[tick] if sub.delayed else tick)

    def _initial_ticks(self, sub: MarketSubscription, data: SymbolData) -> None:
        now = self.sim.now() - (DELAY_SECONDS if sub.delayed else 0)
        stats = data.session_stats(now)
        sv, rid = self.sv, sub.req_id
        sub.day = _session_day(now)
        if stats.last is not None:
            t, price, size = stats.last
            sub.bid, sub.ask = round(price - HALF_SPREAD, 8), round(price + HALF_SPREAD, 8)
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.BID), sub.bid,
                                   _quote_size(t, 1), 1))  # fmt: skip
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.ASK), sub.ask,
                                   _quote_size(t, 2), 1))  # fmt: skip
            sub.last_second = int(t)
            self.send(m.tick_string(sv, rid, self._tick(sub, Tick.LAST_TIMESTAMP), str(int(t))))
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.LAST), price, size, 0))
        if stats.high is not None and math.isfinite(stats.high):
            sub.high, sub.low = stats.high, stats.low
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.HIGH), stats.high, 0))
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.LOW), stats.low, 0))
        sub.volume = stats.volume
        if sub.rt_volume:
            sub.notional = data.session_notional(now)
        self.send(m.tick_size(sv, rid, self._tick(sub, Tick.VOLUME), stats.volume))
        if stats.previous_close is not None:
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.CLOSE), stats.previous_close, 0))
        if stats.open is not None:
            self.send(m.tick_price(sv, rid, self._tick(sub, Tick.OPEN), stats.open, 0))

    def _stream_ticks(self, sub: MarketSubscription, data: SymbolData, trades: Ticks) -> None:
        sv, rid = self.sv, sub.req_id
        tk = self._tick
        for t, price, size in zip(trades.time.tolist(), trades.price.tolist(),
                                  trades.size.tolist(), strict=True):  # fmt: skip
            day = _session_day(t)
            if day != sub.day:  # a new session: fresh open, high, low, volume
                sub.day = day
                sub.high, sub.low, sub.volume = -math.inf, math.inf, 0.0
                self.send(m.tick_price(sv, rid, tk(sub, Tick.OPEN), price, 0))
                prev = data.previous_close(t + 1e-6)
                if prev is not None:
                    self.send(m.tick_price(sv, rid, tk(sub, Tick.CLOSE), prev, 0))
            bid, ask = round(price - HALF_SPREAD, 8), round(price + HALF_SPREAD, 8)
            if bid != sub.bid:
                sub.bid = bid
                self.send(m.tick_price(sv, rid, tk(sub, Tick.BID), bid, _quote_size(t, 1), 1))
            if ask != sub.ask:
                sub.ask = ask
                self.send(m.tick_price(sv, rid, tk(sub, Tick.ASK), ask, _quote_size(t, 2), 1))
            # The trade's market time comes first, so a client can stamp the LAST tick that
            # follows with it (at --speed 60 wall-clock time would be meaningless).
            second = int(t)
            if second != sub.last_second:
                sub.last_second = second
                self.send(m.tick_string(sv, rid, tk(sub, Tick.LAST_TIMESTAMP), str(second)))
            self.send(m.tick_price(sv, rid, tk(sub, Tick.LAST), price, size, 0))
            sub.volume += size
            self.send(m.tick_size(sv, rid, tk(sub, Tick.VOLUME), sub.volume))
            if sub.rt_volume:
                sub.notional += price * size
                self.send(m.tick_string(sv, rid, Tick.RT_VOLUME, _rt_volume(sub, t, price, size)))
            if price > sub.high:
                sub.high = price
                self.send(m.tick_price(sv, rid, tk(sub, Tick.HIGH), price, 0))
            if price < sub.low:
                sub.low = price
                self.send(m.tick_price(sv, rid, tk(sub, Tick.LOW), price, 0))

    def _real_time_bars(self, req: RealTimeBarsRequest) -> None:
        data = self._resolve(req.req_id, req.contract)
        if data is None:
            return
        if req.bar_size != 5:
            self.error(req.req_id, 321, "Error validating request.-'bR' : cause - Invalid bar "
                       "size: real-time bars are 5 seconds")  # fmt: skip
            return
        if req.what_to_show not in ("TRADES", "MIDPOINT", "BID", "ASK"):
            self.error(req.req_id, 321, "Error validating request.-'bR' : cause - Invalid "
                       f"whatToShow: {req.what_to_show}")  # fmt: skip
            return
        if data.symbol in self.sim.unsubscribed:
            self.error(req.req_id, 354, NOT_SUBSCRIBED)
            return
        self.subs.bars[req.req_id] = BarSubscription(req.req_id, data.symbol, req.what_to_show)

    def on_market(self, update: MarketUpdate, data: SymbolData) -> None:
        """Stream one pump step of ``update.symbol`` to this client's subscriptions."""
        symbol = update.symbol
        delayed_trades = None
        for sub in list(self.subs.market.values()):
            if sub.symbol != symbol:
                continue
            if sub.delayed:  # delayed data is the same replay, DELAY_SECONDS behind
                if delayed_trades is None:
                    delayed_trades = data.trades(update.t0 - DELAY_SECONDS,
                                                 update.t1 - DELAY_SECONDS)  # fmt: skip
                trades = delayed_trades
            else:
                trades = update.trades
            if len(trades):
                self._stream_ticks(sub, data, trades)
        if update.bins:
            for sub in list(self.subs.bars.values()):
                if sub.symbol == symbol:
                    self._stream_bars(sub, update.bins)
        for sub in list(self.subs.history.values()):
            if sub.symbol == symbol:
                self._stream_history(sub, update)

    def _stream_bars(self, sub: BarSubscription, bins: tuple[RealTimeBin, ...]) -> None:
        shift = {"BID": -HALF_SPREAD, "ASK": HALF_SPREAD}.get(sub.what, 0.0)
        for b in bins:
            if sub.what == "TRADES":
                o, h, lo, c, v, wap, n = b.open, b.high, b.low, b.close, b.volume, b.wap, b.count
            else:
                o, h, lo, c = (round(x + shift, 8) for x in (b.open, b.high, b.low, b.close))
                v, wap, n = -1, -1.0, -1
            self.send(m.realtime_bar(self.sv, sub.req_id, b.start, o, h, lo, c, v, wap, n))

    # -- historical data ------------------------------------------------------------------

    def _historical(self, req: HistoricalRequest) -> None:
        sim = self.sim
        if sim.link_down:
            # With its link to IB lost, TWS cannot look the contract up and answers 200 (seen
            # from real TWS during IB's nightly reset: ib_insync issue #330; download tools
            # such as twsdo retry a 200 that arrives while the link is down).
            sim.historical_requests += 1
            self.error(req.req_id, 200, NO_SECURITY)
            return
        data = self._resolve(req.req_id, req.contract)
        if data is None:
            return
        sim.historical_requests += 1
        reason = sim.pacer.check(
            PacingKey(req.key(), _bar_seconds(req.bar_size)),
            (req.contract.symbol, req.contract.exchange, req.what_to_show),
        )
        if reason is not None:
            sim.paced_requests += 1
            log.info("client %s: historical request %d paced: %s", self.peer, req.req_id, reason)
            self.error(req.req_id, 162, PACING_VIOLATION)
            return
        if req.keep_up_to_date and len(self.subs.history) >= sim.history_limits.max_open_requests:
            self.error(req.req_id, 162, "Historical Market Data Service error message:"
                       "Maximum number of open historical data requests exceeded")  # fmt: skip
            return
        now = sim.now()
        try:
            plan = plan_request(req, now, sim.history_limits, data.sessions())
        except HistoryError as exc:
            self.error(req.req_id, exc.code, exc.message)
            return
        for code, text in plan.warnings:
            self.error(req.req_id, code, text)
        tf = plan.timeframe
        frame = data.bars(tf, plan.start, plan.end, complete_by=plan.end)
        if req.use_rth and len(frame) and tf.is_intraday:
            local = frame.index.tz_convert(EXCHANGE_TZ)
            minutes = local.hour * 60 + local.minute
            frame = frame[(minutes >= 570) & (minutes < 960)]
        sub = None
        if plan.end >= now and tf.clock_aligned and tf.is_intraday:
            # Up to now, TWS includes the bar in progress; it is rebuilt from the replay's
            # trades, so keepUpToDate updates continue it exactly.
            sub = HistorySubscription(req.req_id, data.symbol, req, BarAggregator(tf))
            partial = _partial_bar(data, sub.aggregator, now)
            if partial is not None:
                if len(frame):
                    frame = frame[frame.index < partial]
                sub.count = len(data.trades(partial.timestamp(), now))
        bars = format_bars(frame, tf, req.what_to_show, req.format_date, self.sv)
        if sub is not None:
            open_bar = self._hist_open_bar(sub)
            if open_bar is not None:
                bars.append(open_bar)
            if not req.keep_up_to_date:
                sub = None
        if not bars:
            exc = no_data_error(req)
            self.error(req.req_id, exc.code, exc.message)
            return
        self.send(m.historical_data(self.sv, req.req_id, period_text(plan.start, self.sv),
                                    period_text(plan.end, self.sv), bars))  # fmt: skip
        if sub is not None:
            self.subs.history[req.req_id] = sub

    def _hist_open_bar(self, sub: HistorySubscription) -> m.HistBar | None:
        bar = sub.aggregator.open_bar
        if bar is None:
            return None
        frame = pd.DataFrame(
            {"open": [bar.open], "high": [bar.high], "low": [bar.low], "close": [bar.close],
             "volume": [bar.volume], "count": [sub.count]},
            index=pd.DatetimeIndex([bar.time]),
        )  # fmt: skip
        req = sub.request
        return format_bars(frame, sub.aggregator.timeframe, req.what_to_show, req.format_date,
                           self.sv)[0]  # fmt: skip

    def _stream_history(self, sub: HistorySubscription, update: MarketUpdate) -> None:
        trades = update.trades
        agg = sub.aggregator
        for t, p, s in zip(trades.time.tolist(), trades.price.tolist(), trades.size.tolist(),
                           strict=True):  # fmt: skip
            finished = agg.add_trade(t, p, s)
            if finished is not None:
                self._send_hist_update(sub, finished, sub.count)
                sub.count = 0
            sub.count += 1
        current = agg.open_bar
        if current is not None:
            self._send_hist_update(sub, current, sub.count)

    def _send_hist_update(self, sub: HistorySubscription, bar, count: int) -> None:
        req = sub.request
        frame = pd.DataFrame(
            {"open": [bar.open], "high": [bar.high], "low": [bar.low], "close": [bar.close],
             "volume": [bar.volume], "count": [count]},
            index=pd.DatetimeIndex([bar.time]),
        )  # fmt: skip
        row = format_bars(frame, sub.aggregator.timeframe, req.what_to_show, req.format_date,
                          self.sv)[0]  # fmt: skip
        key = (row.date, row.open, row.high, row.low, row.close, row.volume)
        if key == sub.last_sent:
            return
        sub.last_sent = key
        self.send(m.historical_data_update(self.sv, sub.req_id, row))


def _partial_bar(data: SymbolData, aggregator: BarAggregator, now: float) -> pd.Timestamp | None:
    """Feed ``aggregator`` the trades of the bin containing ``now``; return the bin's start."""
    width = aggregator.timeframe.seconds
    probe = BarAggregator(aggregator.timeframe)
    last = data.last_trade(now)
    if last is None:
        return None
    probe.add_trade(last[0], last[1], last[2])
    start = probe.open_bar.time
    start_epoch = start.timestamp()
    if now - start_epoch >= width:
        return None  # the last trade's bin is finished: nothing in progress
    trades = data.trades(start_epoch, now)
    for t, p, s in zip(trades.time.tolist(), trades.price.tolist(), trades.size.tolist(),
                       strict=True):  # fmt: skip
        aggregator.add_trade(t, p, s)
    return start
