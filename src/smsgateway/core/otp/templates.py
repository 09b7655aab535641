"""OTP message templates: `{{code}}`, `{{project}}`, `{{minutes}}`.

A template must hold `{{code}}` and nothing else in double braces; rendered with the
longest code and the project's name it must fit in `MAX_PARTS` SMS parts. The default
fits one GSM-7 SMS (160 septets) for any project name of up to 64 characters.
"""

from __future__ import annotations

import re

from ...smpp.text import NotEncodable, estimate
from ..errors import InvalidRequest

DEFAULT_TEMPLATE = "Your {{project}} code is {{code}}. It expires in {{minutes}} minutes."
PLACEHOLDERS = frozenset({"code", "project", "minutes"})
MAX_TEMPLATE_CHARS = 480
MAX_PARTS = 3
_FIELD = re.compile(r"\{\{\s*([A-Za-z_]*)\s*\}\}")


def render(template: str, *, code: str, project: str, minutes: int) -> str:
    values = {"code": code, "project": project, "minutes": str(minutes)}
    return _FIELD.sub(lambda m: values[m.group(1)], template)


def check_template(template: str, project: str, where: str = "template") -> None:
    """Raise InvalidRequest unless `template` is usable for `project`."""
    if not isinstance(template, str) or not template.strip():
        raise InvalidRequest(f"{where} must not be empty")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InvalidRequest(f"{where} must be at most {MAX_TEMPLATE_CHARS} characters")
    if "\x00" in template:
        raise InvalidRequest(f"{where} must not contain NUL characters")
    names = [m.group(1) for m in _FIELD.finditer(template)]
    unknown = sorted(set(names) - PLACEHOLDERS)
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown placeholder {{{{{unknown[0]}}}}};"
            " use {{code}}, {{project}} and {{minutes}}"
        )
    if "code" not in names:
        raise InvalidRequest(f"{where} must contain {{{{code}}}}")
    rest = _FIELD.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise InvalidRequest(f"{where}: unbalanced '{{{{' or '}}}}'")
    sample = render(template, code="0" * 10, project=project, minutes=1440)
    try:
        parts = estimate(sample).parts
    except NotEncodable as exc:
        raise InvalidRequest(f"{where} cannot be sent as SMS: {exc}") from None
    if parts > MAX_PARTS:
        raise InvalidRequest(
            f"{where} is too long: it needs {parts} SMS parts (at most {MAX_PARTS})"
        )
