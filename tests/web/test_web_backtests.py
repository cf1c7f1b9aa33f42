"""/api/backtests/: a backtest run from the browser is run_backtest's backtest (the same
numbers, the same cache files), stored and listed; bad requests get a 400 naming the field;
nothing from a request becomes a path; runs are throttled and bounded; parallel runs do not
mix.

The data are the bundled 1-minute samples (AAPL, MSFT, SPY; 22 sessions), copied into the
temporary DATA_DIR by the ``sample_data`` fixture.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import orjson
import pandas as pd
import pytest
from cli_runner import run_module

from dashboard.api.backtest_records import statistics_record
from dashboard.api.backtest_runs import engine_slot
from dashboard.api.backtest_serializers import (
    BacktestRunSerializer,
    BacktestRunSummarySerializer,
    DataFileSerializer,
    MonthlyEquitySerializer,
    RunSettingsSerializer,
    StatisticsSerializer,
    SymbolMetricsSerializer,
    TradeSerializer,
)
from dashboard.api.models import BacktestRun
from quant_trading import backtest
from quant_trading.backtesting.cache import read_cache
from quant_trading.backtesting.report import totals
from quant_trading.backtesting.runner import PortfolioResult
from quant_trading.backtesting.statistics import Statistics

pytestmark = pytest.mark.usefixtures("fresh_throttle")


@pytest.fixture(autouse=True)
def bundled_strategies_only(monkeypatch):
    """A developer's own QT_STRATEGY_PATH must not change the registered names."""
    monkeypatch.delenv("QT_STRATEGY_PATH", raising=False)


URL = "/api/backtests/"
RUN_KEYS = {
    "id", "created", "duration_seconds", "requested_by", "strategy", "params", "symbols",
    "timeframe", "settings", "summary", "symbol_metrics", "monthly_equity", "trades",
    "data_files", "skipped", "cache_files",
}  # fmt: skip
LIST_KEYS = RUN_KEYS - {"symbol_metrics", "monthly_equity", "trades", "data_files", "cache_files"}
STATISTICS_KEYS = {f.name for f in fields(Statistics)}
# The CLI's per-symbol summary columns, by their statistic's name.
SUMMARY_COLUMNS = {
    "trades", "win_rate_pct", "net_profit", "return_pct", "buy_hold_return_pct",
    "max_drawdown_pct", "sharpe", "exposure_pct", "equity_final",
}  # fmt: skip
SYMBOL_KEYS = {"symbol", "bars", "warning"} | STATISTICS_KEYS
TRADE_KEYS = {
    "symbol", "side", "entry_time", "entry_price", "exit_time", "exit_price", "shares",
    "commission", "pnl", "return_pct", "bars_held", "exit_reason",
}  # fmt: skip
MONTH_KEYS = {"month", "equity", "month_pct", "max_drawdown_pct"}
DATA_FILE_KEYS = {
    "symbol", "file", "sha256", "source_timeframe", "rows", "first_bar", "last_bar",
}  # fmt: skip
SETTINGS_KEYS = {
    "start", "end", "initial_capital", "commission", "slippage", "allocation", "size",
    "fractional", "flat_at_close", "write_cache",
}  # fmt: skip


def post(api, body: dict, **extra):
    return api.post(URL, body, format="json", **extra)


def created(api, body: dict) -> dict:
    response = post(api, body)
    assert response.status_code == 201, response.content
    return response.json()


