"""Synthetic sample bars for the offline quick start.

Written by ``python -m quant_trading.tools.make_sample_data`` (or ``qt-make-sample-data``).

The files in ``market_data/`` that ship with the project come from here. They are made up, not
real prices: a seeded random walk shaped like a US stock's trading day, so the backtest and
the visualizer have something to show without a TWS connection.

For each symbol a 1-minute path is built over every regular NYSE session of the period
(09:30-16:00 America/New_York; holidays and 13:00 early closes from exchange_calendars'
``XNYS``). The 5-minute bars are aggregated from that path with the shared core
(:func:`quant_trading.bars.aggregate`), so the 1-minute and 5-minute files agree exactly where
they overlap. The model, per symbol:

* daily variance follows GARCH(1,1), so calm and busy stretches cluster;
* within a day, variance and volume are U-shaped: high at the open, a midday lull, a rise into
  the close (and a closing-auction spike in volume);
* minute shocks are Student-t (fat tails), overnight gaps take a share of the daily variance,
  and each minute's high/low is drawn from the exact law of a Brownian bridge's extremes;
* prices are rounded to cents, volumes to whole shares; OHLC is consistent by construction.

Symbols are generated independently (no cross-correlation); each has its own random stream
derived from ``--seed`` and the symbol, so adding a symbol does not change the others.
"""

from __future__ import annotations

import logging
import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .bars import EXCHANGE_TZ, OHLCV, aggregate
from .csv_store import write_bars

__all__ = [
    "DEFAULT_PARAMS",
    "GENERIC_PARAMS",
    "SampleBars",
    "SymbolParams",
    "WrittenFile",
    "generate_sample_data",
    "generate_symbol",
    "minute_sessions",
    "nyse_sessions",
    "params_for",
    "symbol_rng",
    "write_sample_data",
]

log = logging.getLogger(__name__)

DEFAULT_END = "2026-10-30"
DEFAULT_YEARS = 2.0
DEFAULT_SEED = 7
DEFAULT_SYMBOLS = ("AAPL", "MSFT", "SPY")
DEFAULT_OUTPUT_DIR = "market_data"

TRADING_DAYS_PER_YEAR = 252
_FULL_SESSION_MINUTES = 390
_NS_PER_MINUTE = 60 * 10**9
_EARLIEST = pd.Timestamp("1970-01-01")


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """How one symbol's synthetic path behaves. Rates are annual; volume is per session."""

    start_price: float
    annual_drift: float
    annual_vol: float
    daily_volume: float
    #: Share of the daily variance that falls overnight (the gap between close and next open).
    overnight_share: float = 0.2
    garch_alpha: float = 0.07
    garch_beta: float = 0.91
    #: Degrees of freedom of the Student-t minute shocks; lower means fatter tails.
    tail_df: float = 5.0

    def __post_init__(self) -> None:
        if self.start_price <= 0 or self.annual_vol <= 0 or self.daily_volume <= 0:
            raise ValueError("start_price, annual_vol and daily_volume must be positive")
        if not 0 <= self.overnight_share < 1:
            raise ValueError("overnight_share must be in [0, 1)")
        if self.garch_alpha < 0 or self.garch_beta < 0 or self.garch_alpha + self.garch_beta >= 1:
            raise ValueError("GARCH needs alpha, beta >= 0 and alpha + beta < 1 (stationary)")
        if self.tail_df <= 2:
            raise ValueError("tail_df must be above 2 (finite variance)")


# Levels near late-2024 prices. SPY is the calm one, and its volatility reacts faster to a
# shock (higher GARCH alpha), as an index's does.
DEFAULT_PARAMS: dict[str, SymbolParams] = {
    "AAPL": SymbolParams(230.0, annual_drift=0.12, annual_vol=0.26, daily_volume=48e6),
    "MSFT": SymbolParams(420.0, annual_drift=0.10, annual_vol=0.23, daily_volume=20e6),
    "SPY": SymbolParams(
        580.0, annual_drift=0.08, annual_vol=0.14, daily_volume=55e6,
        overnight_share=0.25, garch_alpha=0.10, garch_beta=0.88,
    ),
}  # fmt: skip

