"""Unit tests of the SMPP 3.4 PDU codec (smsgateway.smpp.pdu).

The wire images below are written out by hand from the PDU layouts of the SMPP v3.4
specification (section 4 for the bodies, 3.2 for the header, 5.3 for TLVs); they are
not produced by the codec under test.
"""

from __future__ import annotations

import contextlib
import functools
import random
import struct

import pytest

from smsgateway.smpp.constants import (
    ESM_CLASS_DELIVERY_RECEIPT,
    CommandId,
    CommandStatus,
    MessageState,
    Tlv,
)
from smsgateway.smpp.errors import FrameError, PduError
from smsgateway.smpp.pdu import (
    DEFAULT_MAX_PDU,
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    CancelSm,
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
    SubmitSm,
    SubmitSmResp,
    Unbind,
    decode,
    encode,
)


def hdr(text: str) -> bytes:
    """16 header octets from hex written as four space-separated words."""
    raw = bytes.fromhex(text)
    assert len(raw) == 16
    return raw


# --- hand-written wire images --------------------------------------------------------

# bind_transceiver (4.1.5): system_id, password, system_type, interface_version,
# addr_ton, addr_npi, address_range. Body 12+9+4+1+2+1 = 29 octets, length 45.
BIND_TRX_FRAME = (
    hdr("0000002D 00000009 00000000 00000001")
    + b"smppclient1\x00"  # system_id
    + b"password\x00"  # password
    + b"VMA\x00"  # system_type
    + b"\x34"  # interface_version 3.4
    + b"\x01\x01"  # addr_ton international, addr_npi ISDN
    + b"\x00"  # address_range ""
)
BIND_TRX = BindTransceiver(
    sequence_number=1,
    system_id="smppclient1",
    password="password",
    system_type="VMA",
    interface_version=0x34,
    addr_ton=1,
    addr_npi=1,
    address_range="",
)

# submit_sm (4.4.1) with three SAR TLVs and one vendor-specific (unknown) TLV.
# Mandatory body 54 octets, TLVs 6+5+5+7 = 23, length 16+77 = 93.
SUBMIT_FRAME = (
    hdr("0000005D 00000004 00000000 00000002")
    + b"\x00"  # service_type ""
    + b"\x05\x00"  # source_addr_ton alphanumeric, source_addr_npi unknown
    + b"Acme\x00"  # source_addr
    + b"\x01\x01"  # dest_addr_ton, dest_addr_npi
    + b"447700900123\x00"  # destination_addr
    + b"\x00\x00\x01"  # esm_class, protocol_id, priority_flag
    + b"\x00"  # schedule_delivery_time ""
    + b"000001000000000R\x00"  # validity_period: relative, one day
    + b"\x01\x00\x00\x00"  # registered_delivery, replace_if_present, data_coding, default_msg
    + b"\x05Hello"  # sm_length, short_message
    + bytes.fromhex("020C 0002 1234")  # sar_msg_ref_num
    + bytes.fromhex("020E 0001 02")  # sar_total_segments
    + bytes.fromhex("020F 0001 01")  # sar_segment_seqnum
    + bytes.fromhex("1401 0003 DEAD01")  # vendor tag, unknown to us: raw octets
)
SUBMIT = SubmitSm(
    sequence_number=2,
    source_addr_ton=5,
    source_addr_npi=0,
    source_addr="Acme",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="447700900123",
    priority_flag=1,
    validity_period="000001000000000R",
    registered_delivery=1,
    short_message=b"Hello",
    tlvs={
        Tlv.SAR_MSG_REF_NUM: 0x1234,
        Tlv.SAR_TOTAL_SEGMENTS: 2,
        Tlv.SAR_SEGMENT_SEQNUM: 1,
        0x1401: b"\xde\xad\x01",
    },
)

# submit_sm_resp (4.4.2): message_id. Length 16+9 = 25.
SUBMIT_RESP_FRAME = hdr("00000019 80000004 00000000 00000002") + b"msg-0001\x00"
SUBMIT_RESP = SubmitSmResp(sequence_number=2, message_id="msg-0001")

