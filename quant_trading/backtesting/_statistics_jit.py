"""The compiled arithmetic of :func:`~.statistics.compute_statistics`: every number of
:class:`~.statistics.Statistics` from plain arrays, in one pass of machine code.

One implementation for both callers: a backtest (through ``compute_statistics``) and the
optimizer's compiled sweep (:mod:`._sweep`) call this same function, so a combination's
statistics equal its backtest's to the bit on any machine. (Two copies could not promise
that: numpy picks SIMD versions of ``log``/``exp`` and BLAS dot products by CPU.)

Sums are numpy's pairwise summation, mean = sum / n, so the numbers are the ones the numpy
formulas in the statistics module's docstring give, to the last bit or one rounding away;
the per-bar and per-trade logs (beta, the average trade) are a series of plain arithmetic
instead of the library ``log`` (see :func:`log_returns`), within an ulp or so of it. What a
parameter search measures thousands of times is walked once and cheaply: the drawdown at a
bar is only divided out at a drawdown's new lows, buy & hold's part of beta comes in
computed (:func:`market_terms`), and the engine's exits come with their bars.
"""

from __future__ import annotations

import math

import numpy as np

from quant_trading.jit import njit

__all__ = [
    "FIELDS", "PEAK", "TROUGH", "SIZE", "measure", "market_terms", "log_returns", "exit_order",
]  # fmt: skip

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
    # Unsigned positions: numba checks a signed index for a negative value at every load,
    # which cost a third of the time of this loop.
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    j, stop = np.uint64(lo), np.uint64(lo + n - n % 8)
    k1, k2, k3, k4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    k5, k6, k7, k8 = np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8)
    r0, r1, r2, r3 = a[j], a[j + k1], a[j + k2], a[j + k3]
    r4, r5, r6, r7 = a[j + k4], a[j + k5], a[j + k6], a[j + k7]
    j += k8
    while j < stop:
        r0 += a[j]
        r1 += a[j + k1]
        r2 += a[j + k2]
        r3 += a[j + k3]
        r4 += a[j + k4]
        r5 += a[j + k5]
        r6 += a[j + k6]
        r7 += a[j + k7]
        j += k8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(lo + n - n % 8, lo + n):
        res += a[i]
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


#: |z| below which :func:`_atanh2` is its series (a move of about 3% between two values).
_NEAR = 1.0 / 64
#: Values per block of the series loops: a block with a far value is walked again alone.
_BLOCK = 256


# Inlined into its callers' loops (numba IR), which then stay plain arithmetic that the
# compiler runs several values at a time.
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _atanh2(z):  # pragma: no cover - compiled
    # 2 atanh(z) by its series: with |z| < 1/64 the first omitted term, z**11 / 11, is below
    # 2**-60 of the sum, so five terms give the logarithm to within an ulp or so.
    w = z * z
    return 2.0 * z * (1.0 + w * (1.0 / 3 + w * (1.0 / 5 + w * (1.0 / 7 + w * (1.0 / 9)))))


@njit(cache=True, nogil=True, error_model="numpy")
def log_returns(values):  # pragma: no cover - compiled
    """Per-bar log returns, ``log(v[i+1] / v[i])`` (inf or NaN where a value is zero).

    A library ``log`` per bar cost more than the rest of the statistics together, so it is
    ``2 atanh((v[i+1] - v[i]) / (v[i+1] + v[i]))`` by its series: a loop of plain
    arithmetic, which the compiler runs several bars at a time and which gives the same bits
    on every CPU (vector versions of ``log`` differ by CPU); ``math.log`` where two values
    are more than about 3% apart. Both agree with ``np.log`` to an ulp or so (the series is
    the more exact: it does not round the ratio first)."""
    n = max(len(values) - 1, 0)
    return _weighted_log_returns(values, np.ones(n), np.empty(n))


