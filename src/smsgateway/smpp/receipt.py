"""Delivery receipts: the SMPP 3.4 Appendix B text format, plus the TLVs that override it.

Appendix B is only "an example" of a receipt format, and SMSCs treat it as such:
keys in either case, fields missing or reordered, "submit_date" for "submit date",
dates with or without seconds. The parser therefore looks for keys rather than
positions, and only gives up when there is no message id to match against, since
a receipt without one cannot be attributed to any message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from .constants import MessageState, Tlv

__all__ = ["Receipt", "id_variants", "ids_match", "parse_receipt"]


@dataclass(slots=True)
class Receipt:
    """A parsed delivery receipt.

    `message_id` is exactly as the SMSC wrote it; use `id_variants` to match it.
    `state` is UNKNOWN when no stat could be read; `stat` keeps the raw value for
    diagnostics. `submit_date`, `done_date`, `dlvrd` and `sub` are the raw fields;
    `submitted_at`, `done_at`, `delivered_count` and `submitted_count` read them on
    demand (a gateway matching receipts rarely needs them). Dates are
    timezone-aware UTC: the format carries no zone, and SMSCs nearly always run on
    UTC, so that is the least surprising reading.
    `error` is the err field, or the NETWORK_ERROR_CODE TLV's code as a 3-digit
    string (its network type in `network_error_type`).
    """

    message_id: str
    state: MessageState
    error: str | None = None
    submit_date: str | None = None
    done_date: str | None = None
    dlvrd: str | None = None
    sub: str | None = None
    text: str | None = None
    stat: str | None = None
    network_error_type: int | None = None

    @property
    def delivered_count(self) -> int | None:
        return _int(self.dlvrd)

    @property
    def submitted_count(self) -> int | None:
        return _int(self.sub)

    @property
    def submitted_at(self) -> datetime | None:
        return _date(self.submit_date)

    @property
    def done_at(self) -> datetime | None:
        return _date(self.done_date)

    @property
    def is_final(self) -> bool:
        """Whether the SMSC is done with the message (every state but ENROUTE is final)."""
        return self.state is not MessageState.ENROUTE


_STATES: dict[str, MessageState] = {
    "DELIVRD": MessageState.DELIVERED,
    "DELIVERED": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "UNDELIVERABLE": MessageState.UNDELIVERABLE,
    "FAILED": MessageState.UNDELIVERABLE,  # seen in the wild; means the same
    "ACCEPTD": MessageState.ACCEPTED,
    "ACCEPTED": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "REJECTED": MessageState.REJECTED,
    "ENROUTE": MessageState.ENROUTE,
    "EN_ROUTE": MessageState.ENROUTE,
}

# A key starts the string or follows whitespace, so "text:" inside e.g. "context:"
# is not a key. Everything after the first "text:" key is message text, whatever it
# contains, so keys are only looked for before it.
# Split on the keys (captured with their colon, so the text after "text:" can be put
# back together exactly): [before, key:, value, key:, value, ...] in one C call.
_KEY = re.compile(
    r"(?<!\S)((?:id|sub|dlvrd|submit[\s_-]*date|done[\s_-]*date|stat|err|text)\s*:)",
    re.IGNORECASE,
)
_NON_DIGITS = re.compile(r"\D")
_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-f]+")


def _canonical_key(token: str) -> str:
    key = token.rstrip(": \t\r\n\f\v").lower()
    if key.startswith("submit"):
        return "submit_date"
    if key.startswith("done"):
        return "done_date"
    return key


# The layout of SMPP 3.4 Appendix B, which nearly every SMSC sends: one match instead
# of the tolerant key-by-key scan below.
_CANONICAL = re.compile(
    r"id:(?P<id>\S*) sub:(?P<sub>\S*) dlvrd:(?P<dlvrd>\S*)"
    r" submit date:(?P<submit_date>\S*) done date:(?P<done_date>\S*)"
    r" stat:(?P<stat>\S*) err:(?P<err>\S*)(?: text:(?P<text>.*))?",
    re.IGNORECASE | re.DOTALL,
)


def _fields(text: str) -> dict[str, str | None]:
    """The receipt's fields by canonical key; a key may be missing or None."""
    m = _CANONICAL.fullmatch(text)
    if m is not None:
        return m.groupdict()
    fields: dict[str, str | None] = {}
    pieces = _KEY.split(text)
    for i in range(1, len(pieces), 2):
        key = _canonical_key(pieces[i])
        if key == "text":
            fields.setdefault("text", "".join(pieces[i + 1 :]))
            break
        fields.setdefault(key, pieces[i + 1].strip())
    return fields


def _first_token(value: str | None) -> str | None:
    if not value:
        return None
    tokens = value.split()
    return tokens[0] if tokens else None


def _int(value: str | None) -> int | None:
    token = _first_token(value)
    if token is None or not _DECIMAL.fullmatch(token):
        return None
    return int(token)


