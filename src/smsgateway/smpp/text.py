"""Text <-> short_message: encoding choice, segmentation, inbound decoding, reassembly.

Outbound, the gateway must pick the cheapest alphabet that carries the text exactly
(GSM 7-bit, else UCS-2), and cut long texts into parts that each fit one SMS *and*
decode on their own: a GSM escape pair or a UTF-16 surrogate pair cut in two would
show as garbage on the handset, so parts are cut between characters, never between
code units. The same counting code drives `estimate`, so the price quoted to a
client is exactly the number of parts `split` later produces.

Inbound, anything can arrive from an SMSC, so decoding never raises: bad octets are
replaced, and a malformed header just yields the text without concatenation info.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .constants import ESM_CLASS_UDHI, DataCoding, Tlv
from .errors import SmppError
from .gsm import EXTENSION_CHARS, decode_gsm, encode_gsm, gsm_septets

__all__ = [
    "MAX_PAYLOAD_OCTETS",
    "Concat",
    "Encoding",
    "Estimate",
    "InboundText",
    "Method",
    "NotEncodable",
    "PartialMessage",
    "Reassembler",
    "Segment",
    "TooManyParts",
    "choose_encoding",
    "concat_from_tlvs",
    "concat_from_udh",
    "data_coding_for",
    "decode_short_message",
    "encode_text",
    "estimate",
    "parse_encoding",
    "split",
    "text_units",
    "udh_elements",
]


class Encoding(StrEnum):
    """Alphabet a text is sent in; the value is the name accepted by `force=`."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"
    LATIN1 = "latin1"
    ASCII = "ascii"


class Method(StrEnum):
    """How a long text is cut into parts.

    UDH8/UDH16 put a concatenation header in each short_message (8- or 16-bit
    reference); SAR uses the sar_* TLVs instead, leaving the whole short_message for
    text; PAYLOAD sends one PDU with message_payload and lets the SMSC cut it.
    """

    UDH8 = "udh8"
    UDH16 = "udh16"
    SAR = "sar"
    PAYLOAD = "payload"


class NotEncodable(SmppError, ValueError):
    """A forced encoding cannot represent the text.

    Raised instead of substituting "?" so that an API caller who insisted on an
    alphabet learns which character broke it, rather than a recipient getting junk.
    """

    def __init__(self, encoding: Encoding, char: str, position: int, reason: str = "") -> None:
        self.encoding = encoding
        self.char = char
        self.position = position
        detail = reason or f"is not representable in {encoding.value}"
        super().__init__(f"character {char!r} (U+{ord(char):04X}) at position {position} {detail}")


class TooManyParts(SmppError, ValueError):
    """The text needs more parts than allowed; `parts` says how many it would take."""

    def __init__(self, parts: int, max_parts: int, detail: str = "") -> None:
        self.parts = parts
        self.max_parts = max_parts
        super().__init__(detail or f"text needs {parts} parts, more than the {max_parts} allowed")


# Units per part. GSM7 counts septets, UCS2 UTF-16 code units, the 8-bit codings
# octets. A 6-octet UDH (IEI 0x00) costs 7 septets once the SMSC pads it to a septet
# boundary, a 7-octet one (IEI 0x08) 8 septets: hence 153/152.
_SINGLE: dict[Encoding, int] = {
    Encoding.GSM7: 160,
    Encoding.UCS2: 70,
    Encoding.LATIN1: 140,
    Encoding.ASCII: 140,
}
_UDH8_PART: dict[Encoding, int] = {
    Encoding.GSM7: 153,
    Encoding.UCS2: 67,
    Encoding.LATIN1: 134,
    Encoding.ASCII: 134,
}
_UDH16_PART: dict[Encoding, int] = {
    Encoding.GSM7: 152,
    Encoding.UCS2: 66,
    Encoding.LATIN1: 133,
    Encoding.ASCII: 133,
}
_MULTI: dict[Method, dict[Encoding, int]] = {
    Method.UDH8: _UDH8_PART,
    Method.UDH16: _UDH16_PART,
    Method.SAR: _SINGLE,
    # The SMSC cuts message_payload itself; quote the way nearly all of them do.
    Method.PAYLOAD: _UDH8_PART,
}

