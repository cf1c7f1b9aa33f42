"""Timeframe names, settings from strategy.env, and the purity of the shared core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from quant_trading.settings import load_settings, split_symbols, strategy_settings
from quant_trading.simulator.historical import DEFAULT_MAX_DURATION
from quant_trading.timeframes import (
    IB_BAR_SIZES,
    IB_MAX_DURATION,
    Timeframe,
    TimeframeError,
    parse_time,
    parse_timeframe,
)

PACKAGE = Path(__file__).resolve().parent.parent / "quant_trading"
PURE_MODULES = ["macd", "bars", "timeframes", "indicators", "signals", "drawing"]


@pytest.mark.parametrize(
    ("text", "name", "ib"),
    [
        ("1m", "1m", "1 min"),
        ("3m", "3m", "3 mins"),
        ("5m", "5m", "5 mins"),
        ("10m", "10m", "10 mins"),
        ("1 min", "1m", "1 min"),
        ("10 mins", "10m", "10 mins"),
        ("5", "5m", "5 mins"),
        ("5min", "5m", "5 mins"),
        ("30 secs", "30s", "30 secs"),
        ("1 secs", "1s", "1 secs"),
        ("1 hour", "1h", "1 hour"),
        ("2 hours", "2h", "2 hours"),
        ("1 day", "1d", "1 day"),
        ("1 week", "1w", "1 week"),
        ("1 month", "1mo", "1 month"),
    ],
)
def test_timeframe_names_convert_both_ways(text, name, ib):
    tf = parse_timeframe(text)
    assert (tf.name, tf.ib_bar_size) == (name, ib)
    assert parse_timeframe(tf.name) == tf == parse_timeframe(tf.ib_bar_size)


def test_every_ib_bar_size_round_trips():
    for size in IB_BAR_SIZES:
        assert parse_timeframe(size).ib_bar_size == size
    assert parse_timeframe(5) == Timeframe(5, "m") and parse_timeframe("5m").seconds == 300
    assert parse_timeframe("1 month").seconds is None and not parse_timeframe("1d").is_intraday


def test_simulator_and_clients_use_the_same_ib_limits():
    """The simulator keeps its own copy of IB's step-size table on purpose (it models TWS
    independently); the copy must still say what the clients plan with."""
    assert DEFAULT_MAX_DURATION == IB_MAX_DURATION
    assert set(IB_MAX_DURATION) == set(IB_BAR_SIZES)


@pytest.mark.parametrize("bad", ["", "m", "0m", "5 parsecs", "-5m", "five minutes"])
def test_bad_timeframes_are_refused(bad):
    with pytest.raises(TimeframeError, match="unknown timeframe"):
        parse_timeframe(bad)


def test_environment_overrides_strategy_env(tmp_path, monkeypatch):
    env = tmp_path / "strategy.env"
    env.write_text("ACTIVE_STRATEGY=MACD\nMACD_TIMEFRAME=5\nMACD_SYMBOLS=aapl, msft\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACTIVE_STRATEGY", raising=False)
    monkeypatch.delenv("MACD_SYMBOLS", raising=False)
    monkeypatch.setenv("MACD_TIMEFRAME", "3")
    settings = load_settings()
    assert settings["ACTIVE_STRATEGY"] == "MACD" and settings["MACD_TIMEFRAME"] == "3"
    macd = strategy_settings("MACD", settings)
    assert macd["TIMEFRAME"] == "3" and split_symbols(macd["SYMBOLS"]) == ["AAPL", "MSFT"]


def test_repo_strategy_env_names_the_default_basket():
    settings = load_settings(PACKAGE.parent / "strategy.env")
    assert settings["ACTIVE_STRATEGY"] == "MACD"
    assert {"TIMEFRAME", "FAST", "SLOW", "SIGNAL", "SYMBOLS"} <= set(
        strategy_settings("MACD", settings)
    )


@pytest.mark.parametrize("module", PURE_MODULES)
def test_shared_core_is_pure(module):
    """The core does no I/O and knows nothing of ibapi, the CLIs, the GUI or the web."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert not imported & {"ibapi", "socket", "os", "pathlib", "io", "logging", "django", "tkinter"}
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert not calls & {"open", "print", "input"}
    code = f"import sys, quant_trading.{module}; print('ibapi' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
        == "False"
    )


@pytest.mark.parametrize(
    ("text", "end", "want"),
    [
        ("2026", True, "2027-01-01 00:00"),  # the whole year
        ("2026", False, "2026-01-01 00:00"),
        ("2026-03", True, "2026-04-01 00:00"),  # the whole month
        ("2026-03-05", True, "2026-03-06 00:00"),  # the whole day
        ("2026-03-05 10:00", True, "2026-03-05 10:00"),  # a time is exact
    ],
)
def test_a_bare_year_month_or_day_as_an_end_includes_all_of_it(text, end, want):
    assert parse_time(text, end=end) == pd.Timestamp(want, tz="America/New_York")


@pytest.mark.parametrize("text", ["", " ", "NaT"])
def test_no_time_is_refused_not_read_as_nat(text):
    with pytest.raises(ValueError, match="not a date or time"):
        parse_time(text)