# deliver_sm (4.6.1) carrying a delivery receipt (esm_class 0x04, appendix B text) with
# receipted_message_id and message_state TLVs. Mandatory body 33+1+105 = 138 octets,
# TLVs 13+5 = 18, length 16+156 = 172.
RECEIPT_TEXT = (
    b"id:msg-0001 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201"
    b" stat:DELIVRD err:000 text:Hello"
)
RECEIPT_FRAME = (
    hdr("000000AC 00000005 00000000 00000003")
    + b"\x00"  # service_type
    + b"\x01\x01"
    + b"447700900123\x00"  # source_addr: the handset
    + b"\x05\x00"
    + b"Acme\x00"  # destination_addr: the original sender
    + b"\x04\x00\x00"  # esm_class: SMSC delivery receipt, protocol_id, priority_flag
    + b"\x00\x00"  # schedule_delivery_time, validity_period
    + b"\x00\x00\x00\x00"
    + b"\x69"  # sm_length 105
    + RECEIPT_TEXT
    + bytes.fromhex("001E 0009")
    + b"msg-0001\x00"  # receipted_message_id (C-string)
    + bytes.fromhex("0427 0001 02")  # message_state DELIVERED
)
RECEIPT = DeliverSm(
    sequence_number=3,
    source_addr_ton=1,
    source_addr_npi=1,
    source_addr="447700900123",
    dest_addr_ton=5,
    dest_addr_npi=0,
    destination_addr="Acme",
    esm_class=ESM_CLASS_DELIVERY_RECEIPT,
    short_message=RECEIPT_TEXT,
    tlvs={Tlv.RECEIPTED_MESSAGE_ID: "msg-0001", Tlv.MESSAGE_STATE: MessageState.DELIVERED},
)

ENQUIRE_FRAME = hdr("00000010 00000015 00000000 00000007")
ENQUIRE = EnquireLink(sequence_number=7)
ENQUIRE_RESP_FRAME = hdr("00000010 80000015 00000000 00000007")
ENQUIRE_RESP = EnquireLinkResp(sequence_number=7)

# generic_nack (4.3.1) answering an unknown command: status ESME_RINVCMDID.
NACK_FRAME = hdr("00000010 80000000 00000003 00000009")
NACK = GenericNack(sequence_number=9, command_status=CommandStatus.ESME_RINVCMDID)

# query_sm_resp (4.8.2): message_id, final_date, message_state, error_code.
# Body 9+17+1+1 = 28, length 44.
QUERY_RESP_FRAME = (
    hdr("0000002C 80000003 00000000 00000004")
    + b"msg-0001\x00"
    + b"240101120100000+\x00"  # absolute time YYMMDDhhmmsstnnp
    + b"\x02"  # message_state DELIVERED
    + b"\x00"  # error_code
)
QUERY_RESP = QuerySmResp(
    sequence_number=4,
    message_id="msg-0001",
    final_date="240101120100000+",
    message_state=MessageState.DELIVERED,
    error_code=0,
)

# data_sm (4.7.1) with the text in message_payload (UCS-2, data_coding 8).
# Mandatory body 1+2+13+2+13+3 = 34, TLV 4+8 = 12, length 62.
DATA_FRAME = (
    hdr("0000003E 00000103 00000000 00000005")
    + b"\x00"
    + b"\x01\x01"
    + b"447700900123\x00"
    + b"\x01\x01"
    + b"447700900456\x00"
    + b"\x00"  # esm_class
    + b"\x01"  # registered_delivery
    + b"\x08"  # data_coding UCS2
    + bytes.fromhex("0424 0008 0048 0069 0020 20AC")  # message_payload "Hi €" UTF-16BE
)
DATA = DataSm(
    sequence_number=5,
    source_addr_ton=1,
    source_addr_npi=1,
    source_addr="447700900123",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="447700900456",
    registered_delivery=1,
    data_coding=8,
    tlvs={Tlv.MESSAGE_PAYLOAD: "Hi €".encode("utf-16-be")},
)

GOLDEN = [
    pytest.param(BIND_TRX, BIND_TRX_FRAME, id="bind_transceiver"),
    pytest.param(SUBMIT, SUBMIT_FRAME, id="submit_sm+tlvs"),
    pytest.param(SUBMIT_RESP, SUBMIT_RESP_FRAME, id="submit_sm_resp"),
    pytest.param(RECEIPT, RECEIPT_FRAME, id="deliver_sm_receipt"),
    pytest.param(ENQUIRE, ENQUIRE_FRAME, id="enquire_link"),
    pytest.param(ENQUIRE_RESP, ENQUIRE_RESP_FRAME, id="enquire_link_resp"),
    pytest.param(NACK, NACK_FRAME, id="generic_nack"),
    pytest.param(QUERY_RESP, QUERY_RESP_FRAME, id="query_sm_resp"),
    pytest.param(DATA, DATA_FRAME, id="data_sm+message_payload"),
]


