"""Tests for smsgateway.smpp.receipt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.smpp.constants import MessageState, Tlv
from smsgateway.smpp.receipt import Receipt, id_variants, ids_match, parse_receipt

CANONICAL = (
    "id:0123456789 sub:001 dlvrd:001 submit date:2401311415 done date:2401311416 "
    "stat:DELIVRD err:000 text:Hello world"
)


def test_canonical() -> None:
    r = parse_receipt(CANONICAL)
    assert r == Receipt(
        message_id="0123456789",
        state=MessageState.DELIVERED,
        error="000",
        submit_date="2401311415",
        done_date="2401311416",
        dlvrd="001",
        sub="001",
        text="Hello world",
        stat="DELIVRD",
    )
    assert r.is_final
    assert r.submitted_at == datetime(2024, 1, 31, 14, 15, tzinfo=UTC)
    assert r.done_at == datetime(2024, 1, 31, 14, 16, tzinfo=UTC)
    assert (r.delivered_count, r.submitted_count) == (1, 1)


def test_bytes_input() -> None:
    r = parse_receipt(CANONICAL.encode("ascii") + b"\x00")
    assert r is not None
    assert r.message_id == "0123456789"
    assert r.text == "Hello world"
    latin = parse_receipt(b"id:42 stat:UNDELIV text:caf\xe9")
    assert latin is not None
    assert latin.text == "café"


def test_uppercase_and_lowercase() -> None:
    upper = parse_receipt(CANONICAL.upper())
    assert upper is not None
    assert upper.message_id == "0123456789"
    assert upper.state is MessageState.DELIVERED
    assert upper.done_at == datetime(2024, 1, 31, 14, 16, tzinfo=UTC)
    lower = parse_receipt("ID:AbC SUB:1 STAT:delivrd ERR:5")
    assert lower is not None
    assert lower.message_id == "AbC"
    assert lower.state is MessageState.DELIVERED
    assert lower.error == "5"


def test_reordered_fields_and_extra_spaces() -> None:
    r = parse_receipt(
        "stat:EXPIRED   err:012  id: 77  done date: 2402011200  dlvrd:000 submit date:2402011100"
    )
    assert r is not None
    assert r.message_id == "77"
    assert r.state is MessageState.EXPIRED
    assert r.error == "012"
    assert r.delivered_count == 0
    assert r.submitted_at == datetime(2024, 2, 1, 11, 0, tzinfo=UTC)
    assert r.done_at == datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
    assert r.text is None


def test_missing_fields() -> None:
    r = parse_receipt("id:abc")
    assert r is not None
    assert r.message_id == "abc"
    assert r.state is MessageState.UNKNOWN
    assert (r.error, r.submitted_at, r.done_at, r.delivered_count, r.text, r.stat) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_date_variants() -> None:
    r = parse_receipt("id:1 submit_date:240131141530 done_date:2401311416 stat:DELIVRD")
    assert r is not None
    assert r.submitted_at == datetime(2024, 1, 31, 14, 15, 30, tzinfo=UTC)
    assert r.done_at == datetime(2024, 1, 31, 14, 16, tzinfo=UTC)
    bad = parse_receipt("id:1 submit date:2413311415 done date:123")
    assert bad is not None
    assert bad.submitted_at is None
    assert bad.done_at is None


def test_text_is_last_and_may_contain_anything() -> None:
    r = parse_receipt("id:9 stat:DELIVRD err:000 text:id:666 stat:REJECTD err:1 ünïcode")
    assert r is not None
    assert r.message_id == "9"
    assert r.state is MessageState.DELIVERED
    assert r.error == "000"
    assert r.text == "id:666 stat:REJECTD err:1 ünïcode"


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", MessageState.DELIVERED),
        ("delivered", MessageState.DELIVERED),
        ("EXPIRED", MessageState.EXPIRED),
        ("DELETED", MessageState.DELETED),
        ("UNDELIV", MessageState.UNDELIVERABLE),
        ("ACCEPTD", MessageState.ACCEPTED),
        ("UNKNOWN", MessageState.UNKNOWN),
        ("REJECTD", MessageState.REJECTED),
        ("EnRoute", MessageState.ENROUTE),
        ("5", MessageState.UNDELIVERABLE),
        ("WHATEVER", MessageState.UNKNOWN),
    ],
)
def test_states(stat: str, state: MessageState) -> None:
    r = parse_receipt(f"id:1 stat:{stat}")
    assert r is not None
    assert r.state is state
    assert r.stat == stat
    assert r.is_final is (state is not MessageState.ENROUTE)


def test_no_id_anywhere() -> None:
    assert parse_receipt("sub:001 stat:DELIVRD") is None
    assert parse_receipt("") is None
    assert parse_receipt(b"") is None
    assert parse_receipt("hello there") is None
    assert parse_receipt("id: text:id:5") is None  # the only id is inside text


def test_tlvs_take_precedence() -> None:
    tlvs: dict[int, object] = {
        Tlv.RECEIPTED_MESSAGE_ID: "ABCDEF",
        Tlv.MESSAGE_STATE: MessageState.UNDELIVERABLE,
        Tlv.NETWORK_ERROR_CODE: bytes([3, 0x00, 0x22]),
    }
    r = parse_receipt(CANONICAL, tlvs)
    assert r is not None
    assert r.message_id == "ABCDEF"
    assert r.state is MessageState.UNDELIVERABLE
    assert r.error == "034"
    assert r.network_error_type == 3
    assert r.stat == "DELIVRD"  # raw text value still available
    assert r.done_at == datetime(2024, 1, 31, 14, 16, tzinfo=UTC)


def test_tlvs_alone_are_enough() -> None:
    r = parse_receipt(b"", {Tlv.RECEIPTED_MESSAGE_ID: b"xyz\x00", Tlv.MESSAGE_STATE: b"\x02"})
    assert r is not None
    assert r.message_id == "xyz"
    assert r.state is MessageState.DELIVERED


def test_bad_tlvs_fall_back_to_text() -> None:
    tlvs: dict[int, object] = {
        Tlv.RECEIPTED_MESSAGE_ID: "",
        Tlv.MESSAGE_STATE: 99,
        Tlv.NETWORK_ERROR_CODE: b"\x01",
    }
    r = parse_receipt(CANONICAL, tlvs)
    assert r is not None
    assert r.message_id == "0123456789"
    assert r.state is MessageState.DELIVERED
    assert r.error == "000"


def test_hex_id() -> None:
    r = parse_receipt("id:7f3A9c sub:001 stat:DELIVRD")
    assert r is not None
    assert r.message_id == "7f3A9c"  # as given
    assert str(0x7F3A9C) in id_variants(r.message_id)


def test_id_variants() -> None:
    assert "3039" in id_variants("12345")
    assert "12345" in id_variants("3039")
    assert id_variants("12345")[0] == "12345"
    assert "abcdef" in id_variants("ABCDEF")
    assert str(0xABCDEF) in id_variants("ABCDEF")
    assert "123" in id_variants("0000000123")
    assert "7b" in id_variants("0000000123")
    assert id_variants("not-a-number") == ("not-a-number",)
    assert id_variants("Msg-1") == ("Msg-1", "msg-1")
    long_digits = "9" * 200
    assert id_variants(long_digits) == (long_digits,)
    assert ids_match("12345", "3039")
    assert ids_match("0000007B", "123")
    assert not ids_match("12345", "12346")


@given(st.integers(0, 2**64))
def test_id_variants_decimal_hex_symmetry(value: int) -> None:
    assert ids_match(str(value), format(value, "x"))
    assert ids_match(str(value), format(value, "X"))


@given(st.text(), st.binary())
def test_never_raises(text: str, data: bytes) -> None:
    parse_receipt(text)
    parse_receipt(data)
    parse_receipt("id:" + text)
