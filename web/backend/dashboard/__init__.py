"""The web dashboard's Django project: settings, URLs and the WSGI entry point.

The REST API lives in :mod:`dashboard.api`; it is a thin layer over the toolkit (the
backtest runner, its cache and the portfolio tracker), never a second engine.
"""
