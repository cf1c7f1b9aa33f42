"""The API's routes; each area's views live in a module named for it."""

from django.urls import path

from . import account, backtests, charts, orders, strategies

urlpatterns = [
    path("strategies/", strategies.StrategyList.as_view(), name="strategies"),
    path("backtests/", backtests.BacktestListCreate.as_view(), name="backtests"),
    path("backtests/<int:pk>/", backtests.BacktestDetail.as_view(), name="backtest"),
    path("charts/", charts.ChartList.as_view(), name="charts"),
    path("charts/<str:timeframe>/<str:symbol>/", charts.ChartDetail.as_view(), name="chart"),
    path("simulated-orders/", orders.OrderListCreate.as_view(), name="orders"),
    path("simulated-orders/summary/", orders.OrderSummary.as_view(), name="orders-summary"),
    path("simulated-orders/<int:pk>/", orders.OrderDetail.as_view(), name="order"),
    path("portfolio/", account.PortfolioView.as_view(), name="portfolio"),
    path("connection/", account.ConnectionView.as_view(), name="connection"),
    path("health/", account.HealthView.as_view(), name="health"),
]