@pytest.mark.parametrize(("pdu", "frame"), GOLDEN)
def test_golden_length_field_matches_frame(pdu: Pdu, frame: bytes) -> None:
    # Guards the hand-written images themselves.
    assert struct.unpack(">I", frame[:4])[0] == len(frame)
    assert struct.unpack(">I", frame[4:8])[0] == pdu.command_id


@pytest.mark.parametrize(("pdu", "frame"), GOLDEN)
def test_golden_encode(pdu: Pdu, frame: bytes) -> None:
    assert encode(pdu) == frame


@pytest.mark.parametrize(("pdu", "frame"), GOLDEN)
def test_golden_decode(pdu: Pdu, frame: bytes) -> None:
    got = decode(frame)
    assert type(got) is type(pdu)
    assert got == pdu


def test_decoded_tlv_types() -> None:
    sub = decode(SUBMIT_FRAME)
    assert sub.tlvs == {0x020C: 0x1234, 0x020E: 2, 0x020F: 1, 0x1401: b"\xde\xad\x01"}
    assert isinstance(sub.tlvs[0x020C], int)
    assert isinstance(sub.tlvs[0x1401], bytes)  # unknown tag: raw octets
    rcpt = decode(RECEIPT_FRAME)
    assert rcpt.tlvs[Tlv.RECEIPTED_MESSAGE_ID] == "msg-0001"  # C-string, NUL stripped
    assert rcpt.tlvs[Tlv.MESSAGE_STATE] == 2
    data = decode(DATA_FRAME)
    assert isinstance(data, DataSm)
    assert data.tlvs[Tlv.MESSAGE_PAYLOAD] == b"\x00H\x00i\x00 \x20\xac"


def test_decoded_fields_by_name() -> None:
    b = decode(BIND_TRX_FRAME)
    assert isinstance(b, BindTransceiver)
    assert (b.system_id, b.password, b.system_type) == ("smppclient1", "password", "VMA")
    assert (b.interface_version, b.addr_ton, b.addr_npi, b.address_range) == (0x34, 1, 1, "")
    assert b.sequence_number == 1 and b.command_status == 0
    s = decode(SUBMIT_FRAME)
    assert isinstance(s, SubmitSm)
    assert s.source_addr == "Acme" and s.destination_addr == "447700900123"
    assert s.validity_period == "000001000000000R" and s.schedule_delivery_time == ""
    assert s.priority_flag == 1 and s.registered_delivery == 1
    assert s.short_message == b"Hello"
    q = decode(QUERY_RESP_FRAME)
    assert isinstance(q, QuerySmResp)
    assert (q.message_id, q.final_date, q.message_state, q.error_code) == (
        "msg-0001",
        "240101120100000+",
        2,
        0,
    )


def test_tlv_order_on_the_wire_follows_the_dict() -> None:
    p = SubmitSm(tlvs={Tlv.SAR_SEGMENT_SEQNUM: 1, Tlv.SAR_MSG_REF_NUM: 7})
    assert encode(p).endswith(bytes.fromhex("020F 0001 01 020C 0002 0007"))


def test_tlv_kinds_on_the_wire() -> None:
    tlvs = {
        Tlv.QOS_TIME_TO_LIVE: 0x01020304,  # INT4
        Tlv.DEST_TELEMATICS_ID: 0x0506,  # INT2
        Tlv.ADDITIONAL_STATUS_INFO_TEXT: "ok",  # CSTRING: NUL appended
        Tlv.NETWORK_ERROR_CODE: b"\x03\x00\x01",  # OCTETS
        Tlv.ALERT_ON_MESSAGE_DELIVERY: None,  # EMPTY: zero length
    }
    frame = encode(DataSm(sequence_number=1, tlvs=tlvs))
    assert frame.endswith(
        bytes.fromhex("0017 0004 01020304")
        + bytes.fromhex("0008 0002 0506")
        + bytes.fromhex("001D 0003")
        + b"ok\x00"
        + bytes.fromhex("0423 0003 030001")
        + bytes.fromhex("130C 0000")
    )
    assert decode(frame).tlvs == tlvs


def test_cstring_tlv_without_terminator_is_tolerated() -> None:
    # Several SMSCs send receipted_message_id without its NUL.
    frame = with_length(RECEIPT_FRAME[:-18] + bytes.fromhex("001E 0008") + b"msg-0001")
    assert decode(frame).tlvs == {Tlv.RECEIPTED_MESSAGE_ID: "msg-0001"}


