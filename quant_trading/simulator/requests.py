"""Parsing of the requests clients send, keyed by IB's OUT message ids.

Each parser takes the message's text fields (message id first) and the negotiated server
version, and returns a typed record. The field order is the one ibapi's ``EClient`` and
ib_async's ``Client`` write for server versions 157..178 (both agree). Fields the simulator has
no use for are skipped by position, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .messages import SV, Out

__all__ = [
    "AccountSummaryRequest",
    "ContractDetailsRequest",
    "ContractSpec",
    "HeadTimestampRequest",
    "HistoricalRequest",
    "MarketDataRequest",
    "PnLRequest",
    "RealTimeBarsRequest",
    "RequestError",
    "parse_request",
]


class RequestError(ValueError):
    """A request whose fields cannot be read."""


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The contract fields a request carries."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str

    @property
    def description(self) -> str:
        """How TWS names the contract in messages: ``AAPL@SMART``."""
        return f"{self.local_symbol or self.symbol}@{self.exchange or 'SMART'}"


class _Reader:
    """Sequential access to the fields after the message id."""

    __slots__ = ("fields", "pos")

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self.fields = fields
        self.pos = start

    def text(self) -> str:
        if self.pos >= len(self.fields):
            raise RequestError(f"message {self.fields[:1]} too short")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        value = self.text()
        if value == "":
            return default
        try:
            return int(float(value))
        except ValueError:
            raise RequestError(f"not an integer: {value!r}") from None

    def bool(self) -> bool:
        return self.int() != 0

    def skip(self, n: int = 1) -> None:
        self.pos += n

    def contract(self, with_con_id: bool = True) -> ContractSpec:
        con_id = self.int() if with_con_id else 0
        return ContractSpec(
            con_id=con_id,
            symbol=self.text().upper(),
            sec_type=self.text().upper(),
            last_trade=self.text(),
            strike=self.text(),
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text().upper(),
            primary_exchange=self.text().upper(),
            currency=self.text().upper(),
            local_symbol=self.text().upper(),
            trading_class=self.text(),
        )


@dataclass(frozen=True, slots=True)
class StartApi:
    client_id: int
    optional_capabilities: str


@dataclass(frozen=True, slots=True)
class ReqIdOnly:
    """A request or cancellation that carries only a request id (or nothing)."""

    msg_id: int
    req_id: int


@dataclass(frozen=True, slots=True)
class MarketDataRequest:
    req_id: int
    contract: ContractSpec
    generic_ticks: str
    snapshot: bool
    regulatory_snapshot: bool


@dataclass(frozen=True, slots=True)
class MarketDataTypeRequest:
    data_type: int


@dataclass(frozen=True, slots=True)
class AccountUpdatesRequest:
    subscribe: bool
    account: str


@dataclass(frozen=True, slots=True)
class AccountUpdatesMultiRequest:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(frozen=True, slots=True)
class PositionsMultiRequest:
    req_id: int
    account: str
    model_code: str


@dataclass(frozen=True, slots=True)
class AccountSummaryRequest:
    req_id: int
    group: str
    tags: str


@dataclass(frozen=True, slots=True)
class PnLRequest:
    req_id: int
    account: str
    model_code: str
    con_id: int = 0  # 0 for reqPnL, the position's conId for reqPnLSingle


@dataclass(frozen=True, slots=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractSpec


@dataclass(frozen=True, slots=True)
class HistoricalRequest:
    req_id: int
    contract: ContractSpec
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool

    def key(self) -> tuple:
        """What makes two requests "identical" for IB's 15-second pacing rule."""
        c = self.contract
        return (c.symbol, c.sec_type, c.exchange, c.currency, self.end, self.bar_size,
                self.duration, self.use_rth, self.what_to_show)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RealTimeBarsRequest:
    req_id: int
    contract: ContractSpec
    bar_size: int
    what_to_show: str
    use_rth: bool


@dataclass(frozen=True, slots=True)
class HeadTimestampRequest:
    req_id: int
    contract: ContractSpec
    use_rth: bool
    what_to_show: str
    format_date: int


@dataclass(frozen=True, slots=True)
class IdsRequest:
    num_ids: int


@dataclass(frozen=True, slots=True)
class Unhandled:
    """A request the simulator does not implement (answered with nothing, logged)."""

    msg_id: int
    fields: tuple[str, ...]


def _start_api(r: _Reader, sv: int) -> StartApi:
    r.skip()  # version
    client_id = r.int()
    caps = r.text() if r.pos < len(r.fields) else ""
    return StartApi(client_id, caps)


def _mkt_data(r: _Reader, sv: int) -> MarketDataRequest:
    r.skip()  # version
    req_id = r.int()
    contract = r.contract()
    if contract.sec_type == "BAG":
        r.skip(4 * r.int())
    if r.bool():  # delta-neutral contract
        r.skip(3)
    generic = r.text()
    snapshot = r.bool()
    regulatory = r.bool()
    return MarketDataRequest(req_id, contract, generic, snapshot, regulatory)


def _req_id_after_version(r: _Reader, sv: int) -> ReqIdOnly:
    msg_id = int(r.fields[0])
    r.skip()
    return ReqIdOnly(msg_id, r.int())


def _req_id_no_version(r: _Reader, sv: int) -> ReqIdOnly:
    return ReqIdOnly(int(r.fields[0]), r.int())


def _no_fields(r: _Reader, sv: int) -> ReqIdOnly:
    return ReqIdOnly(int(r.fields[0]), 0)


def _executions(r: _Reader, sv: int) -> ReqIdOnly:
    r.skip()  # version
    return ReqIdOnly(Out.REQ_EXECUTIONS, r.int())


