"""The OTP projects face: the public /v1 API and the admin routes for projects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from .admin import ProjectAdminRoutes
from .v1 import V1Face

if TYPE_CHECKING:
    from ..rest import NativeApi


def otp_routes(api: NativeApi) -> list[BaseRoute]:
    """The /v1 mount and the project admin routes, or none without an OTP side."""
    otp = api.s.otp
    if otp is None:
        return []
    return V1Face(api, otp).routes() + ProjectAdminRoutes(api, otp).routes()
