"""Strategy registry: every module here that defines ``STRATEGY`` is selectable by name.

Add a strategy by adding one file (see ``macd.py`` and the README's "Adding a strategy").
"""
