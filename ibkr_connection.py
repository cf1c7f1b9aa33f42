"""The seed README's import: ``from ibkr_connection import IBKRConnection``.

The class lives in :mod:`quant_trading.core.ibkr_connection`; this module re-exports it.
"""

from quant_trading.core.ibkr_connection import IBKRConnection

__all__ = ["IBKRConnection"]
