"""Performance statistics of an equity curve and its trades (pure; no I/O).

Conventions (peers disagree, so they are stated here and, with formulas, in the README). They
are backtesting.py's, so its numbers and ours agree on the same trades (a test checks which
agree exactly), except where noted:

* ratios (annualized return and volatility, Sharpe, Sortino, Calmar) use the equity curve's
  **daily** returns (last equity of each calendar day) with **252** trading days a year and a
  zero risk-free rate, whatever the bar size;
* annualized return is the geometric mean daily return compounded over 252 days; CAGR is
  the total growth over the **calendar** span (365.25-day years);
* Sortino is +inf when the return is positive and no day lost (a zero downside), NaN when
  neither; Sharpe, Calmar and Profit Factor are NaN when their denominator is zero;
* beta (and so alpha) uses per-bar log returns of the equity and of buy & hold;
* exposure counts the bars during which a position was held at any time (entry bar through
  exit bar);
* durations (test span, drawdowns, trades) are calendar time;
* drawdown is measured on the mark-to-market equity at each bar's close, and reported as a
  positive percentage (backtesting.py shows it negative);
* trade returns are net of commissions, relative to the entry value;
* differing on purpose: Profit Factor is in **dollars** (gross profit / gross loss, so it is
  above 1 exactly when the trades made money; backtesting.py sums percent returns), and
  Kelly uses trade **returns** (payoff per dollar staked, which is what the Kelly fraction of
  equity needs; backtesting.py uses dollar P&L, which grows with the account).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

__all__ = ["Statistics", "compute_statistics", "drawdown", "LABELS"]

TRADING_DAYS = 252
_DAY_NS = 86_400 * 10**9
_INFINITIES = ("Infinity", "-Infinity")  # how the JSON cache writes them


@dataclass
class Statistics:
    """Everything backtesting.py reports, plus USD drawdown with dates, net profit and the
    long/short split. Durations are in seconds, times ISO strings, ratios plain floats (NaN
    when undefined, e.g. no trades)."""

    start: str
    end: str
    duration_s: float
    exposure_pct: float
    equity_initial: float
    equity_final: float
    equity_peak: float
    net_profit: float
    commissions: float
    return_pct: float
    buy_hold_return_pct: float
    return_ann_pct: float
    volatility_ann_pct: float
    cagr_pct: float
    sharpe: float
    sortino: float
    calmar: float
    alpha_pct: float
    beta: float
    max_drawdown_pct: float
    avg_drawdown_pct: float
    max_drawdown_usd: float
    max_drawdown_peak: str | None
    max_drawdown_trough: str | None
    max_drawdown_duration_s: float
    avg_drawdown_duration_s: float
    trades: int
    long_trades: int
    short_trades: int
    win_rate_pct: float
    best_trade_pct: float
    worst_trade_pct: float
    avg_trade_pct: float
    max_trade_duration_s: float
    avg_trade_duration_s: float
    profit_factor: float
    expectancy_pct: float
    sqn: float
    kelly: float

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready once NaN is mapped to null)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Statistics:
        """Inverse of :meth:`as_dict`; missing numbers become NaN (older caches), and the
        cache's "Infinity" / "-Infinity" become floats again."""
        names = {f.name for f in fields(cls)}
        values = {
            k: math.nan if v is None else float(v) if v in _INFINITIES else v
            for k, v in data.items()
            if k in names
        }
        for name in names - values.keys():
            values[name] = math.nan
        return cls(**values)


