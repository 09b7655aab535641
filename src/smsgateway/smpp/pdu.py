"""SMPP 3.4 PDU types and their binary codec.

Design:
- Each PDU is a slotted dataclass; `encode(pdu)` gives the wire bytes and
  `decode(frame)` turns one complete frame back into a PDU.
- Bodies are described by a small field table (`_body`) that a generic encoder and
  decoder walk. submit_sm and deliver_sm, the hot path of any gateway, get
  hand-unrolled codecs with the same behaviour (property tests hold them equal).
- Decoding never reads past the frame and raises nothing but `PduError`.
- Optional parameters (TLVs) live in `pdu.tlvs`, a dict from tag to value: known tags
  decode to int / str / bytes by their kind (constants.TLV_KINDS), unknown ones stay
  raw bytes and are re-encoded unchanged.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from .constants import (
    RESPONSE_BIT,
    TLV_KINDS,
    CommandId,
    CommandStatus,
    TlvKind,
)
from .errors import FrameError, PduError

TlvValue: TypeAlias = int | str | bytes | None

HEADER = struct.Struct(">IIII")
HEADER_LEN = 16
DEFAULT_MAX_PDU = 64 * 1024  # generous: a message_payload TLV can carry 64 KB

_TLV_HEAD = struct.Struct(">HH")
_UINT = {1: struct.Struct(">B"), 2: struct.Struct(">H"), 4: struct.Struct(">I")}
_INT_KIND_SIZE = {TlvKind.INT1: 1, TlvKind.INT2: 2, TlvKind.INT4: 4}

# Field kinds of the body tables.
_C = 0  # C-Octet String, NUL-terminated; the int is the maximum size including NUL
_B = 1  # one unsigned octet
_SM = 2  # sm_length octet followed by that many octets (short_message)

_Field: TypeAlias = tuple[str, int, int]


# --- TLVs ----------------------------------------------------------------------------


def encode_tlv_value(tag: int, value: TlvValue) -> bytes:
    """The raw octets of one TLV value, typed by the tag's kind (bytes pass as they are)."""
    if isinstance(value, bytes):
        return value
    if value is None:
        return b""
    kind = TLV_KINDS.get(tag)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PduError(f"TLV 0x{tag:04X}: unsupported value {value!r}")
    if isinstance(value, int):
        size = _INT_KIND_SIZE.get(kind, 0) if kind is not None else 0
        if not size:
            raise PduError(f"TLV 0x{tag:04X} does not take an integer")
        if not 0 <= value < 1 << (8 * size):
            raise PduError(f"TLV 0x{tag:04X} value {value} out of range")
        return value.to_bytes(size, "big")
    if "\0" in value:
        raise PduError(f"TLV 0x{tag:04X}: NUL inside a string")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise PduError(f"TLV 0x{tag:04X}: not representable in one octet per character") from exc
    return raw + (b"\0" if kind == TlvKind.CSTRING else b"")


def _encode_tlvs(tlvs: dict[int, TlvValue]) -> bytes:
    out = []
    for tag, value in tlvs.items():
        raw = encode_tlv_value(tag, value)
        if len(raw) > 0xFFFF:
            raise PduError(f"TLV 0x{tag:04X} longer than 65535 octets")
        try:
            out.append(_TLV_HEAD.pack(tag, len(raw)))
        except struct.error as exc:
            raise PduError(f"TLV tag {tag} out of range") from exc
        out.append(raw)
    return b"".join(out)


def _decode_tlv_value(tag: int, raw: bytes) -> TlvValue:
    kind = TLV_KINDS.get(tag)
    if kind is None or kind == TlvKind.OCTETS:
        return raw
    if kind == TlvKind.CSTRING:
        # Tolerate a missing terminator: several SMSCs omit it.
        nul = raw.find(b"\0")
        return (raw if nul < 0 else raw[:nul]).decode("latin-1")
    if kind == TlvKind.EMPTY:
        return raw or None
    if 1 <= len(raw) <= 4:
        # Integers are read whatever their length, again for tolerance.
        return int.from_bytes(raw, "big")
    return raw


def _decode_tlvs(buf: bytes, off: int, end: int, cid: int, seq: int) -> dict[int, TlvValue]:
    tlvs: dict[int, TlvValue] = {}
    while off < end:
        if end - off < 4:
            raise PduError(
                "truncated TLV header",
                status=CommandStatus.ESME_RINVOPTPARSTREAM,
                command_id=cid,
                sequence_number=seq,
            )
        tag, length = _TLV_HEAD.unpack_from(buf, off)
        off += 4
        if off + length > end:
            raise PduError(
                f"TLV 0x{tag:04X} overruns the PDU",
                status=CommandStatus.ESME_RINVOPTPARSTREAM,
                command_id=cid,
                sequence_number=seq,
            )
        tlvs[tag] = _decode_tlv_value(tag, buf[off : off + length])
        off += length
    return tlvs


