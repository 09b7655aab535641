"""Templates: the default fits one GSM-7 SMS for any allowed project name; rendering
fills every placeholder; bad templates are refused with the reason."""

from __future__ import annotations

import pytest

from smsgateway.core.errors import InvalidRequest
from smsgateway.core.otp.templates import DEFAULT_TEMPLATE, check_template, render
from smsgateway.smpp.text import Encoding, estimate


def test_default_fits_one_gsm7_sms_for_the_longest_name() -> None:
    text = render(DEFAULT_TEMPLATE, code="1234567890", project="N" * 64, minutes=1440)
    cost = estimate(text)
    assert cost.encoding == Encoding.GSM7 and cost.parts == 1
    check_template(DEFAULT_TEMPLATE, "N" * 64)


def test_render_fills_placeholders() -> None:
    assert render(
        "{{project}}: {{ code }} ({{minutes}} min)", code="042", project="A", minutes=5
    ) == ("A: 042 (5 min)")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("", "empty"),
        ("hello", "{{code}}"),
        ("{{code}} {{name}}", "unknown placeholder"),
        ("{{code}} }}", "unbalanced"),
        ("{{code}}" + "x" * 473, "at most 480"),
        ("{{code}} " + "x" * 470, "too long"),
        ("{{code}}\x00", "NUL"),
    ],
)
def test_bad_templates(template: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason.replace("{", r"\{").replace("}", r"\}")):
        check_template(template, "Acme")
