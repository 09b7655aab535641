"""Admin routes of the numbers service (X-Admin-Key): number users, operators,
numbers, webhook events. Native shape: `{"success": true, "data": ...}`, errors
`{"error": ...}` through `NativeApi.endpoint`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.errors import InvalidRequest
from ...core.numbers.service import NumberInput, NumbersService
from ...core.numbers.views import user_view
from ...core.webhooks.deliverer import WebhookDeliverer
from ..http import decode_json, json_response

if TYPE_CHECKING:
    from ..rest import NativeApi

Handler = Callable[[Request], Awaitable[Response]]
_MAX_ID = 2**63 - 1


class CreateNumberUserBody(msgspec.Struct, forbid_unknown_fields=True):
    email: str
    name: str = ""
    manager_id: int | None = None
    webhook_url: str = ""
    number_format: str = "full"


class PatchNumberUserBody(msgspec.Struct, forbid_unknown_fields=True):
    active: bool | msgspec.UnsetType = msgspec.UNSET
    approved: bool | msgspec.UnsetType = msgspec.UNSET
    manager_id: int | msgspec.UnsetType | None = msgspec.UNSET
    webhook_url: str | msgspec.UnsetType = msgspec.UNSET
    number_format: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET


class RotateBody(msgspec.Struct, forbid_unknown_fields=True):
    api_key: bool = True
    webhook_secret: bool = True


class OperatorBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    country_id: int
    prefixes: list[str] = []


class NumberItem(msgspec.Struct, forbid_unknown_fields=True):
    phone_number: str
    operator_id: int | None = None
    channel: str = ""


class ImportBody(msgspec.Struct, forbid_unknown_fields=True):
    numbers: list[NumberItem]


class RedeliverBody(msgspec.Struct):
    """No fields: the event is named in the path (an empty body is fine too)."""


def _ok(data: Any, status: int = 200) -> Response:
    return json_response({"success": True, "data": data}, status)


def _path_id(request: Request) -> int:
    raw = str(request.path_params.get("id", ""))
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
        raise InvalidRequest("invalid number user id")
    return int(raw)


class NumbersAdmin:
    def __init__(
        self, api: NativeApi, numbers: NumbersService, deliverer: WebhookDeliverer | None
    ) -> None:
        self.api = api
        self.numbers = numbers
        self.deliverer = deliverer

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            self.api.s.admin_key.check(request.headers.get("x-admin-key"))
            return await handler(request)

        return guarded

    async def create_user(self, request: Request) -> Response:
        body = decode_json(await self.api.read(request), CreateNumberUserBody)
        created = await self.numbers.create_user(
            email=body.email,
            name=body.name,
            manager_id=body.manager_id,
            webhook_url=body.webhook_url,
            number_format=body.number_format,
        )
        return _ok(
            {
                "user_id": created.user_id,
                "api_key": created.api_key,
                "webhook_secret": created.webhook_secret,
            },
            201,
        )

    async def list_users(self, request: Request) -> Response:
        return _ok([user_view(u) for u in await self.numbers.list_users()])

    async def get_user(self, request: Request) -> Response:
        return _ok(user_view(await self.numbers.get_user(_path_id(request))))

    async def patch_user(self, request: Request) -> Response:
        user_id = _path_id(request)
        body = decode_json(await self.api.read(request), PatchNumberUserBody)
        changes = {
            f: getattr(body, f)
            for f in body.__struct_fields__
            if getattr(body, f) is not msgspec.UNSET
        }
        return _ok(user_view(await self.numbers.update_user(user_id, changes)))

    async def rotate(self, request: Request) -> Response:
        user_id = _path_id(request)
        raw = await self.api.read(request)
        body = decode_json(raw, RotateBody) if raw.strip() else RotateBody()
        out = await self.numbers.rotate(
            user_id, api_key=body.api_key, webhook_secret=body.webhook_secret
        )
        return _ok({**out, "user_id": user_id})

    async def create_operator(self, request: Request) -> Response:
        body = decode_json(await self.api.read(request), OperatorBody)
        op = await self.numbers.create_operator(body.name, body.country_id, body.prefixes)
        return _ok(
            {"id": op.id, "name": op.name, "country_id": op.country_id, "prefixes": op.prefixes},
            201,
        )

    async def list_operators(self, request: Request) -> Response:
        _, operators = await self.numbers.init_data()
        return _ok(
            [
                {"id": op.id, "name": op.name, "country_id": op.country_id, "prefixes": op.prefixes}
                for op in operators
            ]
        )

    async def import_numbers(self, request: Request) -> Response:
        body = decode_json(await self.api.read(request), ImportBody)
        result = await self.numbers.import_numbers(
            [NumberInput(n.phone_number, n.operator_id, n.channel) for n in body.numbers]
        )
        return _ok({"added": result.added, "existing": result.existing}, 201)

    async def list_numbers(self, request: Request) -> Response:
        q = request.query_params
        rows = await self.numbers.list_numbers(
            q.get("state"), q.get("country_id"), q.get("after", ""), q.get("limit")
        )
        return _ok(
            [
                {
                    "phone_number": r.phone_number,
                    "country_id": r.country_id,
                    "operator_id": r.operator_id,
                    "channel": r.channel,
                    "state": r.state,
                    "user_id": r.user_id if r.state == "assigned" else None,
                    "assigned_at": r.assigned_at,
                    "assigned_until": r.assigned_until,
                    "quarantined_until": r.quarantined_until,
                    "times_assigned": r.times_assigned,
                }
                for r in rows
            ]
        )

    async def summary(self, request: Request) -> Response:
        return _ok(await self.numbers.summary())

    async def event(self, request: Request) -> Response:
        event, attempts = await self.numbers.event(str(request.path_params["event_id"]))
        return _ok(
            {
                "event_id": event.event_id,
                "user_id": event.user_id,
                "state": event.state,
                "attempts": event.attempts,
                "created_at": event.created_at,
                "next_attempt_at": event.next_attempt_at,
                "delivered_at": event.delivered_at,
                "last_error": event.last_error,
                "payload": msgspec.json.decode(event.body),
                "attempt_log": [msgspec.structs.asdict(a) for a in attempts],
            }
        )

    async def redeliver(self, request: Request) -> Response:
        raw = await self.api.read(request)
        if raw.strip():
            decode_json(raw, RedeliverBody)
        event_id = str(request.path_params["event_id"])
        await self.numbers.redeliver(event_id)
        if self.deliverer is not None:
            self.deliverer.wake()
        return _ok({"event_id": event_id, "state": "pending"}, 202)

    def routes(self) -> list[BaseRoute]:
        e, g = self.api.endpoint, self._guard
        users = "/api/v1/admin/number-users"
        return [
            Route(users, e("numbers_user_create", g(self.create_user)), methods=["POST"]),
            Route(users, e("numbers_user_list", g(self.list_users)), methods=["GET"]),
            Route(f"{users}/{{id}}", e("numbers_user_get", g(self.get_user)), methods=["GET"]),
            Route(
                f"{users}/{{id}}", e("numbers_user_patch", g(self.patch_user)), methods=["PATCH"]
            ),
            Route(
                f"{users}/{{id}}/rotate", e("numbers_user_rotate", g(self.rotate)), methods=["POST"]
            ),
            Route(
                "/api/v1/admin/operators",
                e("numbers_operator_create", g(self.create_operator)),
                methods=["POST"],
            ),
            Route(
                "/api/v1/admin/operators",
                e("numbers_operator_list", g(self.list_operators)),
                methods=["GET"],
            ),
            Route(
                "/api/v1/admin/numbers",
                e("numbers_import", g(self.import_numbers)),
                methods=["POST"],
            ),
            Route(
                "/api/v1/admin/numbers",
                e("numbers_list", g(self.list_numbers)),
                methods=["GET"],
            ),
            Route(
                "/api/v1/admin/numbers/summary",
                e("numbers_summary", g(self.summary)),
                methods=["GET"],
            ),
            Route(
                "/api/v1/admin/webhooks/{event_id}",
                e("webhook_event", g(self.event)),
                methods=["GET"],
            ),
            Route(
                "/api/v1/admin/webhooks/{event_id}/redeliver",
                e("webhook_redeliver", g(self.redeliver)),
                methods=["POST"],
            ),
        ]