# --- PDU classes ---------------------------------------------------------------------


@dataclass(slots=True)
class Pdu:
    """Common header fields; subclasses add their body fields after these."""

    command_id: ClassVar[int] = 0
    _body: ClassVar[tuple[_Field, ...]] = ()
    # Responses whose body the spec says is absent when command_status != 0.
    _body_only_on_success: ClassVar[bool] = False

    sequence_number: int = 0
    command_status: int = 0
    tlvs: dict[int, TlvValue] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)

    @property
    def name(self) -> str:
        return CommandId(self.command_id).name.lower()

    def _encode_body(self) -> bytes:
        parts: list[bytes] = []
        for fname, kind, size in self._body:
            value = getattr(self, fname)
            if kind == _C:
                raw = _cstring(value, size, fname)
                parts.append(raw)
                parts.append(b"\0")
            elif kind == _B:
                if not 0 <= value <= 255:
                    raise PduError(f"{fname}={value} does not fit one octet")
                parts.append(bytes((value,)))
            else:
                if len(value) > 255:
                    raise PduError(f"{fname} longer than 255 octets; use message_payload")
                parts.append(bytes((len(value),)))
                parts.append(value)
        return b"".join(parts)

    @classmethod
    def _decode_body(
        cls, buf: bytes, off: int, end: int, cid: int, status: int, seq: int
    ) -> tuple[list[Any], int]:
        values: list[Any] = []
        for fname, kind, _size in cls._body:
            if off >= end and (status or cls.command_id & RESPONSE_BIT):
                # A response (errors especially) may stop early: the rest defaults.
                break
            if kind == _C:
                nul = buf.find(b"\0", off, end)
                if nul < 0:
                    raise PduError(
                        f"{fname}: C-string without terminator",
                        status=CommandStatus.ESME_RINVCMDLEN,
                        command_id=cid,
                        sequence_number=seq,
                    )
                values.append(buf[off:nul].decode("latin-1"))
                off = nul + 1
            elif kind == _B:
                if off >= end:
                    raise _truncated(fname, cid, seq)
                values.append(buf[off])
                off += 1
            else:
                if off >= end:
                    raise _truncated(fname, cid, seq)
                n = buf[off]
                off += 1
                if off + n > end:
                    raise _truncated(fname, cid, seq)
                values.append(buf[off : off + n])
                off += n
        return values, off

    def response(self, status: int = 0, **fields: Any) -> Pdu:
        """The response PDU to this request, same sequence number."""
        cls = PDU_CLASSES.get(self.command_id | RESPONSE_BIT)
        if cls is None or self.is_response:
            raise ValueError(f"{self.name} has no response")
        return cls(sequence_number=self.sequence_number, command_status=status, **fields)


def _truncated(fname: str, cid: int, seq: int) -> PduError:
    return PduError(
        f"body ends inside {fname}",
        status=CommandStatus.ESME_RINVCMDLEN,
        command_id=cid,
        sequence_number=seq,
    )


def _cstring(value: str, size: int, fname: str) -> bytes:
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise PduError(f"{fname}: not representable in one octet per character") from exc
    if len(raw) >= size:
        raise PduError(f"{fname} longer than {size - 1} octets")
    if b"\0" in raw:
        raise PduError(f"{fname}: NUL inside a C-string")
    return raw


@dataclass(slots=True)
class _Bind(Pdu):
    _body = (
        ("system_id", _C, 16),
        ("password", _C, 9),
        ("system_type", _C, 13),
        ("interface_version", _B, 0),
        ("addr_ton", _B, 0),
        ("addr_npi", _B, 0),
        ("address_range", _C, 41),
    )
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = 0x34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(slots=True)
class _BindResp(Pdu):
    _body = (("system_id", _C, 16),)
    system_id: str = ""


@dataclass(slots=True)
class BindTransmitter(_Bind):
    command_id = CommandId.BIND_TRANSMITTER


@dataclass(slots=True)
class BindTransmitterResp(_BindResp):
    command_id = CommandId.BIND_TRANSMITTER_RESP


@dataclass(slots=True)
class BindReceiver(_Bind):
    command_id = CommandId.BIND_RECEIVER


