"""The simulated paper account: cash by currency, stock positions, and their valuation.

The account is configuration (a JSON file or :func:`default_account`); its valuation is
derived from the current simulated prices every time it is asked for, so market value,
unrealized P&L, net liquidation and the margin figures always agree with each other and with
the ticks a client sees. Margin follows a simple Reg T-like rule (25 % of gross position value
for both initial and maintenance), which is what makes AvailableFunds and BuyingPower move
with the market the way a trader expects; it is not IB's risk-based margin.

Account file (``--account-file``)::

    {
      "account": "DU1234567",
      "base_currency": "USD",
      "cash": {"USD": 100000.0, "EUR": 20000.0},
      "exchange_rates": {"EUR": 1.08},
      "realized_pnl": {"USD": 0.0},
      "positions": [{"symbol": "AAPL", "quantity": 100, "average_cost": 150.0}]
    }

``exchange_rates`` give the value of one unit of each currency in the base currency.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "AccountConfig",
    "AccountError",
    "AccountSnapshot",
    "AccountValue",
    "Holding",
    "PositionConfig",
    "default_account",
    "load_account",
    "value_account",
]

#: Initial and maintenance margin as a fraction of gross position value (see module doc).
MARGIN_RATE = 0.25
#: BuyingPower = AvailableFunds * leverage, as for a Reg T margin account.
LEVERAGE = 4.0


class AccountError(ValueError):
    """An account file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class PositionConfig:
    """A stock position: quantity (negative for short) and average cost per share."""

    symbol: str
    quantity: float
    average_cost: float
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """The account as configured; see the module docstring for the JSON form."""

    account: str = "DU1234567"
    base_currency: str = "USD"
    cash: dict[str, float] = field(default_factory=lambda: {"USD": 100_000.0})
    exchange_rates: dict[str, float] = field(default_factory=dict)
    realized_pnl: dict[str, float] = field(default_factory=dict)
    positions: tuple[PositionConfig, ...] = ()
    account_type: str = "INDIVIDUAL"

    def rate(self, currency: str) -> float:
        """Value of one unit of ``currency`` in the base currency."""
        if currency == self.base_currency:
            return 1.0
        try:
            return float(self.exchange_rates[currency])
        except KeyError:
            raise AccountError(f"no exchange rate for {currency} in the account") from None

    @property
    def currencies(self) -> list[str]:
        """Every currency the account holds cash or positions in, base currency first."""
        seen = {self.base_currency: None}
        for ccy in self.cash:
            seen.setdefault(ccy, None)
        for pos in self.positions:
            seen.setdefault(pos.currency, None)
        return list(seen)


def default_account() -> AccountConfig:
    """A sensible paper account: USD and EUR cash and three stock positions."""
    return AccountConfig(
        account="DU1234567",
        base_currency="USD",
        cash={"USD": 100_000.0, "EUR": 20_000.0},
        exchange_rates={"EUR": 1.08},
        realized_pnl={"USD": 0.0, "EUR": 0.0},
        positions=(
            PositionConfig("AAPL", 100, 150.0),
            PositionConfig("MSFT", 50, 300.0),
            PositionConfig("SPY", 20, 400.0),
        ),
    )


def load_account(path: str | os.PathLike) -> AccountConfig:
    """Read an account file (see the module docstring); raise :class:`AccountError` with the
    file name and the problem when it cannot be used."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AccountError(f"{path}: account file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AccountError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(raw, dict):
        raise AccountError(f"{path}: expected a JSON object")
    base = default_account()
    try:
        account = str(raw.get("account", base.account))
        base_ccy = str(raw.get("base_currency", "USD")).upper()
        cash = {str(k).upper(): float(v) for k, v in raw.get("cash", {"USD": 0.0}).items()}
        rates = {str(k).upper(): float(v) for k, v in raw.get("exchange_rates", {}).items()}
        realized = {str(k).upper(): float(v) for k, v in raw.get("realized_pnl", {}).items()}
        positions = []
        for i, item in enumerate(raw.get("positions", [])):
            try:
                positions.append(
                    PositionConfig(
                        symbol=str(item["symbol"]).upper(),
                        quantity=float(item["quantity"]),
                        average_cost=float(item.get("average_cost", item.get("avg_cost"))),
                        currency=str(item.get("currency", "USD")).upper(),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise AccountError(f"{path}: position {i + 1} is invalid ({exc!r})") from None
    except (AttributeError, TypeError, ValueError) as exc:
        raise AccountError(f"{path}: invalid account file ({exc})") from None
    config = AccountConfig(
        account=account,
        base_currency=base_ccy,
        cash=cash,
        exchange_rates=rates,
        realized_pnl=realized,
        positions=tuple(positions),
        account_type=str(raw.get("account_type", "INDIVIDUAL")),
    )
    for ccy in config.currencies:
        if ccy != base_ccy and ccy not in rates:
            raise AccountError(f"{path}: no exchange rate for {ccy} (add it to exchange_rates)")
    return config


@dataclass(frozen=True, slots=True)
class Holding:
    """One position valued at the current price."""

    symbol: str
    currency: str
    quantity: float
    average_cost: float
    market_price: float
    market_value: float
    unrealized_pnl: float
    realized_pnl: float
    daily_pnl: float


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One ``updateAccountValue`` row: key, value text, currency ('' for none) and account."""

    key: str
    value: str
    currency: str


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """The account valued at one moment: holdings, values and totals in the base currency.

    ``account_rows`` are the account-level values (no currency, or the base currency, with
    the ``-C``/``-S`` segment variants), ``ledger`` the per-currency values in TWS's ledger
    order (each currency, then ``BASE``), and ``values`` what ``reqAccountUpdates`` sends:
    both together, without ``Cryptocurrency``, which TWS sends only in ledgers.
    """

    account: str
    base_currency: str
    holdings: tuple[Holding, ...]
    values: tuple[AccountValue, ...]
    net_liquidation: float
    total_cash: float
    gross_position_value: float
    unrealized_pnl: float
    realized_pnl: float
    daily_pnl: float
    account_rows: tuple[AccountValue, ...] = ()
    ledger: tuple[AccountValue, ...] = ()

    def value(self, key: str, currency: str) -> str:
        """The value text of ``key`` in ``currency``; KeyError if absent."""
        for item in self.values:
            if item.key == key and item.currency == currency:
                return item.value
        raise KeyError((key, currency))

    def summary(self) -> list[AccountValue]:
        """The account-level values ``reqAccountSummary`` serves by tag (no segments)."""
        return [v for v in self.account_rows if not v.key.endswith(("-C", "-S"))]


