"""The operations routes of the native face (document 001 sections 1, 3, 4, 5 and 7).

Dashboard, settings, SMPP link control and the admin panel, each path with the
credential 001's endpoint summary gives it: JWT (`Authorization` + `X-App-ID`) under
`/api/v1/{dashboard,settings,smpp}`, the admin key under `/api/v1/admin`, none (or
the admin key, by setting) on `/dashboard/*`. Handlers parse, call `core.ops`, and
render `{"success": true, "data": ...}`; errors keep the native `{"error": "..."}`
through `NativeApi.endpoint`.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..core.campaigns import parse_page
from ..core.errors import InvalidRequest
from ..core.license import LicenseError
from ..core.ops import OpsService
from .http import decode_json, json_response

if TYPE_CHECKING:
    from .rest import NativeApi

Handler = Callable[[Request], Awaitable[Response]]
Auth = Callable[[Request], Awaitable[str]]

_MAX_ID = 2**63 - 1
SECRET_MASK = "********"


class ToggleBody(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool
    reason: str = ""


class ProxyUserBody(msgspec.Struct):
    email: str
    password: str
    app_name: str = ""
    app_secret: str | None = None


class FilterBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    rule: str
    mode: str = "blacklist"
    active: bool = True
    description: str = ""


def _ok(data: Any, status: int = 200, **extra: Any) -> Response:
    return json_response({"success": True, **extra, "data": data}, status)


def _path_id(request: Request, what: str) -> int:
    raw = str(request.path_params.get("id", ""))
    # isascii: int() takes non-ASCII digits and "1_0"; an id in a path is plain digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
        raise InvalidRequest(f"invalid {what} id")
    return int(raw)


def _license_file(body: bytes, content_type: str) -> bytes:
    """The `license` field of a multipart/form-data body (stdlib parser: no extra
    dependency for one upload field; the body is already size-limited)."""
    if (
        not content_type.lower().startswith("multipart/form-data")
        or "boundary=" not in content_type
    ):
        raise LicenseError("multipart/form-data with a 'license' file field is required")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise LicenseError("malformed multipart body")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "license":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload.strip():
                return payload
            raise LicenseError("license file is empty")
    raise LicenseError("no license file: send it in the 'license' field")


class OpsRoutes:
    def __init__(self, api: NativeApi, ops: OpsService) -> None:
        self.api = api
        self.ops = ops
        self.auth = api.s.auth

    # -- credentials: each returns the actor name audit rows record ------------------

    async def _jwt(self, request: Request) -> str:
        principal = await self.api._principal(request.headers)
        return f"user:{principal.user_id}"

    async def _admin(self, request: Request) -> str:
        self.api._admin(request)
        return "admin"

    async def _public(self, request: Request) -> str:
        if not self.ops.settings.dashboard.public_stats:
            self.api._admin(request)
            return "admin"
        return "public"

    # -- dashboard -------------------------------------------------------------------

    def _dashboard(self, auth: Auth, view: str) -> Handler:
        async def handler(request: Request) -> Response:
            await auth(request)
            if view == "metrics":
                return _ok(await self.ops.dashboard_metrics())
            if view == "stats":
                return _ok(await self.ops.dashboard_stats())
            if view == "smpp-links":
                return _ok(self.ops.links.link_rows())
            return _ok(self.ops.links.pool_rows())

        return handler

    # -- settings --------------------------------------------------------------------

    def _license(self, auth: Auth) -> Handler:
        async def handler(request: Request) -> Response:
            await auth(request)
            return _ok(self.ops.license.view())

        return handler

    def _license_upload(self, auth: Auth) -> Handler:
        async def handler(request: Request) -> Response:
            actor = await auth(request)
            body = await self.api.read(request)
            data = _license_file(body, request.headers.get("content-type", ""))
            claims = self.ops.license.accept(data)
            await self.ops.links.reconcile()
            await self.ops.store.audit(
                actor, "license.upload", f"license:{claims.license_id}", claims.company
            )
            return _ok(self.ops.license.view(), message="License uploaded successfully")

        return handler

    def _smpp_config(self, auth: Auth) -> Handler:
        async def handler(request: Request) -> Response:
            await auth(request)
            return _ok(self.ops.smpp_config())

        return handler

    async def server_config(self, request: Request) -> Response:
        await self._admin(request)
        return _ok(self.ops.server_config())

    # -- smpp control ----------------------------------------------------------------

    def _toggle(self, auth: Auth) -> Handler:
        async def handler(request: Request) -> Response:
            actor = await auth(request)
            link_id = _path_id(request, "link")
            body = decode_json(await self.api.read(request), ToggleBody)
            link = await self.ops.links.toggle(link_id, body.enabled, body.reason, actor)
            return _ok({"id": link.id, "name": link.name, "enabled": link.enabled})

        return handler

    # -- admin: campaigns ------------------------------------------------------------

    async def campaigns(self, request: Request) -> Response:
        await self._admin(request)
        q = request.query_params
        page, limit = parse_page(q.get("page"), q.get("limit"))
        rows, pagination = await self.ops.campaigns.page(page, limit)
        data = [
            {
                "campaign_uuid": r.campaign,
                "messages_sent": r.sent,
                "messages_failed": r.failed,
                "messages_total": r.total,
                "sme": r.link_id,
            }
            for r in rows
        ]
        return json_response({"success": True, "data": data, "pagination": pagination})

    # -- admin: proxy users ----------------------------------------------------------

    async def users(self, request: Request) -> Response:
        await self._admin(request)
        rows = await self.auth.list_users()
        return _ok(
            [
                {
                    "id": r.user_id,
                    "email": r.email,
                    "is_admin": r.is_admin,
                    "app_id": r.app_id,
                    "app_name": r.app_name,
                    # Encrypted at rest and never shown again after registration.
                    "app_secret": SECRET_MASK if r.secret_enc else "",
                }
                for r in rows
            ]
        )

    async def register_user(self, request: Request) -> Response:
        actor = await self._admin(request)
        body = decode_json(await self.api.read(request), ProxyUserBody)
        created = await self.auth.register(
            body.email, body.password, body.app_name or None, app_secret=body.app_secret
        )
        await self.ops.store.audit(actor, "user.create", f"user:{created.user_id}", body.email)
        return _ok({"user_id": created.user_id, "app_id": created.app_id}, 201)

    async def delete_user(self, request: Request) -> Response:
        actor = await self._admin(request)
        user_id = _path_id(request, "user")
        await self.auth.delete_user(user_id, actor=actor)
        return json_response({"success": True})

    async def toggle_admin(self, request: Request) -> Response:
        actor = await self._admin(request)
        user_id = _path_id(request, "user")
        flag = await self.auth.toggle_admin(user_id, actor=actor)
        return _ok({"id": user_id, "is_admin": flag})

    # -- admin: filters (beyond 001) -------------------------------------------------

    async def filters(self, request: Request) -> Response:
        await self._admin(request)
        return _ok(self.ops.filter_rows())

    async def put_filter(self, request: Request) -> Response:
        actor = await self._admin(request)
        body = decode_json(await self.api.read(request), FilterBody)
        f = await self.ops.put_filter(
            body.name, body.mode, body.rule, body.active, body.description, actor
        )
        row = next(r for r in self.ops.filter_rows() if r["name"] == f.name)
        return _ok(row)

    async def delete_filter(self, request: Request) -> Response:
        actor = await self._admin(request)
        await self.ops.delete_filter(str(request.path_params["name"]), actor)
        return json_response({"success": True})

    # -- routes ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        e = self.api.endpoint
        jwt, admin, public = self._jwt, self._admin, self._public
        routes: list[BaseRoute] = []

        def get(path: str, name: str, handler: Handler) -> None:
            routes.append(Route(path, e(name, handler), methods=["GET"]))

        for view in ("stats", "smpp-links", "load-balancers"):
            # Document 000 lists all three as public monitoring endpoints.
            get(f"/dashboard/{view}", f"dashboard_{view}", self._dashboard(public, view))
        for view in ("metrics", "stats", "smpp-links", "load-balancers"):
            get(f"/api/v1/dashboard/{view}", f"dashboard_{view}", self._dashboard(jwt, view))
        for view in ("metrics", "smpp-links", "load-balancers"):
            get(
                f"/api/v1/admin/dashboard/{view}",
                f"admin_dashboard_{view}",
                self._dashboard(admin, view),
            )
        for prefix, auth, tag in (
            ("/api/v1/settings", jwt, "settings"),
            ("/api/v1/admin/settings", admin, "admin_settings"),
        ):
            get(f"{prefix}/license", f"{tag}_license", self._license(auth))
            routes.append(
                Route(
                    f"{prefix}/license/upload",
                    e(f"{tag}_license_upload", self._license_upload(auth)),
                    methods=["POST"],
                )
            )
            get(f"{prefix}/smpp-config", f"{tag}_smpp_config", self._smpp_config(auth))
        get("/api/v1/admin/settings/server-config", "admin_server_config", self.server_config)
        routes += [
            Route("/api/v1/smpp/{id}/toggle", e("smpp_toggle", self._toggle(jwt)), methods=["PUT"]),
            Route(
                "/api/v1/admin/smpp/{id}/toggle",
                e("admin_smpp_toggle", self._toggle(admin)),
                methods=["PUT"],
            ),
        ]
        get("/api/v1/admin/metrics/campaigns", "admin_campaigns", self.campaigns)
        get("/api/v1/admin/proxy-users/", "admin_users", self.users)
        get("/api/v1/admin/proxy-users", "admin_users", self.users)
        routes += [
            Route(
                "/api/v1/admin/proxy-users/register",
                e("admin_user_register", self.register_user),
                methods=["POST"],
            ),
            Route(
                "/api/v1/admin/proxy-users/{id}",
                e("admin_user_delete", self.delete_user),
                methods=["DELETE"],
            ),
            Route(
                "/api/v1/admin/proxy-users/{id}/toggle-admin",
                e("admin_user_toggle_admin", self.toggle_admin),
                methods=["PUT"],
            ),
            Route("/api/v1/admin/filters", e("admin_filters", self.filters), methods=["GET"]),
            Route(
                "/api/v1/admin/filters", e("admin_filter_put", self.put_filter), methods=["POST"]
            ),
            Route(
                "/api/v1/admin/filters/{name}",
                e("admin_filter_delete", self.delete_filter),
                methods=["DELETE"],
            ),
        ]
        return routes


def ops_routes(api: NativeApi) -> list[BaseRoute]:
    """The operations routes, or none when the services carry no ops side."""
    ops = api.s.ops
    return OpsRoutes(api, ops).routes() if ops is not None else []
