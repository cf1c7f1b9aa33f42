"""``/api/charts/``: the backtests ``run_backtest`` cached, listed and windowed for a browser
chart. The caches are written by real MACD backtests (see ``backtest_caches`` in conftest),
and every number is checked against what the toolkit's own reader sees in the file."""

from __future__ import annotations

import math
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from cache_layouts import write_schema1

from quant_trading.backtesting.cache import read_cache
from quant_trading.drawing import macd_drawing
from quant_trading.timeframes import parse_time

LIST_KEYS = {"count", "next", "previous", "results"}
SUMMARY_KEYS = {
    "timeframe",
    "symbol",
    "file",
    "size",
    "modified",
    "error",
    "strategy",
    "params",
    "period_start",
    "period_end",
    "bars",
    "headline",
}
HEADLINE_KEYS = {
    "net_profit",
    "return_pct",
    "buy_hold_return_pct",
    "max_drawdown_pct",
    "win_rate_pct",
    "trades",
}
CHART_KEYS = {
    "timeframe",
    "symbol",
    "timezone",
    "strategy",
    "settings",
    "data",
    "file",
    "period",
    "window",
    "indicators",
    "candles",
    "trades",
    "trades_total",
    "statistics",
}
WINDOW_KEYS = {
    "requested",
    "start",
    "end",
    "bars",
    "available",
    "truncated",
    "previous_end",
    "next_start",
}
TRADE_KEYS = {
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "shares",
    "commission",
    "pnl",
    "return_pct",
    "bars_held",
    "exit_reason",
}


