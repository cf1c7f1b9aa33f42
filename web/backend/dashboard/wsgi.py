"""WSGI entry point for production servers: ``gunicorn --chdir web/backend dashboard.wsgi``.

Production defaults to DEBUG off, which makes ``DJANGO_SECRET_KEY`` required.
"""

import os

from django.core.wsgi import get_wsgi_application

from dashboard.startup import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("DJANGO_DEBUG", "0")
check_settings("dashboard")
application = get_wsgi_application()
