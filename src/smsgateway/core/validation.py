"""Rules for what a send may carry: addresses and text. One place for every face."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidRequest

# Numeric sender: up to 15 digits, optional +; alphanumeric: 1..11 of [A-Za-z0-9 ]
# (document 003's rule, which SMSCs enforce as well).
_NUMERIC = re.compile(r"\+?[0-9]{1,15}")
_ALPHA = re.compile(r"[A-Za-z0-9 ]{1,11}")
_MSISDN = re.compile(r"\+?[0-9]{3,15}")


@dataclass(frozen=True, slots=True)
class Address:
    """An address as the SMSC gets it: digits without '+', and its TON/NPI."""

    value: str
    ton: int
    npi: int


def parse_source(text: str) -> Address:
    if not isinstance(text, str) or not text:
        raise InvalidRequest("source is required")
    if _NUMERIC.fullmatch(text):
        return _numeric(text)
    if _ALPHA.fullmatch(text) and not text.isspace():
        return Address(text, 5, 0)  # TON alphanumeric, NPI unknown
    raise InvalidRequest(
        "source must be a number of up to 15 digits (optional +) "
        "or 1 to 11 letters, digits and spaces"
    )


def parse_destination(text: str) -> Address:
    if not isinstance(text, str) or not text:
        raise InvalidRequest("destination is required")
    if not _MSISDN.fullmatch(text):
        raise InvalidRequest("destination must be 3 to 15 digits with an optional leading +")
    return _numeric(text)


def _numeric(text: str) -> Address:
    digits = text.lstrip("+")
    if text.startswith("+") or len(digits) >= 10:
        return Address(digits, 1, 1)  # international, E.164
    return Address(digits, 0, 1)  # unknown TON (short codes, national), ISDN plan


def check_text(message: str) -> None:
    if not isinstance(message, str) or not message:
        raise InvalidRequest("message must not be empty")
    if "\x00" in message:
        raise InvalidRequest("message must not contain NUL characters")
