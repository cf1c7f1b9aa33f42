"""The command-line layer. This module holds what every tool shares: an argument parser whose
errors are one line and whose ``--help`` shows every default, and logging set up so warnings
reach the user as ``warning: ...`` on stderr. The live trackers' command lines live beside it
(:mod:`.portfolio`, :mod:`.market_data`); the seed's ``python -m`` paths in the domain
modules call them."""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
from collections.abc import Callable
from typing import NoReturn

__all__ = [
    "ArgumentParser",
    "setup_logging",
    "exit_with",
    "fail",
    "say_if_compiling",
    "positive_float",
    "non_negative_float",
    "add_run_arguments",
    "add_cost_arguments",
    "run_config",
    "allocation_fraction",
    "time_option",
]


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: ...)`` to an option's help when the help text does not already say
    what the default is. Unlike argparse's ArgumentDefaultsHelpFormatter it leaves out
    defaults that mean "not given" (None, False, an empty list), which would only be noise."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or not action.option_strings
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or (isinstance(default, list | tuple) and not default)
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else "%(default)s"
        return f"{text} (default: {shown})" if text else f"default: {shown}"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a single-line error (no usage dump) and exit code 2, and a ``--help``
    that shows every option's default (:class:`DefaultsHelpFormatter`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def setup_logging(verbose: bool = False, live_tool: bool = False) -> None:
    """Warnings (and with ``verbose`` everything from quant_trading) to stderr. A
    ``live_tool`` reports connection failures itself, so the connection's own error log is
    kept out of its output unless ``verbose``; live-trading warnings (``--live`` on a live
    port or account) have a logger of their own and always show."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("quant_trading").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if live_tool and not verbose:
        logging.getLogger("quant_trading.core.ibkr_connection").setLevel(logging.CRITICAL)
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.ERROR, "error")


def fail(prog: str, message: str, code: int = 1) -> int:
    """Print ``prog: error: message`` on stderr and return ``code`` (for ``return fail(...)``)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


#: The exit code of a run whose output's reader went away (``| head``): a shell's for a
#: tool that SIGPIPE stopped (128 + 13).
BROKEN_PIPE = 141


def exit_with(main: Callable[[], int], fast: bool = False) -> NoReturn:
    """End a ``python -m`` run with ``main()``'s exit code. Output cut off by its reader
    (``| head``) ends the run quietly with :data:`BROKEN_PIPE`, and a Ctrl-C that ``main``
    did not handle (e.g. while printing) with 130, instead of a traceback. ``fast``: skip the
    interpreter's teardown (freeing pandas', numba's and the run's objects one by one) once
    everything is flushed."""
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # Python ignores SIGPIPE (the TWS socket relies on errors, not the signal), so a
        # closed stdout raises; one from anywhere else is a bug to show.
        if not _reader_gone():
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to say
        code = BROKEN_PIPE
    if fast:
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (poll says POLLERR)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor
        return False


def say_if_compiling(prog: str, *functions) -> None:
    """On a terminal, say that this run compiles ``functions`` before it prints anything (the
    first run after installing or updating: about half a minute of silence otherwise).
    Redirected output stays exactly the run's own."""
    from ..jit import is_cached

    if sys.stderr.isatty() and not is_cached(*functions):
        print(
            f"{prog}: compiling the engine for its first run (about half a minute, once; "
            "later runs load it from disk)...",
            file=sys.stderr,
            flush=True,
        )


def add_connection_arguments(parser: argparse.ArgumentParser, default_client_id: int) -> None:
    """The flags every live tool shares: --host --port --client-id --timeout --live -v."""
    parser.add_argument("--host", help="TWS host (default: IBKR_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TWS port (default: IBKR_PORT or 7497, paper)")
    parser.add_argument(
        "--client-id",
        type=int,
        help=f"API client id (default: IBKR_CLIENT_ID or {default_client_id})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="seconds to wait for TWS to connect and to answer each request (default: 30)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="allow live trading: the live ports 7496 (TWS) and 4001 (IB Gateway), and a "
        "login to a live (not paper) account (default: paper only)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")


