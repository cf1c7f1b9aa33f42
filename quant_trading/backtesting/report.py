"""Console text for a backtest: header, the data file each symbol was read from, trade
blotter, per-symbol table, equity by month and portfolio totals. Every line fits in 100
columns but for file paths, which come last on their line. Returns strings; the CLI prints
them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice

import numpy as np
import pandas as pd

from .engine import EXIT_REASONS, RoundTrips
from .runner import PortfolioResult, RunResult, SymbolSummary, period_label
from .statistics import LABELS, Statistics

__all__ = [
    "header",
    "data_files",
    "blotter",
    "summary_table",
    "MonthlyEquity",
    "equity_by_month",
    "monthly_equity",
    "totals",
    "full_report",
]

# Exit reasons as the blotter shows them, to stay within 100 columns.
_SHORT_REASON = {"session close": "close", "end of data": "end"}


def _num(value: float, spec: str = ",.2f") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):  # Sortino without a losing day
        return "inf" if value > 0 else "-inf"
    return format(value, spec)


def _duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours:02d}:{rest // 60:02d}"


def header(result: SymbolSummary) -> str:
    """What ran: strategy and parameters, bars, period, capital and costs."""
    config, options = result.config, result.options
    params = " ".join(f"{k.lower()}={v}" for k, v in config.params.items())
    costs = options.costs
    if costs.commission_per_share > 0:
        fee = (
            f"commission {costs.commission_per_share:g}/share "
            f"(min {costs.commission_min:.2f}, max {costs.commission_max_pct:g}% of value)"
        )
    else:
        fee = "no commission"
    sizing = options.sizing
    size = (
        f"{sizing.fixed_shares:g} shares per entry"
        if sizing.fixed_shares
        else f"{sizing.allocation:.0%} of equity per entry"
    )
    lines = [
        f"{config.strategy.name} backtest on {config.timeframe} bars: {params}",
        f"Period {period_label(result)} | capital {options.capital:,.2f} per symbol | {size}",
        f"Fills at the next bar's open | {fee}"
        + (f" | slippage {costs.slippage:g}/share" if costs.slippage else "")
        + (" | flat at each close" if options.flat_at_close else ""),
    ]
    return "\n".join(lines)


def data_files(results: list[SymbolSummary]) -> str:
    """Which file each symbol was read from, with its bars' count and range, and any file of
    the same bar size that it shadows (a download into the data folder changes results)."""
    tf = results[0].config.timeframe.name
    rows = [
        f"Data: each symbol's first of <SYM>_{tf}_bars_macd.parquet/.csv, "
        f"<SYM>_{tf}.parquet/.csv, finer files"
    ]
    # Indented, "AAPL:": no line but the summary table's starts with a symbol.
    width = max(len(r.symbol) for r in results) + 1
    for r in results:
        data = r.source
        span = "empty"
        if data.rows:
            span = f"{data.first:%Y-%m-%d %H:%M} .. {data.last:%Y-%m-%d %H:%M}"
        made = (
            ""
            if data.source_timeframe == data.timeframe
            else f" ({data.source_timeframe}, aggregated)"
        )
        rows.append(
            f"  {r.symbol + ':':<{width}} {data.rows:>7,} {data.timeframe} bars  {span}  "
            f"{data.path}{made}"
        )
        rows += [f"  {'':<{width}} not used: {other}" for other in data.unused]
    return "\n".join(rows)


def blotter(result: SymbolSummary, last: int = 10) -> str:
    """The symbol's most recent ``last`` trades (all if ``last`` <= 0)."""
    return _blotters([result], last)[0]


def _blotters(results: list[SymbolSummary], last: int) -> list[str]:
    """:func:`blotter` of each result. The rows shown of all of them are formatted together,
    column by column, from the round trips' arrays: pandas' cost per frame, per row and per
    column would otherwise be most of the report of a run of many symbols."""
    shown = [r.round_trips.tail(last) for r in results]
    rows = iter(_trade_rows(shown))
    out = []
    for result, mine in zip(results, shown, strict=True):
        count = len(result.round_trips)
        if not count:
            out.append(f"{result.symbol}: no trades")
            continue
        title = (
            f"{result.symbol} trades ({count:,})"
            if len(mine) == count
            else f"{result.symbol} trades (last {len(mine)} of {count:,})"
        )
        out.append("\n".join([title, _BLOTTER_HEAD, *islice(rows, len(mine))]))
    return out