def _money(value: float) -> str:
    return f"{value:.2f}"


#: The per-currency keys, in the order TWS sends a ledger (recorded at server version 176).
LEDGER_KEYS = (
    "Currency", "CashBalance", "TotalCashBalance", "AccruedCash", "StockMarketValue",
    "OptionMarketValue", "FutureOptionValue", "FuturesPNL", "NetLiquidationByCurrency",
    "UnrealizedPnL", "RealizedPnL", "ExchangeRate", "FundValue", "NetDividend",
    "MutualFundValue", "MoneyMarketFundValue", "CorporateBondValue", "TBondValue", "TBillValue",
    "WarrantValue", "FxCashBalance", "AccountOrGroup", "RealCurrency", "IssuerOptionValue",
    "Cryptocurrency",
)  # fmt: skip


def value_account(
    config: AccountConfig,
    price: Callable[[str], float | None],
    previous_close: Callable[[str], float | None] | None = None,
) -> AccountSnapshot:
    """Value ``config`` at the prices ``price(symbol)`` returns (None: no price yet, the
    average cost is used). ``previous_close`` gives the reference for the daily P&L."""
    holdings = []
    for pos in config.positions:
        px = price(pos.symbol)
        if px is None:
            px = pos.average_cost
        ref = previous_close(pos.symbol) if previous_close else None
        ref = px if ref is None else ref
        mv = pos.quantity * px
        holdings.append(
            Holding(
                symbol=pos.symbol,
                currency=pos.currency,
                quantity=pos.quantity,
                average_cost=pos.average_cost,
                market_price=px,
                market_value=mv,
                unrealized_pnl=mv - pos.quantity * pos.average_cost,
                realized_pnl=0.0,
                daily_pnl=pos.quantity * (px - ref),
            )
        )

    per_ccy: dict[str, dict[str, float]] = {}
    for ccy in config.currencies:
        per_ccy[ccy] = {
            "cash": config.cash.get(ccy, 0.0),
            "stock": sum(h.market_value for h in holdings if h.currency == ccy),
            "unrealized": sum(h.unrealized_pnl for h in holdings if h.currency == ccy),
            "realized": config.realized_pnl.get(ccy, 0.0),
            "gross": sum(abs(h.market_value) for h in holdings if h.currency == ccy),
            "daily": sum(h.daily_pnl for h in holdings if h.currency == ccy),
        }

    def total(name: str) -> float:
        return sum(v[name] * config.rate(ccy) for ccy, v in per_ccy.items())

    cash, stock, gross = total("cash"), total("stock"), total("gross")
    unrealized, realized, daily = total("unrealized"), total("realized"), total("daily")
    net_liq = cash + stock
    account_rows = _account_rows(config, net_liq, cash, gross, daily)
    ledger = []
    for ccy in [*per_ccy, "BASE"]:
        if ccy == "BASE":
            v = {"cash": cash, "stock": stock, "unrealized": unrealized, "realized": realized}
        else:
            v = per_ccy[ccy]
        ledger += _ledger_rows(config, ccy, v)
    # reqAccountUpdates: both sets; a key in both (AccruedCash in the base currency) once.
    values = {(r.key, r.currency): r for r in account_rows}
    for row in ledger:
        if row.key != "Cryptocurrency":
            values.setdefault((row.key, row.currency), row)

    return AccountSnapshot(
        account=config.account,
        base_currency=config.base_currency,
        holdings=tuple(holdings),
        values=tuple(values.values()),
        net_liquidation=net_liq,
        total_cash=cash,
        gross_position_value=gross,
        unrealized_pnl=unrealized,
        realized_pnl=realized,
        daily_pnl=daily,
        account_rows=tuple(account_rows),
        ledger=tuple(ledger),
    )


