"""The strategy registry, settings resolution and the MACD crossover rule."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_trading.macd import macd
from quant_trading.signals import crosses, hold, limit_sides
from quant_trading.strategy import (
    Parameter,
    StrategyError,
    configure,
    get_strategy,
    registered_strategies,
)
from strategies.macd import positions

NAN = np.nan
REPO_ROOT = Path(__file__).resolve().parent.parent


def test_cross_definition_skips_zeros_and_warm_up():
    hist = np.array([NAN, NAN, 1, 2, 0, -1, -2, 0, 0, 3, 1, -1])
    # Hist > 0 at bar 2 is not a cross: nothing non-zero came before it.
    assert list(crosses(hist)) == [0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0, -1]
    held = hold(crosses(hist))
    assert list(held) == [0, 0, 0, 0, 0, -1, -1, -1, -1, 1, 1, -1]
    assert list(limit_sides(held, "long_only")) == [0] * 9 + [1, 1, 0]
    assert list(limit_sides(held, "short_only")) == [0] * 5 + [-1] * 4 + [0, 0, -1]


def test_positions_follow_macd_crosses_on_prices():
    close = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 500))
    params = {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}
    hist = macd(close).hist
    held = positions({"close": close, "Hist": hist}, params)
    changes = np.flatnonzero(np.diff(held.astype(int))) + 1
    assert len(changes) > 5
    for i in changes:  # every change of position is a sign change of Hist at that bar
        assert np.sign(hist[i]) == held[i] and held[i] != 0
    assert (held[:34] == 0).all()


def test_registry_and_unknown_names():
    assert "MACD" in registered_strategies()
    assert get_strategy("macd").name == "MACD"
    with pytest.raises(StrategyError, match=r"unknown strategy 'NOPE'; registered: .*MACD"):
        get_strategy("NOPE")


def test_settings_resolve_with_prefix_and_flags_win():
    settings = {
        "MACD_FAST": "5",
        "MACD_SLOW": "35",
        "MACD_SIGNAL": "5",
        "MACD_MODE": "Long_Only",
        "MACD_TIMEFRAME": "3",
        "MACD_SYMBOLS": "spy, qqq",
    }
    config = configure("MACD", settings)
    assert config.params == {"FAST": 5, "SLOW": 35, "SIGNAL": 5, "MODE": "long_only"}
    assert (config.timeframe.name, config.symbols) == ("3m", ("SPY", "QQQ"))
    flagged = configure("MACD", settings, timeframe="10m", symbols=["aapl"])
    assert (flagged.timeframe.name, flagged.symbols) == ("10m", ("AAPL",))
    assert configure("MACD", {}).symbols == ("AAPL", "MSFT", "SPY")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MACD_FAST": "abc"}, "MACD_FAST='abc' is not an integer"),
        ({"MACD_FAST": "-3"}, "MACD_FAST='-3' must be between 1 and 200"),
        ({"MACD_FAST": "30"}, "fast period (30) must be shorter than slow period (26)"),
        (
            {"MACD_MODE": "both"},
            "MACD_MODE='both': choose one of long_short, long_only, short_only",
        ),
        ({"MACD_TIMEFRAME": "7"}, "MACD_TIMEFRAME='7': bars must divide a day"),
        ({"MACD_TIMEFRAME": "soon"}, "MACD_TIMEFRAME: unknown timeframe 'soon'"),
    ],
)
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(StrategyError) as error:
        configure("MACD", settings)
    assert message in str(error.value)


def test_readme_example_strategy_is_one_new_file(tmp_path, monkeypatch):
    """The README's "Adding a strategy" example, as written, registers and backtests."""
    import strategies
    from quant_trading.backtesting.datafiles import load_symbol
    from quant_trading.backtesting.runner import BacktestOptions, backtest_symbol

    readme = (REPO_ROOT / "README.md").read_text()
    code = re.search(r"`strategies/breakout.py`:\n\n```python\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "breakout.py").write_text(code)
    monkeypatch.setattr(strategies, "__path__", [*strategies.__path__, str(tmp_path)])
    assert {"MACD", "BREAKOUT"} <= set(registered_strategies())
    config = configure("breakout", {"BREAKOUT_N": "30", "BREAKOUT_SYMBOLS": "SPY"})
    assert config.params == {"N": 30} and config.symbols == ("SPY",)
    data = load_symbol(REPO_ROOT / "market_data", "SPY", "5m")
    result = backtest_symbol(
        config, data, BacktestOptions(start=pd.Timestamp("2026-09-01", tz="America/New_York"))
    )
    assert result.statistics.trades > 5


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_a_float_setting_must_be_finite_even_within_bounds(text):
    level = Parameter("LEVEL", 30.0, float, bounds=(0, 100))
    with pytest.raises(StrategyError, match="LEVEL='.*' must be a finite number"):
        level.parse(text, "LEVEL")
