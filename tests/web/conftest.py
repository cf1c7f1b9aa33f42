"""Fixtures for the web backend's tests: DRF's test client on a real (SQLite) test database,
with the toolkit's folders pointed at temporary ones."""

from __future__ import annotations

import pytest


@pytest.fixture
def api(db, settings, tmp_path):
    """A DRF test client; ``settings.DATA_DIR``/``CACHE_DIR`` are empty temporary folders
    (tests put there what they need) and no API token is required."""
    from rest_framework.test import APIClient

    settings.DATA_DIR = tmp_path / "market_data"
    settings.CACHE_DIR = tmp_path / "backtest_results"
    settings.DATA_DIR.mkdir()
    settings.API_TOKEN = None
    return APIClient()
