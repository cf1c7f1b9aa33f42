"""``python -m quant_trading.core.portfolio_tracker``: the account's cash, positions and P&L.

The command line and the text layout; the tracker itself is
:class:`quant_trading.core.portfolio_tracker.PortfolioTracker`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import orjson

from ..core.ibkr_connection import (
    TROUBLESHOOTING,
    ConnectionConfigError,
    RequestError,
    RequestTimeout,
)
from ..core.portfolio_tracker import PortfolioItem, PortfolioSnapshot, PortfolioTracker, Position
from . import (
    ArgumentParser,
    add_connection_arguments,
    connection_failed,
    fail,
    positive_float,
    setup_logging,
)

__all__ = ["format_snapshot", "main"]

PROG = "portfolio_tracker"
RULE = "=" * 60
SUBRULE = "-" * 30


def _money(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.2f}"


def _qty(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4f}".rstrip("0")


def _label(record: Position | PortfolioItem) -> str:
    return f"{record.symbol} ({record.currency}):"


def format_snapshot(snap: PortfolioSnapshot) -> str:
    """The seed README's layout, with aligned columns and thousands separators."""
    kind = "PAPER" if snap.is_paper else "LIVE"
    lines = [RULE, f"IBKR {kind} TRADING PORTFOLIO SUMMARY", RULE]
    lines.append(
        f"Account: {snap.account}"
        + (f"   (as of {snap.account_time})" if snap.account_time else "")
    )
    lines += ["", "Cash Balances:", SUBRULE, "", "CashBalance:"]
    cash = snap.by_currency("CashBalance")
    width = max((len(_money(v)) for v in cash.values()), default=0)
    lines += [f"  {cur + ':':<6}{_money(v):>{width}}" for cur, v in cash.items()] or ["  (none)"]

    lines += ["", "Current Positions:", SUBRULE]
    if snap.positions:
        name_w = max(len(_label(p)) for p in snap.positions)
        qty_w = max(len(_qty(p.quantity)) for p in snap.positions)
        cost_w = max(len(_money(p.average_cost)) for p in snap.positions)
        for p in snap.positions:
            lines.append(
                f"{_label(p):<{name_w}} {_qty(p.quantity):>{qty_w}} shares, "
                f"Avg Cost: {_money(p.average_cost):>{cost_w}}"
            )
    else:
        lines.append("(no positions)")

    lines += ["", "Portfolio Details:", SUBRULE, "", "Market Value by Currency:"]
    market = snap.market_value_by_currency()
    width = max((len(_money(v)) for v in market.values()), default=0)
    lines += [f"  {cur + ':':<6}{_money(v):>{width}}" for cur, v in market.items()] or ["  (none)"]

    lines += ["", "Detailed Holdings:"]
    if snap.items:
        name_w = max(len(_label(i)) for i in snap.items)
        qty_w = max(len(_qty(i.quantity)) for i in snap.items)
        mv_w = max(len(_money(i.market_value)) for i in snap.items)
        pnl_w = max(len(_money(i.unrealized_pnl)) for i in snap.items)
        for i in snap.items:
            lines.append(
                f"  {_label(i):<{name_w}} Position {_qty(i.quantity):>{qty_w}}, "
                f"Market Value {_money(i.market_value):>{mv_w}}, "
                f"Unrealized P&L {_money(i.unrealized_pnl):>{pnl_w}}"
            )
    else:
        lines.append("  (none)")

    totals = [
        (label, snap.total(key))
        for label, key in (
            ("Net Liquidation", "NetLiquidation"),
            ("Total Cash Value", "TotalCashValue"),
            ("Gross Position Value", "GrossPositionValue"),
            ("Unrealized P&L", "UnrealizedPnL"),
            ("Realized P&L", "RealizedPnL"),
            ("Available Funds", "AvailableFunds"),
            ("Buying Power", "BuyingPower"),
        )
    ]
    width = max(len(_money(v)) for _, v in totals)
    base = f" ({snap.base_currency})" if snap.base_currency else ""
    lines += ["", f"Account Totals{base}:", SUBRULE]
    lines += [f"  {label + ':':<22}{_money(v):>{width}}" for label, v in totals]
    lines.append(RULE)
    return "\n".join(lines)


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG, description="Show the account's cash, positions and P&L from TWS."
    )
    p.add_argument("--account", help="account id (default: the first managed account)")
    p.add_argument("--json", action="store_true", help="print one JSON document, not the summary")
    p.add_argument(
        "--watch",
        type=positive_float,
        metavar="SECONDS",
        help="refresh every SECONDS until Ctrl-C (default: print once and exit)",
    )
    add_connection_arguments(p, PortfolioTracker.DEFAULT_CLIENT_ID)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, live_tool=True)
    try:
        tracker = PortfolioTracker(
            client_id=args.client_id, host=args.host, port=args.port,
            timeout=args.timeout, allow_live=args.live, account=args.account,
            auto_reconnect=bool(args.watch),  # --watch rides out a dropped connection
        )  # fmt: skip
    except ConnectionConfigError as exc:
        return fail(PROG, str(exc), 2)
    if not tracker.connect_to_tws():
        return connection_failed(PROG, tracker.last_error, tracker.tws_unreachable, TROUBLESHOOTING)

    def show(snap: PortfolioSnapshot) -> None:
        if args.json:
            print(orjson.dumps(snap.as_dict(), option=orjson.OPT_INDENT_2).decode(), flush=True)
        else:
            print(format_snapshot(snap), flush=True)

    def notice(text: str) -> None:
        # stderr: with --json, stdout stays a stream of JSON documents
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)

    try:
        if args.watch:
            tracker.watch(args.watch, show, notice, timeout=args.timeout)
        else:
            show(tracker.snapshot(timeout=args.timeout))
        return 0
    except (RequestError, RequestTimeout) as exc:
        return fail(PROG, str(exc), 1)
    except KeyboardInterrupt:
        return 0
    finally:
        tracker.disconnect_from_tws()
