"""Tests for smsgateway.smpp.gsm and smsgateway.smpp.text."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgateway.smpp.constants import ESM_CLASS_UDHI, Tlv
from smsgateway.smpp.gsm import (
    BASIC_TABLE,
    ESCAPE,
    EXTENSION_TABLE,
    NotGsmEncodable,
    decode_gsm,
    encode_gsm,
    gsm_septets,
    pack_septets,
    unpack_septets,
)
from smsgateway.smpp.text import (
    Concat,
    Encoding,
    NotEncodable,
    PartialMessage,
    Reassembler,
    Segment,
    TooManyParts,
    choose_encoding,
    concat_from_tlvs,
    concat_from_udh,
    decode_short_message,
    estimate,
    split,
)

GSM_CHARS = BASIC_TABLE.replace("\x1b", "") + "".join(EXTENSION_TABLE.values())
METHODS = ("udh8", "udh16", "sar", "payload")


def reassemble(segments: list[Segment]) -> str | None:
    """Decode segments the way an inbound path would and join them."""
    reassembler = Reassembler()
    result: str | None = None
    for segment in segments:
        payload = segment.tlvs.get(Tlv.MESSAGE_PAYLOAD)
        data = payload if isinstance(payload, bytes) else segment.short_message
        inbound = decode_short_message(
            data, segment.data_coding, udhi=bool(segment.esm_class_bits & ESM_CLASS_UDHI)
        )
        concat = inbound.concat or concat_from_tlvs(segment.tlvs)
        out = reassembler.add_concat("src", "dst", concat, inbound.text, now=0.0)
        if out is not None:
            assert result is None, "completed twice"
            result = out
    assert len(reassembler) == 0
    return result


def body(segment: Segment) -> bytes:
    """short_message without its UDH."""
    data = segment.short_message
    return data[1 + data[0] :] if segment.esm_class_bits & ESM_CLASS_UDHI else data


# --- gsm.py -------------------------------------------------------------------------


def test_tables_are_the_spec() -> None:
    assert len(BASIC_TABLE) == 128
    assert len(set(BASIC_TABLE)) == 128
    assert BASIC_TABLE[0x00] == "@"
    assert BASIC_TABLE[0x02] == "$"
    assert BASIC_TABLE[0x11] == "_"
    assert BASIC_TABLE[0x24] == "¤"
    assert BASIC_TABLE[0x40] == "¡"
    assert BASIC_TABLE[0x60] == "¿"
    assert BASIC_TABLE[0x7F] == "à"
    assert EXTENSION_TABLE[0x65] == "€"
    assert sorted(EXTENSION_TABLE.values()) == sorted("\f^{}\\[~]|€")


@pytest.mark.parametrize("char", list("€[]{}^~|\\\f"))
def test_extension_chars_take_two_septets(char: str) -> None:
    assert gsm_septets(char) == 2
    assert gsm_septets(f"a{char}b") == 4
    assert encode_gsm(char)[0] == ESCAPE
    assert len(encode_gsm(char)) == 2


def test_septet_counts() -> None:
    assert gsm_septets("") == 0
    assert gsm_septets("Hello @£$") == 9
    assert gsm_septets("ΔΦΓΛΩΠΨΣΘΞ") == 10
    for char in ("`", "ç", "😀", "\x00", "\t", "ä\u0301", "Ж"):
        assert gsm_septets(char) is None


def test_encode_known_bytes() -> None:
    assert encode_gsm("@£$") == b"\x00\x01\x02"
    assert encode_gsm("a€") == b"a\x1b\x65"
    assert encode_gsm("[]") == b"\x1b\x3c\x1b\x3e"


def test_not_gsm_encodable_names_the_character() -> None:
    with pytest.raises(NotGsmEncodable) as info:
        encode_gsm("ab`c")
    assert isinstance(info.value, ValueError)
    assert info.value.char == "`"
    assert info.value.position == 2


def test_decode_is_tolerant() -> None:
    assert decode_gsm(b"abc\x1b") == "abc"  # trailing lone escape dropped
    assert decode_gsm(b"\x1bA") == "A"  # unknown extension: base character
    assert decode_gsm(b"\x1b\x1bA") == " A"  # escape-escape shown as a space
    assert decode_gsm(b"a\x80\xff") == "a??"  # not septets
    assert decode_gsm(b"") == ""


@given(st.text(alphabet=GSM_CHARS))
def test_gsm_round_trip(text: str) -> None:
    encoded = encode_gsm(text)
    assert len(encoded) == gsm_septets(text)
    assert decode_gsm(encoded) == text


def test_gsm_round_trip_whole_alphabet() -> None:
    assert decode_gsm(encode_gsm(GSM_CHARS)) == GSM_CHARS


@given(st.binary())
def test_decode_gsm_never_raises(data: bytes) -> None:
    decode_gsm(data)


def test_pack_known_vector() -> None:
    assert pack_septets(b"hellohello").hex() == "e8329bfd4697d9ec37"
    assert unpack_septets(bytes.fromhex("e8329bfd4697d9ec37"), 10) == b"hellohello"


@given(st.binary().map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill_bits: int) -> None:
    packed = pack_septets(septets, fill_bits)
    assert len(packed) == (len(septets) * 7 + fill_bits + 7) // 8
    assert unpack_septets(packed, len(septets), fill_bits) == septets


def test_unpack_short_data_does_not_raise() -> None:
    assert unpack_septets(b"\x41", 5) == b"\x41"
    assert unpack_septets(b"", 3) == b""


# --- encoding choice and estimates --------------------------------------------------


def test_choose_encoding() -> None:
    assert choose_encoding("hello {world}") is Encoding.GSM7
    assert choose_encoding("привет") is Encoding.UCS2
    assert choose_encoding("café") is Encoding.GSM7  # é is in the alphabet
    assert choose_encoding("ça") is Encoding.UCS2  # ç is not
    assert choose_encoding("hello", force="ucs2") is Encoding.UCS2
    assert choose_encoding("ça", force="latin1") is Encoding.LATIN1
    assert choose_encoding("abc", force="ascii") is Encoding.ASCII


@pytest.mark.parametrize(
    ("text", "force", "char"),
    [
        ("a😀", "gsm7", "😀"),
        ("aЖ", "latin1", "Ж"),
        ("aé", "ascii", "é"),
        ("a\ud800", "ucs2", "\ud800"),
    ],
)
def test_forced_encoding_that_cannot_carry_text(text: str, force: str, char: str) -> None:
    with pytest.raises(NotEncodable) as info:
        choose_encoding(text, force=force)
    assert isinstance(info.value, ValueError)
    assert info.value.char == char
    assert info.value.position == 1


def test_unknown_forced_encoding() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        choose_encoding("a", force="ebcdic")


def test_lone_surrogate_rejected_in_auto_mode() -> None:
    with pytest.raises(NotEncodable):
        split("a\udc00", reference=1)


def test_gsm_part_limits() -> None:
    one = estimate("a" * 160)
    assert (one.encoding, one.units, one.parts, one.per_part, one.chars_left) == (
        Encoding.GSM7,
        160,
        1,
        160,
        0,
    )
    two = estimate("a" * 161)
    assert (two.parts, two.per_part, two.chars_left) == (2, 153, 153 - 8)
    assert len(split("a" * 160, reference=1)) == 1
    assert len(split("a" * 161, reference=1)) == 2
    assert estimate("a" * 306).parts == 2
    assert estimate("a" * 307).parts == 3
    assert estimate("a" * 305, method="udh16").parts == 3
    assert estimate("a" * 304, method="udh16").parts == 2
    assert estimate("a" * 320, method="sar").parts == 2
    assert estimate("a" * 321, method="sar").parts == 3
    assert estimate("€" * 80).parts == 1
    assert estimate("€" * 81).parts == 2


def test_ucs2_part_limits() -> None:
    assert estimate("ж" * 70).parts == 1
    assert estimate("ж" * 70).chars_left == 0
    assert estimate("ж" * 71).parts == 2
    assert estimate("ж" * 71).per_part == 67
    assert len(split("ж" * 70, reference=1)) == 1
    assert len(split("ж" * 71, reference=1)) == 2
    assert estimate("ж" * 134).parts == 2
    assert estimate("ж" * 135).parts == 3
    assert estimate("ж" * 132, method="udh16").parts == 2
    assert estimate("ж" * 133, method="udh16").parts == 3
    assert estimate("😀" * 35).units == 70
    assert estimate("😀" * 35).parts == 1
    assert estimate("😀" * 36).parts == 2


def test_latin1_part_limits() -> None:
    assert estimate("ç" * 140, force="latin1").parts == 1
    assert estimate("ç" * 141, force="latin1").parts == 2
    assert estimate("ç" * 268, force="latin1").parts == 2
    assert estimate("ç" * 269, force="latin1").parts == 3


def test_empty_text() -> None:
    assert estimate("").parts == 1
    segments = split("", reference=1)
    assert len(segments) == 1
    assert segments[0].short_message == b""


# --- splitting ----------------------------------------------------------------------


def test_emoji_at_boundary_is_not_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 10  # the emoji would straddle units 67/68
    segments = split(text, reference=7)
    assert len(segments) == 2
    assert len(body(segments[0])) == 66 * 2  # one unit fewer than 67
    for segment in segments:
        body(segment).decode("utf-16-be", "strict")  # each part valid on its own
    assert "".join(s.text for s in segments) == text
    assert reassemble(segments) == text


def test_escape_at_boundary_is_not_split() -> None:
    text = "a" * 152 + "€" + "b" * 10
    segments = split(text, reference=7)
    assert len(segments) == 2
    first = body(segments[0])
    assert len(first) == 152
    assert not first.endswith(b"\x1b")
    assert body(segments[1]).startswith(b"\x1b\x65")
    assert [s.text for s in segments] == ["a" * 152, "€" + "b" * 10]
    assert reassemble(segments) == text


def test_udh8_header() -> None:
    text = "a" * 400
    segments = split(text, reference=0x1234, method="udh8")
    assert len(segments) == 3
    for seq, segment in enumerate(segments, start=1):
        assert segment.short_message[:6] == bytes([0x05, 0x00, 0x03, 0x34, 3, seq])
        assert segment.esm_class_bits == ESM_CLASS_UDHI
        assert segment.data_coding == 0
        assert segment.tlvs == {}
        assert (segment.index, segment.total) == (seq, 3)
    assert len(segments[0].short_message) == 6 + 153


def test_udh16_header() -> None:
    segments = split("ж" * 100, reference=0x1234, method="udh16")
    assert len(segments) == 2
    for seq, segment in enumerate(segments, start=1):
        assert segment.short_message[:7] == bytes([0x06, 0x08, 0x04, 0x12, 0x34, 2, seq])
        assert segment.esm_class_bits == ESM_CLASS_UDHI
        assert segment.data_coding == 8
    assert len(segments[0].short_message) == 7 + 66 * 2


def test_sar_tlvs() -> None:
    segments = split("a" * 200, reference=0x12345, method="sar")
    assert len(segments) == 2
    assert len(segments[0].short_message) == 160
    for seq, segment in enumerate(segments, start=1):
        assert segment.esm_class_bits == 0
        assert segment.tlvs == {
            Tlv.SAR_MSG_REF_NUM: 0x2345,
            Tlv.SAR_TOTAL_SEGMENTS: 2,
            Tlv.SAR_SEGMENT_SEQNUM: seq,
        }


def test_payload_tlv() -> None:
    text = "ж" * 300
    segments = split(text, reference=1, method="payload")
    assert len(segments) == 1
    (segment,) = segments
    assert segment.short_message == b""
    assert segment.esm_class_bits == 0
    assert segment.data_coding == 8
    assert segment.tlvs == {Tlv.MESSAGE_PAYLOAD: text.encode("utf-16-be")}


@pytest.mark.parametrize("method", METHODS)
def test_single_part_has_no_header_whatever_the_method(method: str) -> None:
    (segment,) = split("hello", reference=9, method=method)
    assert segment.short_message == b"hello"
    assert segment.esm_class_bits == 0
    assert segment.tlvs == {}
    assert (segment.index, segment.total) == (1, 1)


def test_too_many_parts() -> None:
    with pytest.raises(TooManyParts) as info:
        split("a" * (153 * 3 + 1), reference=1, max_parts=3)
    assert isinstance(info.value, ValueError)
    assert info.value.parts == 4
    assert info.value.max_parts == 3
    assert len(split("a" * (153 * 3), reference=1, max_parts=3)) == 3
    with pytest.raises(TooManyParts):
        split("a" * (153 * 256), reference=1, max_parts=1000)  # a UDH numbers 255 at most


def test_data_codings() -> None:
    assert split("hi", reference=1)[0].data_coding == 0
    assert split("hi", reference=1, gsm_data_coding=0xF0)[0].data_coding == 0xF0
    assert split("hi", reference=1, force="ucs2")[0].data_coding == 8
    assert split("hi", reference=1, force="latin1")[0].data_coding == 3
    assert split("hi", reference=1, force="ascii")[0].data_coding == 1
    assert split("çé", reference=1, force="latin1")[0].short_message == b"\xe7\xe9"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=1200), st.sampled_from(METHODS), st.integers(0, 0xFFFF), st.randoms())
def test_split_then_reassemble_round_trips(
    text: str, method: str, reference: int, rng: random.Random
) -> None:
    segments = split(text, reference=reference, method=method)
    if method != "payload":
        assert len(segments) == estimate(text, method=method).parts
    shuffled = list(segments)
    rng.shuffle(shuffled)
    assert reassemble(shuffled) == text


def check_parts(text: str, method: str) -> None:
    segments = split(text, reference=3, method=method)
    for segment in segments:
        if segment.data_coding == 8:
            body(segment).decode("utf-16-be", "strict")
            assert len(segment.short_message) <= 140
        else:
            assert not body(segment).endswith(b"\x1b")
            assert len(segment.short_message) <= 160
    assert "".join(s.text for s in segments) == text
    assert reassemble(segments) == text


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=GSM_CHARS + "😀ж", max_size=800), st.sampled_from(METHODS))
def test_split_round_trips_surrogates(text: str, method: str) -> None:
    check_parts(text, method)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("a€[") | st.sampled_from(GSM_CHARS), max_size=800),
    st.sampled_from(METHODS),
)
def test_split_round_trips_escapes(text: str, method: str) -> None:
    check_parts(text, method)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=600))
def test_latin1_round_trip(text: str) -> None:
    for method in METHODS:
        assert reassemble(split(text, reference=5, method=method, force="latin1")) == text


# --- inbound decoding ---------------------------------------------------------------


def test_decode_udh8_concat() -> None:
    inbound = decode_short_message(bytes([5, 0, 3, 0xAB, 3, 2]) + b"hi", 0, udhi=True)
    assert inbound.text == "hi"
    assert inbound.concat == Concat(0xAB, 3, 2)
    assert inbound.udh == bytes([5, 0, 3, 0xAB, 3, 2])
    assert inbound.encoding == "gsm7"


def test_decode_udh16_concat_ucs2() -> None:
    data = bytes([6, 8, 4, 0x12, 0x34, 2, 1]) + "жж".encode("utf-16-be")
    inbound = decode_short_message(data, 8, udhi=True)
    assert inbound.text == "жж"
    assert inbound.concat == Concat(0x1234, 2, 1)


def test_decode_udh_with_other_elements() -> None:
    udh = bytes([11, 0x05, 4, 0x0B, 0x84, 0x23, 0xF0, 0x00, 3, 9, 2, 2])
    assert concat_from_udh(udh) == Concat(9, 2, 2)
    assert decode_short_message(udh + b"x", 0, udhi=True).concat == Concat(9, 2, 2)


def test_decode_udh_longer_than_data() -> None:
    inbound = decode_short_message(b"\x20abc", 0, udhi=True)
    assert inbound.concat is None
    assert inbound.udh == b""
    assert inbound.text == " abc"


def test_decode_bad_concat_numbers_are_ignored() -> None:
    assert concat_from_udh(bytes([5, 0, 3, 1, 2, 3])) is None  # seq > total
    assert concat_from_udh(bytes([5, 0, 3, 1, 0, 0])) is None
    assert concat_from_udh(bytes([5, 0, 9, 1, 2, 1])) is None  # element overruns


def test_decode_ucs2_tolerates_garbage() -> None:
    assert decode_short_message(b"\x00a\x00", 8, udhi=False).text == "a\ufffd"
    assert decode_short_message(b"\xd8\x00\x00a", 8, udhi=False).text == "\ufffda"


@pytest.mark.parametrize(
    ("data_coding", "data", "text"),
    [
        (0, b"\x00\x02", "@$"),
        (1, b"ab\xff", "ab\ufffd"),
        (3, b"\xe7", "ç"),
        (4, b"\xe7", "ç"),
        (6, b"\xb6", "Ж"),
        (8, "ж".encode("utf-16-be"), "ж"),
        (0xF0, b"\x00", "@"),
        (0xF4, b"\xe7", "ç"),
        (0x18, "ж".encode("utf-16-be"), "ж"),
        (0x10, b"\x00", "@"),
        (0xE1, "ж".encode("utf-16-be"), "ж"),
        (0x0B, b"\xe7", "ç"),
    ],
)
def test_decode_data_codings(data_coding: int, data: bytes, text: str) -> None:
    assert decode_short_message(data, data_coding, udhi=False).text == text


def test_decode_default_coding() -> None:
    assert decode_short_message(b"\xe7", 0, udhi=False, default_coding="latin1").text == "ç"
    assert decode_short_message(b"\x00", 0, udhi=False).text == "@"
    assert decode_short_message(b"a\xff", 0, udhi=False, default_coding="ascii").text == "a\ufffd"


@given(
    st.binary(max_size=300),
    st.integers(0, 255),
    st.booleans(),
    st.sampled_from(["gsm7", "latin1", "ascii"]),
)
def test_decode_short_message_never_raises(
    data: bytes, data_coding: int, udhi: bool, default: str
) -> None:
    inbound = decode_short_message(data, data_coding, udhi=udhi, default_coding=default)
    assert isinstance(inbound.text, str)


def test_concat_from_tlvs() -> None:
    tlvs: dict[int, object] = {
        Tlv.SAR_MSG_REF_NUM: 0x1234,
        Tlv.SAR_TOTAL_SEGMENTS: 3,
        Tlv.SAR_SEGMENT_SEQNUM: 2,
    }
    assert concat_from_tlvs(tlvs) == Concat(0x1234, 3, 2)
    raw: dict[int, object] = {
        Tlv.SAR_MSG_REF_NUM: b"\x12\x34",
        Tlv.SAR_TOTAL_SEGMENTS: b"\x03",
        Tlv.SAR_SEGMENT_SEQNUM: b"\x02",
    }
    assert concat_from_tlvs(raw) == Concat(0x1234, 3, 2)
    assert concat_from_tlvs({}) is None
    assert concat_from_tlvs({**tlvs, Tlv.SAR_SEGMENT_SEQNUM: 4}) is None


# --- reassembly ---------------------------------------------------------------------


def test_reassembler_orders_and_ignores_duplicates() -> None:
    r = Reassembler()
    assert r.add("a", "b", 1, 3, 3, "C", now=0) is None
    assert r.add("a", "b", 1, 3, 1, "A", now=1) is None
    assert r.add("a", "b", 1, 3, 1, "X", now=2) is None  # duplicate: first copy kept
    assert len(r) == 1
    assert r.add("a", "b", 1, 3, 2, "B", now=3) == "ABC"
    assert len(r) == 0


def test_reassembler_keys_sets_apart() -> None:
    r = Reassembler()
    assert r.add("a", "b", 1, 2, 1, "a1", now=0) is None
    assert r.add("z", "b", 1, 2, 1, "z1", now=0) is None
    assert r.add("a", "b", 2, 2, 1, "r1", now=0) is None
    assert r.add("a", "b", 1, 3, 1, "t1", now=0) is None
    assert r.add("z", "b", 1, 2, 2, "z2", now=0) == "z1z2"
    assert r.add("a", "b", 1, 2, 2, "a2", now=0) == "a1a2"
    assert len(r) == 2


def test_reassembler_passes_standalone_parts_through() -> None:
    r = Reassembler()
    assert r.add("a", "b", 1, 1, 1, "whole", now=0) == "whole"
    assert r.add("a", "b", 1, 2, 5, "odd", now=0) == "odd"
    assert r.add_concat("a", "b", None, "plain", now=0) == "plain"
    assert len(r) == 0


def test_reassembler_expires_idle_sets() -> None:
    dropped: list[PartialMessage] = []
    r = Reassembler(timeout=10, on_drop=dropped.append)
    r.add("a", "b", 1, 2, 1, "first", now=0)
    r.add("a", "b", 2, 2, 1, "other", now=5)
    assert r.expire(now=9) == []
    expired = r.expire(now=10)
    assert [p.reference for p in expired] == [1]
    assert expired[0].reason == "expired"
    assert expired[0].text == "first"
    assert dropped == expired
    # The late second part starts a new set instead of completing the dropped one.
    assert r.add("a", "b", 1, 2, 2, "second", now=11) is None
    assert len(r) == 2


def test_reassembler_activity_postpones_expiry() -> None:
    r = Reassembler(timeout=10)
    r.add("a", "b", 1, 3, 1, "A", now=0)
    r.add("a", "b", 1, 3, 2, "B", now=8)
    assert r.expire(now=15) == []
    assert r.add("a", "b", 1, 3, 3, "C", now=17) == "ABC"


def test_reassembler_bounded() -> None:
    dropped: list[PartialMessage] = []
    r = Reassembler(max_pending=2, on_drop=dropped.append)
    r.add("a", "b", 1, 2, 1, "one", now=0)
    r.add("a", "b", 2, 2, 1, "two", now=1)
    r.add("a", "b", 1, 2, 1, "one again", now=2)  # touches set 1: set 2 is now oldest
    r.add("a", "b", 3, 2, 1, "three", now=3)
    assert len(r) == 2
    assert [(p.reference, p.reason) for p in dropped] == [(2, "evicted")]
    assert r.add("a", "b", 1, 2, 2, "!", now=4) == "one!"


def test_reassembler_uses_clock_by_default() -> None:
    t = [100.0]
    r = Reassembler(timeout=5, clock=lambda: t[0])
    r.add("a", "b", 1, 2, 1, "x")
    t[0] = 106.0
    assert [p.reference for p in r.expire()] == [1]