def nulls(values) -> list:
    """A float column as JSON carries it: NaN is null."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


def number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def store_reads() -> int:
    from dashboard.api.chart_store import STORE

    return STORE.reads


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status and body["error"]["code"] == code
    return body["error"]


# --- the listing ----------------------------------------------------------------------------


def test_the_list_shows_each_cached_backtest_with_its_headline(caches, api):
    response = api.get("/api/charts/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == LIST_KEYS
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    assert [(r["timeframe"], r["symbol"]) for r in body["results"]] == [
        ("5m", "AAPL"),
        ("5m", "MSFT"),
        ("15m", "AAPL"),
    ]
    for row in body["results"]:
        path = caches / row["timeframe"] / f"{row['symbol']}_backtest.json"
        cached = read_cache(path)
        stats = cached.statistics
        assert set(row) == SUMMARY_KEYS and set(row["headline"]) == HEADLINE_KEYS
        assert row["file"] == f"{row['timeframe']}/{row['symbol']}_backtest.json"
        assert row["size"] == path.stat().st_size
        assert pd.Timestamp(row["modified"]).timestamp() == pytest.approx(path.stat().st_mtime)
        assert row["error"] is None
        assert row["strategy"] == "MACD"
        assert row["params"] == {"FAST": 12, "SLOW": 26, "SIGNAL": 9, "MODE": "long_short"}
        assert (row["period_start"], row["period_end"]) == (
            cached.period["start"],
            cached.period["end"],
        )
        assert row["bars"] == len(cached.candles)
        assert row["headline"] == {
            "net_profit": stats.net_profit,
            "return_pct": stats.return_pct,
            "buy_hold_return_pct": stats.buy_hold_return_pct,
            "max_drawdown_pct": stats.max_drawdown_pct,
            "win_rate_pct": stats.win_rate_pct,
            "trades": stats.trades,
        }
    bars = {(r["timeframe"], r["symbol"]): r["bars"] for r in body["results"]}
    assert bars == {("5m", "AAPL"): 20 * 78, ("5m", "MSFT"): 10 * 78, ("15m", "AAPL"): 21 * 26}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?timeframe=5m", [("5m", "AAPL"), ("5m", "MSFT")]),
        ("?symbol=aapl", [("5m", "AAPL"), ("15m", "AAPL")]),
        ("?timeframe=15%20mins&symbol=AAPL", [("15m", "AAPL")]),
        ("?timeframe=1h", []),
        ("?timeframe=&symbol=", [("5m", "AAPL"), ("5m", "MSFT"), ("15m", "AAPL")]),
        ("?page_size=1&page=2", [("5m", "MSFT")]),
    ],
)
def test_the_list_filters_by_timeframe_and_symbol(caches, api, query, expected):
    body = api.get(f"/api/charts/{query}").json()
    assert [(r["timeframe"], r["symbol"]) for r in body["results"]] == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("?timeframe=5x", "timeframe"), ("?symbol=../etc", "symbol"), ("?symbol=%00", "symbol")],
)
def test_a_bad_list_filter_is_400(caches, api, query, field):
    error = assert_error(api.get(f"/api/charts/{query}"), 400, "invalid")
    assert set(error["fields"]) == {field}


def test_a_missing_cache_folder_lists_nothing(api):
    assert api.get("/api/charts/").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_damaged_and_foreign_files_are_listed_with_their_error_never_a_500(caches, api, caplog):
    (caches / "5m" / "SPY_backtest.json").write_text("{not json")
    (caches / "5m" / "QQQ_backtest.json").write_text('{"schema": "other/9"}')
    (caches / "5m" / "tsla_backtest.json").write_bytes(
        (caches / "5m" / "MSFT_backtest.json").read_bytes()
    )  # a lower-case name: cache_path would never find it
    (caches / "5 mins").mkdir()  # not the canonical folder name
    shutil.copy(caches / "5m" / "MSFT_backtest.json", caches / "5 mins" / "MSFT_backtest.json")
    (caches / "misc").mkdir()  # not a timeframe at all
    (caches / "5m" / "notes.txt").write_text("mine")
    body = api.get("/api/charts/?timeframe=5m").json()
    rows = {r["symbol"]: r for r in body["results"]}
    assert list(rows) == ["AAPL", "MSFT", "QQQ", "SPY"]
    for symbol, reason in (("SPY", "not valid JSON"), ("QQQ", "found 'other/9'")):
        row = rows[symbol]
        assert row["error"].startswith(str(caches / "5m" / f"{symbol}_backtest.json") + ": ")
        assert reason in row["error"]
        assert {k for k, v in row.items() if v is not None} == {
            "timeframe",
            "symbol",
            "file",
            "size",
            "modified",
            "error",
        }
    assert rows["AAPL"]["error"] is None
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "tsla_backtest.json" in warned and "5 mins" in warned and "SPY_backtest.json" in warned


def test_files_are_parsed_once_until_they_change(caches, api):
    reads = store_reads()
    api.get("/api/charts/")
    assert store_reads() == reads + 3  # the listing keeps each file's summary only
    api.get("/api/charts/")
    assert store_reads() == reads + 3
    for query in ("?limit=10", "?limit=10&end=2026-09-10", "?start=2026-09-02&limit=50"):
        assert api.get(f"/api/charts/5m/AAPL/{query}").status_code == 200
    assert store_reads() == reads + 4  # every window of the chart from one parse
    path = caches / "5m" / "AAPL_backtest.json"
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # a re-run
    api.get("/api/charts/5m/AAPL/?limit=10")
    api.get("/api/charts/")
    assert store_reads() == reads + 5


# --- one chart ------------------------------------------------------------------------------


def expected_candles(cached, first: int, stop: int) -> dict:
    part = cached.candles.iloc[first:stop]
    columns = {"time": [int(t.timestamp()) for t in part.index]}
    for name in part.columns:
        columns[name] = nulls(part[name].tolist())
    return columns


def expected_trades(cached, first: pd.Timestamp, last: pd.Timestamp) -> list[dict]:
    trades = cached.trades
    shown = trades[(trades["entry_time"] <= last) & (trades["exit_time"] >= first)]
    return [
        {k: v.isoformat() if isinstance(v, pd.Timestamp) else number(v) for k, v in row.items()}
        for row in shown.to_dict("records")
    ]


def test_a_chart_holds_candles_indicators_equity_trades_and_statistics(caches, api):
    path = caches / "5m" / "AAPL_backtest.json"
    cached = read_cache(path)
    response = api.get("/api/charts/5m/aapl/?limit=100")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CHART_KEYS
    first = len(cached.candles) - 100
    index = cached.candles.index
    assert body["timeframe"] == "5m" and body["symbol"] == "AAPL"
    assert body["timezone"] == "America/New_York"
    assert body["strategy"] == cached.strategy
    assert body["settings"] == cached.settings
    assert body["data"] == cached.data
    assert body["file"] == {
        "name": "5m/AAPL_backtest.json",
        "size": path.stat().st_size,
        "modified": body["file"]["modified"],
    }
    assert body["period"] == {**cached.period, "bars": 1560}
    assert body["window"] == {
        "requested": {"start": None, "end": None, "limit": 100},
        "start": index[first].isoformat(),
        "end": index[-1].isoformat(),
        "bars": 100,
        "available": 1560,
        "truncated": True,
        "previous_end": index[first].isoformat(),
        "next_start": None,
    }
    assert body["indicators"] == [macd_drawing().as_dict()]
    assert list(body["candles"]) == [
        "time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "MACD",
        "Signal",
        "Hist",
        "equity",
        "position",
    ]
    assert body["candles"] == expected_candles(cached, first, len(index))
    assert body["candles"]["time"][-1] == int(parse_time("2026-09-28 15:55").timestamp())
    assert body["trades"] == expected_trades(cached, index[first], index[-1])
    assert body["trades"] and all(set(t) == TRADE_KEYS for t in body["trades"])
    assert body["trades_total"] == len(cached.trades)
    stats = cached.statistics.as_dict()
    assert body["statistics"] == {k: number(v) for k, v in stats.items()}


def test_without_a_window_the_newest_2000_bars_at_most_are_sent(caches, api):
    body = api.get("/api/charts/5m/AAPL/").json()  # 1,560 bars: all of them
    assert body["window"]["bars"] == 1560 and body["window"]["truncated"] is False
    assert body["window"]["requested"]["limit"] == 2000
    assert body["window"]["previous_end"] is None and body["window"]["next_start"] is None
    assert len(body["candles"]["close"]) == 1560


def test_start_and_end_are_new_york_dates_and_times(caches, api):
    cached = read_cache(caches / "5m" / "AAPL_backtest.json")
    body = api.get("/api/charts/5m/AAPL/?start=2026-09-03&end=2026-09-03").json()
    day = cached.candles.loc["2026-09-03"]
    assert body["window"]["requested"] == {
        "start": "2026-09-03T00:00:00-04:00",
        "end": "2026-09-04T00:00:00-04:00",
        "limit": 2000,
    }
    assert body["window"]["start"] == "2026-09-03T09:30:00-04:00"
    assert body["window"]["end"] == "2026-09-03T15:55:00-04:00"
    assert body["window"]["bars"] == body["window"]["available"] == len(day) == 78
    assert body["candles"]["close"] == day["close"].tolist()
    assert body["trades"] == expected_trades(cached, day.index[0], day.index[-1])

    body = api.get("/api/charts/5m/AAPL/?start=2026-09-03 10:00&limit=5").json()
    assert body["window"]["start"] == "2026-09-03T10:00:00-04:00"
    assert body["window"]["end"] == "2026-09-03T10:20:00-04:00"
    assert body["window"]["truncated"] is True
    assert body["window"]["next_start"] == "2026-09-03T10:25:00-04:00"
    assert body["window"]["previous_end"] == "2026-09-03T10:00:00-04:00"

    utc = api.get("/api/charts/5m/AAPL/?start=2026-09-03T14:00:00Z&limit=1").json()
    assert utc["window"]["start"] == "2026-09-03T10:00:00-04:00"


def test_paging_back_from_the_newest_window_covers_every_bar_once(caches, api):
    cached = read_cache(caches / "5m" / "MSFT_backtest.json")
    pages, query = [], "?limit=300"
    while True:
        window = api.get(f"/api/charts/5m/MSFT/{query}").json()
        pages.insert(0, window["candles"]["time"])
        if window["window"]["previous_end"] is None:
            break
        query = f"?limit=300&end={window['window']['previous_end'].replace('+', '%2B')}"
    assert [len(p) for p in pages] == [180, 300, 300]
    assert sum(pages, []) == [int(t.timestamp()) for t in cached.candles.index]

    forward, query = [], "?limit=500&start=2026-09-01"
    while query:
        window = api.get(f"/api/charts/5m/MSFT/{query}").json()
        forward += window["candles"]["time"]
        following = window["window"]["next_start"]
        query = following and f"?limit=500&start={following}"
    assert forward == sum(pages, [])


def test_a_window_without_bars_is_empty_not_an_error(caches, api):
    body = api.get("/api/charts/5m/AAPL/?start=2026-09-05&end=2026-09-06").json()  # a Saturday
    assert body["window"]["bars"] == 0 and body["window"]["start"] is None
    assert body["window"]["next_start"] == "2026-09-07T09:30:00-04:00"
    assert body["candles"]["time"] == [] and body["trades"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?start=2026-09-04&end=2026-09-03", "end"),
        ("?start=2026-09-03 10:00&end=2026-09-03 10:00", "end"),
        ("?start=yesterday-ish", "start"),
        ("?end=2026-13-01", "end"),
        ("?start=NaT", "start"),
        ("?start=2026-09-03%00", "start"),
        ("?limit=0", "limit"),
        ("?limit=20001", "limit"),
        ("?limit=many", "limit"),
    ],
)
def test_a_bad_window_is_400_with_the_field(caches, api, query, field):
    error = assert_error(api.get(f"/api/charts/5m/AAPL/{query}"), 400, "invalid")
    assert set(error["fields"]) == {field}


def test_no_cache_for_the_pair_is_404_saying_what_to_run(caches, api):
    error = assert_error(api.get("/api/charts/1h/AAPL/"), 404, "not_found")
    assert error["message"].startswith("no cached 1h backtest for AAPL in ")
    assert "python -m quant_trading.backtesting.run_backtest --timeframe 1h" in error["message"]
    assert_error(api.get("/api/charts/5m/SPY/"), 404, "not_found")


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/charts/5m/..%2F..%2Fetc/", 404),  # %2F is a / by the time URLs are matched
        ("/api/charts/5m/../../etc/passwd/", 404),
        ("/api/charts/..%2F5m/AAPL/", 404),
        ("/api/charts/5m//etc/passwd/", 404),
        ("/api/charts/5m/%2Fetc%2Fpasswd/", 404),
        ("/api/charts/5m/../", 400),
        ("/api/charts/../AAPL/", 400),
        ("/api/charts/5m/%2E%2E/", 400),
        ("/api/charts/5m/AAPL%00/", 400),
        ("/api/charts/5m%00/AAPL/", 400),
        ("/api/charts/5m/..%5C..%5Cetc/", 400),
        ("/api/charts/5m/C:%5Cwindows/", 400),
        ("/api/charts/5m/AAPL%0A/", 200),  # stripped: plain AAPL
        ("/api/charts/5m/" + "A" * 300 + "/", 400),
        ("/api/charts/" + "5" * 300 + "m/AAPL/", 400),
        ("/api/charts/5m/~root/", 400),
        ("/api/charts/5m/AAPL_backtest.json%00/", 400),
    ],
)
def test_paths_from_the_url_never_leave_the_cache_folder(caches, api, url, status):
    reads = store_reads()
    response = api.get(url)
    assert response.status_code == status, response.content
    if status != 200:
        assert set(response.json()) == {"error"}
        assert store_reads() == reads


def test_a_symlink_out_of_the_cache_folder_is_not_followed(caches, api, tmp_path):
    outside = tmp_path / "outside"
    (outside / "1h").mkdir(parents=True)
    shutil.copy(caches / "5m" / "MSFT_backtest.json", outside / "SECRET_backtest.json")
    shutil.copy(caches / "5m" / "MSFT_backtest.json", outside / "1h" / "MSFT_backtest.json")
    (caches / "5m" / "EVIL_backtest.json").symlink_to(outside / "SECRET_backtest.json")
    (caches / "1h").symlink_to(outside / "1h", target_is_directory=True)
    reads = store_reads()
    for url in ("/api/charts/5m/EVIL/", "/api/charts/1h/MSFT/"):
        error = assert_error(api.get(url), 404, "not_found")
        assert str(outside) not in error["message"]
    listed = api.get("/api/charts/").json()["results"]
    assert [(r["timeframe"], r["symbol"]) for r in listed] == [
        ("5m", "AAPL"),
        ("5m", "MSFT"),
        ("15m", "AAPL"),
    ]
    assert store_reads() == reads + 3  # the three files inside, none outside


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"schema": "other/9"}', "found 'other/9'"),
        (b'{"schema": "quant_trading.backtest/2", "symbol": "AAPL"}', "damaged backtest cache"),
    ],
)
def test_an_unreadable_cache_file_is_409_naming_the_file_and_the_fix(caches, api, content, reason):
    path = caches / "5m" / "AAPL_backtest.json"
    path.write_bytes(content)
    error = assert_error(api.get("/api/charts/5m/AAPL/"), 409, "cache_unreadable")
    assert error["message"].startswith(f"{path}: ")
    assert reason in error["message"]
    assert error["message"].endswith(f"--cache-dir {caches} --symbols AAPL")


def test_a_schema_1_cache_still_opens_with_the_macd_drawing(caches, api):
    path = caches / "5m" / "AAPL_backtest.json"
    write_schema1(read_cache(path), path)
    body = api.get("/api/charts/5m/AAPL/?limit=3").json()
    assert body["indicators"] == [macd_drawing().as_dict()]
    assert np.isfinite(body["candles"]["Hist"]).all()
    listed = api.get("/api/charts/?timeframe=5m&symbol=AAPL").json()["results"][0]
    assert listed["error"] is None and listed["strategy"] == "MACD"


def test_the_schema_describes_what_the_chart_endpoints_answer(caches, api):
    schema = api.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]

    def keys(name: str) -> set[str]:
        return set(components[name]["properties"])

    chart = api.get("/api/charts/5m/AAPL/?limit=5").json()
    assert keys("Chart") == set(chart) == CHART_KEYS
    assert keys("ChartWindow") == set(chart["window"]) == WINDOW_KEYS
    assert keys("RoundTrip") == set(chart["trades"][0]) == TRADE_KEYS
    assert keys("Statistics") == set(chart["statistics"])
    listed = api.get("/api/charts/").json()
    assert keys("ChartSummary") == set(listed["results"][0]) == SUMMARY_KEYS
    assert keys("PaginatedChartSummaryList") == LIST_KEYS
    detail = schema["paths"]["/api/charts/{timeframe}/{symbol}/"]["get"]
    assert {p["name"] for p in detail["parameters"]} == {
        "timeframe",
        "symbol",
        "start",
        "end",
        "limit",
    }
    assert set(detail["responses"]) == {"200", "400", "404", "409"}
