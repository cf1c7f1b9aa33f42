"""``python -m quant_trading.data.market_data_tracker``: live quotes, and bars with the
strategy's indicators and signal.

The command line only; the tracker is
:class:`quant_trading.data.market_data_tracker.MarketDataTracker`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.ibkr_connection import (
    TROUBLESHOOTING,
    ConnectionConfigError,
    RequestError,
    RequestTimeout,
)
from ..data.market_data_tracker import MarketDataTracker
from ..settings import load_settings, split_symbols
from ..strategy import StrategyError, configure
from . import (
    ArgumentParser,
    add_connection_arguments,
    connection_failed,
    fail,
    positive_float,
    setup_logging,
)

__all__ = ["main"]

PROG = "market_data_tracker"


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Live quotes from TWS, and bars with the strategy's indicators and signal.",
    )
    p.add_argument(
        "--symbols",
        nargs="+",
        metavar="SYMBOL",
        help="symbols (default: the active strategy's symbols in strategy.env)",
    )
    p.add_argument(
        "--timeframes",
        nargs="+",
        default=["1", "3", "5", "10"],
        metavar="SIZE",
        help="bar sizes: minutes, or 15m, 30m, 1h... (default: 1 3 5 10; the strategy's own "
        "timeframe is always added)",
    )
    p.add_argument(
        "--strategy",
        metavar="NAME",
        help="strategy whose indicators and signal to show (default: ACTIVE_STRATEGY in "
        "strategy.env, else MACD)",
    )
    p.add_argument(
        "--strategy-path",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder of strategy files (repeatable)",
    )
    p.add_argument("--exchange", default="SMART", help="routing exchange (default: SMART)")
    p.add_argument("--currency", default="USD", help="currency (default: USD)")
    p.add_argument("--delayed", action="store_true", help="use delayed market data (type 3)")
    p.add_argument("--quiet", action="store_true", help="print only finished bars")
    p.add_argument(
        "--csv-dir",
        help="keep <SYMBOL>_<tf>_bars_macd.csv here up to date with the finished bars and the "
        "strategy's indicators (default: no files are written)",
    )
    p.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help="stop after SECONDS (default: run until Ctrl-C)",
    )
    add_connection_arguments(p, MarketDataTracker.DEFAULT_CLIENT_ID)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, live_tool=True)
    try:
        settings = load_settings()
        name = args.strategy or settings.get("ACTIVE_STRATEGY") or "MACD"
        strategy = configure(name, settings, strategy_path=args.strategy_path)
        symbols = split_symbols(" ".join(args.symbols)) if args.symbols else list(strategy.symbols)
        if not symbols:
            return fail(
                PROG, "no symbols: pass --symbols or set <STRATEGY>_SYMBOLS in strategy.env", 2
            )
        tracker = MarketDataTracker(
            symbols,
            args.timeframes,
            exchange=args.exchange,
            currency=args.currency,
            delayed=args.delayed,
            quiet=args.quiet,
            csv_dir=args.csv_dir,
            client_id=args.client_id,
            host=args.host,
            port=args.port,
            timeout=args.timeout,
            allow_live=args.live,
            output=lambda line: print(line, flush=True),
            strategy=strategy,
        )
    except (ConnectionConfigError, StrategyError, ValueError) as exc:
        return fail(PROG, str(exc), 2)
    if not tracker.connect_to_tws():
        return connection_failed(PROG, tracker.last_error, tracker.tws_unreachable, TROUBLESHOOTING)
    try:
        unknown = tracker.resolve_symbols()
        if not tracker.symbols:
            return fail(
                PROG, f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}", 1
            )
        tracker.backfill()
        tracker.subscribe()
        tracker.track(args.duration)
        return 0
    except (RequestError, RequestTimeout) as exc:
        return fail(PROG, str(exc), 1)
    except KeyboardInterrupt:
        return 0
    finally:
        tracker.disconnect_from_tws()
