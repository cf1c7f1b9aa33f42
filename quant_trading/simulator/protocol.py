"""The TWS socket protocol's framing: length-prefixed messages of NUL-terminated text fields.

A connection opens with the client's handshake: the bytes ``API\\0`` followed by one framed
message holding the version range it speaks (``v100..157``, optionally followed by a space and
connection options such as ``+PACEAPI``). The server answers with one framed message of two
fields, the negotiated server version and the connection time. After that every message in
either direction is a 4-byte big-endian length followed by that many bytes of fields, each
terminated by NUL. Several messages may arrive in one TCP read and one message may be split
over several reads; :class:`FrameDecoder` copes with both.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "API_PREFIX",
    "FrameDecoder",
    "Handshake",
    "HandshakeError",
    "ProtocolError",
    "encode_message",
    "fmt_decimal",
    "fmt_float",
    "frame",
    "parse_handshake",
    "split_fields",
]

API_PREFIX = b"API\0"
_LENGTH = struct.Struct(">I")
# TWS refuses absurd frames; a garbage length must not make us buffer gigabytes.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ProtocolError(ValueError):
    """Bytes that are not a valid TWS message stream."""


class HandshakeError(ProtocolError):
    """The first bytes of a connection are not a TWS API handshake."""


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the client offered: its version range and connection options (e.g. ``+PACEAPI``)."""

    min_version: int
    max_version: int
    options: str = ""


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    return _LENGTH.pack(len(payload)) + payload


def encode_message(fields) -> bytes:
    """One framed message from field values, each converted with :func:`str` and NUL-terminated.

    ``None`` becomes an empty field and booleans become ``1``/``0``, as the IB clients send them.
    Floats should already be text (see :func:`fmt_float`) when their exact spelling matters.
    """
    parts = []
    for value in fields:
        if value is None:
            text = ""
        elif value is True or value is False:
            text = "1" if value else "0"
        else:
            text = str(value)
        parts.append(text.encode("utf-8", "backslashreplace"))
        parts.append(b"\0")
    return frame(b"".join(parts))


def split_fields(payload: bytes) -> list[str]:
    """The text fields of one message payload (without the length prefix)."""
    if not payload:
        return []
    text = payload.decode("utf-8", "backslashreplace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()  # every field is terminated, so the split leaves one empty tail
    return fields


def parse_handshake(payload: bytes) -> Handshake:
    """Parse the version message that follows ``API\\0``: ``v100..176`` or ``v176``, plus options.

    Raises :class:`HandshakeError` when the text is not a version range.
    """
    text = payload.decode("ascii", "replace").strip("\0")
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise HandshakeError(f"bad API version range {text!r}")
    low, sep, high = head[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError:
        raise HandshakeError(f"bad API version range {text!r}") from None
    if lo > hi:
        raise HandshakeError(f"empty API version range {text!r}")
    return Handshake(lo, hi, options.strip())


class FrameDecoder:
    """Incremental decoder of the byte stream a client sends.

    :meth:`feed` takes whatever a read returned and gives back the complete message payloads
    it finished, in order; partial data waits for the next read. With ``expect_handshake`` the
    stream must begin with ``API\\0`` (checked byte by byte, so a split prefix is fine).
    """

    __slots__ = ("_buffer", "_need_prefix")

    def __init__(self, expect_handshake: bool = True) -> None:
        self._buffer = bytearray()
        self._need_prefix = expect_handshake

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the payloads of the messages they completed."""
        self._buffer += data
        out: list[bytes] = []
        if self._need_prefix:
            n = min(len(self._buffer), len(API_PREFIX))
            if self._buffer[:n] != API_PREFIX[:n]:
                raise HandshakeError(
                    f"connection does not start with the API handshake: {bytes(self._buffer[:8])!r}"
                )
            if n < len(API_PREFIX):
                return out
            del self._buffer[: len(API_PREFIX)]
            self._need_prefix = False
        while len(self._buffer) >= 4:
            (size,) = _LENGTH.unpack_from(self._buffer)
            if size > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"message length {size} exceeds {MAX_MESSAGE_BYTES}")
            if len(self._buffer) < 4 + size:
                break
            out.append(bytes(self._buffer[4 : 4 + size]))
            del self._buffer[: 4 + size]
        return out


def fmt_float(value: float | None) -> str:
    """A double as TWS writes it: shortest round-trip digits, ``150.0`` for whole numbers,
    empty for None/NaN (IB's "no value")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def fmt_decimal(value: float | int | Decimal | None) -> str:
    """A size/quantity as TWS's Decimal: ``100``, ``0.5``; empty for None/NaN."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return str(int(value))
