"""What the dashboard stores: the backtests it ran and the paper-trade fills users log."""

from __future__ import annotations

from django.db import models


class BacktestRun(models.Model):
    """One ``POST /api/backtests/``: what was asked, what came out, who asked and how long
    it took, and the data files it read (with their SHA-256), so a result can be traced."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    duration_seconds = models.FloatField()
    requested_by = models.CharField(max_length=200, blank=True)  # client address
    strategy = models.CharField(max_length=100, db_index=True)
    params = models.JSONField(default=dict)  # the strategy's parameters, defaults filled in
    symbols = models.JSONField(default=list)  # as requested
    timeframe = models.CharField(max_length=10)
    settings = models.JSONField(default=dict)  # start, end, capital, costs, sizing, ...
    summary = models.JSONField(default=dict)  # the portfolio's statistics
    symbol_metrics = models.JSONField(default=list)  # one row per symbol
    monthly_equity = models.JSONField(default=list)
    trades = models.JSONField(default=list)
    data_files = models.JSONField(default=list)  # symbol, file, sha256, rows, first/last bar
    skipped = models.JSONField(default=dict)  # symbol -> why
    cache_files = models.JSONField(default=list)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.strategy} {self.timeframe} {' '.join(self.symbols)} @ {self.created}"


class SimulatedOrder(models.Model):
    """A paper-trade fill logged from the dashboard (or by the paper trader)."""

    BUY, SELL = "BUY", "SELL"
    SIDES = [(BUY, "Buy"), (SELL, "Sell")]

    created = models.DateTimeField(auto_now_add=True)
    executed_at = models.DateTimeField(db_index=True)
    symbol = models.CharField(max_length=20, db_index=True)
    side = models.CharField(max_length=4, choices=SIDES)
    quantity = models.FloatField()  # shares, > 0; the side gives the sign
    price = models.FloatField()
    commission = models.FloatField(default=0.0)
    strategy = models.CharField(max_length=100, blank=True, db_index=True)
    note = models.TextField(blank=True)
    # A retried post with the same id returns the stored order instead of a second fill.
    client_order_id = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["-executed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity:g} {self.symbol} @ {self.price:g}"