def error_of(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


def files_under(folder) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- a run and what it answers -------------------------------------------------------------


def test_a_backtest_answers_everything_it_produced(sample_data, api, settings):
    response = post(api, {"strategy": "macd", "symbols": "aapl, MSFT", "timeframe": "5m"})
    assert response.status_code == 201, response.content
    run = response.json()
    assert response["Location"] == f"/api/backtests/{run['id']}/"
    assert set(run) == RUN_KEYS
    assert (run["strategy"], run["timeframe"], run["symbols"]) == ("MACD", "5m", ["AAPL", "MSFT"])
    assert run["params"] == {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}
    assert run["settings"] == {
        "start": None,
        "end": None,
        "initial_capital": 100_000.0,
        "commission": 0.005,
        "slippage": 0.0,
        "allocation": 1.0,
        "size": None,
        "fractional": False,
        "flat_at_close": False,
        "write_cache": True,
    }
    assert run["requested_by"] == "127.0.0.1" and run["duration_seconds"] > 0
    assert set(run["summary"]) == STATISTICS_KEYS and run["summary"]["equity_initial"] == 200_000
    assert [row["symbol"] for row in run["symbol_metrics"]] == ["AAPL", "MSFT"]
    for row in run["symbol_metrics"]:
        assert set(row) == SYMBOL_KEYS and set(row) >= SUMMARY_COLUMNS
        assert row["bars"] == 1716 and row["warning"] is None  # 22 sessions x 78 bars
    assert (
        run["summary"]["trades"]
        == len(run["trades"])
        == sum(row["trades"] for row in run["symbol_metrics"])
    )
    assert all(set(trade) == TRADE_KEYS for trade in run["trades"])
    exits = [pd.Timestamp(trade["exit_time"]) for trade in run["trades"]]
    assert exits == sorted(exits)
    assert run["trades"][0]["entry_time"].startswith("2026-10-01T")
    assert run["trades"][0]["entry_time"].endswith("-04:00")  # New York time
    assert run["monthly_equity"] == [
        {
            "month": "2026-10",
            "equity": run["summary"]["equity_final"],
            "month_pct": pytest.approx(run["summary"]["return_pct"]),
            "max_drawdown_pct": run["summary"]["max_drawdown_pct"],
        }
    ]
    assert run["skipped"] == {}
    for entry, symbol in zip(run["data_files"], ("AAPL", "MSFT")):
        assert set(entry) == DATA_FILE_KEYS
        assert entry["file"] == str(sample_data / f"{symbol}_1m.csv")  # outside the repo
        assert (entry["source_timeframe"], entry["rows"]) == ("1m", 1716)
        assert (entry["first_bar"], entry["last_bar"]) == (
            "2026-10-01T09:30:00-04:00",
            "2026-10-30T15:55:00-04:00",
        )
        assert len(entry["sha256"]) == 64
    # The cache files the charts read, written into CACHE_DIR.
    cache = settings.CACHE_DIR / "5m"
    assert run["cache_files"] == [str(cache / f"{s}_backtest.json") for s in ("AAPL", "MSFT")]
    for path, row in zip(run["cache_files"], run["symbol_metrics"]):
        assert statistics_record(read_cache(path).statistics) == {
            key: row[key] for key in STATISTICS_KEYS
        }
    # Stored as answered.
    stored = BacktestRun.objects.get(pk=run["id"])
    assert stored.trades == run["trades"] and stored.requested_by == "127.0.0.1"
    assert api.get(f"/api/backtests/{run['id']}/").json() == run


def test_the_serializers_describe_exactly_what_is_answered():
    """The response serializers are the schema; they must list the keys the API sends."""
    assert set(BacktestRunSerializer().fields) == RUN_KEYS
    assert set(BacktestRunSummarySerializer().fields) == LIST_KEYS
    assert set(StatisticsSerializer().fields) == STATISTICS_KEYS
    assert set(SymbolMetricsSerializer().fields) == SYMBOL_KEYS
    assert set(TradeSerializer().fields) == TRADE_KEYS
    assert set(MonthlyEquitySerializer().fields) == MONTH_KEYS
    assert set(DataFileSerializer().fields) == DATA_FILE_KEYS
    assert set(RunSettingsSerializer().fields) == SETTINGS_KEYS


def test_write_cache_false_writes_no_file(sample_data, api, settings):
    run = created(api, {"strategy": "RSI", "symbols": ["SPY"], "timeframe": "1m",
                        "write_cache": False})  # fmt: skip
    assert run["cache_files"] == [] and run["settings"]["write_cache"] is False
    assert not settings.CACHE_DIR.exists()


def test_a_symbol_without_bars_in_the_period_is_skipped(sample_data, api):
    lines = (sample_data / "MSFT_1m.csv").read_text().splitlines()
    (sample_data / "MSFT_1m.csv").write_text("\n".join(lines[:1951]) + "\n")  # to 10-07
    run = created(
        api, {"strategy": "MACD", "symbols": "AAPL MSFT", "timeframe": "1m", "start": "2026-10-15"}
    )
    assert run["skipped"] == {"MSFT": f"{sample_data / 'MSFT_1m.csv'}: no bars in the period"}
    assert [row["symbol"] for row in run["symbol_metrics"]] == ["AAPL"]
    assert run["summary"]["start"] == "2026-10-15T09:30:00-04:00"
    assert len(run["cache_files"]) == 1

    nothing = error_of(post(api, {"strategy": "MACD", "symbols": "MSFT", "start": "2026-10-15",
                                  "timeframe": "1m"}))  # fmt: skip
    assert nothing["fields"] == {
        "non_field_errors": [
            f"nothing to backtest: {sample_data / 'MSFT_1m.csv'}: no bars in the period"
        ]
    }


def test_a_malformed_data_file_is_422_and_nothing_is_written(sample_data, api, settings):
    lines = (sample_data / "MSFT_1m.csv").read_text().splitlines()
    lines[500] = lines[500].replace(",", ",-", 1)  # a negative open price on line 501
    (sample_data / "MSFT_1m.csv").write_text("\n".join(lines) + "\n")
    response = post(api, {"strategy": "MACD", "symbols": "AAPL MSFT", "timeframe": "1m"})
    error = error_of(response, 422)
    assert error["code"] == "data_error"
    assert error["message"].startswith(f"{sample_data / 'MSFT_1m.csv'}, line 501: open -")
    assert not settings.CACHE_DIR.exists() and not BacktestRun.objects.exists()


def test_refused_entries_are_reported_per_symbol(sample_data, api):
    run = created(api, {"strategy": "MACD", "symbols": "SPY", "timeframe": "1m", "size": 200})
    (row,) = run["symbol_metrics"]
    assert run["settings"]["size"] == 200 and run["settings"]["allocation"] is None
    # SPY costs about 800 USD: 200 shares are more than the 100,000 of cash.
    assert row["trades"] == 0 and row["warning"].startswith("SPY: ")
    assert "200 shares cost more than the cash" in row["warning"]
    assert row["win_rate_pct"] is None  # NaN in the statistics: null in JSON
    assert run["summary"]["sharpe"] is None


# -- the same numbers as run_backtest ------------------------------------------------------

CLI_CASES = {
    "MACD portfolio, defaults, 5m from 1m files": (
        {"strategy": "MACD", "symbols": ["AAPL", "MSFT"], "timeframe": "5m"},
        ["--strategy", "MACD", "--symbols", "AAPL", "MSFT", "--timeframe", "5m"],
        {},
    ),
    "MA_CROSS on one symbol, every option": (
        {
            "strategy": "ma_cross",
            "symbols": "SPY",
            "timeframe": "1m",
            "params": {"fast": 5, "SLOW": "20", "ma": "EMA", "mode": "long_only"},
            "start": "2026-10-05",
            "end": "2026-10-23 12:00",
            "initial_capital": 50_000,
            "commission": 0.01,
            "slippage": 0.02,
            "size": 50,
            "flat_at_close": True,
        },
        ["--strategy", "MA_CROSS", "--symbols", "SPY", "--timeframe", "1m",
         "--start", "2026-10-05", "--end", "2026-10-23 12:00", "--initial-capital", "50000",
         "--commission", "0.01", "--slippage", "0.02", "--size", "50", "--flat-at-close"],
        {"MA_CROSS_FAST": "5", "MA_CROSS_SLOW": "20", "MA_CROSS_MA": "ema",
         "MA_CROSS_MODE": "long_only"},
    ),
    "RSI portfolio, fractional allocation, 3m": (
        {
            "strategy": "RSI",
            "symbols": "AAPL SPY",
            "timeframe": "3m",
            "params": {"period": 10, "lower": 25.5},
            "allocation": 0.5,
            "fractional": True,
            "end": "2026-10-28",
        },
        ["--strategy", "RSI", "--symbols", "AAPL", "SPY", "--timeframe", "3m",
         "--allocation", "0.5", "--fractional", "--end", "2026-10-28"],
        {"RSI_PERIOD": "10", "RSI_LOWER": "25.5"},
    ),
}  # fmt: skip


def cli_trades(path) -> list[dict]:
    """A cache file's trades as records, times as epoch seconds."""
    cached = read_cache(path)
    records = cached.trades.to_dict("records")
    for record in records:
        for name in ("entry_time", "exit_time"):
            record[name] = int(record[name].timestamp())
    return [{"symbol": cached.symbol, **record} for record in records]


def epoch_times(trade: dict) -> dict:
    """An API trade with its ISO times as epoch seconds, as the cache stores them."""
    times = {k: int(pd.Timestamp(trade[k]).timestamp()) for k in ("entry_time", "exit_time")}
    return {**trade, **times}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_numbers_are_run_backtests(sample_data, api, settings, tmp_path, case):
    body, flags, env = CLI_CASES[case]
    run = created(api, body)

    empty = tmp_path / "empty.env"  # the CLI must read its settings from env and flags only
    empty.write_text("")
    cli_cache = tmp_path / "cli_cache"
    result = run_module(
        "quant_trading.backtesting.run_backtest",
        *flags,
        *("--data-dir", str(sample_data), "--cache-dir", str(cli_cache)),
        *("--env-file", str(empty), "--trades", "1"),
        drop=("ACTIVE_STRATEGY", "MACD_", "MA_CROSS_", "RSI_", "QT_"),
        env=env,
    )
    assert result.returncode == 0, result.stderr

    symbols = run["symbols"]
    assert [row["symbol"] for row in run["symbol_metrics"]] == symbols
    for row in run["symbol_metrics"]:
        symbol = row["symbol"]
        name = f"{run['timeframe']}/{symbol}_backtest.json"
        theirs = orjson.loads((cli_cache / name).read_bytes())
        ours = orjson.loads((settings.CACHE_DIR / name).read_bytes())
        # The API's cache file is the CLI's, but for the moment it was written.
        assert {k: v for k, v in ours.items() if k != "created"} == {
            k: v for k, v in theirs.items() if k != "created"
        }
        # Exactly equal numbers, not approximately.
        assert {key: row[key] for key in STATISTICS_KEYS} == theirs["statistics"]
        mine = [epoch_times(t) for t in run["trades"] if t["symbol"] == symbol]
        assert mine == cli_trades(cli_cache / name) and len(mine) == row["trades"] > 0
        (data,) = [d for d in run["data_files"] if d["symbol"] == symbol]
        assert (data["sha256"], data["rows"]) == (theirs["data"]["sha256"], theirs["data"]["rows"])
        assert data["file"] == theirs["data"]["file"]

    # The portfolio's numbers, printed the CLI's way, are the lines the CLI printed.
    statistics = Statistics.from_dict(run["summary"])
    title = "Portfolio totals" if len(symbols) > 1 else f"{symbols[0]} totals"
    printed = totals(PortfolioResult(symbols, pd.Series(), pd.DataFrame(), statistics), title)
    assert printed in result.stdout
    lines = result.stdout.splitlines()
    for month in run["monthly_equity"]:
        line = (
            f"{month['month']:<8} {month['equity']:>14,.2f} {month['month_pct']:>+8.2f} "
            f"{month['max_drawdown_pct']:>8.2f}  #"
        )
        assert any(x.startswith(line) for x in lines), line
    assert run["summary"]["trades"] == len(run["trades"])


# -- stored runs ---------------------------------------------------------------------------


def test_past_runs_are_listed_newest_first_without_trades(
    sample_data, api, django_assert_max_num_queries
):
    first = created(api, {"strategy": "MACD", "symbols": "AAPL", "timeframe": "1m"})
    second = created(api, {"strategy": "RSI", "symbols": "SPY", "timeframe": "1m"})

    with django_assert_max_num_queries(2):  # a count and one page; no column loaded later
        listed = api.get(URL)
    assert listed.status_code == 200
    page = listed.json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 2 and [r["id"] for r in page["results"]] == [second["id"], first["id"]]
    for entry, full in zip(page["results"], (second, first)):
        assert set(entry) == LIST_KEYS
        assert entry == {key: full[key] for key in LIST_KEYS}

    one = api.get(URL, {"page_size": 1}).json()
    assert [r["id"] for r in one["results"]] == [second["id"]]
    assert one["next"].endswith("?page=2&page_size=1")
    assert [r["id"] for r in api.get(URL, {"strategy": "MACD"}).json()["results"]] == [first["id"]]
    assert api.get(f"{URL}{first['id']}/").json() == first


def test_an_unknown_run_is_a_404_in_the_error_shape(api):
    assert error_of(api.get("/api/backtests/999/"), 404) == {
        "status": 404,
        "code": "not_found",
        "message": "no backtest run with id 999",
    }
    assert error_of(api.get("/api/backtests/..%2F..%2Fetc/"), 404)["code"] == "not_found"


# -- validation ------------------------------------------------------------------------------

VALID = {"strategy": "MACD", "symbols": "AAPL", "timeframe": "5m"}
MACD_PARAMS = "FAST, SLOW, SIGNAL, MODE"
BAD_REQUESTS = [
    ({"strategy": "NOPE"}, "strategy", "unknown strategy 'NOPE'; registered: MACD, MA_CROSS, RSI"),
    ({"strategy": "os.path:join"}, "strategy", "unknown strategy 'os.path:join'"),
    ({"strategy": ""}, "strategy", "This field may not be blank."),
    ({"symbols": "AAPL XYZ"}, "symbols",
     "no 5m data for XYZ (looked for XYZ_5m_bars_macd.parquet/.csv, XYZ_5m.parquet/.csv or a "
     "finer file to aggregate)"),
    ({"symbols": "A$PL"}, "symbols", "not a ticker symbol: 'A$PL'"),
    ({"symbols": [1, 2]}, "symbols", "a list of ticker symbols or one string of them"),
    ({"symbols": " ".join(f"S{i}" for i in range(51))}, "symbols", "at most 50 symbols"),
    ({"timeframe": "fast"}, "timeframe", "unknown timeframe 'fast': use e.g. 1m, 3m, 5m"),
    ({"timeframe": "7m"}, "timeframe", "bars must divide a day to be built from the data"),
    ({"start": "someday"}, "start", "'someday' is not a date or time (use e.g. 2025-01-31)"),
    ({"end": "2026-13-45"}, "end", "'2026-13-45' is not a date or time"),
    ({"start": "2026-10-20", "end": "2026-10-10"}, "start", "must be before end (2026-10-10)"),
    ({"initial_capital": 0}, "initial_capital", "must be greater than 0"),
    ({"initial_capital": -5000}, "initial_capital", "must be greater than 0"),
    ({"initial_capital": "lots"}, "initial_capital", "A valid number is required."),
    ({"commission": -0.01}, "commission", "Ensure this value is greater than or equal to 0."),
    ({"slippage": -1}, "slippage", "Ensure this value is greater than or equal to 0."),
    ({"allocation": 0}, "allocation", "must be greater than 0 and at most 1"),
    ({"allocation": 1.5}, "allocation", "must be greater than 0 and at most 1"),
    ({"size": 0}, "size", "must be greater than 0"),
    ({"size": -10}, "size", "must be greater than 0"),
    ({"allocation": 0.5, "size": 10}, "size", "give allocation or size, not both"),
    ({"size": 1.5}, "size", "whole shares only, unless fractional is true"),
    ({"params": {"nope": 1}}, "params.nope",
     f"MACD has no parameter 'nope'; its parameters: {MACD_PARAMS}"),
    ({"params": {"fast": 0}}, "params.fast", "must be between 1 and 200"),
    ({"params": {"fast": 500}}, "params.fast", "must be between 1 and 200"),
    ({"params": {"fast": 10.5}}, "params.fast", "must be a whole number"),
    ({"params": {"fast": "ten"}}, "params.fast", "must be a whole number"),
    ({"params": {"fast": True}}, "params.fast", "must be a whole number"),
    ({"params": {"fast": [10]}}, "params.fast", "must be a whole number"),
    ({"params": {"mode": "sideways"}}, "params.mode",
     "must be one of long_short, long_only, short_only"),
    ({"params": {"mode": 3}}, "params.mode",
     "must be a string (one of long_short, long_only, short_only)"),
    ({"params": {"fast": 30}}, "params", "MACD fast period (30) must be shorter than slow"),
    ({"strategy": "RSI", "params": {"lower": "nan"}}, "params.lower", "must be a finite number"),
    ({"strategy": "RSI", "params": {"lower": 101}}, "params.lower", "must be between 0 and 100"),
    ({"strategy": "RSI", "params": {"lower": 80}}, "params",
     "RSI lower level (80) must be below upper level (70)"),
    ({"params": "fast=10"}, "params", 'Expected a dictionary of items but got type "str".'),
    ({"write_cache": "maybe"}, "write_cache", "Must be a valid boolean."),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field", "message"), BAD_REQUESTS)
def test_a_bad_request_is_a_400_naming_the_field(sample_data, api, settings, change, field,
                                                  message):  # fmt: skip
    error = error_of(post(api, {**VALID, **change}))
    assert (error["status"], error["code"]) == (400, "invalid")
    assert field in error["fields"], error
    assert any(message in text for text in error["fields"][field]), error
    assert message in error["message"]
    assert not settings.CACHE_DIR.exists() and not BacktestRun.objects.exists()


def test_a_request_must_name_a_strategy(api):
    error = error_of(post(api, {"symbols": "AAPL"}))
    assert error["fields"] == {"strategy": ["This field is required."]}


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.post(URL, "{not json", content_type="application/json")
    assert error_of(response)["code"] == "parse_error"


# -- nothing from a request becomes a path --------------------------------------------------

HOSTILE = [
    "../etc",
    "../../etc/passwd",
    "/etc/passwd",
    "AAPL/../MSFT",
    "..\\..\\windows",
    "C:\\temp",
    "AAPL\x00",
    "AAPL\x00../x",
    "..%2Fetc",
    "%2e%2e%2fetc",
    "..%252F..%252Fetc",
    "~root",
    ".",
    "..",
]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", ["symbols", "timeframe"])
def test_paths_in_symbols_or_timeframe_are_refused(sample_data, api, settings, tmp_path, field,
                                                   value):  # fmt: skip
    # Bait outside DATA_DIR that a path escaping it would find.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ETC_5m.csv").write_bytes((sample_data / "AAPL_1m.csv").read_bytes())
    before = files_under(tmp_path)
    for sent in (value, [value]) if field == "symbols" else (value,):
        error = error_of(post(api, {**VALID, field: sent}))
        assert error["code"] == "invalid" and field in error["fields"], error
    assert files_under(tmp_path) == before
    assert not settings.CACHE_DIR.exists() and not BacktestRun.objects.exists()


def test_a_strategy_reference_imports_nothing(api, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "antigravity", raising=False)
    error = error_of(post(api, {**VALID, "strategy": "antigravity:STRATEGY"}))
    assert "unknown strategy 'antigravity:STRATEGY'" in error["fields"]["strategy"][0]
    assert "antigravity" not in sys.modules


# -- throttling and bounded engine runs ------------------------------------------------------


def test_backtests_are_throttled_per_client_but_reading_is_not(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"backtests": "2/minute"},
    }
    for _ in range(2):  # rejected requests count too: the rate is about requests
        assert post(api, {"strategy": "NOPE"}).status_code == 400
    throttled = post(api, {"strategy": "NOPE"})
    error = error_of(throttled, 429)
    assert (error["code"], error["status"]) == ("throttled", 429)
    assert error["message"].startswith("Request was throttled. Expected available in ")
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # A forged X-Forwarded-For is not another client.
    forged = post(api, {"strategy": "NOPE"}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert forged.status_code == 429
    # Another address is.
    assert post(api, {"strategy": "NOPE"}, REMOTE_ADDR="10.0.0.2").status_code == 400
    # Reading is free.
    for _ in range(3):
        assert api.get(URL).status_code == 200


def test_when_every_engine_slot_stays_busy_a_run_answers_503(sample_data, api, settings):
    settings.BACKTEST_MAX_CONCURRENT = 1
    settings.BACKTEST_QUEUE_TIMEOUT = 0.2
    body = {"strategy": "MACD", "symbols": "AAPL", "timeframe": "1m"}
    with engine_slot():  # as if another backtest were running
        busy = post(api, body)
    error = error_of(busy, 503)
    assert error["code"] == "busy" and busy["Retry-After"] == "1"
    assert not BacktestRun.objects.exists()
    assert post(api, body).status_code == 201  # the slot is free again


PARALLEL = [
    {"strategy": "MACD", "symbols": ["AAPL"], "timeframe": "1m", "params": {"FAST": 8}},
    {"strategy": "MA_CROSS", "symbols": ["MSFT"], "timeframe": "1m", "params": {"FAST": 7}},
    {"strategy": "RSI", "symbols": ["SPY"], "timeframe": "1m", "params": {"PERIOD": 9}},
    {"strategy": "MACD", "symbols": ["AAPL", "MSFT"], "timeframe": "5m", "initial_capital": 5e4},
]


def test_parallel_backtests_neither_mix_nor_get_lost(sample_data, transactional_db, live_server):
    def send(body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"{live_server.url}{URL}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    with ThreadPoolExecutor(max_workers=len(PARALLEL)) as pool:
        answers = list(pool.map(send, PARALLEL, timeout=180))

    for body, (status, run) in zip(PARALLEL, answers):
        assert status == 201, run
        assert (run["strategy"], run["symbols"], run["timeframe"]) == (
            body["strategy"],
            body["symbols"],
            body["timeframe"],
        )
        given = body.get("params", {})
        assert {name: run["params"][name] for name in given} == given
        alone = backtest(
            body["strategy"],
            body["symbols"],
            body["timeframe"],
            data_dir=sample_data,
            params=body.get("params"),
            capital=body.get("initial_capital", 100_000.0),
        )
        assert run["summary"] == statistics_record(alone.statistics)
        assert {t["symbol"] for t in run["trades"]} <= set(body["symbols"])
    stored = {run.pk: run for run in BacktestRun.objects.all()}
    assert sorted(stored) == sorted(run["id"] for _, run in answers)
    for _, run in answers:
        assert stored[run["id"]].summary == run["summary"]
        assert stored[run["id"]].trades == run["trades"]


# -- the schema -------------------------------------------------------------------------------


def test_the_openapi_schema_describes_requests_and_answers(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    components = schema["components"]["schemas"]

    def ref(content: dict) -> str:
        return content["schema"]["$ref"].rsplit("/", 1)[-1]

    post_ = schema["paths"]["/api/backtests/"]["post"]
    request_name = ref(post_["requestBody"]["content"]["application/json"])
    assert set(components[request_name]["properties"]) == {
        "strategy", "symbols", "timeframe", "params", "start", "end", "initial_capital",
        "commission", "slippage", "allocation", "size", "fractional", "flat_at_close",
        "write_cache",
    }  # fmt: skip
    assert components[request_name]["required"] == ["strategy"]
    assert ref(post_["responses"]["201"]["content"]["application/json"]) == "BacktestRun"
    for code in ("400", "422", "429", "503"):
        assert ref(post_["responses"][code]["content"]["application/json"]) == "ApiError"
    run = components["BacktestRun"]["properties"]
    assert set(run) == RUN_KEYS
    assert run["trades"]["items"]["$ref"].endswith("/Trade")
    assert set(components["Trade"]["properties"]) == TRADE_KEYS
    assert set(components["SymbolMetrics"]["properties"]) == SYMBOL_KEYS
    assert set(components["Statistics"]["properties"]) == STATISTICS_KEYS

    listing = schema["paths"]["/api/backtests/"]["get"]["responses"]["200"]
    page = components[ref(listing["content"]["application/json"])]["properties"]
    assert page["results"]["items"]["$ref"].endswith("/BacktestRunSummary")
    assert set(components["BacktestRunSummary"]["properties"]) == LIST_KEYS
    detail = schema["paths"]["/api/backtests/{id}/"]["get"]["responses"]
    assert ref(detail["200"]["content"]["application/json"]) == "BacktestRun"
    assert ref(detail["404"]["content"]["application/json"]) == "ApiError"
    strategies = schema["paths"]["/api/strategies/"]["get"]["responses"]["200"]
    assert strategies["content"]["application/json"]["schema"]["items"]["$ref"].endswith(
        "/Strategy"
    )
