"""Document 003's rules for an `Sms` object, one violation per broken rule.

- `sender`: numeric, up to 15 digits (an optional leading `+`, as 003's own sample
  request has), or alphanumeric, 1 to 11 characters of `[A-Za-z0-9 ]` (not only
  spaces). Alphanumeric senders go out with TON 5.
- `recipient`: E.164, `+`, country code and subscriber number, at most 15 digits,
  and a real number for its country (phonenumbers' metadata).
- `message`: at least one character, and one SMS: at most 160 GSM-7 septets (the
  extension characters `^{}\\[~]|€` and form feed count two) or, for anything else,
  70 UCS-2 units (a character outside the BMP, an emoji, counts two).

A missing field, a field of the wrong type and a broken rule are each one violation,
so a body missing all three fields has three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers

from ...smpp.gsm import gsm_septets
from ..errors import ConstraintViolations

GSM7_MAX = 160
UCS2_MAX = 70
FIELDS = ("sender", "recipient", "message")

_NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,15}")
_ALPHA_SENDER = re.compile(r"[A-Za-z0-9 ]{1,11}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SURROGATE = re.compile("[\ud800-\udfff]")
ALPHANUMERIC_TON = 5


@dataclass(frozen=True, slots=True)
class Sms:
    sender: str
    recipient: str
    message: str

    @property
    def alphanumeric(self) -> bool:
        return _NUMERIC_SENDER.fullmatch(self.sender) is None

    @property
    def source_ton(self) -> int | None:
        """TON 5 for an alphanumeric sender; None lets the core choose from the number."""
        return ALPHANUMERIC_TON if self.alphanumeric else None


def _missing(name: str) -> str:
    return f"The sms property '{name}' has to be set"


def _sender(value: str) -> str | None:
    if _NUMERIC_SENDER.fullmatch(value):
        return None
    if _ALPHA_SENDER.fullmatch(value) and not value.isspace():
        return None
    return (
        "The sms property 'sender' must be numeric with up to 15 digits ([0-9]) "
        "or alphanumeric with 1 to 11 characters in the range [A-Za-z0-9 ]"
    )


def _recipient(value: str) -> str | None:
    if not _E164.fullmatch(value):
        return (
            "The sms property 'recipient' must be an E.164 phone number of at most "
            "15 digits, formatted as [+][country code][subscriber number]"
        )
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        return "The sms property 'recipient' is not a valid phone number"
    return None


def sms_units(text: str) -> tuple[str, int]:
    """("gsm7", septets) when every character is in the GSM-7 alphabet, else
    ("ucs2", UTF-16 code units)."""
    septets = gsm_septets(text)
    if septets is not None:
        return "gsm7", septets
    return "ucs2", len(text.encode("utf-16-le", "surrogatepass")) // 2


def _message(value: str) -> str | None:
    if not value:
        return "The sms property 'message' must have at least one character"
    if "\x00" in value or _SURROGATE.search(value):
        return "The sms property 'message' contains a character that cannot be sent"
    alphabet, units = sms_units(value)
    if alphabet == "gsm7" and units > GSM7_MAX:
        return (
            f"The sms property 'message' must fit in one SMS: at most {GSM7_MAX} GSM-7 "
            f"characters (extension characters count two), this one needs {units}"
        )
    if alphabet == "ucs2" and units > UCS2_MAX:
        return (
            f"The sms property 'message' must fit in one SMS: at most {UCS2_MAX} UCS-2 "
            f"characters (emoji count two), this one needs {units}"
        )
    return None


_CHECKS = {"sender": _sender, "recipient": _recipient, "message": _message}


def parse_sms(body: Any) -> Sms:
    """The decoded JSON body as an Sms, or ConstraintViolations listing every fault."""
    if not isinstance(body, dict):
        raise ConstraintViolations(["The request body must be a JSON object (an Sms)"])
    violations: list[str] = []
    for name in FIELDS:
        value = body.get(name)
        if value is None:
            violations.append(_missing(name))
        elif not isinstance(value, str):
            violations.append(f"The sms property '{name}' must be a string")
        else:
            fault = _CHECKS[name](value)
            if fault is not None:
                violations.append(fault)
    if violations:
        raise ConstraintViolations(violations)
    return Sms(body["sender"], body["recipient"], body["message"])