@njit(cache=True, nogil=True, error_model="numpy")
def _weighted_log_returns(values, weights, out):  # pragma: no cover - compiled
    # out[i] = log(values[i+1] / values[i]) * weights[i], the log as log_returns says.
    n = len(out)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        far = 0
        for i in range(lo, hi):
            a, b = values[i], values[i + 1]
            z = (b - a) / (b + a)
            out[i] = _atanh2(z) * weights[i]
            far += not abs(z) < _NEAR  # NaN too
        if far:  # rare: only this block is walked again
            for i in range(lo, hi):
                a, b = values[i], values[i + 1]
                if not abs((b - a) / (b + a)) < _NEAR:
                    out[i] = math.log(b / a) * weights[i]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _log1p_each(x, scale):  # pragma: no cover - compiled
    # log1p(x[k] / scale) for each k, as log_returns computes a log: 2 atanh(y / (2 + y)).
    n = len(x)
    out = np.empty(n)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        far = 0
        for k in range(lo, hi):
            y = x[k] / scale
            z = y / (2.0 + y)
            out[k] = _atanh2(z)
            far += not abs(z) < _NEAR
        if far:
            for k in range(lo, hi):
                y = x[k] / scale
                if not abs(y / (2.0 + y)) < _NEAR:
                    out[k] = math.log1p(y)
    return out


@njit(cache=True, nogil=True)
def market_terms(prices):  # pragma: no cover - compiled
    """What beta and alpha need of buy & hold, the same for every equity curve over these
    ``prices``: its per-bar log returns minus their mean, the sum of their squares, and its
    total return (NaN without prices)."""
    if len(prices) == 0:
        return np.empty(0), math.nan, math.nan
    market = log_returns(prices)
    mean = _mean(market)
    centered = np.empty(len(market))
    for i in range(len(market)):
        centered[i] = market[i] - mean
    squares = np.empty(len(market))
    for i in range(len(market)):
        squares[i] = centered[i] * centered[i]
    return centered, _sum(squares), prices[len(prices) - 1] / prices[0] - 1


@njit(cache=True, nogil=True, error_model="numpy")
def _beta(values, centered, spread):  # pragma: no cover - compiled
    # Sample covariance of the per-bar log returns with buy & hold's over its variance
    # (ddof 1; the 1/(n-1) factors cancel but are kept, as np.cov has them). Buy & hold's
    # returns come centred, so ours need not be: the sum of their products is n - 1 times
    # the covariance, and each product is made as its log return is (see log_returns),
    # with no array of returns and no pass for their mean.
    n = len(values) - 1
    if n < 2 or len(centered) != n:
        return math.nan
    products = _weighted_log_returns(values, centered, np.empty(n))
    dof = n - 1
    return _ratio(_sum(products) / dof, spread / dof)


@njit(cache=True, nogil=True)
def _seconds(nanoseconds):  # pragma: no cover - compiled
    whole = nanoseconds // 1_000_000_000
    return whole + (nanoseconds - whole * 1_000_000_000) / 1e9


@njit(cache=True, nogil=True)
def _exposed_bars(held, times, exit_ns, exit_bars):  # pragma: no cover - compiled
    # Bars during which a position was held at any time: held at the close, held into the
    # bar from the previous close, or closed at this bar (each trade's entry through exit).
    n = len(held)
    if n == 0:
        return 0
    count = held[0] != 0
    for i in range(1, n):  # branch-free: the compiler runs it several bars at a time
        count += (held[i] != 0) | (held[i - 1] != 0)
    disorder = False
    for i in range(1, n):
        disorder |= times[i] <= times[i - 1]
    for k in range(1, len(exit_ns)):
        disorder |= exit_ns[k] < exit_ns[k - 1]
    for k in range(len(exit_ns)):
        b = exit_bars[k]
        disorder |= b >= n or (b >= 0 and times[b] != exit_ns[k])
    if disorder:  # not what the engine makes: look each exit's bar up
        return _exposed_bars_unordered(held, times, exit_ns)
    # Times unique and in order, exits in order, each at its bar (or none): a bar counts
    # once, and only if no position was held at its close or the close before.
    counted = -1
    for b in exit_bars:
        if b >= 0 and b != counted:
            counted = b
            count += held[b] == 0 and (b == 0 or held[b - 1] == 0)
    return count