def test_every_command_id_has_a_class() -> None:
    assert set(PDU_CLASSES) == {int(c) for c in CommandId}
    for cid, cls in PDU_CLASSES.items():
        assert cls.command_id == cid
        assert cls().is_response == bool(cid & 0x80000000)
        assert cls().name == CommandId(cid).name.lower()


def test_response_builder() -> None:
    r = SubmitSm(sequence_number=77).response(message_id="x1")
    assert r == SubmitSmResp(sequence_number=77, message_id="x1")
    assert EnquireLink(sequence_number=5).response() == EnquireLinkResp(sequence_number=5)
    nack = DeliverSm(sequence_number=6).response(CommandStatus.ESME_RX_T_APPN)
    assert nack == DeliverSmResp(sequence_number=6, command_status=0x64)
    assert isinstance(BindReceiver().response(system_id="smsc"), Pdu)
    for p in (GenericNack(), Outbind(), AlertNotification(), SubmitSmResp()):
        with pytest.raises(ValueError):
            p.response()


# --- error responses -----------------------------------------------------------------


def test_submit_sm_resp_error_has_no_body() -> None:
    # 4.4.2: "The submit_sm_resp PDU Body is not returned if the command_status field
    # contains a non-zero value." Even a message_id or TLVs set by mistake are dropped.
    p = SubmitSmResp(
        sequence_number=0x0102,
        command_status=CommandStatus.ESME_RINVDSTADR,
        message_id="ignored",
        tlvs={Tlv.ADDITIONAL_STATUS_INFO_TEXT: "nope"},
    )
    assert encode(p) == hdr("00000010 80000004 0000000B 00000102")


@pytest.mark.parametrize(
    ("cls", "cid"),
    [
        (SubmitSmResp, "80000004"),
        (DeliverSmResp, "80000005"),
        (DataSmResp, "80000103"),
        (QuerySmResp, "80000003"),
    ],
)
def test_error_response_decodes_from_header_only(cls: type[Pdu], cid: str) -> None:
    got = decode(hdr(f"00000010 {cid} 00000045 0000002A"))
    assert got == cls(sequence_number=42, command_status=CommandStatus.ESME_RSUBMITFAIL)
    assert encode(got) == hdr(f"00000010 {cid} 00000045 0000002A")


def test_error_response_with_a_body_anyway_is_tolerated() -> None:
    # Some SMSCs send message_id "" (one NUL) even on error.
    got = decode(hdr("00000011 80000004 00000058 00000003") + b"\x00")
    assert got == SubmitSmResp(sequence_number=3, command_status=CommandStatus.ESME_RTHROTTLED)


def test_bind_transceiver_resp_error_with_empty_body() -> None:
    got = decode(hdr("00000010 80000009 0000000D 00000001"))
    assert got == BindTransceiverResp(
        sequence_number=1, command_status=CommandStatus.ESME_RBINDFAIL, system_id=""
    )


def test_bind_transceiver_resp_with_sc_interface_version() -> None:
    frame = hdr("0000001A 80000009 00000000 00000001") + b"SMSC\x00" + bytes.fromhex("0210 0001 34")
    p = BindTransceiverResp(
        sequence_number=1, system_id="SMSC", tlvs={Tlv.SC_INTERFACE_VERSION: 0x34}
    )
    assert decode(frame) == p
    assert encode(p) == frame


def test_successful_response_with_empty_body_defaults() -> None:
    assert decode(hdr("00000010 80000004 00000000 00000005")) == SubmitSmResp(5)


# --- hostile input: decode -----------------------------------------------------------


def expect_error(frame: bytes, status: int, seq: int, cls: type[PduError] = PduError) -> PduError:
    with pytest.raises(PduError) as info:
        decode(frame)
    err = info.value
    assert isinstance(err, cls)
    assert err.status == status, f"status 0x{err.status:X}, want 0x{status:X}: {err}"
    assert err.sequence_number == seq
    return err


def with_length(frame: bytes) -> bytes:
    """`frame` with its command_length patched to its actual size."""
    return struct.pack(">I", len(frame)) + frame[4:]


@pytest.mark.parametrize("size", range(16))
def test_shorter_than_header(size: int) -> None:
    frame = ENQUIRE_FRAME[:size]
    expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 0, FrameError)


@pytest.mark.parametrize("delta", [-5, -1, 1, 16, 0xFFFF])
def test_length_field_differs_from_frame(delta: int) -> None:
    frame = struct.pack(">I", len(SUBMIT_FRAME) + delta) + SUBMIT_FRAME[4:]
    err = expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 2, FrameError)
    assert err.command_id == CommandId.SUBMIT_SM


