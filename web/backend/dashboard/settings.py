"""Django settings for the dashboard, read from the environment (and ``.env`` at the repo root).

| variable | default | meaning |
|---|---|---|
| ``DJANGO_SECRET_KEY`` | none | required unless in development mode |
| ``DJANGO_DEBUG`` | off | ``1`` for Django's debug pages |
| ``DJANGO_ALLOWED_HOSTS`` | ``localhost,127.0.0.1,[::1]`` | host names served |
| ``DJANGO_CORS_ALLOWED_ORIGINS`` | the Vite dev server | browser origins allowed to call the API |
| ``DJANGO_API_TOKEN`` | none | when set, every request needs ``Authorization: Bearer <token>`` |
| ``DJANGO_BACKTEST_RATE`` | ``30/minute`` | backtest runs allowed per client |
| ``DJANGO_BACKTEST_CONCURRENCY`` | ``2`` | backtests at once; others wait (60 s, then 503) |
| ``DATABASE_URL`` | SQLite ``db.sqlite3`` at the repo root | another database |
| ``DJANGO_STATIC_ROOT`` | ``staticfiles`` at the repo root | where ``collectstatic`` puts files |
| ``IBKR_HOST``/``IBKR_PORT``/``IBKR_CLIENT_ID`` | 127.0.0.1 / 7497 / 21 | the paper TWS |
| ``IBKR_TIMEOUT`` | ``5`` | seconds before a TWS request answers 503 |
| ``QT_DATA_DIR``/``QT_CACHE_DIR`` | ``market_data``/``backtest_results`` | the toolkit's folders |
| ``QT_FRONTEND_DIST`` | ``web/frontend/dist`` | the built dashboard, served at ``/`` |

Development mode: with neither ``DJANGO_SECRET_KEY`` nor ``DJANGO_DEBUG`` set, ``manage.py``
(e.g. ``runserver`` for a quick try) runs with DEBUG on and a development key, and says so.
The WSGI entry point (gunicorn) sets ``DJANGO_DEBUG=0`` by default, so a production server
without a secret key refuses to start with one line instead of running insecurely.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

from dashboard.startup import SettingsError
from quant_trading.core.ibkr_connection import (
    LIVE_PORTS,
    ConnectionConfigError,
    ConnectionSettings,
)

BASE_DIR = Path(__file__).resolve().parent.parent  # web/backend
REPO_ROOT = BASE_DIR.parent.parent
load_dotenv(REPO_ROOT / ".env", override=False)


def _flag(name: str, default: bool) -> bool:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={text!r}: use 1 or 0")


def _list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _path(name: str, default: Path) -> Path:
    text = os.environ.get(name)
    path = Path(text) if text else default
    return path if path.is_absolute() else REPO_ROOT / path


DEVELOPMENT = "DJANGO_SECRET_KEY" not in os.environ and "DJANGO_DEBUG" not in os.environ
DEBUG = _flag("DJANGO_DEBUG", DEVELOPMENT)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise SettingsError(
            'DJANGO_SECRET_KEY is not set: set it (e.g. python -c "import secrets; '
            'print(secrets.token_urlsafe(50))"), or DJANGO_DEBUG=1 for local development'
        )
    SECRET_KEY = "django-insecure-development-only-quant-trading-dashboard"
    if "pytest" not in sys.modules:  # the tests run in development mode on purpose
        print(
            "dashboard: development mode (DEBUG on, development secret key); set "
            "DJANGO_SECRET_KEY to run it properly",
            file=sys.stderr,
        )

ALLOWED_HOSTS = _list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CORS_ALLOWED_ORIGINS = _list(
    "DJANGO_CORS_ALLOWED_ORIGINS", "http://localhost:5173,http://127.0.0.1:5173"
)
API_TOKEN = os.environ.get("DJANGO_API_TOKEN", "").strip() or None

# --- the toolkit ----------------------------------------------------------------------------
DATA_DIR = _path("QT_DATA_DIR", REPO_ROOT / "market_data")
CACHE_DIR = _path("QT_CACHE_DIR", REPO_ROOT / "backtest_results")
try:
    TWS = ConnectionSettings.resolve(default_client_id=21, env_file=None)
except ConnectionConfigError as exc:
    raise SettingsError(str(exc)) from None
if TWS.port in LIVE_PORTS:
    app, paper = LIVE_PORTS[TWS.port]
    raise SettingsError(
        f"IBKR_PORT={TWS.port} is {app}'s live-trading port; the dashboard connects to paper "
        f"accounts only (use {paper})"
    )
try:
    TWS_TIMEOUT = float(os.environ.get("IBKR_TIMEOUT", "5"))
except ValueError:
    TWS_TIMEOUT = float("nan")
if not TWS_TIMEOUT > 0:  # NaN too
    raise SettingsError(f"IBKR_TIMEOUT={os.environ['IBKR_TIMEOUT']!r}: use a number of seconds > 0")


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise SettingsError(f"{name}={text!r}: use a whole number of at least 1")
    return int(text)


# Each backtest keeps a core busy and a symbol's bars in memory: a burst queues for a slot.
BACKTEST_MAX_CONCURRENT = _positive_int("DJANGO_BACKTEST_CONCURRENCY", 2)
BACKTEST_QUEUE_TIMEOUT = 60.0
FRONTEND_DIST = _path("QT_FRONTEND_DIST", REPO_ROOT / "web" / "frontend" / "dist")

# --- Django ---------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "dashboard.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

try:
    DATABASES = {
        "default": dj_database_url.config(
            default=f"sqlite:///{REPO_ROOT / 'db.sqlite3'}", conn_max_age=0
        )
    }
except ValueError as exc:
    raise SettingsError(f"DATABASE_URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Parallel requests: writers queue for the lock (IMMEDIATE) instead of failing with
    # "database is locked", and WAL lets readers go on while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

USE_TZ = True
TIME_ZONE = "America/New_York"
LANGUAGE_CODE = "en-us"
USE_I18N = False

STATIC_URL = "static/"
STATIC_ROOT = _path("DJANGO_STATIC_ROOT", REPO_ROOT / "staticfiles")
# Until collectstatic has run there is nothing to serve from STATIC_ROOT; not worth a warning.
warnings.filterwarnings("ignore", message="No directory at: ")
# The built dashboard (npm run build) is served at /; with DEBUG on WhiteNoise looks for new
# files per request, so a build made while runserver runs shows without a restart.
WHITENOISE_ROOT = FRONTEND_DIST
WHITENOISE_INDEX_FILE = True

CORS_URLS_REGEX = r"^/api/.*$"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["dashboard.api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["dashboard.api.auth.HasApiToken"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PAGINATION_CLASS": "dashboard.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "dashboard.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"backtests": os.environ.get("DJANGO_BACKTEST_RATE", "30/minute")},
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "quant_trading dashboard API",
    "DESCRIPTION": "Backtests, cached charts, simulated orders and the paper account.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["dashboard.api.auth.HasApiToken"],  # the token guards the docs too
    "SWAGGER_UI_DIST": "SIDECAR",  # bundled assets: the docs page loads nothing from outside
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Orders are bought or sold, trades are long or short: two enums, two names.
    "ENUM_NAME_OVERRIDES": {
        "OrderSideEnum": "dashboard.api.models.SimulatedOrder.SIDES",
        "TradeSideEnum": ["long", "short"],
        "ConnectionStateEnum": ["disconnected", "connecting", "connected", "reconnecting"],
        "PortfolioSourceEnum": ["held", "one-off"],
        "HealthStatusEnum": ["ok", "degraded", "error"],
    },
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"dashboard": {"handlers": ["console"], "level": "INFO"}},
}