_BLOTTER_HEAD = (
    f"{'Side':<5} {'Entry time':<16} {'Entry':>8} {'Exit time':<16} {'Exit':>8} "
    f"{'Shares':>6} {'Comm.':>5} {'P&L':>10} {'Ret %':>6} {'Bars':>4} Why"
)


def _trade_rows(shown: list[RoundTrips]) -> list[str]:
    """The blotter line of each round trip of ``shown``, one after the other."""

    def column(of) -> list:
        return np.concatenate([of(t) for t in shown]).tolist()

    pnl = [t.pnl for t in shown]
    columns = [
        column(lambda t: np.where(t.side > 0, "long", "short")),
        [m for t in shown for m in _minutes(t.entry_time)],
        column(lambda t: t.entry_price),
        [m for t in shown for m in _minutes(t.exit_time)],
        column(lambda t: t.exit_price),
        column(lambda t: t.shares),
        column(lambda t: t.commission),
        np.concatenate(pnl).tolist(),
        np.concatenate(
            [t.return_of(p, t.entry_price, t.shares) for t, p in zip(shown, pnl, strict=True)]
        ).tolist(),
        column(lambda t: t.exit_bar - t.entry_bar),
        column(lambda t: np.asarray(EXIT_REASONS)[t.reason]),
    ]
    return [
        f"{side:<5} {entry} {entry_price:>8.2f} "
        f"{exit_} {exit_price:>8.2f} {_shares(shares):>6} "
        f"{fee:>5.2f} {pnl:>10,.2f} {ret:>6.2f} {held:>4} {_SHORT_REASON.get(why, why)}"
        for side, entry, entry_price, exit_, exit_price, shares, fee, pnl, ret, held, why in zip(
            *columns, strict=True
        )
    ]


def _shares(shares: float) -> str:
    """Whole shares as such, fractional ones (--fractional) to the cent of a share."""
    return f"{shares:,.0f}" if shares == int(shares) else f"{shares:,.2f}"


def _minutes(times: pd.DatetimeIndex) -> list[str]:
    """``2025-01-31 09:35`` for each time, on its own clock: what ``f"{t:%Y-%m-%d %H:%M}"``
    gives, by numpy ten times as fast (all trades of a long run are many)."""
    if times.tz is not None:
        times = times.tz_localize(None)
    text = np.datetime_as_string(times.to_numpy().astype("datetime64[m]"), unit="m")
    return [t.replace("T", " ") for t in text.tolist()]


def summary_table(results: list[SymbolSummary], portfolio: PortfolioResult | None) -> str:
    """One row per symbol (and the portfolio): the numbers a trader compares first."""
    head = (
        f"{'Symbol':<9} {'Trades':>6} {'Win %':>6} {'Net profit':>13} {'Return %':>9} "
        f"{'B&H %':>8} {'Max DD %':>8} {'Sharpe':>7} {'Expo %':>7} {'Final equity':>15}"
    )
    rows = [head, "-" * len(head)]

    def row(name: str, s: Statistics) -> str:
        return (
            f"{name:<9} {s.trades:>6,} {_num(s.win_rate_pct, '.1f'):>6} "
            f"{_num(s.net_profit):>13} {_num(s.return_pct, '+.2f'):>9} "
            f"{_num(s.buy_hold_return_pct, '+.2f'):>8} {_num(s.max_drawdown_pct, '.2f'):>8} "
            f"{_num(s.sharpe, '.2f'):>7} {_num(s.exposure_pct, '.1f'):>7} "
            f"{_num(s.equity_final):>15}"
        )

    rows += [row(r.symbol, r.statistics) for r in results]
    if portfolio is not None and len(results) > 1:
        rows += ["-" * len(head), row("Portfolio", portfolio.statistics)]
    return "\n".join(rows)