def connection_failed(prog: str, message: str, unreachable: bool, checklist) -> int:
    """Report a failed TWS connection: one error line, plus the troubleshooting checklist
    when TWS could not be reached at all. Returns exit code 1. A ``message`` taken from
    ``IBKRConnection.last_error`` carries the checklist for the port that was tried, which
    wins over ``checklist`` (the default port's)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    checklist = getattr(message, "checklist", None) or checklist
    if unreachable:
        steps = "\n".join(f"  {n}. {step}" for n, step in enumerate(checklist, 1))
        print(f"Check that:\n{steps}", file=sys.stderr)
    return 1


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def allocation_fraction(text: str) -> float:
    """argparse type: a fraction of equity, 0 < x <= 1 (the engine has no leverage)."""
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most 1 (there is no leverage)")
    return value


def time_option(text: str | None, flag: str, end: bool = False):
    """``--start``/``--end`` as a New York timestamp (None if not given); ValueError with a
    one-line message naming the flag."""
    from ..timeframes import parse_time  # pandas: only when a time is given

    if text is None:
        return None
    try:
        return parse_time(text, end=end)
    except ValueError:
        raise ValueError(f"{flag} {text!r}: not a date or time (use e.g. 2025-01-31)") from None


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What a backtest runs on, the same for ``run_backtest`` and ``optimize``: timeframe,
    data folder, strategy, symbols, window, capital, costs and sizing."""
    parser.add_argument(
        "--timeframe",
        help="bar size: 1m, 3m, 5m, 10m, 15m, 30m, 1h... (default: <STRATEGY>_TIMEFRAME)",
    )
    parser.add_argument(
        "--data-dir",
        default="market_data",
        help="folder with the CSV or Parquet files (default: market_data)",
    )
    parser.add_argument(
        "--strategy",
        help="strategy name, or package.module:NAME "
        "(default: ACTIVE_STRATEGY from the environment or strategy.env)",
    )
    parser.add_argument(
        "--strategy-path",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder of strategy files (repeatable; also QT_STRATEGY_PATH)",
    )
    parser.add_argument(
        "--symbols", nargs="+", metavar="SYMBOL", help="symbols (default: <STRATEGY>_SYMBOLS)"
    )
    parser.add_argument(
        "--start", help="first day or time traded (default: two years before --end)"
    )
    parser.add_argument("--end", help="last day or time used (default: the last bar in the data)")
    add_cost_arguments(parser, capital_help="USD per symbol (default: 100000)")
    parser.add_argument(
        "--flat-at-close", action="store_true", help="close positions at each session's last bar"
    )


def add_cost_arguments(parser: argparse.ArgumentParser, capital_help: str) -> None:
    """Capital, costs and sizing, the same for a backtest and the paper trader:
    --initial-capital --commission --slippage --allocation | --size --fractional."""
    parser.add_argument(
        "--initial-capital",
        type=positive_float,
        default=100_000.0,
        help=capital_help,
    )
    parser.add_argument(
        "--commission",
        type=non_negative_float,
        default=0.005,
        help="USD per share, IBKR fixed: min 1.00, max 1%% of value (default: 0.005; 0 = none)",
    )
    parser.add_argument(
        "--slippage",
        type=non_negative_float,
        default=0.0,
        help="USD per share against every fill (default: 0)",
    )
    sizing = parser.add_mutually_exclusive_group()
    sizing.add_argument(
        "--allocation",
        type=allocation_fraction,
        default=1.0,
        help="fraction of current equity per entry, commission included; at most 1, no "
        "leverage (default: 1.0)",
    )
    sizing.add_argument(
        "--size",
        type=positive_float,
        help="fixed number of shares per entry; an entry the cash cannot pay for is skipped "
        "with a warning (default: sized by --allocation)",
    )
    parser.add_argument("--fractional", action="store_true", help="allow fractional shares")


def run_config(args: argparse.Namespace):
    """The strategy configuration that :func:`add_run_arguments`' flags ask for, with
    ``--env-file`` (strategy.env) and the environment behind them. Raises StrategyError,
    FileNotFoundError or ValueError with a one-line message."""
    from ..settings import load_settings, split_symbols
    from ..strategy import configure  # pandas: only once the arguments are parsed

    settings = load_settings(args.env_file)
    return configure(
        args.strategy or settings.get("ACTIVE_STRATEGY") or "MACD",
        settings,
        timeframe=args.timeframe,
        symbols=split_symbols(" ".join(args.symbols)) if args.symbols else None,
        source=args.env_file or "strategy.env",
        strategy_path=args.strategy_path,
    )