#: Display labels, in backtesting.py's wording where it has one.
LABELS = {
    "start": "Start",
    "end": "End",
    "duration_s": "Duration",
    "exposure_pct": "Exposure Time [%]",
    "equity_initial": "Equity Initial [$]",
    "equity_final": "Equity Final [$]",
    "equity_peak": "Equity Peak [$]",
    "net_profit": "Net Profit [$]",
    "commissions": "Commissions [$]",
    "return_pct": "Return [%]",
    "buy_hold_return_pct": "Buy & Hold Return [%]",
    "return_ann_pct": "Return (Ann.) [%]",
    "volatility_ann_pct": "Volatility (Ann.) [%]",
    "cagr_pct": "CAGR [%]",
    "sharpe": "Sharpe Ratio",
    "sortino": "Sortino Ratio",
    "calmar": "Calmar Ratio",
    "alpha_pct": "Alpha [%]",
    "beta": "Beta",
    "max_drawdown_pct": "Max. Drawdown [%]",
    "avg_drawdown_pct": "Avg. Drawdown [%]",
    "max_drawdown_usd": "Max. Drawdown [$]",
    "max_drawdown_peak": "Max. Drawdown Peak",
    "max_drawdown_trough": "Max. Drawdown Trough",
    "max_drawdown_duration_s": "Max. Drawdown Duration",
    "avg_drawdown_duration_s": "Avg. Drawdown Duration",
    "trades": "# Trades",
    "long_trades": "# Long Trades",
    "short_trades": "# Short Trades",
    "win_rate_pct": "Win Rate [%]",
    "best_trade_pct": "Best Trade [%]",
    "worst_trade_pct": "Worst Trade [%]",
    "avg_trade_pct": "Avg. Trade [%]",
    "max_trade_duration_s": "Max. Trade Duration",
    "avg_trade_duration_s": "Avg. Trade Duration",
    "profit_factor": "Profit Factor",
    "expectancy_pct": "Expectancy [%]",
    "sqn": "SQN",
    "kelly": "Kelly Criterion",
}


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown at each point as a fraction of the running peak (0 at new highs)."""
    peak = np.maximum.accumulate(equity)
    return 1.0 - equity / peak


def _drawdown_periods(times: np.ndarray, dd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and calendar length (seconds) of each drawdown: from the last peak before it to
    the recovery (or to the end if it never recovers)."""
    under = dd > 0
    if not under.any():
        return np.empty(0), np.empty(0)
    edges = np.diff(np.r_[0, under.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)  # first bar under water
    stops = np.flatnonzero(edges == -1)  # first bar recovered (or len)
    depth = np.maximum.reduceat(dd, starts)
    peak_at = np.maximum(starts - 1, 0)
    end_at = np.minimum(stops, len(times) - 1)
    lengths = (times[end_at] - times[peak_at]) / 1e9
    return depth, lengths


def _day_keys(index: pd.DatetimeIndex) -> np.ndarray:
    """One key per bar, equal for the bars of a calendar day in the index's own timezone
    (a tz-naive index keeps one key per distinct time, as the pandas version this replaced
    grouped it)."""
    if index.tz is None:
        return index.as_unit("ns").asi8
    return index.tz_localize(None).as_unit("ns").asi8 // _DAY_NS


def _daily_returns(values: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Returns of the last equity of each day (``days`` from :func:`_day_keys`), undefined
    ones (0/0 after the equity reached zero) left out."""
    if not len(values):
        return np.empty(0)
    if (days[1:] >= days[:-1]).all():  # in time order, a day's bars are consecutive
        last = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    else:
        _, first_from_end = np.unique(days[::-1], return_index=True)
        last = len(days) - 1 - first_from_end
    daily = values[last]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = daily[1:] / daily[:-1] - 1
    return returns[~np.isnan(returns)]


def _variance(values: np.ndarray) -> float:
    """Sample variance (ddof 1), two-pass, summed in the order pandas' ``Series.var`` sums."""
    mean = values.sum() / len(values)
    return float(((mean - values) ** 2).sum() / (len(values) - 1))


def _beta(equity: np.ndarray, market: np.ndarray) -> float:
    """Beta of the per-bar log returns of ``equity`` against those of ``market``."""
    if len(equity) < 3 or len(market) != len(equity):
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):  # equity can reach zero
        ours = np.log(equity[1:] / equity[:-1])
        theirs = np.log(market[1:] / market[:-1])
    covariance = np.cov(ours, theirs)
    return _ratio(covariance[0, 1], covariance[1, 1])


def _exposed(position: np.ndarray, times: np.ndarray, exit_times: np.ndarray) -> np.ndarray:
    """Bars during which a position was held at any time: held at the close, or held from
    the previous close into this bar's open, or closed at this bar's close (session close,
    end of data). That is each trade's entry bar through its exit bar. ``times`` and
    ``exit_times`` are epoch nanoseconds."""
    held = position != 0
    exposed = held | np.r_[False, held[:-1]]
    if len(exit_times):
        if (times[1:] >= times[:-1]).all():
            at = np.minimum(np.searchsorted(times, exit_times), len(times) - 1)
            exposed[at[times[at] == exit_times]] = True
        else:
            exposed |= np.isin(times, exit_times)
    return exposed


def _seconds(nanoseconds: np.ndarray) -> np.ndarray:
    """Nanoseconds as float seconds, rounded as pandas' ``total_seconds`` rounds them."""
    whole, rest = np.divmod(nanoseconds, 10**9)
    return whole + rest / 10**9


def _ns(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0 or not np.isfinite(denominator):
        return math.nan
    return numerator / denominator


def compute_statistics(
    equity: pd.Series, trades: pd.DataFrame, close: pd.Series, capital: float, position=None
) -> Statistics:
    """Statistics of one equity curve (mark-to-market per bar, indexed by time) with its
    ``trades`` (as from :func:`~quant_trading.backtesting.engine.simulate`), the traded
    ``close`` prices over the same bars (for buy & hold, alpha and beta) and the starting
    ``capital``. ``position`` (shares held per bar) gives the exposure."""
    values = equity.to_numpy(np.float64)
    times = equity.index.as_unit("ns").asi8
    dd = drawdown(np.r_[capital, values])[1:]
    depth, lengths = _drawdown_periods(times, dd)
    trough = int(np.argmax(dd)) if len(dd) else 0
    peak = int(np.argmax(values[: trough + 1])) if dd[trough] > 0 else trough
    peak_value = max(capital, values[: trough + 1].max()) if len(values) else capital

    # The capital is never a day's last equity, so the daily returns start at the first bar.
    daily = _daily_returns(values, _day_keys(equity.index))
    gmean = float(np.exp(np.log1p(daily).mean()) - 1) if len(daily) else 0.0
    ann_return = (1 + gmean) ** TRADING_DAYS - 1
    if len(daily) > 1:
        var = _variance(daily)
        ann_vol = math.sqrt(
            max((var + (1 + gmean) ** 2) ** TRADING_DAYS - (1 + gmean) ** (2 * TRADING_DAYS), 0)
        )
    else:
        ann_vol = math.nan
    downside = (
        math.sqrt(float((np.minimum(daily, 0) ** 2).mean()) * TRADING_DAYS)
        if len(daily)
        else math.nan
    )
    if downside == 0:  # no losing day: unbounded when it gained (as backtesting.py says)
        sortino = math.inf if ann_return > 0 else math.nan
    else:
        sortino = _ratio(ann_return, downside)
    span_s = (times[-1] - times[0]) / 1e9 if len(times) else 0.0
    years = span_s / (365.25 * 86400)
    final = float(values[-1]) if len(values) else capital
    cagr = (final / capital) ** (1 / years) - 1 if years > 0 and final > 0 else math.nan

    prices = close.to_numpy(np.float64)
    buy_hold = (prices[-1] / prices[0] - 1) if len(prices) else math.nan
    beta = _beta(values, prices)
    total = final / capital - 1
    alpha = total - beta * buy_hold if np.isfinite(beta) else math.nan

    pnl = trades["pnl"].to_numpy(np.float64)
    returns = trades["return_pct"].to_numpy(np.float64)
    exit_ns = _ns(trades["exit_time"]) if len(trades) else np.empty(0, np.int64)
    held_s = _seconds(exit_ns - _ns(trades["entry_time"])) if len(trades) else np.empty(0)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    win_rate = len(wins) / len(pnl) if len(pnl) else math.nan
    avg_win = returns[returns > 0].mean() if (returns > 0).any() else math.nan
    avg_loss = -returns[returns < 0].mean() if (returns < 0).any() else math.nan
    kelly = (
        win_rate - (1 - win_rate) / (avg_win / avg_loss)
        if np.isfinite(avg_win) and np.isfinite(avg_loss)
        else math.nan
    )
    exposure = (
        _exposed(np.asarray(position), times, exit_ns).mean() * 100
        if position is not None and len(position)
        else math.nan
    )

    def mean(a):
        return float(a.mean()) if len(a) else math.nan

    return Statistics(
        start=equity.index[0].isoformat() if len(equity) else "",
        end=equity.index[-1].isoformat() if len(equity) else "",
        duration_s=span_s,
        exposure_pct=exposure,
        equity_initial=capital,
        equity_final=final,
        equity_peak=float(max(capital, values.max())) if len(values) else capital,
        net_profit=final - capital,
        commissions=float(trades["commission"].sum()),
        return_pct=total * 100,
        buy_hold_return_pct=buy_hold * 100,
        return_ann_pct=ann_return * 100,
        volatility_ann_pct=ann_vol * 100,
        cagr_pct=cagr * 100,
        sharpe=_ratio(ann_return, ann_vol),
        sortino=sortino,
        calmar=_ratio(ann_return, float(dd.max()) if len(dd) else 0.0),
        alpha_pct=alpha * 100,
        beta=beta,
        max_drawdown_pct=float(dd.max()) * 100 if len(dd) else 0.0,
        avg_drawdown_pct=mean(depth) * 100 if len(depth) else 0.0,
        max_drawdown_usd=float(peak_value - values[trough]) if len(dd) and dd[trough] > 0 else 0.0,
        max_drawdown_peak=equity.index[peak].isoformat() if len(dd) and dd[trough] > 0 else None,
        max_drawdown_trough=equity.index[trough].isoformat()
        if len(dd) and dd[trough] > 0
        else None,
        max_drawdown_duration_s=float(lengths.max()) if len(lengths) else 0.0,
        avg_drawdown_duration_s=mean(lengths) if len(lengths) else 0.0,
        trades=len(trades),
        long_trades=int((trades["side"] == "long").sum()),
        short_trades=int((trades["side"] == "short").sum()),
        win_rate_pct=win_rate * 100,
        best_trade_pct=float(returns.max()) if len(returns) else math.nan,
        worst_trade_pct=float(returns.min()) if len(returns) else math.nan,
        avg_trade_pct=float((np.exp(np.log1p(returns / 100).mean()) - 1) * 100)
        if len(returns)
        else math.nan,
        max_trade_duration_s=float(held_s.max()) if len(held_s) else math.nan,
        avg_trade_duration_s=mean(held_s),
        profit_factor=_ratio(wins.sum(), -losses.sum()) if len(pnl) else math.nan,
        expectancy_pct=mean(returns),
        sqn=_ratio(math.sqrt(len(pnl)) * pnl.mean(), pnl.std(ddof=1)) if len(pnl) > 1 else math.nan,
        kelly=kelly,
    )