@dataclass(slots=True)
class BindReceiverResp(_BindResp):
    command_id = CommandId.BIND_RECEIVER_RESP


@dataclass(slots=True)
class BindTransceiver(_Bind):
    command_id = CommandId.BIND_TRANSCEIVER


@dataclass(slots=True)
class BindTransceiverResp(_BindResp):
    command_id = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(slots=True)
class Outbind(Pdu):
    command_id = CommandId.OUTBIND
    _body = (("system_id", _C, 16), ("password", _C, 9))
    system_id: str = ""
    password: str = ""


@dataclass(slots=True)
class Unbind(Pdu):
    command_id = CommandId.UNBIND


@dataclass(slots=True)
class UnbindResp(Pdu):
    command_id = CommandId.UNBIND_RESP


@dataclass(slots=True)
class EnquireLink(Pdu):
    command_id = CommandId.ENQUIRE_LINK


@dataclass(slots=True)
class EnquireLinkResp(Pdu):
    command_id = CommandId.ENQUIRE_LINK_RESP


@dataclass(slots=True)
class GenericNack(Pdu):
    command_id = CommandId.GENERIC_NACK


_SM_BODY: tuple[_Field, ...] = (
    ("service_type", _C, 6),
    ("source_addr_ton", _B, 0),
    ("source_addr_npi", _B, 0),
    ("source_addr", _C, 21),
    ("dest_addr_ton", _B, 0),
    ("dest_addr_npi", _B, 0),
    ("destination_addr", _C, 21),
    ("esm_class", _B, 0),
    ("protocol_id", _B, 0),
    ("priority_flag", _B, 0),
    ("schedule_delivery_time", _C, 17),
    ("validity_period", _C, 17),
    ("registered_delivery", _B, 0),
    ("replace_if_present_flag", _B, 0),
    ("data_coding", _B, 0),
    ("sm_default_msg_id", _B, 0),
    ("short_message", _SM, 0),
)


@dataclass(slots=True)
class _ShortMessage(Pdu):
    """submit_sm and deliver_sm share one body layout (SMPP 3.4 4.4.1 and 4.6.1)."""

    _body = _SM_BODY
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""

    def _encode_body(self) -> bytes:
        # Unrolled version of Pdu._encode_body as one bytes-format call: this is the
        # gateway's hot path (about 3x faster than walking the field table).
        sm = self.short_message
        if len(sm) > 255:
            raise PduError("short_message longer than 255 octets; use message_payload")
        st, sched, valid = self.service_type, self.schedule_delivery_time, self.validity_period
        try:
            src = self.source_addr.encode("latin-1")
            dst = self.destination_addr.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise PduError("address not representable in one octet per character") from exc
        if len(src) > 20 or len(dst) > 20 or b"\0" in src or b"\0" in dst:
            raise PduError("source_addr/destination_addr: at most 20 octets, no NUL")
        try:
            return _SM_FORMAT % (
                _cstring(st, 6, "service_type") if st else b"",
                self.source_addr_ton,
                self.source_addr_npi,
                src,
                self.dest_addr_ton,
                self.dest_addr_npi,
                dst,
                self.esm_class,
                self.protocol_id,
                self.priority_flag,
                _cstring(sched, 17, "schedule_delivery_time") if sched else b"",
                _cstring(valid, 17, "validity_period") if valid else b"",
                self.registered_delivery,
                self.replace_if_present_flag,
                self.data_coding,
                self.sm_default_msg_id,
                len(sm),
                sm,
            )
        except (OverflowError, TypeError) as exc:
            raise PduError(f"{self.name}: an octet field is out of range") from exc

    @classmethod
    def _decode_body(
        cls, buf: bytes, off: int, end: int, cid: int, status: int, seq: int
    ) -> tuple[list[Any], int]:
        m = _SM_STRINGS.match(buf, off, end)
        if m is not None:
            e1, e2, e3, e5 = m.end(1), m.end(2), m.end(3), m.end(5)
            body = e5 + 6
            if body <= end:
                sm_end = body + buf[body - 1]
                if sm_end <= end:
                    st, src, dst, sched, valid = m.groups()
                    values = [
                        st.decode("latin-1") if st else "",
                        buf[e1 + 1],
                        buf[e1 + 2],
                        src.decode("latin-1"),
                        buf[e2 + 1],
                        buf[e2 + 2],
                        dst.decode("latin-1"),
                        buf[e3 + 1],
                        buf[e3 + 2],
                        buf[e3 + 3],
                        sched.decode("latin-1") if sched else "",
                        valid.decode("latin-1") if valid else "",
                        buf[e5 + 1],
                        buf[e5 + 2],
                        buf[e5 + 3],
                        buf[e5 + 4],
                        buf[body:sm_end],
                    ]
                    return values, sm_end
        # Malformed or short: the field walker names the exact field at fault.
        return Pdu._decode_body.__func__(cls, buf, off, end, cid, status, seq)  # type: ignore[attr-defined,no-any-return]