#: Used for any other symbol, so the tool can make demo files for a user's own ticker.
GENERIC_PARAMS = SymbolParams(100.0, annual_drift=0.08, annual_vol=0.30, daily_volume=5e6)


@dataclass(frozen=True, slots=True)
class SampleBars:
    """One symbol's generated bars: 5-minute over the whole period, 1-minute over its end."""

    symbol: str
    five_minute: pd.DataFrame
    one_minute: pd.DataFrame


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A file :func:`write_sample_data` wrote, for the summary line."""

    path: Path
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp

    def summary(self) -> str:
        """``market_data/AAPL_5m.csv: 38898 rows, 2024-10-31T09:30:00-04:00 .. ...``"""
        return f"{self.path}: {self.rows} rows, {self.first.isoformat()} .. {self.last.isoformat()}"


def params_for(symbol: str) -> SymbolParams:
    """The tuned parameters for ``symbol``, or :data:`GENERIC_PARAMS` for an unknown one."""
    params = DEFAULT_PARAMS.get(symbol.upper())
    if params is None:
        log.info("%s: no tuned parameters, using the generic profile", symbol)
        return GENERIC_PARAMS
    return params


def symbol_rng(seed: int, symbol: str) -> np.random.Generator:
    """A random generator for one symbol, fixed by ``seed`` and the symbol's name.

    crc32 rather than ``hash()``: Python salts string hashes per process, which would make
    every run different.
    """
    return np.random.default_rng([seed, zlib.crc32(symbol.upper().encode())])


def nyse_sessions(end: str | pd.Timestamp, years: float) -> pd.DataFrame:
    """Regular NYSE sessions from ``years`` before ``end`` up to and including ``end``.

    Returns one row per session, indexed by the session date, with tz-aware UTC ``open`` and
    ``close`` columns (early closes included). Raises ValueError if there is none.
    """
    import exchange_calendars as xcals  # slow to import; only the generator needs it

    if not years > 0:
        raise ValueError(f"years must be positive, not {years}")
    last = pd.Timestamp(end).normalize().tz_localize(None)
    first = last - pd.Timedelta(days=round(years * 365.25)) + pd.Timedelta(days=1)
    if first < _EARLIEST:  # before that, New York's offset is not the modern one (LMT)
        raise ValueError(f"sample data can start on {_EARLIEST:%Y-%m-%d} at the earliest")
    # Explicit bounds: the calendar's default range moves with today's date, and the output
    # must not depend on when the tool runs.
    with warnings.catch_warnings():
        # exchange_calendars 4.x reads Series.values, which pandas 3.1 deprecates; harmless.
        warnings.filterwarnings("ignore", "Series.values returning", DeprecationWarning)
        calendar = xcals.get_calendar(
            "XNYS", start=first - pd.Timedelta(days=7), end=last + pd.Timedelta(days=7)
        )
    schedule = calendar.schedule.loc[first:last, ["open", "close"]]
    if schedule.empty:
        raise ValueError(f"no NYSE sessions in the {years:g} years up to {last:%Y-%m-%d}")
    return schedule


def minute_sessions(sessions: pd.DataFrame, minute_days: int | None) -> pd.DataFrame:
    """The trailing sessions that get 1-minute files: the last ``minute_days`` sessions, or
    (None) those within one calendar month of the last session (for a last session on
    2026-10-30: 2026-10-01 onwards)."""
    if minute_days is not None:
        if minute_days < 1:
            raise ValueError(f"minute_days must be at least 1, not {minute_days}")
        return sessions.iloc[-minute_days:]
    last = sessions.index[-1]
    return sessions.loc[sessions.index > last - pd.DateOffset(months=1)]


def _variance_shape(pos: np.ndarray, to_close: np.ndarray) -> np.ndarray:
    # Relative variance per minute: about 4x at the first minute, decaying within ~half an
    # hour, then rising again into the close. Depends on both ends so 13:00 closes get a
    # closing rise too.
    return 1.0 + 3.0 * np.exp(-pos / 12.0) + 1.0 * np.exp(-to_close / 10.0)


def _volume_shape(pos: np.ndarray, to_close: np.ndarray) -> np.ndarray:
    # The open is busy, the close busier, and the last minute carries the closing auction.
    return 1.0 + 2.0 * np.exp(-pos / 20.0) + 1.5 * np.exp(-to_close / 15.0) + 4.0 * (to_close == 0)


def _standard_t(rng: np.random.Generator, df: float, size: int) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size) * math.sqrt((df - 2.0) / df)


def _garch_variance(shocks: np.ndarray, long_run: float, alpha: float, beta: float) -> np.ndarray:
    """Daily variance under GARCH(1,1) driven by the days' standardized shocks.

    Each day's variance depends on the day before, so this is a loop; it runs once per
    session (a few hundred steps), not per minute.
    """
    omega = long_run * (1.0 - alpha - beta)
    variance = np.empty(len(shocks))
    h = long_run
    for day, z in enumerate(shocks.tolist()):
        variance[day] = h
        h = omega + alpha * h * z * z + beta * h
    return variance


def generate_symbol(
    symbol: str, sessions: pd.DataFrame, rng: np.random.Generator, params: SymbolParams
) -> pd.DataFrame:
    """1-minute bars for ``symbol`` over every minute of ``sessions`` (see :func:`nyse_sessions`).

    Returns the canonical bars frame (index ``time`` in America/New_York, float OHLCV columns),
    prices in cents and whole-share volumes. Pure: the same ``rng`` state gives the same frame.
    """
    opens = pd.DatetimeIndex(sessions["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(sessions["close"]).as_unit("ns").asi8
    lengths = (closes - opens) // _NS_PER_MINUTE
    n_days, n_minutes = len(lengths), int(lengths.sum())
    day = np.repeat(np.arange(n_days), lengths)
    first_minute = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    pos = np.arange(n_minutes) - first_minute[day]
    to_close = lengths[day] - 1 - pos
    full_pos = np.arange(_FULL_SESSION_MINUTES)
    full_to_close = _FULL_SESSION_MINUTES - 1 - full_pos

    # Minute weights of the daily variance; a half day carries only its share of a full day.
    weight = _variance_shape(pos, to_close) / _variance_shape(full_pos, full_to_close).sum()
    shocks = _standard_t(rng, params.tail_df, n_minutes)
    gap_shocks = _standard_t(rng, params.tail_df, n_days)
    intraday_z = np.bincount(day, np.sqrt(weight) * shocks, n_days) / np.sqrt(
        np.bincount(day, weight, n_days)
    )
    share = params.overnight_share
    day_z = math.sqrt(share) * gap_shocks + math.sqrt(1.0 - share) * intraday_z
    long_run = params.annual_vol**2 / TRADING_DAYS_PER_YEAR
    variance = _garch_variance(day_z, long_run, params.garch_alpha, params.garch_beta)

    # Log drift: minus half the variance, so the expected simple return is annual_drift.
    drift = (params.annual_drift - 0.5 * params.annual_vol**2) / TRADING_DAYS_PER_YEAR
    minute_sd = np.sqrt((1.0 - share) * variance[day] * weight)
    returns = drift / _FULL_SESSION_MINUTES + minute_sd * shocks
    gaps = np.sqrt(share * variance) * gap_shocks
    gaps[0] = 0.0  # the first session opens at start_price
    steps = returns.copy()
    steps[first_minute] += gaps
    log_close = math.log(params.start_price) + np.cumsum(steps)
    log_open = np.concatenate(([math.log(params.start_price)], log_close[:-1]))
    log_open[first_minute] += gaps

    # Extremes of a Brownian bridge from 0 to x with sd s: P(max > m) = exp(-2m(m-x)/s^2),
    # inverted exactly, so each minute's high/low fits its open, close and volatility.
    u_high, u_low = 1.0 - rng.random(n_minutes), 1.0 - rng.random(n_minutes)
    spread_high = np.sqrt(returns**2 - 2.0 * minute_sd**2 * np.log(u_high))
    spread_low = np.sqrt(returns**2 - 2.0 * minute_sd**2 * np.log(u_low))
    log_high = log_open + 0.5 * (returns + spread_high)
    log_low = log_open + 0.5 * (returns - spread_low)

    def cents(log_price: np.ndarray) -> np.ndarray:
        return np.maximum(np.round(np.exp(log_price), 2), 0.01)

    open_, close = cents(log_open), cents(log_close)
    # Rounding can push an extreme inside the body by a cent; widen it back.
    high = np.maximum(cents(log_high), np.maximum(open_, close))
    low = np.minimum(cents(log_low), np.minimum(open_, close))

    # Busy (high-variance) days trade more, and so do minutes with big moves.
    activity = np.sqrt(variance / long_run) * np.exp(0.25 * rng.standard_normal(n_days) - 0.03)
    size = np.abs(shocks)
    volume_weight = _volume_shape(pos, to_close) / _volume_shape(full_pos, full_to_close).sum()
    noise = np.exp(0.35 * rng.standard_normal(n_minutes) - 0.06)
    volume = params.daily_volume * volume_weight * activity[day] * noise
    volume *= 0.6 + 0.4 * size / size.mean()
    volume = np.maximum(np.rint(volume), 1.0)

    index = pd.DatetimeIndex(opens[day] + pos * _NS_PER_MINUTE, tz="UTC")
    index = index.tz_convert(EXCHANGE_TZ).as_unit("ns").rename("time")
    log.debug("%s: %d minutes over %d sessions", symbol, n_minutes, n_days)
    return pd.DataFrame(
        dict(zip(OHLCV, (open_, high, low, close, volume), strict=True)), index=index
    )


def generate_sample_data(
    symbols: Sequence[str],
    *,
    end: str | pd.Timestamp = DEFAULT_END,
    years: float = DEFAULT_YEARS,
    minute_days: int | None = None,
    seed: int = DEFAULT_SEED,
) -> list[SampleBars]:
    """Generate every symbol's 5-minute and 1-minute bars (no files written).

    The 1-minute path covers the whole period; the 5-minute bars are aggregated from it and
    the 1-minute frame is cut to the trailing sessions chosen by :func:`minute_sessions`.
    """
    sessions = nyse_sessions(end, years)
    minute_start = minute_sessions(sessions, minute_days)["open"].iloc[0]
    result = []
    for symbol in (s.upper() for s in symbols):
        minutes = generate_symbol(symbol, sessions, symbol_rng(seed, symbol), params_for(symbol))
        result.append(
            SampleBars(symbol, aggregate(minutes, "5m"), minutes.loc[minutes.index >= minute_start])
        )
    return result


def write_sample_data(
    output_dir: str | Path,
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    *,
    end: str | pd.Timestamp = DEFAULT_END,
    years: float = DEFAULT_YEARS,
    minute_days: int | None = None,
    seed: int = DEFAULT_SEED,
) -> list[WrittenFile]:
    """Generate the sample bars and write ``<SYMBOL>_5m.csv`` and ``<SYMBOL>_1m.csv`` into
    ``output_dir`` (atomically, via :func:`quant_trading.csv_store.write_bars`)."""
    output_dir = Path(output_dir)
    written = []
    for bars in generate_sample_data(
        symbols, end=end, years=years, minute_days=minute_days, seed=seed
    ):
        for name, frame in (("5m", bars.five_minute), ("1m", bars.one_minute)):
            path = write_bars(frame, output_dir / f"{bars.symbol}_{name}.csv")
            written.append(WrittenFile(path, len(frame), frame.index[0], frame.index[-1]))
    return written