def _market_data_type(r: _Reader, sv: int) -> MarketDataTypeRequest:
    r.skip()
    return MarketDataTypeRequest(r.int())


def _account_updates(r: _Reader, sv: int) -> AccountUpdatesRequest:
    r.skip()
    subscribe = r.bool()
    account = r.text() if r.pos < len(r.fields) else ""
    return AccountUpdatesRequest(subscribe, account)


def _account_updates_multi(r: _Reader, sv: int) -> AccountUpdatesMultiRequest:
    r.skip()
    return AccountUpdatesMultiRequest(r.int(), r.text(), r.text(), r.bool())


def _positions_multi(r: _Reader, sv: int) -> PositionsMultiRequest:
    r.skip()
    return PositionsMultiRequest(r.int(), r.text(), r.text())


def _account_summary(r: _Reader, sv: int) -> AccountSummaryRequest:
    r.skip()
    return AccountSummaryRequest(r.int(), r.text(), r.text())


def _pnl(r: _Reader, sv: int) -> PnLRequest:
    return PnLRequest(r.int(), r.text(), r.text())


def _pnl_single(r: _Reader, sv: int) -> PnLRequest:
    return PnLRequest(r.int(), r.text(), r.text(), r.int())


def _contract_details(r: _Reader, sv: int) -> ContractDetailsRequest:
    r.skip()  # version
    req_id = r.int()
    return ContractDetailsRequest(req_id, r.contract())


def _historical(r: _Reader, sv: int) -> HistoricalRequest:
    if sv < SV.SYNT_REALTIME_BARS:
        r.skip()
    req_id = r.int()
    contract = r.contract()
    r.skip()  # includeExpired
    end = r.text()
    bar_size = r.text()
    duration = r.text()
    use_rth = r.bool()
    what = r.text().upper()
    format_date = r.int(1)
    if contract.sec_type == "BAG":
        r.skip(4 * r.int())
    keep = r.bool() if sv >= SV.SYNT_REALTIME_BARS else False
    return HistoricalRequest(req_id, contract, end, bar_size, duration, use_rth, what,
                             format_date, keep)  # fmt: skip


def _real_time_bars(r: _Reader, sv: int) -> RealTimeBarsRequest:
    r.skip()
    req_id = r.int()
    contract = r.contract()
    return RealTimeBarsRequest(req_id, contract, r.int(), r.text().upper(), r.bool())


def _head_timestamp(r: _Reader, sv: int) -> HeadTimestampRequest:
    req_id = r.int()
    contract = r.contract()
    r.skip()  # includeExpired
    return HeadTimestampRequest(req_id, contract, r.bool(), r.text().upper(), r.int(1))


def _ids(r: _Reader, sv: int) -> IdsRequest:
    r.skip()
    return IdsRequest(r.int(1))


_PARSERS: dict[int, Callable[[_Reader, int], object]] = {
    Out.START_API: _start_api,
    Out.REQ_MKT_DATA: _mkt_data,
    Out.CANCEL_MKT_DATA: _req_id_after_version,
    Out.REQ_MARKET_DATA_TYPE: _market_data_type,
    Out.REQ_ACCT_DATA: _account_updates,
    Out.REQ_ACCOUNT_UPDATES_MULTI: _account_updates_multi,
    Out.CANCEL_ACCOUNT_UPDATES_MULTI: _req_id_after_version,
    Out.REQ_POSITIONS: _no_fields,
    Out.CANCEL_POSITIONS: _no_fields,
    Out.REQ_POSITIONS_MULTI: _positions_multi,
    Out.CANCEL_POSITIONS_MULTI: _req_id_after_version,
    Out.REQ_ACCOUNT_SUMMARY: _account_summary,
    Out.CANCEL_ACCOUNT_SUMMARY: _req_id_after_version,
    Out.REQ_PNL: _pnl,
    Out.CANCEL_PNL: _req_id_no_version,
    Out.REQ_PNL_SINGLE: _pnl_single,
    Out.CANCEL_PNL_SINGLE: _req_id_no_version,
    Out.REQ_OPEN_ORDERS: _no_fields,
    Out.REQ_ALL_OPEN_ORDERS: _no_fields,
    Out.REQ_AUTO_OPEN_ORDERS: _no_fields,
    Out.REQ_COMPLETED_ORDERS: _no_fields,
    Out.REQ_EXECUTIONS: _executions,
    Out.REQ_IDS: _ids,
    Out.REQ_CURRENT_TIME: _no_fields,
    Out.REQ_MANAGED_ACCTS: _no_fields,
    Out.REQ_CONTRACT_DATA: _contract_details,
    Out.REQ_HISTORICAL_DATA: _historical,
    Out.CANCEL_HISTORICAL_DATA: _req_id_after_version,
    Out.REQ_REAL_TIME_BARS: _real_time_bars,
    Out.CANCEL_REAL_TIME_BARS: _req_id_after_version,
    Out.REQ_HEAD_TIMESTAMP: _head_timestamp,
    Out.CANCEL_HEAD_TIMESTAMP: _req_id_no_version,
}


def parse_request(fields: list[str], sv: int) -> object:
    """Parse one client message into its request record (:class:`Unhandled` for ids the
    simulator does not implement). Raises :class:`RequestError` for unreadable fields."""
    if not fields:
        raise RequestError("empty message")
    try:
        msg_id = int(fields[0])
    except ValueError:
        raise RequestError(f"bad message id {fields[0]!r}") from None
    parser = _PARSERS.get(msg_id)
    if parser is None:
        return Unhandled(msg_id, tuple(fields))
    return parser(_Reader(fields), sv)
