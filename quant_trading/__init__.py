"""quant_trading: an Interactive Brokers TWS toolkit.

The pure core (no I/O, no ibapi), shared by the live tools and the backtest:
:mod:`quant_trading.macd`, :mod:`quant_trading.bars`, :mod:`quant_trading.timeframes`.
Files: :mod:`quant_trading.csv_store`. Settings: :mod:`quant_trading.settings`.
"""

__version__ = "0.1.0"
