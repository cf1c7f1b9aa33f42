"""Look at a backtest's trades on a chart: a Tk window over the JSON cache that
``run_backtest`` writes, or a PNG for reports.

    python -m quant_trading.visualization.trade_visualizer --timeframe 5m \
        --cache-dir backtest_results

The modules split along what needs a display: :mod:`.catalog` (which cache files exist),
:mod:`.markers`, :mod:`.header`, :mod:`.viewport`, :mod:`.chart` and :mod:`.export` are plain
matplotlib and pandas and work headless; only :mod:`.app` imports tkinter.
"""