def test_length_field_below_16_in_a_full_frame() -> None:
    frame = hdr("00000008 00000015 00000000 00000063")
    expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 0x63, FrameError)


@pytest.mark.parametrize("cid", [0x00000000, 0x00000004 | 0x40000000, 0x00000021, 0x7FFFFFFF])
def test_unknown_command_id(cid: int) -> None:
    frame = struct.pack(">IIII", 16, cid, 0, 0xDEADBEEF)
    err = expect_error(frame, CommandStatus.ESME_RINVCMDID, 0xDEADBEEF)
    assert not isinstance(err, FrameError)
    assert err.command_id == cid


def test_cstring_without_terminator() -> None:
    frame = with_length(hdr("00000000 00000009 00000000 00000011") + b"smppclient1")
    expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 0x11)
    # Same for a response's only field.
    frame = with_length(hdr("00000000 80000004 00000000 00000012") + b"msg-0001")
    expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 0x12)


def test_sm_length_overruns_body() -> None:
    frame = SUBMIT_FRAME[: 16 + 48] + b"\xff" + b"Hello"
    expect_error(with_length(frame), CommandStatus.ESME_RINVCMDLEN, 2)


def test_request_with_empty_body() -> None:
    for cid in (1, 2, 3, 4, 5, 7, 8, 9, 0x0B, 0x102, 0x103):
        expect_error(struct.pack(">IIII", 16, cid, 0, 99), CommandStatus.ESME_RINVCMDLEN, 99)


def _tlv_boundaries(frame: bytes, body_end: int) -> set[int]:
    """Offsets in `frame` at which a TLV starts or the frame ends."""
    out = {body_end}
    off = body_end
    while off < len(frame):
        off += 4 + struct.unpack(">H", frame[off + 2 : off + 4])[0]
        out.add(off)
    return out


SUBMIT_BODY_END = len(SUBMIT_FRAME) - 23  # mandatory body ends where the TLVs begin


def test_truncated_submit_sm_at_every_cut_point() -> None:
    boundaries = _tlv_boundaries(SUBMIT_FRAME, SUBMIT_BODY_END)
    assert boundaries == {70, 76, 81, 86, 93}
    full = decode(SUBMIT_FRAME)
    for cut in range(16, len(SUBMIT_FRAME)):
        frame = with_length(SUBMIT_FRAME[:cut])
        if cut < SUBMIT_BODY_END:
            err = expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 2)
            assert err.command_id == CommandId.SUBMIT_SM
        elif cut in boundaries:
            # Cut between TLVs: a valid submit_sm with the leading TLVs only.
            got = decode(frame)
            assert isinstance(got, SubmitSm)
            n = sorted(boundaries).index(cut)
            assert got.tlvs == dict(list(full.tlvs.items())[:n])
            assert got.short_message == b"Hello"
        else:
            expect_error(frame, CommandStatus.ESME_RINVOPTPARSTREAM, 2)


@pytest.mark.parametrize("frame", [RECEIPT_FRAME, DATA_FRAME, BIND_TRX_FRAME, QUERY_RESP_FRAME])
def test_truncated_other_pdus_never_raise_anything_else(frame: bytes) -> None:
    for cut in range(len(frame)):
        with contextlib.suppress(PduError):
            decode(with_length(frame[:cut]) if cut >= 4 else frame[:cut])


def test_tlv_header_truncated() -> None:
    for tail in (b"\x02", b"\x02\x0c", b"\x02\x0c\x00"):
        expect_error(with_length(SUBMIT_FRAME + tail), CommandStatus.ESME_RINVOPTPARSTREAM, 2)


def test_tlv_length_overruns_body() -> None:
    frame = with_length(SUBMIT_FRAME + bytes.fromhex("0204 0005 0001"))
    err = expect_error(frame, CommandStatus.ESME_RINVOPTPARSTREAM, 2)
    assert err.command_id == CommandId.SUBMIT_SM
    frame = with_length(RECEIPT_FRAME[:-5] + bytes.fromhex("0427 FFFF 02"))
    expect_error(frame, CommandStatus.ESME_RINVOPTPARSTREAM, 3)


@pytest.mark.parametrize("cls", [EnquireLink, EnquireLinkResp, Unbind, GenericNack])
def test_tlvs_on_a_pdu_without_body(cls: type[Pdu]) -> None:
    frame = struct.pack(">IIII", 21, cls.command_id, 0, 0x31) + bytes.fromhex("0427 0001 02")
    err = expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 0x31)
    assert err.command_id == cls.command_id


