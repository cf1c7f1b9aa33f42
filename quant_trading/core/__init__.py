"""Live connection to TWS and the account: ``ibkr_connection``, ``portfolio_tracker``."""