# The five C-strings of a submit_sm/deliver_sm body and the octets between them;
# one regex match locates them all in a single C call.
_SM_STRINGS = re.compile(rb"([^\0]*)\0..([^\0]*)\0..([^\0]*)\0...([^\0]*)\0([^\0]*)\0", re.DOTALL)
_SM_FORMAT = b"%s\0%c%c%s\0%c%c%s\0%c%c%c%s\0%s\0%c%c%c%c%c%s"


@dataclass(slots=True)
class SubmitSm(_ShortMessage):
    command_id = CommandId.SUBMIT_SM


@dataclass(slots=True)
class DeliverSm(_ShortMessage):
    command_id = CommandId.DELIVER_SM


@dataclass(slots=True)
class _MessageIdResp(Pdu):
    _body = (("message_id", _C, 65),)
    _body_only_on_success = True
    message_id: str = ""


@dataclass(slots=True)
class SubmitSmResp(_MessageIdResp):
    command_id = CommandId.SUBMIT_SM_RESP


@dataclass(slots=True)
class DeliverSmResp(_MessageIdResp):
    command_id = CommandId.DELIVER_SM_RESP


@dataclass(slots=True)
class DataSm(Pdu):
    command_id = CommandId.DATA_SM
    _body = (
        ("service_type", _C, 6),
        ("source_addr_ton", _B, 0),
        ("source_addr_npi", _B, 0),
        ("source_addr", _C, 65),
        ("dest_addr_ton", _B, 0),
        ("dest_addr_npi", _B, 0),
        ("destination_addr", _C, 65),
        ("esm_class", _B, 0),
        ("registered_delivery", _B, 0),
        ("data_coding", _B, 0),
    )
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


@dataclass(slots=True)
class DataSmResp(_MessageIdResp):
    command_id = CommandId.DATA_SM_RESP


@dataclass(slots=True)
class QuerySm(Pdu):
    command_id = CommandId.QUERY_SM
    _body = (
        ("message_id", _C, 65),
        ("source_addr_ton", _B, 0),
        ("source_addr_npi", _B, 0),
        ("source_addr", _C, 21),
    )
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""


@dataclass(slots=True)
class QuerySmResp(Pdu):
    command_id = CommandId.QUERY_SM_RESP
    _body = (
        ("message_id", _C, 65),
        ("final_date", _C, 17),
        ("message_state", _B, 0),
        ("error_code", _B, 0),
    )
    _body_only_on_success = True
    message_id: str = ""
    final_date: str = ""
    message_state: int = 0
    error_code: int = 0


@dataclass(slots=True)
class CancelSm(Pdu):
    command_id = CommandId.CANCEL_SM
    _body = (
        ("service_type", _C, 6),
        ("message_id", _C, 65),
        ("source_addr_ton", _B, 0),
        ("source_addr_npi", _B, 0),
        ("source_addr", _C, 21),
        ("dest_addr_ton", _B, 0),
        ("dest_addr_npi", _B, 0),
        ("destination_addr", _C, 21),
    )
    service_type: str = ""
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(slots=True)
class CancelSmResp(Pdu):
    command_id = CommandId.CANCEL_SM_RESP


@dataclass(slots=True)
class ReplaceSm(Pdu):
    command_id = CommandId.REPLACE_SM
    _body = (
        ("message_id", _C, 65),
        ("source_addr_ton", _B, 0),
        ("source_addr_npi", _B, 0),
        ("source_addr", _C, 21),
        ("schedule_delivery_time", _C, 17),
        ("validity_period", _C, 17),
        ("registered_delivery", _B, 0),
        ("sm_default_msg_id", _B, 0),
        ("short_message", _SM, 0),
    )
    message_id: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(slots=True)
class ReplaceSmResp(Pdu):
    command_id = CommandId.REPLACE_SM_RESP