MAX_PAYLOAD_OCTETS = 0xFFFF
"""message_payload's length field is 16 bits."""

_DATA_CODING: dict[Encoding, int] = {
    Encoding.GSM7: DataCoding.SMSC_DEFAULT,
    Encoding.UCS2: DataCoding.UCS2,
    Encoding.LATIN1: DataCoding.LATIN1,
    Encoding.ASCII: DataCoding.IA5,
}

_ALIASES: dict[str, Encoding] = {
    "gsm": Encoding.GSM7,
    "gsm7": Encoding.GSM7,
    "gsm-7": Encoding.GSM7,
    "gsm0338": Encoding.GSM7,
    "default": Encoding.GSM7,
    "ucs2": Encoding.UCS2,
    "ucs-2": Encoding.UCS2,
    "utf16": Encoding.UCS2,
    "utf-16": Encoding.UCS2,
    "utf-16be": Encoding.UCS2,
    "unicode": Encoding.UCS2,
    "latin1": Encoding.LATIN1,
    "latin-1": Encoding.LATIN1,
    "iso-8859-1": Encoding.LATIN1,
    "iso8859-1": Encoding.LATIN1,
    "ascii": Encoding.ASCII,
    "ia5": Encoding.ASCII,
}

_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_encoding(name: str | Encoding) -> Encoding:
    """Read an encoding name ("gsm7", "UCS-2", "latin1", "ia5", ...) from config or API.

    Public so configuration can be validated at load time, not on the first message.
    """
    if isinstance(name, Encoding):
        return name
    try:
        return _ALIASES[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown encoding {name!r}; expected one of {', '.join(e.value for e in Encoding)}"
        ) from None


def _check_ucs2(text: str) -> None:
    # A lone surrogate (e.g. from a JSON "\ud83d" escape) has no UTF-16 encoding of
    # its own; refusing it beats sending half a character.
    match = _SURROGATE.search(text)
    if match is not None:
        raise NotEncodable(
            Encoding.UCS2, match.group(), match.start(), "is a lone UTF-16 surrogate"
        )


def _first_bad(text: str, encoding: Encoding, allowed: Callable[[str], bool]) -> NotEncodable:
    for position, char in enumerate(text):
        if not allowed(char):
            return NotEncodable(encoding, char, position)
    raise AssertionError("unreachable: no offending character")  # pragma: no cover


def choose_encoding(text: str, *, force: str | Encoding | None = None) -> Encoding:
    """GSM7 when every character fits (cheapest per character), else UCS-2.

    `force` ("gsm7", "ucs2", "latin1", "ascii") overrides the choice, for links
    or customers that need a given alphabet; if it cannot carry the text,
    `NotEncodable` says which character is at fault.
    """
    if force is None:
        if gsm_septets(text) is not None:
            return Encoding.GSM7
        _check_ucs2(text)
        return Encoding.UCS2
    encoding = parse_encoding(force)
    if encoding is Encoding.GSM7:
        if gsm_septets(text) is None:
            raise _first_bad(text, encoding, lambda c: gsm_septets(c) is not None)
    elif encoding is Encoding.UCS2:
        _check_ucs2(text)
    elif encoding is Encoding.LATIN1:
        if any(c > "\xff" for c in text):
            raise _first_bad(text, encoding, lambda c: c <= "\xff")
    elif not text.isascii():
        raise _first_bad(text, encoding, str.isascii)
    return encoding


def text_units(text: str, encoding: Encoding) -> int:
    """Length in the units parts are measured in: septets, UTF-16 units or octets."""
    if encoding is Encoding.GSM7:
        septets = gsm_septets(text)
        if septets is None:
            raise _first_bad(text, encoding, lambda c: gsm_septets(c) is not None)
        return septets
    if encoding is Encoding.UCS2:
        return len(text.encode("utf-16-le", "surrogatepass")) // 2
    return len(text)


def encode_text(text: str, encoding: Encoding) -> bytes:
    """Wire form of `text`: unpacked septets, UTF-16BE, Latin-1 or ASCII octets."""
    if encoding is Encoding.GSM7:
        return encode_gsm(text)
    if encoding is Encoding.UCS2:
        _check_ucs2(text)
        return text.encode("utf-16-be")
    if encoding is Encoding.LATIN1:
        return text.encode("latin-1")
    return text.encode("ascii")


