"""Paper trading: the strategy run live on the market data tracker's bars, its fills
simulated by the backtest's own engine and kept in a blotter (read-only toward IB: nothing
here sends an order to TWS).

* :mod:`.orders`: a book's fills as a broker would show them (pure);
* :mod:`.book`: one symbol on one timeframe, traded by the engine bar by bar (pure);
* :mod:`.blotter`: the fills, the bars seen and the settings on disk;
* :mod:`.poster`: fills posted to the web dashboard, retried until they land;
* :mod:`.compare`: the parity report, backtest against blotter;
* :mod:`.paper_trader`: the live runner and ``python -m quant_trading.trading.paper_trader``.
"""
