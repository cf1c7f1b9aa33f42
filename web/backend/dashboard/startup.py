"""Load the settings once up front, so a bad setting stops the server with one line."""

from __future__ import annotations

import importlib
import os
import sys


class SettingsError(RuntimeError):
    """A setting that keeps the server from starting; the message is one line."""


def check_settings(prog: str, status: int = 2) -> None:
    """Import the settings module; on a :class:`SettingsError` print
    ``<prog>: error: <reason>`` and exit with ``status`` (no traceback)."""
    try:
        importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    except SettingsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(status) from None
