"""The numbers face (document 002) and its admin routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from .admin import NumbersAdmin
from .face import NumbersFace

if TYPE_CHECKING:
    from ..rest import NativeApi


def numbers_routes(api: NativeApi) -> list[BaseRoute]:
    """Every route of the numbers service; none when the runtime built no service."""
    numbers = api.s.numbers
    if numbers is None:
        return []
    return NumbersFace(api, numbers).routes() + NumbersAdmin(api, numbers, api.s.webhooks).routes()