def _account_rows(
    config: AccountConfig, net_liq: float, cash: float, gross: float, daily: float
) -> list[AccountValue]:
    """Account-level rows with the keys a real paper account sends (TWS 10.x): values without
    a currency, base-currency totals, and for most totals their commodities (``-C``, always
    zero here: stocks only) and securities (``-S``, the whole account) segments."""
    base = config.base_currency
    margin = MARGIN_RATE * gross
    available = net_liq - margin
    rows: list[AccountValue] = []

    def add(key: str, value: str, currency: str = "") -> None:
        rows.append(AccountValue(key, value, currency))

    def money(key: str, value: float, segments: str = "CS") -> None:
        add(key, _money(value), base)
        if "C" in segments:
            add(f"{key}-C", _money(0.0), base)
        if "S" in segments:
            add(f"{key}-S", _money(value), base)

    add("AccountCode", config.account)
    add("AccountReady", "true")
    add("AccountType", config.account_type)
    money("AccruedCash", 0.0)
    money("AccruedDividend", 0.0)
    money("AvailableFunds", available)
    money("Billable", 0.0)
    money("BuyingPower", available * LEVERAGE, "")
    add("ColumnPrio-C", "2")
    add("ColumnPrio-S", "1")
    add("Cushion", f"{(available / net_liq) if net_liq else 0:.6g}")
    add("DayTradesRemaining", "-1")  # -1: not a pattern day trader account
    for k in range(1, 5):
        add(f"DayTradesRemainingT+{k}", "-1")
    add("DayTradingStatus-S", f"::false:{_money(net_liq)}:")
    money("EquityWithLoanValue", net_liq)
    money("ExcessLiquidity", available)
    money("FullAvailableFunds", available)
    money("FullExcessLiquidity", available)
    money("FullInitMarginReq", margin)
    money("FullMaintMarginReq", margin)
    money("GrossPositionValue", gross, "S")
    money("Guarantee", 0.0)
    money("IndianStockHaircut", 0.0)
    money("InitMarginReq", margin)
    add("Leverage-S", f"{(gross / net_liq) if net_liq else 0:.2f}")
    money("LookAheadAvailableFunds", available)
    money("LookAheadExcessLiquidity", available)
    money("LookAheadInitMarginReq", margin)
    money("LookAheadMaintMarginReq", margin)
    add("LookAheadNextChange", "0")
    money("MaintMarginReq", margin)
    add("NLVAndMarginInReview", "false")
    money("NetLiquidation", net_liq)
    money("NetLiquidationUncertainty", 0.0, "")
    money("PASharesValue", 0.0)
    money("PhysicalCertificateValue", 0.0)
    money("PostExpirationExcess", 0.0)
    money("PostExpirationMargin", 0.0)
    money("PreviousDayEquityWithLoanValue", net_liq - daily, "S")
    money("RegTEquity", net_liq, "S")
    money("RegTMargin", margin, "S")
    money("SMA", max(net_liq - margin, 0.0), "S")
    add("SegmentTitle-C", "US Commodities")
    add("SegmentTitle-S", "US Securities")
    money("TotalCashValue", cash)
    money("TotalDebitCardPendingCharges", 0.0)
    add("TradingType-S", "STKNOPT")
    add("WhatIfPMEnabled", "true")
    return rows


def _ledger_rows(config: AccountConfig, ccy: str, v: dict[str, float]) -> list[AccountValue]:
    """One currency's ledger (``BASE``: all currencies in the base currency), TWS's order."""
    rate = 1.0 if ccy == "BASE" else config.rate(ccy)
    known = {
        "Currency": ccy,
        "CashBalance": _money(v["cash"]),
        "TotalCashBalance": _money(v["cash"]),
        "StockMarketValue": _money(v["stock"]),
        "NetLiquidationByCurrency": _money(v["cash"] + v["stock"]),
        "UnrealizedPnL": _money(v["unrealized"]),
        "RealizedPnL": _money(v["realized"]),
        "ExchangeRate": "1.00" if rate == 1.0 else f"{rate:.6g}",  # TWS: 1.00 for the base
        "AccountOrGroup": config.account,
        "RealCurrency": ccy,
        "Cryptocurrency": "",  # TWS leaves it empty for an account without crypto
    }
    # Everything else is an asset class or accrual the simulated account does not hold.
    return [AccountValue(key, known.get(key, _money(0.0)), ccy) for key in LEDGER_KEYS]