def test_tlvs_on_outbind() -> None:
    frame = with_length(
        hdr("00000000 0000000B 00000000 00000001")
        + b"smsc\x00pw\x00"
        + bytes.fromhex("0210 0001 34")
    )
    expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 1)


@pytest.mark.parametrize(
    "tail",
    [b"\x00\x00\x00", b"\x04\x27\x00\x09\x02"],
    ids=["3-octets", "overrunning-tlv"],
)
def test_trailing_octets_on_enquire_link_are_a_length_error(tail: bytes) -> None:
    # enquire_link has no body at all (4.11.1), so any octet after the header makes
    # command_length wrong, whether or not those octets happen to parse as TLVs.
    frame = with_length(ENQUIRE_FRAME + tail)
    expect_error(frame, CommandStatus.ESME_RINVCMDLEN, 7)


def test_never_reads_past_the_frame() -> None:
    # The frame ends inside source_addr; a NUL later in the same buffer (but past
    # `end`) must not complete it, in the fast decoder nor in the generic walker.
    fast = SubmitSm._decode_body
    generic = functools.partial(Pdu._decode_body.__func__, SubmitSm)  # type: ignore[attr-defined]
    for end in range(16, SUBMIT_BODY_END):
        for walker in (fast, generic):
            with pytest.raises(PduError) as info:
                walker(SUBMIT_FRAME, 16, end, CommandId.SUBMIT_SM, 0, 2)
            assert info.value.status == CommandStatus.ESME_RINVCMDLEN
    # And the mandatory body parsed up to its real end stops exactly there.
    for walker in (fast, generic):
        values, off = walker(SUBMIT_FRAME, 16, SUBMIT_BODY_END, CommandId.SUBMIT_SM, 0, 2)
        assert off == SUBMIT_BODY_END
        assert values[-1] == b"Hello"


# --- encoding errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "pdu",
    [
        pytest.param(SubmitSm(source_addr="1" * 21), id="source_addr-21"),
        pytest.param(SubmitSm(destination_addr="1" * 21), id="destination_addr-21"),
        pytest.param(DeliverSm(source_addr="1" * 21), id="deliver-source_addr-21"),
        pytest.param(SubmitSm(service_type="CMTCMT"), id="service_type-6"),
        pytest.param(SubmitSm(validity_period="0" * 17), id="validity-17"),
        pytest.param(BindTransceiver(system_id="s" * 16), id="system_id-16"),
        pytest.param(BindTransceiver(password="p" * 9), id="password-9"),
        pytest.param(QuerySm(message_id="m" * 65), id="message_id-65"),
        pytest.param(DataSm(source_addr="1" * 65), id="data_sm-source_addr-65"),
        pytest.param(SubmitSm(source_addr="44\x0077"), id="nul-source_addr"),
        pytest.param(SubmitSm(service_type="\x00"), id="nul-service_type"),
        pytest.param(BindTransceiver(system_id="a\x00b"), id="nul-system_id"),
        pytest.param(CancelSm(message_id="x\x00"), id="nul-message_id"),
        pytest.param(SubmitSm(source_addr="€"), id="non-latin1-address"),
        pytest.param(SubmitSm(schedule_delivery_time="€"), id="non-latin1-schedule"),
        pytest.param(BindTransceiver(password="€"), id="non-latin1-password"),
        pytest.param(SubmitSm(esm_class=256), id="esm_class-256"),
        pytest.param(SubmitSm(data_coding=-1), id="data_coding--1"),
        pytest.param(DeliverSm(sm_default_msg_id=256), id="deliver-default_msg_id-256"),
        pytest.param(BindTransceiver(addr_ton=256), id="addr_ton-256"),
        pytest.param(QuerySmResp(message_state=256), id="message_state-256"),
        pytest.param(SubmitSm(short_message=b"x" * 256), id="short_message-256"),
        pytest.param(DeliverSm(short_message=b"x" * 300), id="deliver-short_message-300"),
        pytest.param(ReplaceSm(short_message=b"x" * 256), id="replace-short_message-256"),
        pytest.param(EnquireLink(sequence_number=1 << 32), id="sequence-2**32"),
        pytest.param(EnquireLink(sequence_number=-1), id="sequence--1"),
        pytest.param(GenericNack(command_status=1 << 32), id="status-2**32"),
        pytest.param(SubmitSm(tlvs={Tlv.SAR_TOTAL_SEGMENTS: 256}), id="tlv-int1-256"),
        pytest.param(SubmitSm(tlvs={Tlv.SAR_MSG_REF_NUM: -1}), id="tlv-int2--1"),
        pytest.param(SubmitSm(tlvs={Tlv.QOS_TIME_TO_LIVE: 1 << 32}), id="tlv-int4-2**32"),
        pytest.param(SubmitSm(tlvs={Tlv.RECEIPTED_MESSAGE_ID: 5}), id="tlv-int-for-cstring"),
        pytest.param(SubmitSm(tlvs={0x1401: 5}), id="tlv-int-for-unknown"),
        pytest.param(SubmitSm(tlvs={Tlv.MESSAGE_STATE: True}), id="tlv-bool"),
        pytest.param(SubmitSm(tlvs={Tlv.MESSAGE_STATE: 1.0}), id="tlv-float"),
        pytest.param(SubmitSm(tlvs={Tlv.RECEIPTED_MESSAGE_ID: "a\x00"}), id="tlv-nul"),
        pytest.param(SubmitSm(tlvs={Tlv.MESSAGE_PAYLOAD: b"x" * 65536}), id="tlv-65536"),
        pytest.param(SubmitSm(tlvs={Tlv.RECEIPTED_MESSAGE_ID: "€"}), id="tlv-non-latin1"),
        pytest.param(SubmitSm(tlvs={0x10000: b""}), id="tlv-tag-65536"),
        pytest.param(SubmitSm(tlvs={-1: b"x"}), id="tlv-tag--1"),
    ],
)
def test_encode_rejects(pdu: Pdu) -> None:
    with pytest.raises(PduError):
        encode(pdu)


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitSm(source_addr="1" * 20, destination_addr="2" * 20, service_type="CMTXX"),
        SubmitSm(short_message=b"x" * 255, esm_class=255, data_coding=0),
        BindTransceiver(system_id="s" * 15, password="p" * 8, system_type="t" * 12),
        DataSm(source_addr="1" * 64, destination_addr="2" * 64),
        SubmitSm(tlvs={Tlv.MESSAGE_PAYLOAD: b"x" * 65535}),
        EnquireLink(sequence_number=0xFFFFFFFF),
        SubmitSm(source_addr="ÿé"),
    ],
)
def test_encode_limits_accepted(pdu: Pdu) -> None:
    assert decode(encode(pdu)) == pdu


