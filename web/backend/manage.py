#!/usr/bin/env python
"""Django's command-line utility for the dashboard backend:

python web/backend/manage.py migrate
python web/backend/manage.py runserver
"""

import os
import sys


def main() -> None:
    """Run a Django management command with the dashboard's settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.management import execute_from_command_line

    from dashboard.startup import check_settings

    check_settings("manage.py")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
