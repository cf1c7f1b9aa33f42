"""``python -m quant_trading.trading.paper_trader``: paper-trade a strategy on live bars, or
(``--compare``) check a paper trading folder against the backtest.

The command line only; the trader is :class:`quant_trading.trading.paper_trader.PaperTrader`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..core.ibkr_connection import (
    TROUBLESHOOTING,
    ConnectionConfigError,
    RequestError,
    RequestTimeout,
)
from . import (
    ArgumentParser,
    add_connection_arguments,
    add_cost_arguments,
    connection_failed,
    fail,
    positive_float,
    setup_logging,
)

__all__ = ["main"]

PROG = "paper_trader"


def _parser() -> ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Paper-trade a strategy on live bars from TWS: every change of its "
        "target is filled on paper at the next bar's open with the backtest's costs, kept "
        "in a blotter, optionally posted to the dashboard. No order is sent to TWS.",
    )
    p.add_argument(
        "--compare",
        metavar="DIR",
        help="instead of trading: backtest the bars a paper trading folder saw and compare "
        "its blotter with the backtest, order by order",
    )
    p.add_argument(
        "--symbols", nargs="+", metavar="SYMBOL", help="symbols (default: <STRATEGY>_SYMBOLS)"
    )
    p.add_argument(
        "--strategy",
        help="strategy name (default: ACTIVE_STRATEGY in strategy.env, else MACD)",
    )
    p.add_argument(
        "--strategy-path",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder of strategy files (repeatable)",
    )
    p.add_argument(
        "--timeframe",
        nargs="+",
        metavar="SIZE",
        help="bar sizes to trade, each its own book: 1m, 5m, 15m, 1h... "
        "(default: <STRATEGY>_TIMEFRAME)",
    )
    p.add_argument("--env-file", help="settings file (default: ./strategy.env, else the project's)")
    p.add_argument(
        "--dir",
        default="paper_trading",
        help="folder of the blotter, the bars seen and the settings (default: paper_trading)",
    )
    add_cost_arguments(p, capital_help="USD per symbol and timeframe (default: 100000)")
    p.add_argument(
        "--session-close",
        action="store_true",
        help="flatten at each session's last bar, as run_backtest --flat-at-close",
    )
    p.add_argument(
        "--post-to",
        metavar="URL",
        help="also post each fill to the dashboard at URL (e.g. http://127.0.0.1:8000); "
        "failed posts are retried",
    )
    p.add_argument(
        "--api-token",
        help="the dashboard's API token (default: DJANGO_API_TOKEN from the environment)",
    )
    p.add_argument("--quiet", action="store_true", help="print only fills and notices")
    p.add_argument("--exchange", default="SMART", help="routing exchange (default: SMART)")
    p.add_argument("--currency", default="USD", help="currency (default: USD)")
    p.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help="stop after SECONDS (default: run until Ctrl-C)",
    )
    add_connection_arguments(p, 14)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = _parser().parse_args(argv)
    setup_logging(args.verbose, live_tool=True)
    from ..csv_store import DataFileError
    from ..strategy import StrategyError

    try:
        if args.compare:
            return _compare(args)
        trader = _trader(args)
    except (ConnectionConfigError, StrategyError, DataFileError, ValueError, OSError) as exc:
        return fail(PROG, str(exc), 2)
    if not trader.connect_to_tws():
        return connection_failed(PROG, trader.last_error, trader.tws_unreachable, TROUBLESHOOTING)
    try:
        unknown = trader.resolve_symbols()
        if not trader.symbols:
            return fail(PROG, f"unknown symbol{'s' * (len(unknown) > 1)}: {', '.join(unknown)}")
        trader.backfill()
        if trader.poster is not None:
            trader.poster.start(trader.folder.blotter.fills())
        trader.subscribe()
        trader.track(args.duration)
        return 0
    except (RequestError, RequestTimeout) as exc:
        return fail(PROG, str(exc), 1)
    except ValueError as exc:  # a bad file in the folder
        return fail(PROG, str(exc), 2)
    except KeyboardInterrupt:
        return 0
    finally:
        trader.finish()
        if trader.poster is not None:
            left = trader.poster.close()
            if left:
                print(f"{left} fill(s) not posted yet: they are posted on the next run")
        trader.disconnect_from_tws()


def _trader(args):
    from ..settings import load_settings, split_symbols
    from ..strategy import configure
    from ..trading.blotter import PaperSettings
    from ..trading.orders import book_tag
    from ..trading.paper_trader import PaperTrader
    from ..trading.poster import Poster

    settings = load_settings(args.env_file)
    name = args.strategy or settings.get("ACTIVE_STRATEGY") or "MACD"
    timeframes = args.timeframe or [None]
    configs = [
        configure(name, settings, timeframe=tf, strategy_path=args.strategy_path)
        for tf in timeframes
    ]
    config = min(configs, key=lambda c: c.timeframe.seconds)
    symbols = split_symbols(" ".join(args.symbols)) if args.symbols else list(config.symbols)
    if not symbols:
        raise ValueError("no symbols: pass --symbols or set <STRATEGY>_SYMBOLS in strategy.env")
    paper = PaperSettings(
        strategy=config.strategy.name,
        params=dict(config.params),
        tag=book_tag(config.strategy.name, config.params),
        capital=args.initial_capital,
        commission=args.commission,
        slippage=args.slippage,
        allocation=args.allocation,
        size=args.size,
        fractional=args.fractional,
        session_close=args.session_close,
    )
    output = lambda line: print(line, flush=True)  # noqa: E731
    trader = PaperTrader(
        symbols,
        [c.timeframe for c in configs],
        strategy=config,
        settings=paper,
        folder=args.dir,
        show_bars=not args.quiet,
        exchange=args.exchange,
        currency=args.currency,
        client_id=args.client_id,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        allow_live=args.live,
        output=output,
    )
    if args.post_to:
        token = args.api_token or os.environ.get("DJANGO_API_TOKEN") or None
        trader.poster = Poster(args.post_to, trader.folder, token=token, output=output)
    return trader


def _compare(args) -> int:
    from ..trading.compare import compare_folder, report

    books = compare_folder(args.compare, strategy_path=args.strategy_path)
    print(
        f"Paper trading in {args.compare} against the backtest over the bars it saw "
        f"({os.path.join(args.compare, 'bars')})"
    )
    return 1 if report(books, lambda line: print(line, flush=True)) else 0