@dataclass(frozen=True)
class MonthlyEquity:
    """One calendar month (New York time) of an equity curve."""

    month: str  # "2025-01"
    equity: float  # at the month's last bar
    month_pct: float  # change from the previous month's end (the capital for the first)
    max_drawdown_pct: float  # deepest drawdown from the running peak within the month


def equity_by_month(equity: pd.Series, capital: float) -> list[MonthlyEquity]:
    """The numbers of :func:`monthly_equity`'s table, one record per month."""
    if equity.empty:
        return []
    local = equity.index.tz_localize(None)
    months = equity.groupby(local.to_period("M")).last()
    peak = np.maximum.accumulate(np.r_[capital, equity.to_numpy()])[1:]
    drawdown = pd.Series(1 - equity.to_numpy() / peak, index=equity.index)
    month_dd = drawdown.groupby(local.to_period("M")).max()
    previous = np.r_[capital, months.to_numpy()[:-1]]
    return [
        MonthlyEquity(str(month), float(value), float((value / prev - 1) * 100), float(dd * 100))
        for (month, value), prev, dd in zip(months.items(), previous, month_dd.to_numpy())
    ]


def monthly_equity(equity: pd.Series, capital: float, bar_width: int = 40) -> str:
    """Month-end equity, the month's return, drawdown from the peak so far, and a bar."""
    rows = equity_by_month(equity, capital)
    if not rows:
        return ""
    low = min(min(r.equity for r in rows), capital)
    high = max(max(r.equity for r in rows), capital)
    span = (high - low) or 1.0
    lines = [
        "Portfolio equity by month" if equity.name == "portfolio" else f"{equity.name} equity",
        f"{'Month':<8} {'Equity':>14} {'Month %':>8} {'Max DD %':>8}  "
        f"{'(low ' + format(low, ',.0f') + ' .. high ' + format(high, ',.0f') + ')'}",
    ]
    for r in rows:
        bar = "#" * max(1, round((r.equity - low) / span * bar_width))
        dd = r.max_drawdown_pct
        lines.append(f"{r.month:<8} {r.equity:>14,.2f} {r.month_pct:>+8.2f} {dd:>8.2f}  {bar}")
    return "\n".join(lines)


def totals(portfolio: PortfolioResult, title: str = "Portfolio totals") -> str:
    """All statistics, two per line."""
    stats = portfolio.statistics.as_dict()
    items = []
    for key, label in LABELS.items():
        value = stats[key]
        if key.endswith("_s"):
            text = _duration(value)
        elif isinstance(value, str) or value is None:
            text = "n/a" if value is None else value[:16].replace("T", " ")
        elif isinstance(value, int | np.integer):
            text = f"{value:,}"
        else:
            text = _num(float(value))
        items.append(f"{label:<24}{text:>24}")
    lines = [title]
    for i in range(0, len(items), 2):
        lines.append("  ".join(items[i : i + 2]))
    return "\n".join(lines)


def full_report(run: RunResult, trades: int | None = 10) -> str:
    """Everything ``run_backtest`` prints before the cache paths; ``trades`` blotter lines
    per symbol (0 = all, None = no blotters)."""
    out = [header(run.results[0]), "", data_files(run.results), ""]
    if trades is not None:
        for text in _blotters(run.results, trades):
            out += [text, ""]
    out += [summary_table(run.results, run.portfolio), ""]
    if len(run.results) > 1:
        out += [monthly_equity(run.portfolio.equity, run.portfolio.statistics.equity_initial), ""]
        out += [totals(run.portfolio)]
    else:
        only = run.results[0]
        # One symbol's portfolio is that symbol's equity, to the bit.
        equity = run.portfolio.equity.rename(only.symbol)
        out += [monthly_equity(equity, only.options.capital), ""]
        out += [totals(run.portfolio, f"{only.symbol} totals")]
    return "\n".join(out).rstrip()
