"""GET /api/strategies/: what the dashboard's strategy picker shows, bundled strategies and
those a user adds with QT_STRATEGY_PATH."""

from __future__ import annotations

import textwrap

import pytest

STRATEGY_KEYS = {
    "name",
    "description",
    "parameters",
    "default_timeframe",
    "timeframes",
    "default_symbols",
}
PARAMETER_KEYS = {"name", "type", "default", "choices", "bounds", "help"}
MODES = ["long_short", "long_only", "short_only"]

# A user's strategy file in a folder of their own: a close/average cross on 15m or 30m bars.
USER_STRATEGY = textwrap.dedent(
    """
    from quant_trading.indicators import SMA
    from quant_trading.signals import crosses, hold
    from quant_trading.strategy import Parameter, Strategy

    STRATEGY = Strategy(
        name="AVG_BREAK",
        description="close crosses its moving average",
        parameters=(Parameter("LOOKBACK", 20, int, help="bars averaged"),),
        indicators=lambda p: [SMA(p["LOOKBACK"], name="avg")],
        positions=lambda data, p: hold(crosses(data["close"], data["avg"])),
        default_symbols=("SPY",),
        default_timeframe="15m",
        timeframes=("15m", "30m"),
    )
    """
)


def strategies(api) -> dict[str, dict]:
    response = api.get("/api/strategies/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert isinstance(body, list)  # not paginated: the picker needs them all
    return {entry["name"]: entry for entry in body}


def test_lists_the_bundled_strategies_with_their_parameters(api, monkeypatch):
    monkeypatch.delenv("QT_STRATEGY_PATH", raising=False)
    found = strategies(api)
    assert list(found) == ["MACD", "MA_CROSS", "RSI"]  # sorted by name
    for entry in found.values():
        assert set(entry) == STRATEGY_KEYS
        assert all(set(parameter) == PARAMETER_KEYS for parameter in entry["parameters"])
    assert found["MACD"] == {
        "name": "MACD",
        "description": "MACD/Signal crossover (TA-Lib MACD definition)",
        "parameters": [
            {"name": "FAST", "type": "integer", "default": 12, "choices": [],
             "bounds": [1, 200], "help": "fast EMA period"},
            {"name": "SLOW", "type": "integer", "default": 26, "choices": [],
             "bounds": [2, 400], "help": "slow EMA period"},
            {"name": "SIGNAL", "type": "integer", "default": 9, "choices": [],
             "bounds": [1, 200], "help": "signal EMA period"},
            {"name": "MODE", "type": "string", "default": "long_short", "choices": MODES,
             "bounds": None, "help": "which sides to trade"},
        ],
        "default_timeframe": "5m",
        "timeframes": None,  # any size that divides a day
        "default_symbols": ["AAPL", "MSFT", "SPY"],
    }  # fmt: skip
    rsi = {p["name"]: p for p in found["RSI"]["parameters"]}
    assert rsi["LOWER"] == {
        "name": "LOWER",
        "type": "number",
        "default": 30.0,
        "choices": [],
        "bounds": [0, 100],
        "help": "oversold level: long below it",
    }
    assert {p["name"]: p["choices"] for p in found["MA_CROSS"]["parameters"]}["MA"] == [
        "sma",
        "ema",
    ]


def test_a_strategy_from_qt_strategy_path_is_listed_and_runs(
    sample_data, api, monkeypatch, tmp_path, fresh_throttle
):
    folder = tmp_path / "my_strategies"
    folder.mkdir()
    (folder / "avg_break.py").write_text(USER_STRATEGY)
    monkeypatch.setenv("QT_STRATEGY_PATH", str(folder))

    found = strategies(api)
    assert list(found) == ["AVG_BREAK", "MACD", "MA_CROSS", "RSI"]
    assert found["AVG_BREAK"] == {
        "name": "AVG_BREAK",
        "description": "close crosses its moving average",
        "parameters": [
            {"name": "LOOKBACK", "type": "integer", "default": 20, "choices": [],
             "bounds": None, "help": "bars averaged"},
        ],
        "default_timeframe": "15m",
        "timeframes": ["15m", "30m"],
        "default_symbols": ["SPY"],
    }  # fmt: skip

    # What the list offers is what a backtest accepts, defaults included.
    ran = api.post("/api/backtests/", {"strategy": "avg_break"}, format="json")
    assert ran.status_code == 201, ran.content
    run = ran.json()
    assert (run["strategy"], run["timeframe"], run["symbols"]) == ("AVG_BREAK", "15m", ["SPY"])
    assert run["params"] == {"LOOKBACK": 20}
    refused = api.post(
        "/api/backtests/", {"strategy": "AVG_BREAK", "timeframe": "5m"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"timeframe": ["AVG_BREAK runs on 15m, 30m bars"]}
    # A numeric parameter without bounds needs only to be positive.
    negative = api.post(
        "/api/backtests/", {"strategy": "AVG_BREAK", "params": {"lookback": -3}}, format="json"
    )
    assert negative.json()["error"]["fields"] == {"params.lookback": ["must be positive"]}


@pytest.mark.parametrize("broken", ["missing folder", "broken file"])
def test_a_bad_strategy_path_is_a_server_error_in_the_api_shape(api, monkeypatch, tmp_path, broken):
    folder = tmp_path / "strategies"
    if broken == "broken file":
        folder.mkdir()
        (folder / "oops.py").write_text("raise RuntimeError('half written')\n")
    monkeypatch.setenv("QT_STRATEGY_PATH", str(folder))
    response = api.get("/api/strategies/")
    assert response.status_code == 500
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (500, "strategy_path")
    assert str(folder) in error["message"]