def data_coding_for(encoding: Encoding, gsm_data_coding: int = 0) -> int:
    """data_coding octet for `encoding`; `gsm_data_coding` is what this link uses for GSM7."""
    if encoding is Encoding.GSM7:
        return gsm_data_coding
    return _DATA_CODING[encoding]


def _chunks(text: str, encoding: Encoding, per_part: int, units: int) -> list[str]:
    """Cut `text` greedily into pieces of at most `per_part` units, between characters.

    Cutting between characters (never inside one) is what keeps escape pairs and
    surrogate pairs whole; a part then holds one unit fewer than it could.
    """
    if units <= per_part:
        return [text]
    if units == len(text):  # every character is one unit: plain slicing
        return [text[i : i + per_part] for i in range(0, len(text), per_part)]
    chunks: list[str] = []
    start = 0
    used = 0
    if encoding is Encoding.GSM7:
        wide = EXTENSION_CHARS
        for i, char in enumerate(text):
            width = 2 if char in wide else 1
            if used + width > per_part:
                chunks.append(text[start:i])
                start = i
                used = 0
            used += width
    else:  # UCS2: characters beyond the BMP are surrogate pairs
        for i, char in enumerate(text):
            width = 2 if char > "\uffff" else 1
            if used + width > per_part:
                chunks.append(text[start:i])
                start = i
                used = 0
            used += width
    chunks.append(text[start:])
    return chunks


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a text will cost, computed exactly as `split` will cut it.

    `units` is in septets (GSM7), UTF-16 units (UCS2) or octets (8-bit codings);
    `per_part` is the capacity of each part given the part count (160 for one GSM
    part, 153 for each of several); `chars_left` is the room left in the last part.
    """

    encoding: Encoding
    units: int
    parts: int
    per_part: int
    chars_left: int


def _plan(
    text: str, encoding: Encoding, method: Method
) -> tuple[list[str], int, int]:  # chunks, units, per_part
    units = text_units(text, encoding)
    single = _SINGLE[encoding]
    if units <= single:
        return [text], units, single
    per_part = _MULTI[method][encoding]
    return _chunks(text, encoding, per_part, units), units, per_part


def estimate(
    text: str, *, force: str | Encoding | None = None, method: str | Method = Method.UDH8
) -> Estimate:
    """Cost of sending `text`, for clients pricing a message before they submit it."""
    encoding = choose_encoding(text, force=force)
    chunks, units, per_part = _plan(text, encoding, Method(method))
    last_units = text_units(chunks[-1], encoding)
    return Estimate(
        encoding=encoding,
        units=units,
        parts=len(chunks),
        per_part=per_part,
        chars_left=per_part - last_units,
    )


@dataclass(frozen=True, slots=True)
class Segment:
    """One submit_sm's worth of a text.

    The PDU builder ORs `esm_class_bits` into esm_class (UDHI when a UDH leads
    short_message) and adds `tlvs` as optional parameters; `text` is this part's
    share of the text, for logs and storage.
    """

    short_message: bytes
    data_coding: int
    esm_class_bits: int
    index: int
    total: int
    text: str
    encoding: Encoding
    tlvs: dict[int, int | str | bytes] = field(default_factory=dict)


# Characters that fit one part whatever they are: every GSM character is at most two
# septets (160 / 2), every UTF-16 code point at most two units (70 / 2).
_SURELY_ONE_PART = {Encoding.GSM7: 80, Encoding.UCS2: 35, Encoding.LATIN1: 140, Encoding.ASCII: 140}


def split(
    text: str,
    *,
    reference: int,
    method: str | Method = Method.UDH8,
    force: str | Encoding | None = None,
    max_parts: int = 255,
    gsm_data_coding: int = 0,
) -> list[Segment]:
    """Cut `text` into submit_sm-sized segments.

    `reference` is the concatenation reference (masked to 8 bits for udh8, 16 bits
    otherwise); the caller owns it because it must differ between concurrent long
    messages to the same handset. A text that fits one SMS gets a single plain
    segment whatever the method, since a header would only waste space.
    `gsm_data_coding` is the data_coding this link uses for GSM 7-bit (0 nearly
    everywhere). Raises `TooManyParts` above `max_parts` (and above 255, the most a
    concatenation header can number) and `NotEncodable` if `force` cannot carry it.
    """
    if max_parts < 1:
        raise ValueError(f"max_parts must be at least 1, not {max_parts}")
    method = Method(method)
    encoding = choose_encoding(text, force=force)
    data_coding = data_coding_for(encoding, gsm_data_coding)
    if len(text) <= _SURELY_ONE_PART[encoding]:
        # Most traffic is short: skip the cutting plan when one part surely holds it.
        return [Segment(encode_text(text, encoding), data_coding, 0, 1, 1, text, encoding)]
    chunks, _units, _per_part = _plan(text, encoding, method)
    total = len(chunks)
    limit = min(max_parts, 255)
    if total > limit:
        raise TooManyParts(total, limit)
    if total == 1:
        return [Segment(encode_text(text, encoding), data_coding, 0, 1, 1, text, encoding)]

    if method is Method.PAYLOAD:
        payload = encode_text(text, encoding)
        if len(payload) > MAX_PAYLOAD_OCTETS:
            raise TooManyParts(
                total,
                limit,
                f"text encodes to {len(payload)} octets, more than message_payload's "
                f"{MAX_PAYLOAD_OCTETS}",
            )
        return [Segment(b"", data_coding, 0, 1, 1, text, encoding, {Tlv.MESSAGE_PAYLOAD: payload})]

    segments: list[Segment] = []
    for index, chunk in enumerate(chunks, start=1):
        body = encode_text(chunk, encoding)
        if method is Method.UDH8:
            udh = bytes((0x05, 0x00, 0x03, reference & 0xFF, total, index))
            segments.append(
                Segment(udh + body, data_coding, ESM_CLASS_UDHI, index, total, chunk, encoding)
            )
        elif method is Method.UDH16:
            ref = reference & 0xFFFF
            udh = bytes((0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, total, index))
            segments.append(
                Segment(udh + body, data_coding, ESM_CLASS_UDHI, index, total, chunk, encoding)
            )
        else:
            tlvs: dict[int, int | str | bytes] = {
                Tlv.SAR_MSG_REF_NUM: reference & 0xFFFF,
                Tlv.SAR_TOTAL_SEGMENTS: total,
                Tlv.SAR_SEGMENT_SEQNUM: index,
            }
            segments.append(Segment(body, data_coding, 0, index, total, chunk, encoding, tlvs))
    return segments


# ---------------------------------------------------------------------------------
# Inbound


@dataclass(frozen=True, slots=True)
class Concat:
    """Where a part sits in a concatenated message (from a UDH or the SAR TLVs)."""

    reference: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class InboundText:
    """A decoded short_message (or message_payload).

    `encoding` names how the octets were read ("gsm7", "ucs2", "latin1", "ascii",
    "binary" for 8-bit data shown as Latin-1, or a Python codec name for the rarer
    SMPP codings); `payload` is the user data after the UDH, kept for binary
    content that should not be treated as text; `udh` includes its length octet.
    """

    text: str
    encoding: str
    concat: Concat | None = None
    udh: bytes = b""
    payload: bytes = b""


# SMPP 3.4 data_coding 1-0x0F (section 5.2.19); unlisted values are reserved.
_SMPP_CODINGS: dict[int, str] = {
    0x01: "ascii",
    0x02: "binary",
    0x03: "latin1",
    0x04: "binary",
    0x05: "shift_jis",  # JIS X 0208; SMSCs that use it send Shift-JIS in practice
    0x06: "iso8859_5",
    0x07: "iso8859_8",
    0x08: "ucs2",
    0x09: "binary",  # pictogram encoding: no standard mapping
    0x0A: "iso2022_jp",
    0x0D: "euc_jp",  # extended Kanji JIS (X 0212)
    0x0E: "euc_kr",  # KS C 5601
}


def _coding_name(data_coding: int, default: Encoding) -> str:
    """Which alphabet a data_coding octet means, following SMPP then TS 23.038 section 4."""
    if data_coding == 0:
        return default.value
    if data_coding < 0x10:
        return _SMPP_CODINGS.get(data_coding, "latin1")
    if data_coding < 0x80:  # general data coding (with or without auto-deletion)
        if data_coding & 0x20:
            return "binary"  # compressed: no decompressor, keep the octets
        return ("gsm7", "binary", "ucs2", "latin1")[(data_coding >> 2) & 0x03]
    if data_coding < 0xC0:
        return "latin1"  # reserved coding groups
    if data_coding < 0xE0:
        return "gsm7"  # message waiting indication, discard/store, GSM alphabet
    if data_coding < 0xF0:
        return "ucs2"  # message waiting indication, store, UCS2
    return "binary" if data_coding & 0x04 else "gsm7"  # data coding/message class


def _decode_body(body: bytes, coding: str) -> str:
    if coding == "gsm7":
        return decode_gsm(body)
    if coding == "ucs2":
        # "replace" covers both an odd trailing octet and unpaired surrogates.
        return body.decode("utf-16-be", "replace")
    if coding in ("latin1", "binary"):
        return body.decode("latin-1")
    try:
        return body.decode(coding, "replace")
    except (LookupError, UnicodeError, ValueError):  # pragma: no cover - codec quirks
        return body.decode("latin-1")


def udh_elements(udh: bytes) -> list[tuple[int, bytes]]:
    """Information elements of a UDH (with its length octet) as (IEI, data) pairs.

    A truncated element ends the list instead of raising: whatever parsed cleanly is
    still useful.
    """
    elements: list[tuple[int, bytes]] = []
    end = min(len(udh), 1 + udh[0]) if udh else 0
    i = 1
    while i + 2 <= end:
        iei, length = udh[i], udh[i + 1]
        data = udh[i + 2 : i + 2 + length]
        if i + 2 + length > end:
            break
        elements.append((iei, data))
        i += 2 + length
    return elements


def _valid(reference: int, total: int, seq: int) -> Concat | None:
    # TS 23.040 says to ignore the element when the numbers make no sense.
    if total < 1 or not 1 <= seq <= total:
        return None
    return Concat(reference, total, seq)


def concat_from_udh(udh: bytes) -> Concat | None:
    """Concatenation info from a UDH's IEI 0x00 (8-bit ref) or 0x08 (16-bit ref)."""
    for iei, data in udh_elements(udh):
        if iei == 0x00 and len(data) == 3:
            return _valid(data[0], data[1], data[2])
        if iei == 0x08 and len(data) == 4:
            return _valid((data[0] << 8) | data[1], data[2], data[3])
    return None


