"""The compiled arithmetic of :func:`~.statistics.compute_statistics`: every number of
:class:`~.statistics.Statistics` from plain arrays, in one pass of machine code.

One implementation for both callers: a backtest (through ``compute_statistics``) and the
optimizer's per-combination kernels (:mod:`._sweep_jit`) call this same function, so a
combination's statistics equal its backtest's to the bit on any machine. (Two copies could
not promise that: numpy picks SIMD versions of ``log``/``exp`` and BLAS dot products by CPU.)

Sums are numpy's pairwise summation, mean = sum / n, so the numbers are the ones the numpy
formulas in the statistics module's docstring give, to the last bit or one rounding away.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["FIELDS", "PEAK", "TROUGH", "SIZE", "measure", "log_returns"]

TRADING_DAYS = 252.0
_YEAR_S = 365.25 * 86400

#: The numeric Statistics fields, in the order :func:`measure` writes them.
FIELDS = (
    "duration_s", "exposure_pct", "equity_initial", "equity_final", "equity_peak",
    "net_profit", "commissions", "return_pct", "buy_hold_return_pct", "return_ann_pct",
    "volatility_ann_pct", "cagr_pct", "sharpe", "sortino", "calmar", "alpha_pct", "beta",
    "max_drawdown_pct", "avg_drawdown_pct", "max_drawdown_usd", "max_drawdown_duration_s",
    "avg_drawdown_duration_s", "trades", "long_trades", "short_trades", "win_rate_pct",
    "best_trade_pct", "worst_trade_pct", "avg_trade_pct", "max_trade_duration_s",
    "avg_trade_duration_s", "profit_factor", "expectancy_pct", "sqn", "kelly",
)  # fmt: skip
#: Slots after the fields: the bars of the deepest drawdown's peak and trough (-1: none).
PEAK = len(FIELDS)
TROUGH = PEAK + 1
SIZE = TROUGH + 1
_F = {name: i for i, name in enumerate(FIELDS)}


@njit(cache=True, nogil=True)
def _block(a, lo, n):  # pragma: no cover - compiled
    # numpy's pairwise summation below 128 values: 8 accumulators, then the rest in order.
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def _pairwise(a, lo, n):  # pragma: no cover - compiled
    # numpy's pairwise summation (so a sum here is the one ``a.sum()`` gives): above 128
    # values, the sum of two halves (the first a multiple of 8 long), recursively. Walked
    # with an explicit stack: numba's cache cannot hold a recursive function.
    if n <= 128:
        return _block(a, lo, n)
    starts = np.empty(64, np.int64)
    sizes = np.empty(64, np.int64)
    stage = np.empty(64, np.int64)
    left = np.empty(64)
    top = 0
    starts[0], sizes[0], stage[0] = lo, n, 0
    value = 0.0
    while top >= 0:
        s, m = starts[top], sizes[top]
        if m <= 128:  # a leaf: its sum goes to the node below it on the stack
            value = _block(a, s, m)
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if stage[top] == 0:  # sum the first half
            stage[top] = 1
            top += 1
            starts[top], sizes[top], stage[top] = s, half, 0
        elif stage[top] == 1:  # keep it, sum the second half
            left[top] = value
            stage[top] = 2
            top += 1
            starts[top], sizes[top], stage[top] = s + half, m - half, 0
        else:
            value = left[top] + value
            top -= 1
    return value


@njit(cache=True, nogil=True)
def _sum(a):  # pragma: no cover - compiled
    return _pairwise(a, 0, len(a))


@njit(cache=True, nogil=True)
def _mean(a):  # pragma: no cover - compiled
    return _sum(a) / len(a) if len(a) else math.nan


@njit(cache=True, nogil=True)
def _ratio(numerator, denominator):  # pragma: no cover - compiled
    if denominator == 0 or not math.isfinite(denominator):
        return math.nan
    return numerator / denominator


@njit(cache=True, nogil=True)
def _max(a):  # pragma: no cover - compiled
    # numpy's max: NaN if any value is NaN
    best = a[0]
    for x in a:
        if math.isnan(x):
            return math.nan
        if x > best:
            best = x
    return best


@njit(cache=True, nogil=True)
def _min(a):  # pragma: no cover - compiled
    best = a[0]
    for x in a:
        if math.isnan(x):
            return math.nan
        if x < best:
            best = x
    return best


@njit(cache=True, nogil=True)
def _centered_sum(a, mean_a, b, mean_b):  # pragma: no cover - compiled
    products = np.empty(len(a))
    for i in range(len(a)):
        products[i] = (a[i] - mean_a) * (b[i] - mean_b)
    return _sum(products)


@njit(cache=True, nogil=True)
def log_returns(values):  # pragma: no cover - compiled
    """Per-bar log returns, ``log(v[i] / v[i-1])`` (inf or NaN where a value is zero)."""
    out = np.empty(max(len(values) - 1, 0))
    for i in range(len(out)):
        out[i] = math.log(values[i + 1] / values[i])
    return out


@njit(cache=True, nogil=True)
def _beta(values, market):  # pragma: no cover - compiled
    # Sample covariance of the per-bar log returns over the market's variance (ddof 1; the
    # 1/(n-1) factors cancel but are kept, as np.cov has them).
    if len(values) < 3 or len(market) != len(values) - 1:
        return math.nan
    ours = log_returns(values)
    mean_ours, mean_market = _mean(ours), _mean(market)
    dof = len(ours) - 1
    covariance = _centered_sum(ours, mean_ours, market, mean_market) / dof
    variance = _centered_sum(market, mean_market, market, mean_market) / dof
    return _ratio(covariance, variance)


@njit(cache=True, nogil=True)
def _seconds(nanoseconds):  # pragma: no cover - compiled
    whole = nanoseconds // 1_000_000_000
    return whole + (nanoseconds - whole * 1_000_000_000) / 1e9


@njit(cache=True, nogil=True)
def _exposed_bars(held, times, exit_ns):  # pragma: no cover - compiled
    # Bars during which a position was held at any time: held at the close, held into the
    # bar from the previous close, or closed at this bar (each trade's entry through exit).
    n = len(held)
    exposed = np.zeros(n, np.bool_)
    for i in range(n):
        exposed[i] = held[i] != 0 or (i > 0 and held[i - 1] != 0)
    ordered = True
    for i in range(1, n):
        if times[i] < times[i - 1]:
            ordered = False
            break
    at = 0  # exits come in time order from the engine: one walk finds them all
    for t in exit_ns:
        if ordered:
            if at >= n or times[at] > t:
                at = 0
            while at < n and times[at] < t:
                at += 1
            if at < n and times[at] == t:
                exposed[at] = True
        else:
            for i in range(n):
                if times[i] == t:
                    exposed[i] = True
    count = 0
    for i in range(n):
        count += exposed[i]
    return count


@njit(cache=True, nogil=True)
def measure(  # pragma: no cover - compiled
    values, times, day_last, capital, market, buy_hold, held, has_held,
    pnl, returns, commission, long, entry_ns, exit_ns, out,
):  # fmt: skip
    """Write the statistics of one equity curve into ``out`` (:data:`SIZE` floats).

    ``values``: equity at each bar's close; ``times``: the bars' epoch nanoseconds;
    ``day_last``: the position of each calendar day's last bar, in time order; ``market``:
    buy & hold's per-bar log returns (:func:`log_returns`) and ``buy_hold`` its total
    return; ``held``: shares held per bar (used when ``has_held``); the trades as arrays:
    P&L, return in percent, commission, long (bool), entry and exit epoch nanoseconds.
    """
    n = len(values)
    out[:] = math.nan
    # -- drawdowns, on the equity with the capital as the first peak
    dd = np.empty(n)
    peak_value = capital
    for i in range(n):
        if values[i] > peak_value:
            peak_value = values[i]
        dd[i] = 1.0 - values[i] / peak_value
    trough = 0
    for i in range(1, n):
        if dd[i] > dd[trough]:
            trough = i
    periods = 0
    depth_sum = np.empty(n)  # depth per drawdown, then length per drawdown
    length = np.empty(n)
    i = 0
    while i < n:
        if dd[i] > 0:
            start = i
            deepest = dd[i]
            while i < n and dd[i] > 0:
                if dd[i] > deepest:
                    deepest = dd[i]
                i += 1
            peak_at = max(start - 1, 0)
            end_at = min(i, n - 1)
            depth_sum[periods] = deepest
            length[periods] = (times[end_at] - times[peak_at]) / 1e9
            periods += 1
        else:
            i += 1
    depths, lengths = depth_sum[:periods], length[:periods]
    deep = n > 0 and dd[trough] > 0
    # -- daily returns: the last equity of each day
    daily_all = np.empty(max(len(day_last) - 1, 0))
    kept = 0
    for k in range(1, len(day_last)):
        r = values[day_last[k]] / values[day_last[k - 1]] - 1
        if not math.isnan(r):
            daily_all[kept] = r
            kept += 1
    daily = daily_all[:kept]
    if kept:
        logs = np.empty(kept)
        for k in range(kept):
            logs[k] = math.log1p(daily[k])
        gmean = math.exp(_mean(logs)) - 1
    else:
        gmean = 0.0
    growth = 1.0 + gmean
    ann_return = growth**TRADING_DAYS - 1
    ann_vol = math.nan
    if kept > 1:
        mean = _sum(daily) / kept
        squares = np.empty(kept)
        for k in range(kept):
            squares[k] = (mean - daily[k]) ** 2
        var = _sum(squares) / (kept - 1)
        ann_vol = math.sqrt(
            max((var + growth**2.0) ** TRADING_DAYS - growth ** (2 * TRADING_DAYS), 0.0)
        )
    downside = math.nan
    if kept:
        losses = np.empty(kept)
        for k in range(kept):
            losses[k] = min(daily[k], 0.0) ** 2
        downside = math.sqrt(_mean(losses) * TRADING_DAYS)
    if downside == 0:  # no losing day: unbounded when it gained (as backtesting.py says)
        sortino = math.inf if ann_return > 0 else math.nan
    else:
        sortino = _ratio(ann_return, downside)
    span_s = (times[n - 1] - times[0]) / 1e9 if n else 0.0
    years = span_s / _YEAR_S
    final = values[n - 1] if n else capital
    cagr = (final / capital) ** (1 / years) - 1 if years > 0 and final > 0 else math.nan
    beta = _beta(values, market)
    total = final / capital - 1
    alpha = total - beta * buy_hold if math.isfinite(beta) else math.nan
    # -- trades
    count = len(pnl)
    win_values = np.empty(count)
    loss_values = np.empty(count)
    up = np.empty(count)
    down = np.empty(count)
    n_win = n_loss = n_up = n_down = n_long = 0
    for k in range(count):
        if pnl[k] > 0:
            win_values[n_win] = pnl[k]
            n_win += 1
        elif pnl[k] < 0:
            loss_values[n_loss] = pnl[k]
            n_loss += 1
        if returns[k] > 0:
            up[n_up] = returns[k]
            n_up += 1
        elif returns[k] < 0:
            down[n_down] = returns[k]
            n_down += 1
        n_long += long[k]
    win_rate = n_win / count if count else math.nan
    avg_win = _mean(up[:n_up]) if n_up else math.nan
    avg_loss = -_mean(down[:n_down]) if n_down else math.nan
    if math.isfinite(avg_win) and math.isfinite(avg_loss):
        kelly = win_rate - (1 - win_rate) / (avg_win / avg_loss)
    else:
        kelly = math.nan
    held_s = np.empty(count)
    for k in range(count):
        held_s[k] = _seconds(exit_ns[k] - entry_ns[k])
    exposure = _exposed_bars(held, times, exit_ns) / n * 100 if has_held and n else math.nan

    f = out
    f[0] = span_s
    f[1] = exposure
    f[2] = capital
    f[3] = final
    f[4] = max(capital, _max(values)) if n else capital
    f[5] = final - capital
    f[6] = _sum(commission)
    f[7] = total * 100
    f[8] = buy_hold * 100
    f[9] = ann_return * 100
    f[10] = ann_vol * 100
    f[11] = cagr * 100
    f[12] = _ratio(ann_return, ann_vol)
    f[13] = sortino
    f[14] = _ratio(ann_return, dd[trough] if n else 0.0)
    f[15] = alpha * 100
    f[16] = beta
    f[17] = dd[trough] * 100 if n else 0.0
    f[18] = _mean(depths) * 100 if periods else 0.0
    if deep:
        top = capital
        for i in range(trough + 1):
            if values[i] > top:
                top = values[i]
        f[19] = top - values[trough]
        best = 0
        for i in range(1, trough + 1):
            if values[i] > values[best]:
                best = i
        f[PEAK] = best
        f[TROUGH] = trough
    else:
        f[19] = 0.0
        f[PEAK] = f[TROUGH] = -1
    f[20] = _max(lengths) if periods else 0.0
    f[21] = _mean(lengths) if periods else 0.0
    f[22] = count
    f[23] = n_long
    f[24] = count - n_long
    f[25] = win_rate * 100
    if count:
        f[26] = _max(returns)
        f[27] = _min(returns)
        logs = np.empty(count)
        for k in range(count):
            logs[k] = math.log1p(returns[k] / 100)
        f[28] = (math.exp(_mean(logs)) - 1) * 100
        f[29] = _max(held_s)
        f[30] = _mean(held_s)
        f[31] = _ratio(_sum(win_values[:n_win]), -_sum(loss_values[:n_loss]))
        f[32] = _mean(returns)
    if count > 1:
        mean_pnl = _mean(pnl)
        squares = np.empty(count)
        for k in range(count):
            squares[k] = (pnl[k] - mean_pnl) ** 2
        std = math.sqrt(_sum(squares) / (count - 1))
        f[33] = _ratio(math.sqrt(count) * mean_pnl, std)
    f[34] = kelly
