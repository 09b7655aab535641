"""Document 003's Sms rules, at the boundaries: which bodies pass and which violation
each broken rule gives (the HTTP tests check the same rows over a real socket)."""

from __future__ import annotations

from typing import Any

import pytest

from smsgateway.core.errors import ConstraintViolations
from smsgateway.core.oneshot import parse_sms, sms_units

OK = {"sender": "+4740003410", "recipient": "+4798765432", "message": "Your code: 1234"}
EMOJI = "\U0001f600"


def _with(**kw: Any) -> dict[str, Any]:
    return {**OK, **kw}


@pytest.mark.parametrize(
    "body",
    [
        OK,  # 003's sample request
        _with(sender="123456789012345"),  # 15 digits
        _with(sender="1"),
        _with(sender="Signicat"),
        _with(sender="Bank 24 ABC"),  # 11 characters with spaces
        _with(sender="12345678901"),
        _with(recipient="+14155552671"),
        _with(recipient="+447911123456"),
        _with(message="x"),
        _with(message="a" * 160),
        _with(message="€" * 80),  # 80 extension characters: 160 septets
        _with(message="a" * 158 + "€"),
        _with(message="{}[]~|^\\" * 10),  # 8 extension chars x 10 = 160 septets
        _with(message="ж" * 70),
        _with(message=EMOJI * 35),  # 35 surrogate pairs: 70 units
        _with(message="ж" * 68 + EMOJI),
    ],
)
def test_valid_sms(body: dict[str, Any]) -> None:
    sms = parse_sms(body)
    assert sms.message == body["message"]


def _violations(body: Any) -> list[str]:
    with pytest.raises(ConstraintViolations) as info:
        parse_sms(body)
    return info.value.violations


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**OK, "sender": None}, ["The sms property 'sender' has to be set"]),
        ({k: v for k, v in OK.items() if k != "recipient"}, ["'recipient' has to be set"]),
        ({k: v for k, v in OK.items() if k != "message"}, ["'message' has to be set"]),
        (_with(sender="1234567890123456"), ["'sender' must be numeric"]),  # 16 digits
        (_with(sender="ABCDEFGHIJKL"), ["'sender' must be numeric"]),  # 12 characters
        (_with(sender="AB-C"), ["'sender' must be numeric"]),
        (_with(sender="Bänk"), ["'sender' must be numeric"]),
        (_with(sender=""), ["'sender' must be numeric"]),
        (_with(sender="   "), ["'sender' must be numeric"]),
        (_with(sender=4740003410), ["'sender' must be a string"]),
        (_with(recipient="4798765432"), ["'recipient' must be an E.164"]),
        (_with(recipient="+4798 765432"), ["'recipient' must be an E.164"]),
        (_with(recipient="+1234567890123456"), ["'recipient' must be an E.164"]),  # 16 digits
        (_with(recipient="+0123456789"), ["'recipient' must be an E.164"]),
        (_with(recipient="+99912345678"), ["'recipient' is not a valid phone number"]),
        (_with(recipient="+47123"), ["'recipient' is not a valid phone number"]),
        (_with(recipient=["+4798765432"]), ["'recipient' must be a string"]),
        (_with(message=""), ["'message' must have at least one character"]),
        (_with(message="a" * 161), ["at most 160 GSM-7", "needs 161"]),
        (_with(message="€" * 81), ["at most 160 GSM-7", "needs 162"]),
        (_with(message="a" * 159 + "€"), ["needs 161"]),
        (_with(message="ж" * 71), ["at most 70 UCS-2", "needs 71"]),
        (_with(message=EMOJI * 36), ["at most 70 UCS-2", "needs 72"]),
        (_with(message="ж" * 69 + EMOJI), ["needs 71"]),
        (_with(message="a" * 150 + "ж"), ["needs 151"]),  # one Cyrillic letter: UCS-2
        (_with(message="bad \ud83d half"), ["cannot be sent"]),
        (_with(message="nul \x00"), ["cannot be sent"]),
        (_with(message=1234), ["'message' must be a string"]),
    ],
)
def test_each_broken_rule_is_one_violation(body: dict[str, Any], expected: list[str]) -> None:
    violations = _violations(body)
    assert len(violations) == 1, violations
    for part in expected:
        assert part in violations[0]


def test_every_broken_rule_is_reported() -> None:
    assert _violations({}) == [
        "The sms property 'sender' has to be set",
        "The sms property 'recipient' has to be set",
        "The sms property 'message' has to be set",
    ]
    three = _violations({"sender": "x" * 12, "recipient": "123", "message": ""})
    assert len(three) == 3
    assert len(_violations({"sender": 1, "recipient": None, "message": "ok"})) == 2
    assert _violations(["not", "an", "object"]) == [
        "The request body must be a JSON object (an Sms)"
    ]


def test_sms_units() -> None:
    assert sms_units("abc") == ("gsm7", 3)
    assert sms_units("a€") == ("gsm7", 3)
    assert sms_units("aж") == ("ucs2", 2)
    assert sms_units(EMOJI) == ("ucs2", 2)


def test_alphanumeric_senders_go_out_with_ton_5() -> None:
    assert parse_sms(_with(sender="Signicat")).source_ton == 5
    assert parse_sms(_with(sender="+4740003410")).source_ton is None
    assert parse_sms(_with(sender="12345")).source_ton is None