def _tlv_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray | memoryview) and 0 < len(value) <= 4:
        return int.from_bytes(value, "big")
    return None


def concat_from_tlvs(tlvs: Mapping[int, object]) -> Concat | None:
    """Concatenation info from the sar_* TLVs; values may be ints or raw octets."""
    reference = _tlv_int(tlvs.get(Tlv.SAR_MSG_REF_NUM))
    total = _tlv_int(tlvs.get(Tlv.SAR_TOTAL_SEGMENTS))
    seq = _tlv_int(tlvs.get(Tlv.SAR_SEGMENT_SEQNUM))
    if reference is None or total is None or seq is None:
        return None
    return _valid(reference, total, seq)


def decode_short_message(
    data: bytes,
    data_coding: int,
    *,
    udhi: bool,
    default_coding: str | Encoding = Encoding.GSM7,
) -> InboundText:
    """Decode an inbound short_message (or message_payload) and its UDH; never raises.

    `udhi` is esm_class & 0x40. `default_coding` is what data_coding 0 means on this
    link ("gsm7", "latin1", "ascii" or "ucs2"). A UDH claiming more octets than the
    message holds is treated as absent: the whole message is decoded as text with
    no concatenation info, since showing something beats dropping the message.
    The only exception is ValueError for an unknown `default_coding`, which is a
    configuration error (validate it up front with `parse_encoding`).
    """
    default = parse_encoding(default_coding)
    coding = _coding_name(data_coding, default)
    udh = b""
    body = bytes(data)
    concat: Concat | None = None
    if udhi and body and 1 + body[0] <= len(body):
        udh = body[: 1 + body[0]]
        body = body[1 + body[0] :]
        concat = concat_from_udh(udh)
    return InboundText(_decode_body(body, coding), coding, concat, udh, body)


