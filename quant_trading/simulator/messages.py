"""Message ids and the field layout of every message the simulator sends, per server version.

One function per outgoing (IN, from the client's point of view) message type. Each takes the
negotiated server version first and returns the list of field texts TWS would put on the wire
for that version; :func:`~quant_trading.simulator.protocol.encode_message` frames it. The
layouts follow what the official decoders (ibapi 9.81/10.x, ib_async) read, and the message
version numbers follow what TWS sends (checked against a recorded TWS session at server
version 176 where the recording has the message).

Version-dependent details handled here:

* sizes, positions and volumes are integers before server version 163 and TWS's Decimal text
  from 163 on (``FRACTIONAL_SIZE_SUPPORT``);
* the error message gains ``advancedOrderRejectJson`` from 166 (``ADVANCED_ORDER_REJECT``);
* contract details lose their version field and gain minSize/sizeIncrement/suggested size
  increment from 164 (``SIZE_RULES``), with a single size field at exactly 163.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .protocol import fmt_decimal, fmt_float

__all__ = ["In", "Out", "Tick", "ContractInfo", "SV", "fmt_decimal", "fmt_float"]


class In(IntEnum):
    """Ids of messages TWS sends to the client (ibapi's ``IN``)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    REAL_TIME_BARS = 50
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    POSITION_MULTI = 71
    POSITION_MULTI_END = 72
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    TICK_REQ_PARAMS = 81
    HEAD_TIMESTAMP = 88
    HISTORICAL_DATA_UPDATE = 90
    PNL = 94
    PNL_SINGLE = 95
    COMPLETED_ORDERS_END = 102


class Out(IntEnum):
    """Ids of messages the client sends to TWS (ibapi's ``OUT``)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_REAL_TIME_BARS = 50
    CANCEL_REAL_TIME_BARS = 51
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_POSITIONS_MULTI = 74
    CANCEL_POSITIONS_MULTI = 75
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_COMPLETED_ORDERS = 99


class SV(IntEnum):
    """Server versions at which the wire format changes (ibapi's ``MIN_SERVER_VER_*``)."""

    SYNT_REALTIME_BARS = 124  # historical data loses its version field; keepUpToDate
    MD_SIZE_MULTIPLIER = 110
    REPLACE_FA_END = 157  # the highest ibapi 9.81 knows
    FRACTIONAL_SIZE_SUPPORT = 163  # sizes become Decimal text
    SIZE_RULES = 164
    ADVANCED_ORDER_REJECT = 166
    BOND_ISSUERID = 176
    PENDING_PRICE_REVISION = 178


#: The range the simulator can speak (above 200 TWS switches to protobuf: out of scope).
MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178


class Tick(IntEnum):
    """Tick types (IB's ``TickTypeEnum``) the simulator sends."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    HIGH = 6
    LOW = 7
    VOLUME = 8
    CLOSE = 9
    OPEN = 14
    LAST_TIMESTAMP = 45
    RT_VOLUME = 48
    DELAYED_BID = 66
    DELAYED_ASK = 67
    DELAYED_LAST = 68
    DELAYED_BID_SIZE = 69
    DELAYED_ASK_SIZE = 70
    DELAYED_LAST_SIZE = 71
    DELAYED_HIGH = 72
    DELAYED_LOW = 73
    DELAYED_VOLUME = 74
    DELAYED_CLOSE = 75
    DELAYED_OPEN = 76
    DELAYED_LAST_TIMESTAMP = 88


#: Live tick type -> its delayed twin (market data type 3).
DELAYED = {
    Tick.BID_SIZE: Tick.DELAYED_BID_SIZE,
    Tick.BID: Tick.DELAYED_BID,
    Tick.ASK: Tick.DELAYED_ASK,
    Tick.ASK_SIZE: Tick.DELAYED_ASK_SIZE,
    Tick.LAST: Tick.DELAYED_LAST,
    Tick.LAST_SIZE: Tick.DELAYED_LAST_SIZE,
    Tick.HIGH: Tick.DELAYED_HIGH,
    Tick.LOW: Tick.DELAYED_LOW,
    Tick.VOLUME: Tick.DELAYED_VOLUME,
    Tick.CLOSE: Tick.DELAYED_CLOSE,
    Tick.OPEN: Tick.DELAYED_OPEN,
    Tick.LAST_TIMESTAMP: Tick.DELAYED_LAST_TIMESTAMP,
}


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """A stock contract as the simulator describes it."""

    symbol: str
    con_id: int
    primary_exchange: str
    currency: str = "USD"
    long_name: str = ""
    sec_type: str = "STK"
    exchange: str = "SMART"
    min_tick: float = 0.01
    industry: str = ""
    category: str = ""
    subcategory: str = ""


def _size(sv: int, value) -> str:
    """Sizes are integers before Decimal support and Decimal text after."""
    if value is None:
        return ""
    if sv >= SV.FRACTIONAL_SIZE_SUPPORT:
        return fmt_decimal(value)
    return str(int(round(float(value))))


def _num(value: float) -> str:
    """Account values are sent as TWS shows them: two decimals."""
    return f"{value:.2f}"


# --- connection -----------------------------------------------------------------------------


def managed_accounts(sv: int, accounts: list[str]) -> list:
    """``managedAccounts``: the comma-separated account list (no trailing comma, as recorded)."""
    return [In.MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(sv: int, order_id: int) -> list:
    """``nextValidId``: the next order id the client may use."""
    return [In.NEXT_VALID_ID, 1, order_id]


def error(sv: int, req_id: int, code: int, message: str, advanced_reject: str = "") -> list:
    """``error``: version 2; ``advancedOrderRejectJson`` appended from server version 166."""
    fields = [In.ERR_MSG, 2, req_id, code, message]
    if sv >= SV.ADVANCED_ORDER_REJECT:
        fields.append(advanced_reject)
    return fields


def current_time(sv: int, epoch_seconds: int) -> list:
    """``currentTime``: epoch seconds."""
    return [In.CURRENT_TIME, 1, int(epoch_seconds)]


# --- account --------------------------------------------------------------------------------


def account_value(sv: int, key: str, value: str, currency: str, account: str) -> list:
    """``updateAccountValue`` (version 2)."""
    return [In.ACCT_VALUE, 2, key, value, currency, account]


def portfolio_value(
    sv: int,
    contract: ContractInfo,
    position: float,
    market_price: float,
    market_value: float,
    average_cost: float,
    unrealized_pnl: float,
    realized_pnl: float,
    account: str,
) -> list:
    """``updatePortfolio`` (version 8: with multiplier, primary exchange and trading class)."""
    return [
        In.PORTFOLIO_VALUE, 8,
        contract.con_id, contract.symbol, contract.sec_type, "", "0.0", "", "",
        contract.primary_exchange, contract.currency, contract.symbol, "NMS",
        fmt_decimal(position), fmt_float(market_price), fmt_float(market_value),
        fmt_float(average_cost), fmt_float(unrealized_pnl), fmt_float(realized_pnl), account,
    ]  # fmt: skip


def account_time(sv: int, hhmm: str) -> list:
    """``updateAccountTime``: ``hh:mm`` of the last account update."""
    return [In.ACCT_UPDATE_TIME, 1, hhmm]


def account_download_end(sv: int, account: str) -> list:
    """``accountDownloadEnd``."""
    return [In.ACCT_DOWNLOAD_END, 1, account]


def position(
    sv: int, account: str, contract: ContractInfo, quantity: float, average_cost: float
) -> list:
    """``position`` (version 3: with trading class and average cost)."""
    return [
        In.POSITION_DATA, 3, account,
        contract.con_id, contract.symbol, contract.sec_type, "", "0.0", "", "",
        contract.primary_exchange, contract.currency, contract.symbol, "NMS",
        fmt_decimal(quantity), fmt_float(average_cost),
    ]  # fmt: skip


def position_end(sv: int) -> list:
    """``positionEnd``."""
    return [In.POSITION_END, 1]


def account_summary(
    sv: int, req_id: int, account: str, tag: str, value: str, currency: str
) -> list:
    """``accountSummary`` (version 1)."""
    return [In.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(sv: int, req_id: int) -> list:
    """``accountSummaryEnd``."""
    return [In.ACCOUNT_SUMMARY_END, 1, req_id]


def account_update_multi(
    sv: int, req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> list:
    """``accountUpdateMulti`` (version 1)."""
    return [In.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]


def account_update_multi_end(sv: int, req_id: int) -> list:
    """``accountUpdateMultiEnd``."""
    return [In.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def position_multi(
    sv: int,
    req_id: int,
    account: str,
    contract: ContractInfo,
    quantity: float,
    average_cost: float,
    model_code: str = "",
) -> list:
    """``positionMulti`` (version 1)."""
    return [
        In.POSITION_MULTI, 1, req_id, account,
        contract.con_id, contract.symbol, contract.sec_type, "", "0.0", "", "",
        contract.primary_exchange, contract.currency, contract.symbol, "NMS",
        fmt_decimal(quantity), fmt_float(average_cost), model_code,
    ]  # fmt: skip


def position_multi_end(sv: int, req_id: int) -> list:
    """``positionMultiEnd``."""
    return [In.POSITION_MULTI_END, 1, req_id]


def pnl(sv: int, req_id: int, daily: float, unrealized: float, realized: float) -> list:
    """``pnl``: no version field."""
    return [In.PNL, req_id, fmt_float(daily), fmt_float(unrealized), fmt_float(realized)]


def pnl_single(
    sv: int,
    req_id: int,
    quantity: float,
    daily: float,
    unrealized: float,
    realized: float,
    value: float,
) -> list:
    """``pnlSingle``: no version field; the position is a size (int before 163)."""
    return [
        In.PNL_SINGLE, req_id, _size(sv, quantity), fmt_float(daily), fmt_float(unrealized),
        fmt_float(realized), fmt_float(value),
    ]  # fmt: skip


# --- orders and executions (the simulator is read-only: only the end markers) ---------------


def open_order_end(sv: int) -> list:
    """``openOrderEnd``."""
    return [In.OPEN_ORDER_END, 1]


def completed_orders_end(sv: int) -> list:
    """``completedOrdersEnd``: no version field."""
    return [In.COMPLETED_ORDERS_END]


def exec_details_end(sv: int, req_id: int) -> list:
    """``execDetailsEnd``."""
    return [In.EXECUTION_DATA_END, 1, req_id]


# --- market data ----------------------------------------------------------------------------


def tick_price(
    sv: int, req_id: int, tick_type: int, price: float, size: float | None, attr_mask: int = 0
) -> list:
    """``tickPrice`` (version 6): price, the matching size and the attribute bit mask."""
    return [In.TICK_PRICE, 6, req_id, int(tick_type), fmt_float(price), _size(sv, size or 0),
            attr_mask]  # fmt: skip


def tick_size(sv: int, req_id: int, tick_type: int, size: float) -> list:
    """``tickSize`` (version 6)."""
    return [In.TICK_SIZE, 6, req_id, int(tick_type), _size(sv, size)]


def tick_string(sv: int, req_id: int, tick_type: int, value: str) -> list:
    """``tickString`` (version 6)."""
    return [In.TICK_STRING, 6, req_id, int(tick_type), value]


def tick_snapshot_end(sv: int, req_id: int) -> list:
    """``tickSnapshotEnd``."""
    return [In.TICK_SNAPSHOT_END, 1, req_id]


def market_data_type(sv: int, req_id: int, data_type: int) -> list:
    """``marketDataType``: 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""
    return [In.MARKET_DATA_TYPE, 1, req_id, data_type]


def tick_req_params(
    sv: int, req_id: int, min_tick: float, bbo_exchange: str, snapshot_permissions: int
) -> list:
    """``tickReqParams``: no version field."""
    return [In.TICK_REQ_PARAMS, req_id, fmt_float(min_tick), bbo_exchange, snapshot_permissions]


def realtime_bar(
    sv: int,
    req_id: int,
    time: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    volume: float,
    wap: float,
    count: int,
) -> list:
    """``realtimeBar`` (version 3): epoch start time, OHLC, volume, WAP, trade count."""
    return [
        In.REAL_TIME_BARS, 3, req_id, int(time), fmt_float(open_), fmt_float(high),
        fmt_float(low), fmt_float(close), _size(sv, volume), _wap(sv, wap), int(count),
    ]  # fmt: skip


def _wap(sv: int, wap: float) -> str:
    # WAP is a double before Decimal support and a Decimal after; -1 means "none" either way.
    if sv >= SV.FRACTIONAL_SIZE_SUPPORT:
        return fmt_decimal(round(wap, 6)) if wap != -1 else "-1"
    return fmt_float(round(wap, 6))


@dataclass(frozen=True, slots=True)
class HistBar:
    """One historical bar as sent: ``date`` already formatted for the request's formatDate."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def historical_data(sv: int, req_id: int, start: str, end: str, bars: list[HistBar]) -> list:
    """``historicalData``: all bars of a request in one message, with the period's start/end.

    The version field is gone from server version 124; the bars' volume and WAP are Decimal
    text from 163 (volume -1 for MIDPOINT/BID/ASK bars, as TWS sends it).
    """
    fields: list = [In.HISTORICAL_DATA]
    if sv < SV.SYNT_REALTIME_BARS:
        fields.append(3)
    fields += [req_id, start, end, len(bars)]
    for bar in bars:
        fields += [
            bar.date, fmt_float(bar.open), fmt_float(bar.high), fmt_float(bar.low),
            fmt_float(bar.close), _hist_volume(sv, bar.volume), _wap(sv, bar.wap), bar.count,
        ]  # fmt: skip
    return fields


def _hist_volume(sv: int, volume: float) -> str:
    return "-1" if volume == -1 else _size(sv, volume)


def historical_data_update(sv: int, req_id: int, bar: HistBar) -> list:
    """``historicalDataUpdate`` (keepUpToDate): note the order count, date, open, close, high,
    low, WAP, volume."""
    return [
        In.HISTORICAL_DATA_UPDATE, req_id, bar.count, bar.date, fmt_float(bar.open),
        fmt_float(bar.close), fmt_float(bar.high), fmt_float(bar.low), _wap(sv, bar.wap),
        _hist_volume(sv, bar.volume),
    ]  # fmt: skip


def head_timestamp(sv: int, req_id: int, timestamp: str) -> list:
    """``headTimestamp``: no version field."""
    return [In.HEAD_TIMESTAMP, req_id, timestamp]


# --- contracts ------------------------------------------------------------------------------

_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,BENCHPX,COND,CONDORDER,DARKONLY,"
    "DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,IMB,IOC,LIT,LMT,"
    "LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,PEGMID,POSTATS,"
    "POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,SCALERST,SIZECHK,"
    "SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)


#: The market rule (price increments) TWS reports for US stocks.
_US_STOCK_RULE = "26"


def contract_data(
    sv: int,
    req_id: int,
    contract: ContractInfo,
    exchange: str,
    valid_exchanges: str,
    trading_hours: str,
    liquid_hours: str,
) -> list:
    """``contractDetails`` for a stock, laid out for the server version (see module doc)."""
    # TWS lists a market rule (price increments) per valid exchange, in the same order.
    rules = ",".join([_US_STOCK_RULE] * len(valid_exchanges.split(",")))
    fields: list = [In.CONTRACT_DATA]
    if sv < SV.SIZE_RULES:
        fields.append(8)
    fields += [
        req_id, contract.symbol, contract.sec_type, "", "0", "", exchange, contract.currency,
        contract.symbol, "NMS", "NMS", contract.con_id, fmt_float(contract.min_tick),
    ]  # fmt: skip
    if SV.MD_SIZE_MULTIPLIER <= sv < SV.SIZE_RULES:
        fields.append(1)  # mdSizeMultiplier, obsolete but still on the wire
    fields += [
        "", _ORDER_TYPES, valid_exchanges, 1, 0, contract.long_name, contract.primary_exchange,
        "", contract.industry, contract.category, contract.subcategory, "US/Eastern",
        trading_hours, liquid_hours, "", "", 1, "ISIN", _isin(contract),
        1, "", "", rules, "", "COMMON",
    ]  # fmt: skip
    if sv == SV.FRACTIONAL_SIZE_SUPPORT:
        fields.append("0.0001")  # sizeMinTick, only at 163
    if sv >= SV.SIZE_RULES:
        fields += ["0.0001", "0.0001", "100"]
    return fields


def _isin(contract: ContractInfo) -> str:
    # Made-up but well-formed looking: the simulator does not pretend to know real ISINs.
    return f"US{contract.con_id:010d}"[:12]


def contract_data_end(sv: int, req_id: int) -> list:
    """``contractDetailsEnd``."""
    return [In.CONTRACT_DATA_END, 1, req_id]
