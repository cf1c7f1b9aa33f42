"""quant_trading: an Interactive Brokers TWS toolkit.

The few names a script needs, in the spirit of ``from backtesting import Backtest, Strategy``::

    from quant_trading import Parameter, Strategy, backtest

* :class:`Strategy`, :class:`Parameter`: write a strategy (indicators from
  :mod:`quant_trading.indicators`, signal helpers from :mod:`quant_trading.signals`), and
  :class:`CompiledRule`, its rule compiled for fast parameter searches;
* :func:`backtest`: run it (or a registered strategy by name) on stored bars;
* :func:`optimize`: search its parameters (grid, random, Optuna) on stored bars;
* :func:`walk_forward`: choose them on each past window, trade them on the next one;
* :class:`IBKRConnection`: the TWS connection to build your own tools on.

The pure core (no I/O, no ibapi) that the live tools and the backtest share:
:mod:`quant_trading.macd`, :mod:`quant_trading.indicators`, :mod:`quant_trading.bars`,
:mod:`quant_trading.timeframes`.
"""

__version__ = "0.1.0"

__all__ = [
    "Strategy",
    "Parameter",
    "CompiledRule",
    "backtest",
    "optimize",
    "walk_forward",
    "IBKRConnection",
    "__version__",
]

# Imported on first use: the pure core never pulls in ibapi, and a chart reader never pays
# for the engine.
_LAZY = {
    "Strategy": "quant_trading.strategy",
    "Parameter": "quant_trading.strategy",
    "CompiledRule": "quant_trading.strategy",
    "backtest": "quant_trading.backtesting.runner",
    "optimize": "quant_trading.backtesting.optimize",
    "walk_forward": "quant_trading.backtesting.walk_forward",
    "IBKRConnection": "quant_trading.core.ibkr_connection",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'quant_trading' has no attribute {name!r}")
