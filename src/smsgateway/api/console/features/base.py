"""What feature pages share: typed action bodies."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ....core.errors import InvalidRequest

T = TypeVar("T")


def body_as(body: dict[str, Any], type_: type[T]) -> T:
    """An action's JSON body as its struct; a defect is a 400 naming the field."""
    try:
        return msgspec.convert(body, type_)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
