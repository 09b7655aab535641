"""GSM 03.38 (3GPP TS 23.038 section 6.2.1) default alphabet and its extension table.

SMPP's data_coding 0 means "SMSC default alphabet", which on virtually every SMSC is
this alphabet carried *unpacked*: one septet per octet of short_message. The SMSC packs
the septets for the air interface itself, so `encode_gsm`/`decode_gsm` work on that
unpacked form; `pack_septets`/`unpack_septets` exist for the rarer links (and UDH
payloads) that carry the packed 7-bit form.

The tables are turned into `str.translate` and charmap tables at import time because
encoding sits on the submit hot path: a 160-character message encodes in a couple of
microseconds instead of a Python-level loop per character.
"""

from __future__ import annotations

import codecs

from .errors import SmppError

__all__ = [
    "BASIC_TABLE",
    "ESCAPE",
    "EXTENSION_CHARS",
    "EXTENSION_TABLE",
    "NotGsmEncodable",
    "decode_gsm",
    "encode_gsm",
    "gsm_septets",
    "is_gsm",
    "pack_septets",
    "unpack_septets",
]

ESCAPE = 0x1B
"""Escape to the extension table: the next septet is looked up in `EXTENSION_TABLE`."""

# The 128 code points of the default alphabet, in septet order. Position 0x1B is the
# escape and has no character of its own; it is kept as "\x1b" only to hold its place.
BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(BASIC_TABLE) == 128

# Extension table (escape + septet). 0x0D (CR2) and 0x1B (reserved for a further
# extension) are control codes with no printable character, so they are not here.
EXTENSION_TABLE: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

EXTENSION_CHARS: frozenset[str] = frozenset(EXTENSION_TABLE.values())
"""Characters that cost two septets (escape + code)."""


class NotGsmEncodable(SmppError, ValueError):
    """The text holds a character the GSM default alphabet cannot carry.

    `char` and `position` name the first offender so an API error can point at it
    rather than just refusing the whole message.
    """

    def __init__(self, char: str, position: int) -> None:
        self.char = char
        self.position = position
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) at position {position} "
            "is not in the GSM 03.38 alphabet"
        )


# Sentinel for "no GSM code": any non-ASCII character works, because every real GSM
# code is < 0x80 and `str.isascii()` then detects failure in one C-level pass.
_UNMAPPED = "\x80"


def _build_encode_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # Latin-1 range first, all unmapped: str.translate leaves characters that are not
    # in the table untouched, and a stray ASCII "`" would otherwise pass through as
    # septet 0x60 ("¿"). Characters above U+00FF pass through unchanged and are
    # non-ASCII, so they are caught by the same isascii() check.
    for cp in range(256):
        table[cp] = _UNMAPPED
    for code, char in enumerate(BASIC_TABLE):
        if code != ESCAPE:
            table[ord(char)] = chr(code)
    for code, char in EXTENSION_TABLE.items():
        table[ord(char)] = chr(ESCAPE) + chr(code)
    return table


_ENCODE = _build_encode_table()

# Decoding table for codecs.charmap_decode: octets 0x80-0xFF are not septets at all
# (a broken SMSC or a packed message sent as unpacked) and become "?", the same
# replacement the spec asks for unknown codes.
_DECODE_BASIC = BASIC_TABLE.replace("\x1b", " ") + "?" * 128

# What follows an escape. Per TS 23.038 6.2.1.1, a code with no extension character
# shall be shown as the default-alphabet character with that code, so the base table
# is the fallback (ESC + "A" reads as "A"). ESC ESC is "reserved for another
# extension table" and is shown as a space, as the spec instructs. Octets >= 0x80
# are garbage and become "?", as in the base table.
_DECODE_EXT: list[str] = list(_DECODE_BASIC)
_DECODE_EXT[ESCAPE] = " "
for _code, _char in EXTENSION_TABLE.items():
    _DECODE_EXT[_code] = _char
del _code, _char


def _first_unencodable(text: str) -> NotGsmEncodable:
    for position, char in enumerate(text):
        mapped = _ENCODE.get(ord(char))
        if mapped is None or mapped == _UNMAPPED:
            return NotGsmEncodable(char, position)
    raise AssertionError("unreachable: text was reported unencodable")  # pragma: no cover


def encode_gsm(text: str) -> bytes:
    """Encode to unpacked septets (one per octet), as data_coding 0 carries them.

    Raises `NotGsmEncodable` rather than substituting, because silently turning a
    customer's character into "?" is a delivery defect nobody notices until a
    complaint; callers that want lossy behaviour pick UCS-2 instead.
    """
    septets = text.translate(_ENCODE)
    if not septets.isascii():
        raise _first_unencodable(text)
    return septets.encode("ascii")


def gsm_septets(text: str) -> int | None:
    """Septets needed for `text`, or None if it cannot be sent in the GSM alphabet.

    Counted from the translated form so the answer can never disagree with what
    `encode_gsm` actually produces.
    """
    septets = text.translate(_ENCODE)
    return len(septets) if septets.isascii() else None


def is_gsm(text: str) -> bool:
    """Whether every character of `text` exists in the GSM default alphabet."""
    return text.translate(_ENCODE).isascii()


def decode_gsm(data: bytes) -> str:
    """Decode unpacked septets; never raises, because the input comes from the network.

    Unknown codes (octets >= 0x80) become "?", an escape followed by a code with no
    extension character falls back to the base-table character (the spec's rule), and
    a lone escape at the very end is dropped: it can only be the remains of a pair a
    careless sender split across two parts.
    """
    if ESCAPE not in data:
        return codecs.charmap_decode(data, "strict", _DECODE_BASIC)[0]
    out: list[str] = []
    pos = 0
    end = len(data)
    while True:
        esc = data.find(ESCAPE, pos)
        if esc < 0:
            out.append(codecs.charmap_decode(data[pos:], "strict", _DECODE_BASIC)[0])
            break
        if esc > pos:
            out.append(codecs.charmap_decode(data[pos:esc], "strict", _DECODE_BASIC)[0])
        if esc + 1 >= end:
            break  # trailing lone escape
        out.append(_DECODE_EXT[data[esc + 1]])
        pos = esc + 2
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septets (one per octet) into the 7-bit packed form, LSB first.

    `fill_bits` zero bits are put first, which is how TS 23.040 aligns the septets
    that follow a User Data Header on a septet boundary. Only the low 7 bits of each
    input octet are used. The receiver needs the septet count (UDL) to tell a final
    all-zero septet from padding, so carry it alongside.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    value = 0
    shift = fill_bits
    for septet in septets:
        value |= (septet & 0x7F) << shift
        shift += 7
    return value.to_bytes((shift + 7) // 8, "little")


def unpack_septets(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Unpack 7-bit packed data into one septet per octet (inverse of `pack_septets`).

    `count` is the number of septets (from UDL or sm_length); without it every whole
    septet in `data` is returned, which may include one trailing padding septet.
    Asking for more septets than `data` holds returns only those present, because
    the data comes from the network and a short message must not raise.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    available = max(0, (len(data) * 8 - fill_bits) // 7)
    n = available if count is None else max(0, min(count, available))
    value = int.from_bytes(data, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(n))
