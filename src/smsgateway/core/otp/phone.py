"""Phone numbers as the /v1 API takes them: E.164 with a leading '+'."""

from __future__ import annotations

import phonenumbers

from ..errors import InvalidRequest


def parse_e164(text: object, where: str = "to") -> str:
    """The number in E.164 form, or InvalidRequest naming the field."""
    if not isinstance(text, str) or not text:
        raise InvalidRequest(f"{where} is required")
    if len(text) > 32 or not text.startswith("+"):
        raise InvalidRequest(f"{where} must be an E.164 number with a leading + (+15551234567)")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidRequest(f"{where} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidRequest(f"{where} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