# --- Framer ----------------------------------------------------------------------------

STREAM_FRAMES = [
    BIND_TRX_FRAME,
    SUBMIT_FRAME,
    ENQUIRE_FRAME,
    SUBMIT_RESP_FRAME,
    RECEIPT_FRAME,
    NACK_FRAME,
    QUERY_RESP_FRAME,
    DATA_FRAME,
    ENQUIRE_RESP_FRAME,
]
STREAM = b"".join(STREAM_FRAMES)


def test_framer_whole_stream_at_once() -> None:
    f = Framer()
    assert list(f.feed(STREAM)) == STREAM_FRAMES
    assert f.buffered == 0


def test_framer_one_byte_at_a_time() -> None:
    f = Framer()
    out: list[bytes] = []
    for i in range(len(STREAM)):
        out.extend(f.feed(STREAM[i : i + 1]))
        assert b"".join(out) + STREAM[i + 1 - f.buffered : i + 1] == STREAM[: i + 1]
    assert out == STREAM_FRAMES
    assert f.buffered == 0


def test_framer_buffered_counts_incomplete_frame() -> None:
    f = Framer()
    assert list(f.feed(SUBMIT_FRAME + RECEIPT_FRAME[:10])) == [SUBMIT_FRAME]
    assert f.buffered == 10
    assert list(f.feed(RECEIPT_FRAME[10:-1])) == []
    assert f.buffered == len(RECEIPT_FRAME) - 1
    assert list(f.feed(RECEIPT_FRAME[-1:])) == [RECEIPT_FRAME]
    assert f.buffered == 0


@pytest.mark.parametrize("seed", range(20))
def test_framer_random_chunks(seed: int) -> None:
    rng = random.Random(seed)
    stream = STREAM * 3
    f = Framer()
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        n = rng.choice([0, 1, 2, 3, 4, 5, 15, 16, 17, rng.randrange(1, 300)])
        out.extend(f.feed(stream[pos : pos + n]))
        pos += n
    assert out == STREAM_FRAMES * 3
    assert f.buffered == 0


