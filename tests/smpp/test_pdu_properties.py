"""Property tests of the SMPP PDU codec (hypothesis).

- every PDU class round-trips: decode(encode(p)) == p;
- decode and Framer.feed raise nothing but PduError on any input, random or mutated;
- whatever decode accepts re-encodes to something that decodes the same (or is refused
  with PduError);
- the unrolled submit_sm/deliver_sm codec equals the generic field walker.

The field tables below are written from the SMPP 3.4 specification (section 4), not
read from the codec, and are checked against the classes' dataclass fields.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgateway.smpp.constants import TLV_KINDS, CommandId, TlvKind
from smsgateway.smpp.errors import FrameError, PduError
from smsgateway.smpp.pdu import (
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Framer,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode,
    encode,
)

# Hypothesis budgets: small enough for a slow 2-core box, no deadline (no timing).
# PDU generation costs a few ms per example (many text fields), raw bytes far less.
FAST = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MEDIUM = settings(FAST, max_examples=40)
HEAVY = settings(FAST, max_examples=80)
CHEAP = settings(FAST, max_examples=300)

# --- the spec's body layouts ----------------------------------------------------------
# ("c", max octets including NUL) for C-Octet Strings, ("b",) for one-octet integers,
# ("sm",) for sm_length + short_message.

C = "c"
B = ("b",)
SM = ("sm",)

_BIND = [
    ("system_id", (C, 16)),
    ("password", (C, 9)),
    ("system_type", (C, 13)),
    ("interface_version", B),
    ("addr_ton", B),
    ("addr_npi", B),
    ("address_range", (C, 41)),
]
_BIND_RESP = [("system_id", (C, 16))]
_SHORT_MESSAGE = [
    ("service_type", (C, 6)),
    ("source_addr_ton", B),
    ("source_addr_npi", B),
    ("source_addr", (C, 21)),
    ("dest_addr_ton", B),
    ("dest_addr_npi", B),
    ("destination_addr", (C, 21)),
    ("esm_class", B),
    ("protocol_id", B),
    ("priority_flag", B),
    ("schedule_delivery_time", (C, 17)),
    ("validity_period", (C, 17)),
    ("registered_delivery", B),
    ("replace_if_present_flag", B),
    ("data_coding", B),
    ("sm_default_msg_id", B),
    ("short_message", SM),
]
_MESSAGE_ID_RESP = [("message_id", (C, 65))]

SPEC: dict[type[Pdu], list[tuple[str, tuple[Any, ...]]]] = {
    BindTransmitter: _BIND,
    BindReceiver: _BIND,
    BindTransceiver: _BIND,
    BindTransmitterResp: _BIND_RESP,
    BindReceiverResp: _BIND_RESP,
    BindTransceiverResp: _BIND_RESP,
    Outbind: [("system_id", (C, 16)), ("password", (C, 9))],
    Unbind: [],
    UnbindResp: [],
    EnquireLink: [],
    EnquireLinkResp: [],
    GenericNack: [],
    SubmitSm: _SHORT_MESSAGE,
    DeliverSm: _SHORT_MESSAGE,
    SubmitSmResp: _MESSAGE_ID_RESP,
    DeliverSmResp: _MESSAGE_ID_RESP,
    DataSm: [
        ("service_type", (C, 6)),
        ("source_addr_ton", B),
        ("source_addr_npi", B),
        ("source_addr", (C, 65)),
        ("dest_addr_ton", B),
        ("dest_addr_npi", B),
        ("destination_addr", (C, 65)),
        ("esm_class", B),
        ("registered_delivery", B),
        ("data_coding", B),
    ],
    DataSmResp: _MESSAGE_ID_RESP,
    QuerySm: [
        ("message_id", (C, 65)),
        ("source_addr_ton", B),
        ("source_addr_npi", B),
        ("source_addr", (C, 21)),
    ],
    QuerySmResp: [
        ("message_id", (C, 65)),
        ("final_date", (C, 17)),
        ("message_state", B),
        ("error_code", B),
    ],
    CancelSm: [
        ("service_type", (C, 6)),
        ("message_id", (C, 65)),
        ("source_addr_ton", B),
        ("source_addr_npi", B),
        ("source_addr", (C, 21)),
        ("dest_addr_ton", B),
        ("dest_addr_npi", B),
        ("destination_addr", (C, 21)),
    ],
    CancelSmResp: [],
    ReplaceSm: [
        ("message_id", (C, 65)),
        ("source_addr_ton", B),
        ("source_addr_npi", B),
        ("source_addr", (C, 21)),
        ("schedule_delivery_time", (C, 17)),
        ("validity_period", (C, 17)),
        ("registered_delivery", B),
        ("sm_default_msg_id", B),
        ("short_message", SM),
    ],
    ReplaceSmResp: [],
    AlertNotification: [
        ("source_addr_ton", B),
        ("source_addr_npi", B),
        ("source_addr", (C, 65)),
        ("esme_addr_ton", B),
        ("esme_addr_npi", B),
        ("esme_addr", (C, 65)),
    ],
}
ALL_CLASSES = sorted(SPEC, key=lambda c: c.__name__)

# Responses whose body is absent when command_status != 0 (4.4.2 and alike).
BODY_ONLY_ON_SUCCESS = {SubmitSmResp, DeliverSmResp, DataSmResp, QuerySmResp}
# PDUs that carry no optional parameters at all.
NO_TLVS = {Unbind, UnbindResp, EnquireLink, EnquireLinkResp, GenericNack, Outbind}


def test_spec_table_covers_every_class_and_field() -> None:
    assert set(SPEC) == set(PDU_CLASSES.values())
    for cls, fields in SPEC.items():
        names = [f.name for f in dataclasses.fields(cls)]
        assert names[:3] == ["sequence_number", "command_status", "tlvs"]
        assert names[3:] == [name for name, _ in fields], cls.__name__


@pytest.mark.parametrize("cls", [c for c in ALL_CLASSES if any(k[0] == C for _, k in SPEC[c])])
def test_cstring_max_lengths_match_the_spec(cls: type[Pdu]) -> None:
    for name, kind in SPEC[cls]:
        if kind[0] != C:
            continue
        limit = kind[1]
        ok = cls(**{name: "x" * (limit - 1)})
        assert decode(encode(ok)) == ok
        with pytest.raises(PduError):
            encode(cls(**{name: "x" * limit}))


# --- strategies -------------------------------------------------------------------------

PRINTABLE_LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=["Cc"])
ANY_LATIN1_NO_NUL = st.characters(min_codepoint=1, max_codepoint=0xFF)
OCTET = st.integers(0, 255)
SEQ = st.integers(0, 0xFFFFFFFF)


def cstring(limit: int, alphabet: st.SearchStrategy[str] = PRINTABLE_LATIN1) -> Any:
    return st.text(alphabet, max_size=limit - 1)


def tlv_value(tag: int) -> st.SearchStrategy[Any]:
    kind = TLV_KINDS[tag]
    if kind in (TlvKind.INT1, TlvKind.INT2, TlvKind.INT4):
        return st.integers(0, (1 << (8 * int(kind))) - 1)
    if kind == TlvKind.CSTRING:
        return st.text(PRINTABLE_LATIN1, max_size=64)
    if kind == TlvKind.EMPTY:
        return st.none()
    return st.binary(max_size=64)


KNOWN_TAGS = sorted(TLV_KINDS)
known_tlv = st.sampled_from(KNOWN_TAGS).flatmap(lambda t: st.tuples(st.just(t), tlv_value(t)))
unknown_tlv = st.tuples(
    st.integers(0, 0xFFFF).filter(lambda t: t not in TLV_KINDS), st.binary(max_size=40)
)
TLVS = st.lists(st.one_of(known_tlv, unknown_tlv), max_size=6).map(dict)


def field_strategy(kind: tuple[Any, ...], alphabet: st.SearchStrategy[str]) -> Any:
    if kind[0] == C:
        return cstring(kind[1], alphabet)
    if kind == B:
        return OCTET
    return st.binary(max_size=255)


def pdu_of(
    cls: type[Pdu],
    status: st.SearchStrategy[int] | None = None,
    alphabet: st.SearchStrategy[str] = PRINTABLE_LATIN1,
) -> st.SearchStrategy[Pdu]:
    kwargs = {name: field_strategy(kind, alphabet) for name, kind in SPEC[cls]}
    return st.builds(
        cls,
        sequence_number=SEQ,
        command_status=st.just(0) if status is None else status,
        tlvs=st.just({}) if cls in NO_TLVS else TLVS,
        **kwargs,
    )


ANY_PDU = st.sampled_from(ALL_CLASSES).flatmap(pdu_of)
ANY_FRAME = ANY_PDU.map(encode)


# --- round trip ---------------------------------------------------------------------------


@FAST
@given(data=st.data())
def test_round_trip_every_class(data: st.DataObject) -> None:
    # Each example draws one PDU of every class (one hypothesis run, not 25).
    for cls in ALL_CLASSES:
        p = data.draw(pdu_of(cls), label=cls.__name__)
        frame = encode(p)
        assert struct.unpack(">I", frame[:4])[0] == len(frame)
        assert struct.unpack(">I", frame[4:8])[0] == cls.command_id
        got = decode(frame)
        assert type(got) is cls
        assert got == p


@MEDIUM
@given(p=st.sampled_from(ALL_CLASSES).flatmap(lambda c: pdu_of(c, alphabet=ANY_LATIN1_NO_NUL)))
def test_round_trip_any_latin1_characters(p: Pdu) -> None:
    assert decode(encode(p)) == p


@settings(FAST, max_examples=6)
@given(data=st.data())
def test_round_trip_with_error_status(data: st.DataObject) -> None:
    for cls in ALL_CLASSES:
        p = data.draw(pdu_of(cls, status=st.integers(1, 0xFFFFFFFF)), label=cls.__name__)
        got = decode(encode(p))
        if cls in BODY_ONLY_ON_SUCCESS:
            # 4.4.2: no body (and so no TLVs) on error; the decoder fills in defaults.
            assert len(encode(p)) == 16
            assert got == cls(sequence_number=p.sequence_number, command_status=p.command_status)
        else:
            assert got == p


# --- hostile input ----------------------------------------------------------------------


def decode_or_pdu_error(frame: bytes) -> Pdu | None:
    try:
        p = decode(frame)
    except PduError as err:
        assert isinstance(err.status, int) and err.status > 0
        return None
    assert isinstance(p, Pdu)
    return p


def check_reencode(p: Pdu) -> None:
    """What decode accepted re-encodes (or is refused) and decodes to the same PDU."""
    if p.command_status and type(p) in BODY_ONLY_ON_SUCCESS:
        return  # the body of an error response is dropped by design
    try:
        again = encode(p)
    except PduError:
        return  # e.g. an over-long address a peer sent: accepted, not re-sendable
    assert decode(again) == p


@CHEAP
@given(st.binary(max_size=80))
def test_decode_random_bytes(raw: bytes) -> None:
    decode_or_pdu_error(raw)


header_cid = st.one_of(st.sampled_from(sorted(PDU_CLASSES)), st.integers(0, 0xFFFFFFFF))
# Bodies rich in NULs and small numbers, so that C-strings, sm_length and TLV headers
# often nearly make sense.
body_octets = st.lists(
    st.one_of(st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5, 0x20, 0x41, 0xFF]), st.integers(0, 255)),
    max_size=120,
).map(bytes)


@HEAVY
@given(cid=header_cid, status=st.sampled_from([0, 0, 1, 0xFFFFFFFF]), seq=SEQ, body=body_octets)
def test_decode_random_body_behind_valid_header(
    cid: int, status: int, seq: int, body: bytes
) -> None:
    frame = struct.pack(">IIII", 16 + len(body), cid, status, seq) + body
    try:
        p = decode(frame)
    except FrameError:
        raise AssertionError("length field is right: no FrameError expected") from None
    except PduError as err:
        assert err.sequence_number == seq
        assert err.command_id == cid
        return
    assert p.sequence_number == seq and p.command_status == status
    check_reencode(p)


@st.composite
def mutated_frame(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(ANY_FRAME))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert", "delete"]))
        if op in ("flip", "set", "delete") and frame:
            i = draw(st.integers(0, len(frame) - 1))
            if op == "flip":
                frame[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "set":
                frame[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
            else:
                del frame[i]
        elif op == "truncate":
            del frame[draw(st.integers(0, len(frame))) :]
        elif op == "extend":
            frame += draw(st.binary(min_size=1, max_size=12))
        elif op == "insert":
            i = draw(st.integers(0, len(frame)))
            frame[i:i] = draw(st.binary(min_size=1, max_size=4))
    if len(frame) >= 4 and draw(st.booleans()):
        # Usually keep the length field right, to reach the body parser.
        frame[:4] = struct.pack(">I", len(frame))
    return bytes(frame)


@HEAVY
@given(mutated_frame())
def test_decode_mutated_frames(frame: bytes) -> None:
    p = decode_or_pdu_error(frame)
    if p is not None:
        check_reencode(p)


@MEDIUM
@given(ANY_FRAME)
def test_decode_every_prefix_of_a_valid_frame(frame: bytes) -> None:
    for cut in range(len(frame)):
        prefix = frame[:cut]
        decode_or_pdu_error(prefix)
        if cut >= 4:
            decode_or_pdu_error(struct.pack(">I", cut) + prefix[4:])


def tlv_starts(frame: bytes, off: int) -> list[int]:
    out = [off]
    while off < len(frame):
        off += 4 + struct.unpack(">H", frame[off + 2 : off + 4])[0]
        out.append(off)
    return out


REQUESTS = [c for c in ALL_CLASSES if not c.command_id & 0x80000000]


@MEDIUM
@given(st.sampled_from(REQUESTS).flatmap(pdu_of))
def test_truncated_request_is_refused_or_loses_whole_tlvs(p: Pdu) -> None:
    # A request's mandatory body has no optional tail: cut anywhere inside it, the
    # frame is refused with ESME_RINVCMDLEN. Cut in the TLVs, it is refused with
    # ESME_RINVOPTPARSTREAM, unless the cut falls between two TLVs.
    frame = encode(p)
    body_end = 16 + len(p._encode_body())
    starts = tlv_starts(frame, body_end)
    for cut in range(16, len(frame)):
        short = struct.pack(">I", cut) + frame[4:cut]
        try:
            got = decode(short)
        except PduError as err:
            assert cut not in starts
            want = 0x02 if cut < body_end else 0xC0
            assert (err.status, err.sequence_number) == (want, p.sequence_number)
            continue
        assert cut in starts, f"cut at {cut} of {len(frame)} accepted: {got}"
        assert got.tlvs == dict(list(p.tlvs.items())[: starts.index(cut)])
        assert dataclasses.replace(got, tlvs=p.tlvs) == p


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for n in sizes:
        out.append(data[pos : pos + n])
        pos += n
    out.append(data[pos:])
    return out


@MEDIUM
@given(
    stream=st.one_of(st.binary(max_size=200), mutated_frame().map(lambda f: f * 2)),
    sizes=st.lists(st.integers(0, 40), max_size=20),
    max_pdu=st.sampled_from([16, 64, 200, 64 * 1024]),
)
def test_framer_random_stream(stream: bytes, sizes: list[int], max_pdu: int) -> None:
    f = Framer(max_pdu)
    frames: list[bytes] = []
    try:
        for chunk in chunked(stream, sizes):
            for frame in f.feed(chunk):
                frames.append(frame)
    except PduError as err:
        assert isinstance(err, FrameError)
    for frame in frames:
        assert 16 <= len(frame) <= max_pdu
        assert struct.unpack(">I", frame[:4])[0] == len(frame)
        decode_or_pdu_error(frame)
    # Nothing lost, nothing invented: frames + what is buffered is a prefix of the input.
    consumed = b"".join(frames)
    assert stream.startswith(consumed)
    assert f.buffered <= len(stream) - len(consumed)


@MEDIUM
@given(
    pdus=st.lists(ANY_PDU, min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 64), max_size=60),
)
def test_framer_valid_stream_any_chunking(pdus: list[Pdu], sizes: list[int]) -> None:
    frames = [encode(p) for p in pdus]
    f = Framer()
    out: list[bytes] = []
    for chunk in chunked(b"".join(frames), sizes):
        out.extend(f.feed(chunk))
    assert out == frames
    assert f.buffered == 0
    assert [decode(x) for x in out] == pdus


# --- fast path (_ShortMessage) == generic field walker ---------------------------------

generic_decode_body = Pdu._decode_body.__func__  # type: ignore[attr-defined]


def run(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except PduError as err:
        return "error", (type(err), err.status, err.command_id, err.sequence_number)


# Field values that may or may not be valid: out-of-range octets, long strings, NULs,
# characters outside latin-1, over-long short messages.
ANYISH_OCTET = st.one_of(OCTET, st.sampled_from([-1, 256, 1000, -(1 << 40), 1 << 40]))
ANYISH_TEXT = st.text(
    st.one_of(PRINTABLE_LATIN1, st.sampled_from(["\0", "€", "\uffff", "\U0001f600", "\xff"])),
    max_size=24,
)
ANYISH_SM = st.binary(max_size=260)


def anyish_sm_pdu(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    kw = {
        name: ANYISH_SM if kind == SM else ANYISH_OCTET if kind == B else ANYISH_TEXT
        for name, kind in _SHORT_MESSAGE
    }
    return st.builds(cls, sequence_number=SEQ, **kw)


SM_CLASSES = [SubmitSm, DeliverSm]


@pytest.mark.parametrize("cls", SM_CLASSES, ids=lambda c: c.__name__)
@MEDIUM
@given(data=st.data())
def test_fast_encode_equals_generic_on_valid_values(cls: type[Pdu], data: st.DataObject) -> None:
    p = data.draw(pdu_of(cls, alphabet=ANY_LATIN1_NO_NUL))
    fast = run(cls._encode_body, p)
    generic = run(Pdu._encode_body, p)
    assert fast[0] == "ok"
    assert fast == generic


@pytest.mark.parametrize("cls", SM_CLASSES, ids=lambda c: c.__name__)
@HEAVY
@given(data=st.data())
def test_fast_encode_equals_generic_on_any_values(cls: type[Pdu], data: st.DataObject) -> None:
    p = data.draw(anyish_sm_pdu(cls))
    fast = run(cls._encode_body, p)
    generic = run(Pdu._encode_body, p)
    assert fast[0] == generic[0], (fast, generic)
    if fast[0] == "ok":
        assert fast[1] == generic[1]


def assert_same_decode(cls: type[Pdu], buf: bytes, end: int, status: int, seq: int) -> None:
    cid = cls.command_id
    fast = run(cls._decode_body, buf, 16, end, cid, status, seq)
    generic = run(functools.partial(generic_decode_body, cls), buf, 16, end, cid, status, seq)
    assert fast == generic
    # Reading stops at `end`: the same as decoding a copy cut there.
    alone = run(cls._decode_body, buf[:end], 16, end, cid, status, seq)
    assert fast == alone


sm_frame = st.sampled_from(SM_CLASSES).flatmap(pdu_of).map(encode)


@st.composite
def sm_mutated(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(sm_frame))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "truncate", "extend", "delete", "insert"]))
        if op == "set" and len(frame) > 16:
            frame[draw(st.integers(16, len(frame) - 1))] = draw(
                st.sampled_from([0, 0, 0, 1, 0x41, 0xFF])
            )
        elif op == "delete" and len(frame) > 16:
            del frame[draw(st.integers(16, len(frame) - 1))]
        elif op == "insert":
            i = draw(st.integers(16, len(frame)))
            frame[i:i] = draw(st.sampled_from([b"\0", b"A", b"\0\0", b"\xff"]))
        elif op == "truncate":
            del frame[draw(st.integers(16, len(frame))) :]
        elif op == "extend":
            frame += draw(st.binary(min_size=1, max_size=8))
    return bytes(frame)


@pytest.mark.parametrize("cls", SM_CLASSES, ids=lambda c: c.__name__)
@HEAVY
@given(
    buf=st.one_of(sm_mutated(), body_octets.map(lambda b: bytes(16) + b)),
    status=st.sampled_from([0, 0, 0, 1, 0x45]),
    seq=SEQ,
    data=st.data(),
)
def test_fast_decode_equals_generic(
    cls: type[Pdu], buf: bytes, status: int, seq: int, data: st.DataObject
) -> None:
    end = data.draw(st.one_of(st.just(len(buf)), st.integers(16, len(buf))))
    assert_same_decode(cls, buf, end, status, seq)


@pytest.mark.parametrize("cls", SM_CLASSES, ids=lambda c: c.__name__)
@MEDIUM
@given(data=st.data())
def test_fast_decode_equals_generic_on_valid_bodies(cls: type[Pdu], data: st.DataObject) -> None:
    p = data.draw(pdu_of(cls, alphabet=ANY_LATIN1_NO_NUL))
    frame = encode(p)
    body_end = 16 + len(cls._encode_body(p))
    for end in range(16, len(frame) + 1):  # every cut, TLVs included
        assert_same_decode(cls, frame, end, 0, p.sequence_number)
    values, off = cls._decode_body(frame, 16, len(frame), cls.command_id, 0, 0)
    assert off == body_end
    assert values == [getattr(p, name) for name, _ in _SHORT_MESSAGE]


def test_command_ids_of_fast_path_classes() -> None:
    assert SubmitSm.command_id == CommandId.SUBMIT_SM
    assert DeliverSm.command_id == CommandId.DELIVER_SM
    # Both really use the unrolled codec (otherwise the equivalence tests test nothing).
    assert SubmitSm._encode_body is not Pdu._encode_body
    assert SubmitSm._decode_body.__func__ is not generic_decode_body  # type: ignore[attr-defined]
