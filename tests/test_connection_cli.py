"""The command-line layer every tool shares (quant_trading/cli): ``--help`` shows every
default, and connection failures name the port that was tried."""

from __future__ import annotations

import argparse
import importlib
import re
import socket

import pytest
from cli_runner import run_module

#: Every command line built on quant_trading.cli.ArgumentParser: (module with _parser, name).
PARSERS = (
    ("quant_trading.tools.fetch_historical_data", "fetch_historical_data"),
    ("quant_trading.cli.portfolio", "portfolio_tracker"),
    ("quant_trading.cli.market_data", "market_data_tracker"),
    ("quant_trading.backtesting.run_backtest", "run_backtest"),
    ("quant_trading.visualization.trade_visualizer", "trade_visualizer"),
)


def _option_blocks(help_text: str) -> dict[str, str]:
    """Each option string of a ``--help`` text -> its whole entry, whitespace collapsed."""
    entries: list[str] = []
    for line in help_text.splitlines():
        if re.match(r"^  -", line):
            entries.append(line)
        elif entries and line.startswith("   "):
            entries[-1] += " " + line.strip()
        elif entries:
            entries.append("")  # a section break ends the last entry
    blocks = {}
    for entry in filter(None, entries):
        entry = " ".join(entry.split())
        for option in re.findall(r"(?:^|, )(--?[\w-]+)", entry.split("  ")[0]):
            blocks[option] = entry
    return blocks


def _shows_default(action: argparse.Action) -> bool:
    """Whether an option has a default that --help must show (not "not given")."""
    default = action.default
    return bool(action.option_strings) and not (
        default is None
        or default is False
        or default == argparse.SUPPRESS
        or (isinstance(default, list | tuple) and not default)
        or action.help == argparse.SUPPRESS
    )


@pytest.mark.parametrize("module, prog", PARSERS)
def test_help_shows_every_default(module, prog):
    parser = importlib.import_module(module)._parser()
    text = parser.format_help()
    blocks = _option_blocks(text)
    for action in parser._actions:  # argparse has no public list of its options
        if not _shows_default(action):
            continue
        block = blocks[action.option_strings[-1]]
        assert "default" in block, f"{prog} --help hides {action.option_strings[-1]}'s default"
        assert block.count("(default: ") <= 1, block  # never said twice


def test_run_backtest_help_shows_the_cache_dir():
    """The case from the issue, as a user runs it."""
    result = run_module("quant_trading.backtesting.run_backtest", "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    block = _option_blocks(result.stdout)["--cache-dir"]
    assert "(default: backtest_results)" in block


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_checklist_names_the_port_tried_by_every_live_tool():
    port = free_port()
    for module in (
        "quant_trading.core.portfolio_tracker",
        "quant_trading.tools.fetch_historical_data",
    ):
        args = ["--port", str(port), "--timeout", "5"]
        if module.endswith("fetch_historical_data"):
            args += ["--symbols", "AAPL"]
        result = run_module(module, *args, timeout=60)
        assert result.returncode == 1, result.stderr
        assert f"cannot connect to TWS at 127.0.0.1:{port}" in result.stderr
        assert f"3. Port {port} is available" in result.stderr
        assert "7497" not in result.stderr
