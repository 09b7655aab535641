"""The OAuth clients page: the clients of the token endpoint (/oauth/token).

Through core.tokens.TokenService, as /api/v1/admin/oauth-clients: a new client's
secret is shown once, in the answer to the action that made it; only its hash is kept.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ....core.errors import Unavailable
from ....core.tokens.service import TokenService
from ...services import Services
from ..pages import ActionContext, Page, register_page
from .base import body_as


class NewClient(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    scopes: list[str]


class ClientRef(msgspec.Struct, forbid_unknown_fields=True):
    client_id: str


def _service(services: Services) -> TokenService:
    if services.tokens is None:
        raise Unavailable("the token service is not running")
    return services.tokens


async def snapshot(services: Services) -> dict[str, Any]:
    rows = await _service(services).list_clients()
    return {
        "clients": [
            {
                "client_id": r.client_id,
                "name": r.name,
                "scopes": list(r.scopes),
                "created_at": r.created_at,
                "created_by": r.created_by,
            }
            for r in rows
        ]
    }


async def create_client(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    new = body_as(body, NewClient)
    made = await _service(ctx.services).create_client(new.name, new.scopes, ctx.actor)
    return {
        "client_id": made.client_id,
        "client_secret": made.client_secret,
        "name": made.name,
        "scopes": made.scopes,
    }


async def delete_client(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    ref = body_as(body, ClientRef)
    await _service(ctx.services).delete_client(ref.client_id, ctx.actor)
    return {"client_id": ref.client_id, "deleted": True}


register_page(
    Page(
        "oauth",
        "OAuth clients",
        snapshot,
        order=70,
        actions={"create_client": create_client, "delete_client": delete_client},
    )
)