@dataclass(slots=True)
class AlertNotification(Pdu):
    command_id = CommandId.ALERT_NOTIFICATION
    _body = (
        ("source_addr_ton", _B, 0),
        ("source_addr_npi", _B, 0),
        ("source_addr", _C, 65),
        ("esme_addr_ton", _B, 0),
        ("esme_addr_npi", _B, 0),
        ("esme_addr", _C, 65),
    )
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    esme_addr: str = ""


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        BindTransmitter,
        BindTransmitterResp,
        BindReceiver,
        BindReceiverResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        Unbind,
        UnbindResp,
        EnquireLink,
        EnquireLinkResp,
        GenericNack,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        DataSm,
        DataSmResp,
        QuerySm,
        QuerySmResp,
        CancelSm,
        CancelSmResp,
        ReplaceSm,
        ReplaceSmResp,
        AlertNotification,
    )
}

# PDUs whose bodies may carry TLVs (SMPP 3.4 section 4); others must not.
_NO_TLVS = frozenset(
    {
        CommandId.UNBIND,
        CommandId.UNBIND_RESP,
        CommandId.ENQUIRE_LINK,
        CommandId.ENQUIRE_LINK_RESP,
        CommandId.GENERIC_NACK,
        CommandId.OUTBIND,
    }
)


# --- codec entry points ----------------------------------------------------------------


def encode(pdu: Pdu) -> bytes:
    """Wire bytes of `pdu`. Raises PduError for values that do not fit the format."""
    status = pdu.command_status
    if status and pdu._body_only_on_success:
        body = b""
    else:
        body = pdu._encode_body()
        if pdu.tlvs:
            body += _encode_tlvs(pdu.tlvs)
    try:
        return (
            HEADER.pack(HEADER_LEN + len(body), pdu.command_id, status, pdu.sequence_number) + body
        )
    except struct.error as exc:
        raise PduError("sequence_number or command_status out of range") from exc


def decode(frame: bytes) -> Pdu:
    """One complete frame (header included) to a PDU.

    Raises PduError with the status to answer; a FrameError when the length field
    itself is wrong.
    """
    size = len(frame)
    if size < HEADER_LEN:
        raise FrameError(
            "PDU shorter than its 16-octet header", status=CommandStatus.ESME_RINVCMDLEN
        )
    length, cid, status, seq = HEADER.unpack_from(frame)
    if length != size:
        raise FrameError(
            f"command_length {length} but {size} octets",
            status=CommandStatus.ESME_RINVCMDLEN,
            command_id=cid,
            sequence_number=seq,
        )
    cls = PDU_CLASSES.get(cid)
    if cls is None:
        raise PduError(
            f"unknown command_id 0x{cid:08X}",
            status=CommandStatus.ESME_RINVCMDID,
            command_id=cid,
            sequence_number=seq,
        )
    values, off = cls._decode_body(frame, HEADER_LEN, size, cid, status, seq)
    if off < size and cid in _NO_TLVS:
        raise PduError(
            f"{cls.__name__} carries no optional parameters",
            status=CommandStatus.ESME_RINVCMDLEN,
            command_id=cid,
            sequence_number=seq,
        )
    tlvs = _decode_tlvs(frame, off, size, cid, seq) if off < size else {}
    return cls(seq, status, tlvs, *values)


class Framer:
    """Splits a TCP byte stream into PDU frames (sans-I/O).

    `feed()` stores bytes and yields each complete frame. A length below 16 or above
    `max_pdu` raises FrameError: after that the stream is beyond repair and the
    caller closes it.
    """

    __slots__ = ("_buf", "max_pdu")

    def __init__(self, max_pdu: int = DEFAULT_MAX_PDU) -> None:
        self._buf = bytearray()
        self.max_pdu = max_pdu

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Store `data` now; return an iterator over the frames it completes."""
        self._buf += data
        return self._frames()

    def _frames(self) -> Iterator[bytes]:
        # Each frame leaves the buffer before it is handed out, so an iteration that
        # stops early (break, exception, abandoned) neither loses nor repeats frames.
        buf = self._buf
        while len(buf) >= 4:
            length = int.from_bytes(buf[:4], "big")
            if length < HEADER_LEN or length > self.max_pdu:
                seq = 0
                cid = 0
                if len(buf) >= HEADER_LEN:
                    _, cid, _, seq = HEADER.unpack_from(buf)
                raise FrameError(
                    f"command_length {length} outside 16..{self.max_pdu}",
                    status=CommandStatus.ESME_RINVCMDLEN,
                    command_id=cid,
                    sequence_number=seq,
                )
            if len(buf) < length:
                return
            frame = bytes(buf[:length])
            del buf[:length]
            yield frame
