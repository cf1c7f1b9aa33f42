"""Settings from ``strategy.env``, with the process environment taking precedence.

``strategy.env`` is looked up in the current folder, then at the project root (beside the
package), so the tools work from a checkout without arguments. Strategy settings carry the
strategy's name as prefix (``MACD_TIMEFRAME``); :func:`strategy_settings` strips it.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values

__all__ = ["find_env_file", "load_settings", "strategy_settings", "split_symbols"]

ENV_FILE = "strategy.env"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def find_env_file(path: str | os.PathLike | None = None) -> Path | None:
    """The settings file to use: ``path`` if given, else ./strategy.env, else the project's."""
    if path is not None:
        return Path(path)
    for candidate in (Path.cwd() / ENV_FILE, _PROJECT_ROOT / ENV_FILE):
        if candidate.is_file():
            return candidate
    return None


def load_settings(path: str | os.PathLike | None = None) -> dict[str, str]:
    """All settings: the file's values overridden by environment variables of the same name,
    plus any environment variable that looks like a setting (upper-case name)."""
    env_file = find_env_file(path)
    values: dict[str, str] = {}
    if env_file is not None:
        if not env_file.is_file():
            raise FileNotFoundError(f"{env_file}: settings file not found")
        try:
            values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{env_file}: not a text file (UTF-8): byte {exc.start} cannot be read"
            ) from None
    values.update({k: v for k, v in os.environ.items() if k.isupper()})
    return values


def strategy_settings(prefix: str, settings: dict[str, str] | None = None) -> dict[str, str]:
    """Settings that start with ``PREFIX_``, keyed by the rest of the name in upper case:
    ``MACD_TIMEFRAME=3`` -> ``{"TIMEFRAME": "3"}``."""
    settings = load_settings() if settings is None else settings
    head = prefix.upper() + "_"
    return {k[len(head) :]: v for k, v in settings.items() if k.upper().startswith(head)}


def split_symbols(text: str) -> list[str]:
    """``"AAPL, msft  SPY"`` -> ``["AAPL", "MSFT", "SPY"]`` (order kept, duplicates dropped)."""
    seen: dict[str, None] = {}
    for part in text.replace(",", " ").split():
        seen.setdefault(part.strip().upper(), None)
    return list(seen)