def _date(value: str | None) -> datetime | None:
    """YYMMDDhhmm[ss] (Appendix B), or YYYYMMDDhhmmss from SMSCs that widen it."""
    if not value:
        return None
    digits = _NON_DIGITS.sub("", value)
    # Sliced by hand: strptime costs ~10 us a call and every receipt carries two dates.
    n = len(digits)
    if n == 14:
        year, rest = int(digits[:4]), digits[4:]
    elif n in (10, 12):
        year, rest = 2000 + int(digits[:2]), digits[2:]
    else:
        return None
    try:
        return datetime(
            year,
            int(rest[0:2]),
            int(rest[2:4]),
            int(rest[4:6]),
            int(rest[6:8]),
            int(rest[8:10]) if len(rest) >= 10 else 0,
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _state(stat: str | None) -> MessageState:
    if stat is None:
        return MessageState.UNKNOWN
    upper = stat.upper()
    if upper in _STATES:
        return _STATES[upper]
    if _DECIMAL.fullmatch(upper):  # a few SMSCs send the message_state number
        try:
            return MessageState(int(upper))
        except ValueError:
            return MessageState.UNKNOWN
    return MessageState.UNKNOWN


# Tuples, not `bytes | bytearray | memoryview`: that builds a union object per call,
# and these run for every receipt.
_BYTES = (bytes, bytearray, memoryview)
_TLV_ID = int(Tlv.RECEIPTED_MESSAGE_ID)
_TLV_STATE = int(Tlv.MESSAGE_STATE)
_TLV_NETWORK_ERROR = int(Tlv.NETWORK_ERROR_CODE)
_MESSAGE_STATES = {int(m): m for m in MessageState}


def _as_text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data.rstrip("\x00")
    raw = bytes(data).rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _tlv_id(value: object) -> str | None:
    if isinstance(value, _BYTES):
        value = _as_text(bytes(value))
    if isinstance(value, str):
        value = value.strip().rstrip("\x00")
        return value or None
    return None


def _tlv_state(value: object) -> MessageState | None:
    if isinstance(value, _BYTES) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return _MESSAGE_STATES.get(value)
    return None


def _tlv_network_error(value: object) -> tuple[int | None, str] | None:
    """(network type, code) from NETWORK_ERROR_CODE: 1 octet type + 2 octets code."""
    if isinstance(value, _BYTES) and len(value) == 3:
        raw = bytes(value)
        return raw[0], f"{int.from_bytes(raw[1:], 'big'):03d}"
    if isinstance(value, int) and not isinstance(value, bool):
        return None, f"{value:03d}"
    return None


def parse_receipt(text: str | bytes, tlvs: Mapping[int, object] | None = None) -> Receipt | None:
    """Parse a receipt's short_message (or message_payload) and TLVs; never raises.

    RECEIPTED_MESSAGE_ID, MESSAGE_STATE and NETWORK_ERROR_CODE win over the text
    when present, because they are typed and an SMSC that bothers to send them
    means them, while the text format is loosely followed. Returns None when
    neither gives a message id.
    """
    fields = _fields(_as_text(text))
    state = network_error = None
    message_id = None
    if tlvs:
        message_id = _tlv_id(tlvs.get(_TLV_ID))
        state = _tlv_state(tlvs.get(_TLV_STATE))
        network_error = _tlv_network_error(tlvs.get(_TLV_NETWORK_ERROR))
    message_id = message_id or _first_token(fields.get("id"))
    if message_id is None:
        return None

    stat = _first_token(fields.get("stat"))
    if state is None:
        state = _state(stat)

    error = _first_token(fields.get("err"))
    network_type: int | None = None
    if network_error is not None:
        network_type, error = network_error

    return Receipt(
        message_id,
        state,
        error,
        fields.get("submit_date"),
        fields.get("done_date"),
        fields.get("dlvrd"),
        fields.get("sub"),
        fields.get("text"),
        stat,
        network_type,
    )


# Longer ids are not numbers (UUIDs and the like); converting them is pointless and
# int() of huge digit strings is slow (and capped by sys.int_info).
_MAX_NUMERIC_ID = 32


@lru_cache(maxsize=16384)
def id_variants(message_id: str) -> tuple[str, ...]:
    """Forms of a message id to try when matching a receipt to a submitted message.

    SMSCs often return the submit_sm_resp id in one base and the receipt id in the
    other (hex "3039" vs decimal "12345"), in either case, sometimes zero-padded.
    Returned, without duplicates and in this order: the id as given; trimmed and
    lowercased; and, when it looks numeric, its value re-rendered without leading
    zeros in decimal and lowercase hex. An all-digit id is ambiguous (it is valid hex
    too), so both readings are included.

    Cached: a gateway asks for the same id's variants when the submit_sm_resp
    gives it and again when its receipt comes.

    Match by intersecting variant sets (see `ids_match`), or store each submitted id
    under all its variants and look up every variant of a receipt's id. Variants
    can collide between unrelated messages (decimal "16" and hex "10"), so a match
    should also be checked against the destination address.
    """
    variants = [message_id]
    lower = message_id.strip().lower()
    variants.append(lower)
    if lower and len(lower) <= _MAX_NUMERIC_ID:
        if _DECIMAL.fullmatch(lower):
            value = int(lower)
            variants += [str(value), format(value, "x")]
        if _HEX.fullmatch(lower):
            value = int(lower, 16)
            variants += [format(value, "x"), str(value)]
    return tuple(dict.fromkeys(variants))


def ids_match(a: str, b: str) -> bool:
    """Whether two ids may name the same message, allowing for base and case."""
    return not set(id_variants(a)).isdisjoint(id_variants(b))