@njit(cache=True, nogil=True)
def _exposed_bars_unordered(held, times, exit_ns):  # pragma: no cover - compiled
    n = len(held)
    exposed = np.zeros(n, np.bool_)
    for i in range(n):
        exposed[i] = held[i] != 0 or (i > 0 and held[i - 1] != 0)
    for t in exit_ns:
        for i in range(n):
            if times[i] == t:
                exposed[i] = True
    count = 0
    for i in range(n):
        count += exposed[i]
    return count


#: Bars per block of the drawdown walk: a block inside a drawdown without a new low (or a
#: NaN) changes nothing.
_QUIET = 16


@njit(cache=True, nogil=True)
def _drawdowns(values, times, capital, depths, lengths):  # pragma: no cover - compiled
    # One walk over the equity, with the capital as the first peak. The drawdown at a bar,
    # 1 - value / peak, is above 0 exactly when the value is below the peak, and it grows as
    # the value falls, so it is computed only at a drawdown's new lows: the deepest bar (the
    # first of the deepest, as argmax finds it) and each drawdown's depth are those of the
    # whole per-bar series. Each drawdown's depth and length go to ``depths`` and
    # ``lengths``. Returns (drawdowns, deepest bar, its drawdown, the peak before it, the
    # bar of that peak (-1: the capital), the highest equity with the capital, whether a
    # value is NaN).
    n = len(values)
    peak = capital
    peak_bar = -1
    v = values[0]
    if v > peak:
        peak, peak_bar = v, 0
    trough, deepest = 0, 1.0 - v / peak
    top, top_bar = peak, peak_bar
    periods = 0
    start = -1  # the first bar of the drawdown under way, -1 if none
    low = math.inf  # its lowest value so far
    depth = 0.0
    nan = v != v
    for lo in range(0, n, _QUIET):
        hi = min(lo + _QUIET, n)
        if start >= 0:
            # Every value below the peak and not below the low (NaN is neither): counted,
            # not branched on, so the compiler checks several bars at a time.
            quiet = 0
            for i in range(lo, hi):
                quiet += (values[i] < peak) & (values[i] >= low)
            if quiet == hi - lo:
                continue
        for i in range(lo, hi):
            v = values[i]
            if v < peak:
                if start < 0:
                    start, low = i, math.inf
                if v < low:
                    low = v
                    depth = 1.0 - v / peak
                    if i > 0 and depth > deepest:
                        trough, deepest, top, top_bar = i, depth, peak, peak_bar
                continue
            if start >= 0:  # a new high, back at the peak, or NaN: the drawdown ends here
                depths[periods] = depth
                lengths[periods] = (times[i] - times[max(start - 1, 0)]) / 1e9
                periods += 1
                start = -1
            if v > peak:
                peak, peak_bar = v, i
            elif v != v:
                nan = True
    if start >= 0:
        depths[periods] = depth
        lengths[periods] = (times[n - 1] - times[max(start - 1, 0)]) / 1e9
        periods += 1
    return periods, trough, deepest, top, top_bar, peak, nan


@njit(cache=True, nogil=True)
def _first_highest(values, stop):  # pragma: no cover - compiled
    # The first bar of the highest value of values[:stop + 1], as argmax finds it.
    best = 0
    for i in range(1, stop + 1):
        if values[i] > values[best]:
            best = i
    return best