def test_framer_frames_decode() -> None:
    assert [decode(x) for x in Framer().feed(STREAM)] == [
        BIND_TRX,
        SUBMIT,
        ENQUIRE,
        SUBMIT_RESP,
        RECEIPT,
        NACK,
        QUERY_RESP,
        DATA,
        ENQUIRE_RESP,
    ]


def test_framer_length_above_max() -> None:
    f = Framer(max_pdu=64)
    frame = struct.pack(">IIII", 65, CommandId.SUBMIT_SM, 0, 0x77)
    with pytest.raises(FrameError) as info:
        list(f.feed(frame))
    assert info.value.status == CommandStatus.ESME_RINVCMDLEN
    assert info.value.sequence_number == 0x77
    assert info.value.command_id == CommandId.SUBMIT_SM


def test_framer_exactly_max_is_accepted() -> None:
    assert list(Framer(max_pdu=len(SUBMIT_FRAME)).feed(SUBMIT_FRAME)) == [SUBMIT_FRAME]
    with pytest.raises(FrameError):
        list(Framer(max_pdu=len(SUBMIT_FRAME) - 1).feed(SUBMIT_FRAME))


def test_framer_default_max() -> None:
    big = encode(DataSm(tlvs={Tlv.MESSAGE_PAYLOAD: b"x" * (DEFAULT_MAX_PDU - 16 - 20)}))
    assert len(big) <= DEFAULT_MAX_PDU
    assert list(Framer().feed(big)) == [big]
    with pytest.raises(FrameError):
        list(Framer().feed(struct.pack(">I", DEFAULT_MAX_PDU + 1)))


@pytest.mark.parametrize("length", [0, 1, 15])
def test_framer_length_below_header(length: int) -> None:
    # Known as soon as the 4-octet length arrives, before the rest of the header.
    with pytest.raises(FrameError) as info:
        list(Framer().feed(struct.pack(">I", length)))
    assert info.value.status == CommandStatus.ESME_RINVCMDLEN
    assert info.value.sequence_number == 0
    # With a whole header at hand the error carries its sequence number.
    with pytest.raises(FrameError) as info:
        list(Framer().feed(struct.pack(">IIII", length, 0x15, 0, 12345)))
    assert info.value.sequence_number == 12345


def test_framer_yields_good_frames_before_a_bad_length() -> None:
    f = Framer()
    got: list[bytes] = []
    bad = b"\x00\x00\x00\x05" + b"\x00" * 12
    with pytest.raises(FrameError):
        # The error may come with the frames or at the next feed(); both are fine,
        # as long as the good frames come out first.
        for chunk in (SUBMIT_FRAME + ENQUIRE_FRAME + bad, b""):
            got.extend(f.feed(chunk))
    assert got == [SUBMIT_FRAME, ENQUIRE_FRAME]
    assert f.buffered == 16  # the unusable rest stays; the caller closes the stream


def test_framer_feed_stores_even_when_not_iterated() -> None:
    # "feed() stores bytes": a caller that feeds a partial frame and only iterates on
    # the next call (nothing to yield yet, after all) must not lose those bytes.
    f = Framer()
    f.feed(SUBMIT_FRAME[:10])
    assert list(f.feed(SUBMIT_FRAME[10:])) == [SUBMIT_FRAME]


def test_framer_break_does_not_replay_the_frame() -> None:
    # A consumer that leaves the loop after a frame (break, or an exception in its
    # handler) has consumed that frame: the next feed() must not hand it out again.
    f = Framer()
    for frame in f.feed(SUBMIT_FRAME + ENQUIRE_FRAME):
        assert frame == SUBMIT_FRAME
        break
    assert list(f.feed(NACK_FRAME)) == [ENQUIRE_FRAME, NACK_FRAME]


def test_framer_abandoned_iteration_does_not_replay_frames() -> None:
    # A consumer that stops after one frame (an exception in its handler keeps the
    # half-run iterator alive in the traceback) and feeds more data must not get the
    # same PDU twice, e.g. a submit_sm sent twice to the handset.
    f = Framer()
    pending = iter(f.feed(SUBMIT_FRAME + ENQUIRE_FRAME))
    got = [next(pending)]
    got += list(f.feed(NACK_FRAME))
    assert got.count(SUBMIT_FRAME) == 1, [decode(x).name for x in got]
    rest = list(pending)
    assert sorted(got + rest) == sorted([SUBMIT_FRAME, ENQUIRE_FRAME, NACK_FRAME])


def test_framer_waits_for_the_length_field() -> None:
    f = Framer()
    for i in range(3):
        assert list(f.feed(b"\x00")) == []
        assert f.buffered == i + 1