# ---------------------------------------------------------------------------------
# Reassembly

_Key = tuple[str, str, int, int]


@dataclass(frozen=True, slots=True)
class PartialMessage:
    """An incomplete set dropped by the `Reassembler`, handed over so it is not lost.

    `reason` is "expired" (no part within the timeout) or "evicted" (too many
    pending sets). `text` joins the parts present, in order, for a caller that
    prefers delivering a gap to delivering nothing.
    """

    source: str
    destination: str
    reference: int
    total: int
    parts: dict[int, str]
    reason: str

    @property
    def text(self) -> str:
        return "".join(self.parts[seq] for seq in sorted(self.parts))


@dataclass(slots=True)
class _Pending:
    parts: dict[int, str]
    touched: float


class Reassembler:
    """Joins inbound parts of concatenated messages.

    Sets are keyed by (source, destination, reference, total) because references
    are only unique per sender and handset. Memory is bounded twice: a set with no
    new part for `timeout` seconds expires, and beyond `max_pending` sets the least
    recently active is evicted. Dropped sets go to `on_drop` (if given) so the
    caller can log them or deliver them partially. Time is passed in as `now`
    (defaulting to `clock()`), so tests need no sleeps.
    """

    def __init__(
        self,
        *,
        timeout: float = 600.0,
        max_pending: int = 10_000,
        on_drop: Callable[[PartialMessage], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.timeout = timeout
        self.max_pending = max_pending
        self._on_drop = on_drop
        self._clock = clock
        # Ordered by last activity, so both expiry and eviction pop from the front.
        self._pending: OrderedDict[_Key, _Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        source: str,
        destination: str,
        reference: int,
        total: int,
        seq: int,
        text: str,
        *,
        now: float | None = None,
    ) -> str | None:
        """Record one part; return the whole text once every part is in, else None.

        Duplicates (SMSC retries) are ignored, keeping the first copy. A part whose
        numbers make no sense (seq outside 1..total) is returned as a message of
        its own: it cannot be placed, and dropping it would lose text silently.
        """
        if now is None:
            now = self._clock()
        self.expire(now)
        if total <= 1 or not 1 <= seq <= total:
            return text
        key = (source, destination, reference, total)
        pending = self._pending.get(key)
        if pending is None:
            while len(self._pending) >= self.max_pending:
                old_key, old = self._pending.popitem(last=False)
                self._drop(old_key, old, "evicted")
            pending = self._pending[key] = _Pending({}, now)
        else:
            self._pending.move_to_end(key)
            pending.touched = now
        pending.parts.setdefault(seq, text)
        if len(pending.parts) < total:
            return None
        del self._pending[key]
        return "".join(pending.parts[i] for i in range(1, total + 1))

    def add_concat(
        self,
        source: str,
        destination: str,
        concat: Concat | None,
        text: str,
        *,
        now: float | None = None,
    ) -> str | None:
        """`add` for the output of `decode_short_message`/`concat_from_tlvs`.

        A message without concatenation info is complete by itself and comes
        straight back.
        """
        if concat is None:
            return text
        return self.add(
            source, destination, concat.reference, concat.total, concat.seq, text, now=now
        )

    def expire(self, now: float | None = None) -> list[PartialMessage]:
        """Drop sets idle for longer than the timeout; each also goes to `on_drop`."""
        if now is None:
            now = self._clock()
        dropped: list[PartialMessage] = []
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if now - pending.touched < self.timeout:
                break
            del self._pending[key]
            dropped.append(self._drop(key, pending, "expired"))
        return dropped

    def _drop(self, key: _Key, pending: _Pending, reason: str) -> PartialMessage:
        source, destination, reference, total = key
        partial = PartialMessage(source, destination, reference, total, pending.parts, reason)
        if self._on_drop is not None:
            self._on_drop(partial)
        return partial
