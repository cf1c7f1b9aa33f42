"""``python -m quant_trading.tools.make_sample_data``: write the synthetic sample bars.

The command line only; the generator is :mod:`quant_trading.sample_data`.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Sequence

import pandas as pd

from ..sample_data import (
    DEFAULT_END,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_SEED,
    DEFAULT_SYMBOLS,
    DEFAULT_YEARS,
    write_sample_data,
)

_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,11}$")  # a symbol becomes part of a file name


def _date(text: str) -> pd.Timestamp:
    try:
        value = pd.Timestamp(text)
    except (ValueError, TypeError):
        value = pd.NaT
    if value is pd.NaT:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)")
    return value


def _years(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 30:
        raise argparse.ArgumentTypeError(f"years must be a number above 0 and at most 30: {text!r}")
    return value


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}: {text!r}")
    return value


def _symbol(text: str) -> str:
    symbol = text.strip().upper()
    if not _TICKER.match(symbol):  # it becomes part of a file name
        raise argparse.ArgumentTypeError(f"not a ticker symbol: {text!r}")
    return symbol


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="make_sample_data",
        description="Write SYNTHETIC (made-up) 5-minute and 1-minute OHLCV bars over NYSE "
        "regular sessions, for trying the toolkit offline. Same arguments, same files.",
    )
    parser.add_argument(
        "--end", type=_date, default=pd.Timestamp(DEFAULT_END),
        help=f"last day (its session is included if it is one; default {DEFAULT_END})",
    )  # fmt: skip
    parser.add_argument(
        "--years", type=_years, default=DEFAULT_YEARS,
        help="length of the 5-minute history in years (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--minute-days", type=lambda text: _whole_number(text, 1), default=None, metavar="N",
        help="1-minute bars for the last N sessions (default: the last calendar month)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=lambda text: _whole_number(text, 0), default=DEFAULT_SEED, help="default 7"
    )
    parser.add_argument(
        "--symbols", type=_symbol, nargs="+", default=list(DEFAULT_SYMBOLS),
        help="default: AAPL MSFT SPY (others get a generic profile starting at 100)",
    )  # fmt: skip
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="default: market_data/")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        written = write_sample_data(
            args.output_dir,
            list(dict.fromkeys(args.symbols)),  # a repeated symbol would only be rewritten
            end=args.end,
            years=args.years,
            minute_days=args.minute_days,
            seed=args.seed,
        )
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    for item in written:
        print(item.summary())
    return 0


if __name__ == "__main__":
    from ..cli import exit_with

    exit_with(main)
