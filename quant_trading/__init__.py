"""quant_trading: an Interactive Brokers TWS toolkit.

The pure core (no I/O, no ibapi), shared by the live tools and the backtest:
:mod:`quant_trading.macd`, :mod:`quant_trading.bars`, :mod:`quant_trading.timeframes`.
Files: :mod:`quant_trading.csv_store`. Settings: :mod:`quant_trading.settings`.
"""

__version__ = "0.1.0"

__all__ = ["IBKRConnection", "__version__"]


def __getattr__(name: str):
    # Imported on first use so the pure core never pulls in ibapi.
    if name == "IBKRConnection":
        from .core.ibkr_connection import IBKRConnection

        return IBKRConnection
    raise AttributeError(f"module 'quant_trading' has no attribute {name!r}")
