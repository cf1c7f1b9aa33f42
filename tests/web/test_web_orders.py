"""``/api/simulated-orders/``: the paper-trade blotter. The position arithmetic is tested on
its own first (average cost, partial closes, flips, commissions), then the endpoints through
DRF's client, and the races through a live server with parallel HTTP posts."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from dashboard.api.positions import EPSILON, Fill, Position, PriceQuote, positions, summarize
from quant_trading.backtesting.cache import read_cache

ORDER_KEYS = {
    "id",
    "created",
    "executed_at",
    "symbol",
    "side",
    "quantity",
    "price",
    "commission",
    "strategy",
    "note",
    "client_order_id",
}
POSITION_KEYS = {
    "symbol",
    "position",
    "average_cost",
    "realized_pnl",
    "unrealized_pnl",
    "market_value",
    "price",
    "note",
    "commission",
    "fills",
    "first_fill",
    "last_fill",
}


def buy(quantity, price, commission=0.0, symbol="AAPL") -> Fill:
    return Fill(symbol, "BUY", quantity, price, commission)


def sell(quantity, price, commission=0.0, symbol="AAPL") -> Fill:
    return Fill(symbol, "SELL", quantity, price, commission)


def book(*fills: Fill) -> Position:
    (position,) = positions(fills).values()
    return position


def state(position: Position) -> tuple:
    return position.quantity, position.average_cost, position.realized_pnl


# --- the arithmetic (pure) ------------------------------------------------------------------


def test_adding_to_a_long_averages_the_cost():
    assert state(book(buy(10, 100.0), buy(30, 104.0))) == (40, 103.0, 0.0)


def test_adding_to_a_short_averages_the_cost():
    assert state(book(sell(10, 20.0), sell(10, 22.0))) == (-20, 21.0, 0.0)


def test_partial_closes_realize_against_the_average_and_keep_it():
    position = Position("AAPL")
    for fill in (buy(10, 100.0), buy(30, 104.0)):
        position.apply(fill)
    assert position.apply(sell(15, 110.0)) == 105.0  # (110 - 103) x 15
    assert state(position) == (25, 103.0, 105.0)
    assert position.apply(sell(25, 100.0)) == -75.0  # (100 - 103) x 25
    assert state(position) == (0, None, 30.0)  # flat: no average cost any more
    assert position.apply(buy(5, 90.0)) == 0.0
    assert state(position) == (5, 90.0, 30.0)  # a new position starts from its own price


def test_covering_a_short_realizes_average_minus_price():
    assert state(book(sell(10, 50.0), buy(4, 45.0))) == (-6, 50.0, 20.0)
    assert state(book(sell(10, 50.0), buy(10, 52.0))) == (0, None, -20.0)


def test_a_flip_closes_the_whole_position_and_opens_the_rest_at_the_fill_price():
    position = Position("AAPL")
    position.apply(buy(10, 50.0))
    assert position.apply(sell(25, 55.0)) == 50.0  # long 10 closed at +5
    assert state(position) == (-15, 55.0, 50.0)
    assert position.apply(buy(5, 53.0)) == 10.0  # short 5 covered at +2
    assert state(position) == (-10, 55.0, 60.0)
    assert position.apply(buy(30, 60.0)) == -50.0  # short 10 covered at -5, then long 20
    assert state(position) == (20, 60.0, 10.0)


def test_realized_pnl_is_net_of_every_commission_paid():
    position = book(buy(100, 10.0, 1.0), sell(100, 11.0, 1.5))
    assert (position.realized_pnl, position.commission, position.fills) == (97.5, 2.5, 2)
    still_open = book(buy(10, 10.0, 1.0))
    assert still_open.realized_pnl == -1.0  # the opening commission is already paid
    assert still_open.unrealized_pnl(12.0) == 20.0  # so realized + unrealized = 19, all told


def test_unrealized_pnl_marks_long_short_and_flat_positions():
    assert book(buy(10, 100.0)).unrealized_pnl(103.5) == 35.0
    assert book(sell(10, 100.0)).unrealized_pnl(103.5) == -35.0
    assert book(buy(10, 100.0), sell(10, 101.0)).unrealized_pnl(500.0) == 0.0


def test_fractional_fills_that_add_up_to_zero_leave_the_position_flat():
    position = book(buy(0.1, 100.0), buy(0.2, 100.0), sell(0.3, 110.0))
    assert position.quantity == 0.0 and position.average_cost is None
    assert position.realized_pnl == pytest.approx(3.0)
    assert book(buy(0.1, 10.0), sell(0.30000000000000004, 10.0)).quantity == pytest.approx(-0.2)
    assert abs(book(buy(1 / 3, 3.0), buy(2 / 3, 3.0), sell(1.0, 3.0)).quantity) < EPSILON


def test_symbols_are_kept_apart_and_listed_in_order():
    fills = [
        buy(10, 100.0, symbol="MSFT"),
        buy(5, 20.0, symbol="AAPL"),
        sell(4, 110.0, symbol="MSFT"),
        sell(5, 21.0, 0.5, symbol="AAPL"),
    ]
    book_ = positions(fills)
    assert list(book_) == ["AAPL", "MSFT"]
    assert state(book_["AAPL"]) == (0, None, 4.5)
    assert state(book_["MSFT"]) == (6, 100.0, 40.0)
    assert (book_["AAPL"].fills, book_["MSFT"].fills) == (2, 2)


@pytest.mark.parametrize(
    "fill",
    [
        buy(0, 10.0),
        buy(-1, 10.0),
        buy(1, 0.0),
        buy(1, -2.0),
        buy(1, 10.0, -0.5),
        buy(1, 10.0, symbol="MSFT"),
    ],
)
def test_a_fill_that_is_not_one_is_refused(fill):
    with pytest.raises(ValueError):
        Position("AAPL").apply(fill)


def test_summarize_marks_open_positions_with_the_price_source_and_says_when_it_cannot():
    asked = []
    seen = dt.datetime(2026, 9, 28, 15, 55, tzinfo=dt.UTC)

    def prices(symbol):
        asked.append(symbol)
        return PriceQuote(112.0, seen, "test") if symbol == "AAPL" else None

    fills = [
        buy(10, 100.0, symbol="AAPL"),
        sell(3, 50.0, symbol="MSFT"),
        buy(2, 10.0, symbol="SPY"),
        sell(2, 11.0, symbol="SPY"),
    ]
    rows = {row.position.symbol: row for row in summarize(fills, prices)}
    assert asked == ["AAPL", "MSFT"]  # a flat position needs no price
    assert (rows["AAPL"].unrealized_pnl, rows["AAPL"].market_value) == (120.0, 1120.0)
    assert rows["AAPL"].quote == PriceQuote(112.0, seen, "test") and rows["AAPL"].note is None
    assert rows["MSFT"].unrealized_pnl is None and rows["MSFT"].quote is None
    assert rows["MSFT"].note == "no price known for MSFT: the open position is not marked"
    assert (rows["SPY"].unrealized_pnl, rows["SPY"].market_value) == (0.0, 0.0)


# --- the endpoints --------------------------------------------------------------------------

URL = "/api/simulated-orders/"


def post(api, **fields):
    return api.post(URL, fields, format="json")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status and body["error"]["code"] == code
    return body["error"]


def test_a_posted_fill_is_stored_and_returned_normalized(api):
    response = post(
        api,
        symbol="aapl",
        side="buy",
        quantity=12.5,
        price=187.25,
        commission=1,
        executed_at="2026-09-02T10:31:00-04:00",
        strategy="MACD",
        note="manual",
        client_order_id="c-1",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ORDER_KEYS
    assert body == {
        "id": body["id"],
        "created": body["created"],
        "executed_at": "2026-09-02T10:31:00-04:00",
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 12.5,
        "price": 187.25,
        "commission": 1.0,
        "strategy": "MACD",
        "note": "manual",
        "client_order_id": "c-1",
    }
    assert api.get(f"{URL}{body['id']}/").json() == body


def test_executed_at_defaults_to_now_and_a_time_without_offset_is_new_york(api):
    before = dt.datetime.now(dt.UTC)
    body = post(api, symbol="SPY", side="SELL", quantity=1, price=500).json()
    after = dt.datetime.now(dt.UTC)
    assert before <= dt.datetime.fromisoformat(body["executed_at"]) <= after
    assert (body["commission"], body["strategy"], body["note"]) == (0.0, "", "")
    assert body["client_order_id"] is None
    winter = post(
        api, symbol="SPY", side="SELL", quantity=1, price=500, executed_at="2026-01-05 10:00"
    ).json()
    assert winter["executed_at"] == "2026-01-05T10:00:00-05:00"
    utc = post(
        api, symbol="SPY", side="SELL", quantity=1, price=500, executed_at="2026-07-01T14:00:00Z"
    ).json()
    assert utc["executed_at"] == "2026-07-01T10:00:00-04:00"


def test_a_repeated_client_order_id_returns_the_stored_fill_not_a_second_one(api):
    from dashboard.api.models import SimulatedOrder

    fields = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 10,
        "price": 100.5,
        "executed_at": "2026-09-02T10:00:00-04:00",
        "client_order_id": "abc",
    }
    first = post(api, **fields)
    assert first.status_code == 201
    again = post(api, **{**fields, "side": "buy", "symbol": "aapl"})  # the same, spelled so
    assert again.status_code == 200 and again.json() == first.json()
    shorter = post(api, symbol="AAPL", side="BUY", quantity=10, price=100.5, client_order_id="abc")
    assert shorter.status_code == 200  # fields left out are not compared (executed_at: now)
    assert SimulatedOrder.objects.count() == 1

    error = assert_error(post(api, **{**fields, "price": 101, "quantity": 9}), 409, "conflict")
    assert error["message"] == (
        f"client_order_id 'abc' is already stored as order {first.json()['id']} with different "
        "fields: quantity 9.0 (stored 10.0), price 101.0 (stored 100.5)"
    )
    assert SimulatedOrder.objects.count() == 1


def test_blank_client_order_ids_do_not_make_fills_repeats(api):
    one = post(api, symbol="AAPL", side="BUY", quantity=1, price=1, client_order_id="")
    two = post(api, symbol="AAPL", side="BUY", quantity=1, price=1, client_order_id="")
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["client_order_id"] is None and one.json()["id"] != two.json()["id"]


VALID = {"symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 10}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"quantity": "ten"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"price": 0}, "price"),
        ({"price": -0.01}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"side": "HOLD"}, "side"),
        ({"side": ""}, "side"),
        ({"symbol": "../etc"}, "symbol"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "A" * 16}, "symbol"),
        ({"executed_at": "yesterday"}, "executed_at"),
        ({"executed_at": "2026-02-30 10:00"}, "executed_at"),
        ({"commission": -0.01}, "commission"),
        ({"strategy": "x" * 101}, "strategy"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
        ({"symbol": None}, "symbol"),
    ],
)
def test_an_invalid_fill_is_400_with_the_field(api, change, field):
    error = assert_error(post(api, **{**VALID, **change}), 400, "invalid")
    assert set(error["fields"]) == {field}
    assert error["message"].startswith(f"{field}: ")


def test_a_fill_without_the_required_fields_names_each(api):
    error = assert_error(api.post(URL, {}, format="json"), 400, "invalid")
    assert set(error["fields"]) == {"symbol", "side", "quantity", "price"}


@pytest.fixture
def blotter(api):
    """Five fills over three days and two strategies; returns their ids by name."""
    fills = {
        "a1": ("AAPL", "BUY", 10, 100.0, 1.0, "2026-09-01 10:00", "MACD"),
        "m1": ("MSFT", "SELL", 2.5, 300.0, 0.0, "2026-09-01 11:00", ""),
        "a2": ("AAPL", "BUY", 10, 110.0, 1.0, "2026-09-02 09:30", "MACD"),
        "a3": ("AAPL", "SELL", 5, 120.0, 1.0, "2026-09-02 15:59:59", "RSI"),
        "t1": ("TSLA", "BUY", 1, 10.0, 0.0, "2026-09-03 09:30", "MACD"),
    }
    ids = {}
    for name, (symbol, side, quantity, price, commission, when, strategy) in fills.items():
        response = post(
            api,
            symbol=symbol,
            side=side,
            quantity=quantity,
            price=price,
            commission=commission,
            executed_at=when,
            strategy=strategy,
        )
        assert response.status_code == 201
        ids[name] = response.json()["id"]
    return ids


def listed(api, query: str = "") -> list[int]:
    response = api.get(f"{URL}{query}")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_the_list_is_newest_first_and_paginated(api, blotter):
    body = api.get(URL).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5 and all(set(row) == ORDER_KEYS for row in body["results"])
    assert listed(api) == [blotter[k] for k in ("t1", "a3", "a2", "m1", "a1")]
    page = api.get(f"{URL}?page_size=2&page=2").json()
    assert [row["id"] for row in page["results"]] == [blotter["a2"], blotter["m1"]]
    assert page["next"].endswith("?page=3&page_size=2")


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?symbol=aapl", ["a3", "a2", "a1"]),
        ("?strategy=MACD", ["t1", "a2", "a1"]),
        ("?symbol=AAPL&strategy=MACD", ["a2", "a1"]),
        ("?side=sell", ["a3", "m1"]),
        ("?since=2026-09-02", ["t1", "a3", "a2"]),
        ("?until=2026-09-02", ["a3", "a2", "m1", "a1"]),  # a bare date: that whole day
        ("?since=2026-09-01 10:30&until=2026-09-02 15:00", ["a2", "m1"]),
        ("?since=2026-09-01T14:30:00Z&until=2026-09-01T15:30:00Z", ["m1"]),
        ("?symbol=SPY", []),
    ],
)
def test_the_list_filters_by_symbol_strategy_side_and_dates(api, blotter, query, names):
    assert listed(api, query) == [blotter[name] for name in names]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=soon", "since"),
        ("?until=2026-13-01", "until"),
        ("?symbol=a/b", "symbol"),
        ("?side=HOLD", "side"),
        ("?since=2026-09-03&until=2026-09-02", "until"),
    ],
)
def test_a_bad_list_filter_is_400(api, query, field):
    error = assert_error(api.get(f"{URL}{query}"), 400, "invalid")
    assert set(error["fields"]) == {field}


def test_a_fill_can_be_read_and_deleted_and_is_then_gone(api, blotter):
    one = f"{URL}{blotter['m1']}/"
    assert api.get(one).json()["symbol"] == "MSFT"
    response = api.delete(one)
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get(one), 404, "not_found")
    assert_error(api.delete(one), 404, "not_found")
    assert blotter["m1"] not in listed(api)
    assert_error(api.get(f"{URL}999999/"), 404, "not_found")


def test_the_summary_gives_positions_average_cost_and_pnl_marked_to_the_newest_bar(
    caches, blotter, api
):
    aapl_15m = read_cache(caches / "15m" / "AAPL_backtest.json").candles
    msft_5m = read_cache(caches / "5m" / "MSFT_backtest.json").candles
    body = api.get(f"{URL}summary/").json()
    assert set(body) == {"strategy", "symbol", "accounting", "positions", "totals"}
    assert (body["strategy"], body["symbol"]) == (None, None)
    assert body["accounting"].startswith("average cost: ")
    rows = {row["symbol"]: row for row in body["positions"]}
    assert list(rows) == ["AAPL", "MSFT", "TSLA"]
    assert all(set(row) == POSITION_KEYS for row in rows.values())

    aapl_price = aapl_15m["close"].iloc[-1]  # the 15m file has the newest session
    assert rows["AAPL"] == {
        "symbol": "AAPL",
        "position": 15.0,
        "average_cost": 105.0,
        "realized_pnl": 75.0 - 3.0,  # (120 - 105) x 5, less three 1.00 commissions
        "unrealized_pnl": pytest.approx((aapl_price - 105.0) * 15),
        "market_value": pytest.approx(aapl_price * 15),
        "price": {
            "value": aapl_price,
            "time": aapl_15m.index[-1].isoformat(),
            "source": "backtest cache",
            "detail": "close of the 15m bar at 2026-09-29 15:45 in 15m/AAPL_backtest.json",
        },
        "note": None,
        "commission": 3.0,
        "fills": 3,
        "first_fill": "2026-09-01T10:00:00-04:00",
        "last_fill": "2026-09-02T15:59:59-04:00",
    }
    msft_price = msft_5m["close"].iloc[-1]
    assert rows["MSFT"]["position"] == -2.5 and rows["MSFT"]["average_cost"] == 300.0
    assert rows["MSFT"]["unrealized_pnl"] == pytest.approx((300.0 - msft_price) * 2.5)
    assert rows["MSFT"]["price"]["time"] == msft_5m.index[-1].isoformat()
    assert rows["TSLA"]["unrealized_pnl"] is None and rows["TSLA"]["price"] is None
    assert rows["TSLA"]["note"] == "no price known for TSLA: the open position is not marked"
    assert body["totals"] == {
        "realized_pnl": 72.0,
        "unrealized_pnl": None,
        "commission": 3.0,
        "fills": 5,
    }


def test_the_summary_of_one_strategy_or_symbol(caches, blotter, api):
    macd = api.get(f"{URL}summary/?strategy=MACD").json()
    assert macd["strategy"] == "MACD"
    assert [
        (r["symbol"], r["position"], r["average_cost"], r["realized_pnl"])
        for r in macd["positions"]
    ] == [("AAPL", 20.0, 105.0, -2.0), ("TSLA", 1.0, 10.0, 0.0)]
    msft = api.get(f"{URL}summary/?symbol=msft").json()
    assert msft["symbol"] == "MSFT" and [r["symbol"] for r in msft["positions"]] == ["MSFT"]
    assert msft["totals"]["unrealized_pnl"] == msft["positions"][0]["unrealized_pnl"]
    error = assert_error(api.get(f"{URL}summary/?symbol=a/b"), 400, "invalid")
    assert set(error["fields"]) == {"symbol"}


def test_without_any_cached_backtest_open_positions_are_not_marked(api, blotter):
    rows = api.get(f"{URL}summary/").json()["positions"]
    assert [row["unrealized_pnl"] for row in rows] == [None, None, None]
    assert all(row["note"].startswith("no price known for ") for row in rows)
    assert api.get(f"{URL}summary/?strategy=nobody").json()["positions"] == []


def test_the_schema_describes_the_order_bodies(api):
    schema = api.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    assert set(components["SimulatedOrder"]["properties"]) == ORDER_KEYS
    request = components["SimulatedOrderRequest"]
    assert set(request["properties"]) == ORDER_KEYS - {"id", "created"}
    assert set(request["required"]) == {"symbol", "side", "quantity", "price"}
    assert set(components["PositionSummary"]["properties"]) == POSITION_KEYS
    create = schema["paths"]["/api/simulated-orders/"]["post"]
    assert set(create["responses"]) == {"200", "201", "400", "409"}
    listing = schema["paths"]["/api/simulated-orders/"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "symbol",
        "strategy",
        "side",
        "since",
        "until",
        "page",
        "page_size",
    }
    assert set(schema["paths"]["/api/simulated-orders/{id}/"]) == {"get", "delete"}


# --- parallel posts against a live server ---------------------------------------------------


def post_json(base_url: str, body: dict) -> tuple[int, dict]:
    """POST ``body`` to the live server (its own connection, 30 s timeout)."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        connection.request("POST", URL, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def in_parallel(base_url: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    """Post every body from its own thread, released together."""
    start = threading.Barrier(len(bodies))

    def send(body):
        start.wait(timeout=30)
        return post_json(base_url, body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies, timeout=60))


@pytest.fixture
def server(live_server, settings):
    settings.API_TOKEN = None
    return live_server.url


def test_parallel_posts_each_store_exactly_one_fill_with_its_own_fields(server):
    from dashboard.api.models import SimulatedOrder

    bodies = [
        {
            "symbol": f"S{i}",
            "side": "BUY" if i % 2 else "SELL",
            "quantity": i + 1,
            "price": 10.0 + i,
            "commission": i / 100,
            "note": f"fill {i}",
            "client_order_id": f"p-{i}",
        }
        for i in range(20)
    ]
    answers = in_parallel(server, bodies)
    assert [status for status, _ in answers] == [201] * 20
    for body, (_, answer) in zip(bodies, answers, strict=True):
        assert {k: answer[k] for k in body} == {**body, "quantity": float(body["quantity"])}
    stored = {o.client_order_id: o for o in SimulatedOrder.objects.all()}
    assert sorted(stored) == sorted(b["client_order_id"] for b in bodies)
    for body, (_, answer) in zip(bodies, answers, strict=True):
        order = stored[body["client_order_id"]]
        assert (order.id, order.symbol, order.side, order.quantity, order.price, order.note) == (
            answer["id"],
            body["symbol"],
            body["side"],
            body["quantity"],
            body["price"],
            body["note"],
        )


def test_racing_posts_of_one_client_order_id_store_one_fill(server):
    from dashboard.api.models import SimulatedOrder

    body = {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 3,
        "price": 99.5,
        "executed_at": "2026-09-02T10:00:00-04:00",
        "client_order_id": "race",
    }
    answers = in_parallel(server, [body] * 12)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 11 + [201]
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers}) == 1
    assert SimulatedOrder.objects.filter(client_order_id="race").count() == 1
    assert SimulatedOrder.objects.count() == 1
