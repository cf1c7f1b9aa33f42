"""The backend as a user starts it: settings checked at start-up, ``runserver`` for a quick
try, gunicorn for real use (static files, the built dashboard, the API token), over HTTP."""

from __future__ import annotations

import pytest
from server_process import backend_env, manage, running_server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY is not set"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe': use 1 or 0"),
        ({"IBKR_PORT": "7496"}, "IBKR_PORT=7496 is TWS's live-trading port"),
        ({"IBKR_PORT": "4001"}, "IBKR_PORT=4001 is IB Gateway's live-trading port"),
        ({"IBKR_PORT": "seven"}, "IBKR_PORT='seven' is not valid"),
        ({"IBKR_TIMEOUT": "soon"}, "IBKR_TIMEOUT='soon': use a number of seconds > 0"),
        ({"IBKR_TIMEOUT": "-1"}, "IBKR_TIMEOUT='-1': use a number of seconds > 0"),
        ({"DJANGO_BACKTEST_CONCURRENCY": "0"}, "DJANGO_BACKTEST_CONCURRENCY='0': use a whole"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line(tmp_path, env, message):
    result = manage("check", env=backend_env(tmp_path, **env))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"manage.py: error: {errors[0].split('error: ', 1)[1]}"]
    assert message in errors[0]
    assert "Traceback" not in result.stderr


def test_quick_try_runs_without_any_setting_in_development_mode(tmp_path):
    env = backend_env(tmp_path)
    with running_server(env) as server:
        schema = server.request("GET", "/api/schema/?format=json")
        docs = server.request("GET", "/api/docs/")
        missing = server.request("GET", "/api/nothing-here/")
    assert schema.status == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert docs.status == 200 and b"swagger" in docs.body.lower()
    assert missing.status == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "development mode (DEBUG on, development secret key)" in server.stderr


def test_gunicorn_without_a_secret_key_refuses_to_start(tmp_path):
    import subprocess
    import sys

    from server_process import MANAGE, REPO_ROOT, free_port

    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--chdir", str(MANAGE.parent),
         "--bind", f"127.0.0.1:{free_port()}", "dashboard.wsgi"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=backend_env(tmp_path),
    )  # fmt: skip
    assert result.returncode != 0
    assert "dashboard: error: DJANGO_SECRET_KEY is not set" in result.stderr


def test_gunicorn_serves_the_built_dashboard_static_files_and_checks_the_token(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>quant_trading</title>")
    (dist / "assets" / "app.js").write_text("console.log('dashboard')")
    env = backend_env(
        tmp_path,
        DJANGO_SECRET_KEY="a-long-random-test-secret-key-" + "x" * 30,
        DJANGO_API_TOKEN="s3cret-token",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        QT_FRONTEND_DIST=str(dist),
    )
    collected = manage("collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stderr
    with running_server(env, gunicorn=True) as server:
        index = server.request("GET", "/")
        route = server.request("GET", "/simulated")
        asset = server.request("GET", "/assets/app.js")
        swagger_css = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"
        docs_asset = server.request("GET", swagger_css)
        anonymous = server.request("GET", "/api/schema/?format=json")
        wrong = server.request(
            "GET", "/api/schema/?format=json", headers={"Authorization": "Bearer nope"}
        )
        bearer = server.request(
            "GET", "/api/schema/?format=json", headers={"Authorization": "Bearer s3cret-token"}
        )
    assert index.status == 200 and b"<title>quant_trading</title>" in index.body
    assert route.status == 200 and route.body == index.body  # client-side routes
    assert asset.status == 200 and asset.body == b"console.log('dashboard')"
    assert docs_asset.status == 200
    assert anonymous.status == 401
    assert anonymous.json()["error"]["status"] == 401
    assert anonymous.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert wrong.status == 401 and wrong.json()["error"]["message"] == "invalid API token"
    assert bearer.status == 200 and bearer.json()["openapi"].startswith("3.")


def test_parallel_backtests_and_order_posts_under_runserver_all_land_unmixed(tmp_path):
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from server_process import REPO_ROOT

    data = tmp_path / "market_data"
    data.mkdir()
    for symbol in ("AAPL", "MSFT", "SPY"):
        shutil.copy(REPO_ROOT / "market_data" / f"{symbol}_1m.csv", data)
    backtests = [
        {"strategy": "MACD", "symbols": [symbol], "timeframe": "5m", "write_cache": False}
        for symbol in ("AAPL", "MSFT", "SPY")
    ] + [{"strategy": "RSI", "symbols": ["AAPL"], "timeframe": "3m", "write_cache": False}]
    orders = [
        {"symbol": "SPY", "side": "BUY" if i % 2 else "SELL", "quantity": i + 1,
         "price": 500 + i, "client_order_id": f"web-{i}"}
        for i in range(12)
    ]  # fmt: skip
    with running_server(backend_env(tmp_path)) as server:
        with ThreadPoolExecutor(max_workers=8) as pool:  # all in flight together
            runs = [pool.submit(server.request, "POST", "/api/backtests/", b) for b in backtests]
            posts = [
                pool.submit(server.request, "POST", "/api/simulated-orders/", o) for o in orders
            ]
            ran = [future.result() for future in runs]
            posted = [future.result() for future in posts]
        listed_runs = server.request("GET", "/api/backtests/?page_size=50").json()
        listed_orders = server.request("GET", "/api/simulated-orders/?page_size=50").json()
    for request, answer in zip(backtests, ran):
        assert answer.status == 201, answer.body[:300]
        run = answer.json()
        assert (run["strategy"], run["symbols"], run["timeframe"]) == (
            request["strategy"], request["symbols"], request["timeframe"]
        )  # fmt: skip
        assert {row["symbol"] for row in run["symbol_metrics"]} == set(request["symbols"])
        assert {t["symbol"] for t in run["trades"]} <= set(request["symbols"])
    for request, answer in zip(orders, posted):
        assert answer.status == 201, answer.body[:300]
        order = answer.json()
        assert {k: order[k] for k in request} == request
    assert listed_runs["count"] == len(backtests)
    assert sorted(o["client_order_id"] for o in listed_orders["results"]) == sorted(
        o["client_order_id"] for o in orders
    )