@njit(cache=True, nogil=True, error_model="numpy")
def measure(  # pragma: no cover - compiled
    values, times, day_last, capital, market, spread, buy_hold, held, has_held, exposed,
    pnl, returns, commission, long, entry_ns, exit_ns, exit_bars, out,
):  # fmt: skip
    """Write the statistics of one equity curve into ``out`` (:data:`SIZE` floats).

    ``values``: equity at each bar's close; ``times``: the bars' epoch nanoseconds;
    ``day_last``: the position of each calendar day's last bar, in time order; ``market``,
    ``spread`` and ``buy_hold``: what :func:`market_terms` gives of buy & hold's prices;
    ``held``: shares held per bar (used when ``has_held``); ``exposed``: the bars exposed
    as the engine counted them while filling (-1: count them from ``held``); the trades as
    arrays:
    P&L, return in percent, commission, long (bool), entry and exit epoch nanoseconds, and
    the bar of each exit (its position in ``times``, -1 if there is none; checked).
    """
    n = len(values)
    out[:] = math.nan
    # -- drawdowns
    depths = np.empty(n)
    lengths = np.empty(n)
    if n:
        periods, trough, deepest, top, top_bar, peak, nan = _drawdowns(
            values, times, capital, depths, lengths
        )
    else:
        periods, trough, deepest, top, top_bar, peak, nan = 0, 0, 0.0, capital, 0, capital, False
    depths, lengths = depths[:periods], lengths[:periods]
    deep = n > 0 and deepest > 0
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
    beta = _beta(values, market, spread)
    total = final / capital - 1
    alpha = total - beta * buy_hold if math.isfinite(beta) else math.nan
    # -- trades
    count = len(pnl)
    win_values = np.empty(count)
    loss_values = np.empty(count)
    up = np.empty(count)
    down = np.empty(count)
    n_win = n_loss = n_up = n_down = n_long = 0
    for k in range(count):  # each value written, kept by moving on: no branch to mispredict
        win_values[n_win] = loss_values[n_loss] = pnl[k]
        n_win += pnl[k] > 0
        n_loss += pnl[k] < 0
        up[n_up] = down[n_down] = returns[k]
        n_up += returns[k] > 0
        n_down += returns[k] < 0
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
    exposure = math.nan
    if has_held and n:
        if exposed < 0:
            exposed = _exposed_bars(held, times, exit_ns, exit_bars)
        exposure = exposed / n * 100

    f = out
    f[0] = span_s
    f[1] = exposure
    f[2] = capital
    f[3] = final
    f[4] = max(capital, math.nan) if nan else peak
    f[5] = final - capital
    f[6] = _sum(commission)
    f[7] = total * 100
    f[8] = buy_hold * 100
    f[9] = ann_return * 100
    f[10] = ann_vol * 100
    f[11] = cagr * 100
    f[12] = _ratio(ann_return, ann_vol)
    f[13] = sortino
    f[14] = _ratio(ann_return, deepest if n else 0.0)
    f[15] = alpha * 100
    f[16] = beta
    f[17] = deepest * 100 if n else 0.0
    f[18] = _mean(depths) * 100 if periods else 0.0
    if deep:
        f[19] = top - values[trough]
        # The capital was the peak: the highest value before the trough is below or at it.
        f[PEAK] = top_bar if top_bar >= 0 else _first_highest(values, trough)
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
        f[28] = (math.exp(_mean(_log1p_each(returns, 100.0))) - 1) * 100
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


@njit(cache=True, nogil=True)
def exit_order(bars, edges, by_name, size):  # pragma: no cover - compiled
    """The order of a portfolio's trades that :func:`~.runner.combine` sorts them into: by
    exit bar, then symbol name, then their own order (a stable sort of the symbols' trades
    one after the other). Symbol ``j``'s trades are at ``edges[j]:edges[j + 1]``, their exit
    bars (each below ``size``) in ``bars``; ``by_name``: the symbols in order of name. A
    counting sort by bar: two passes over the trades."""
    first = np.zeros(size + 1, np.int64)  # each bar's first place in the order
    for k in range(len(bars)):
        first[bars[k] + 1] += 1
    for b in range(size):
        first[b + 1] += first[b]
    order = np.empty(len(bars), np.int64)
    for j in by_name:
        for k in range(edges[j], edges[j + 1]):
            order[first[bars[k]]] = k
            first[bars[k]] += 1
    return order
