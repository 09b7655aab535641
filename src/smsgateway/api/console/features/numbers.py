"""The Numbers page: number users (document 002) and the number pool.

Reads and acts through core.numbers.NumbersService, as /api/v1/admin/number-users
and /api/v1/admin/numbers do; a new user's API key and webhook secret are shown
once, in the answer to the action that made them, and never again.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ....core.errors import Unavailable
from ....core.numbers.service import NumberInput, NumbersService
from ....core.numbers.views import user_view
from ...services import Services
from ..pages import ActionContext, Page, register_page
from .base import body_as


class NewNumberUser(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    name: str = ""


class NumberUserFlags(msgspec.Struct, forbid_unknown_fields=True):
    user_id: int
    active: bool | None = None
    approved: bool | None = None


class NumbersImport(msgspec.Struct, forbid_unknown_fields=True):
    numbers: list[str]


def _service(services: Services) -> NumbersService:
    if services.numbers is None:
        raise Unavailable("the numbers service is not running")
    return services.numbers


async def snapshot(services: Services) -> dict[str, Any]:
    numbers = _service(services)
    rows = await numbers.list_numbers(None, None, "", "200")
    return {
        "summary": await numbers.summary(),
        "users": [user_view(u) for u in await numbers.list_users()],
        "numbers": [
            {
                "phone_number": r.phone_number,
                "country_id": r.country_id,
                "state": r.state,
                "user_id": r.user_id if r.state == "assigned" else None,
                "assigned_until": r.assigned_until,
                "quarantined_until": r.quarantined_until,
                "times_assigned": r.times_assigned,
            }
            for r in rows
        ],
    }


async def _audit(ctx: ActionContext, action: str, target: str, detail: str) -> None:
    if ctx.services.console is not None:
        await ctx.services.console.store.audit(ctx.actor, action, target, detail)


async def create_user(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    new = body_as(body, NewNumberUser)
    created = await _service(ctx.services).create_user(email=new.email, name=new.name)
    await _audit(ctx, "number_user.create", f"number_user:{created.user_id}", new.email)
    return {
        "user_id": created.user_id,
        "api_key": created.api_key,
        "webhook_secret": created.webhook_secret,
    }


async def set_user(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    flags = body_as(body, NumberUserFlags)
    changes = {
        k: v for k, v in (("active", flags.active), ("approved", flags.approved)) if v is not None
    }
    user = await _service(ctx.services).update_user(flags.user_id, changes)
    detail = ", ".join(f"{k}={v}" for k, v in changes.items())
    await _audit(ctx, "number_user.update", f"number_user:{user.id}", detail)
    return user_view(user)


async def import_numbers(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    wanted = body_as(body, NumbersImport)
    phones = [p.strip() for p in wanted.numbers if p.strip()]
    result = await _service(ctx.services).import_numbers([NumberInput(p) for p in phones])
    await _audit(ctx, "numbers.import", "numbers", f"{result.added} added")
    return {"added": result.added, "existing": result.existing}


register_page(
    Page(
        "numbers",
        "Numbers",
        snapshot,
        order=60,
        actions={
            "create_user": create_user,
            "set_user": set_user,
            "import_numbers": import_numbers,
        },
    )
)
