"""WSGI entry point for production servers: ``gunicorn --chdir web/backend dashboard.wsgi``.

Production defaults to DEBUG off, which makes ``DJANGO_SECRET_KEY`` required.
"""

import os

from django.core.wsgi import get_wsgi_application

from dashboard.startup import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("DJANGO_DEBUG", "0")
# Status 4 is gunicorn's "application failed to load": it stops instead of respawning workers.
check_settings("dashboard", status=4)
application = get_wsgi_application()
