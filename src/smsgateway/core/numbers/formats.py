"""Phone numbers in and out: E.164 parsing (phonenumbers) and 002's output formats."""

from __future__ import annotations

import re

import phonenumbers

from ..errors import InvalidRequest

FORMATS = ("full", "national", "remove_plus")
_NON_DIGITS = re.compile(r"\D")


def parse_e164(text: str, *, strict: bool = True) -> tuple[str, str] | None:
    """(E.164, ISO region) for an international number ("+4915..." or "4915...");
    None when it is not one. `strict` also requires phonenumbers to call it valid."""
    raw = text.strip()
    if not raw or len(raw) > 32:
        return None
    if not raw.startswith("+"):
        raw = "+" + raw
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if strict and not phonenumbers.is_valid_number(number):
        return None
    if not strict and not phonenumbers.is_possible_number(number):
        return None
    region = phonenumbers.region_code_for_number(number) or ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), region


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise InvalidRequest(f"number_format must be one of {', '.join(FORMATS)}")
    return name


def render(e164: str, number_format: str) -> str:
    """`full` +E.164, `national` the digits dialled inside the country (trunk prefix
    included), `remove_plus` E.164 without the plus."""
    if number_format == "remove_plus":
        return e164.lstrip("+")
    if number_format == "national":
        number = phonenumbers.parse(e164, None)
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return _NON_DIGITS.sub("", national)
    return e164
