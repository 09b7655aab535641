"""The native REST face (documents 000 and 001): parse, authenticate, translate.

Handlers hold no rules: each one decodes its body into a typed struct, calls one core
service, and renders the answer or the error in the native shape `{"error": "..."}`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..core.auth import Principal
from ..core.errors import GatewayError, from_exception
from ..core.messages import SendRequest
from ..core.ratelimit import QUOTA_SCOPE_KEY, LoginGuard
from .http import client_ip, decode_json, json_response, read_body
from .ops import ops_routes
from .services import Services

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


# -- request bodies -------------------------------------------------------------------


class RegisterBody(msgspec.Struct):
    email: str
    password: str
    app_name: str = ""


class LoginBody(msgspec.Struct):
    email: str
    password: str
    app_id: int


class UserIdBody(msgspec.Struct):
    user_id: int


class SendBody(msgspec.Struct):
    esme: int
    source: str
    destination: str
    message: str
    transaction_id: str = ""
    campaign: str = ""


class EsmeBody(msgspec.Struct):
    esme: int


class InfoBody(msgspec.Struct):
    message_id: str
    esme: int = 0


class NativeApi:
    """Builds the routes of the native face over the core services."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.limit = services.settings.server.max_body_bytes
        self.body_timeout = services.settings.server.body_timeout_s
        self.trusted = [
            ipaddress.ip_network(c, strict=False) for c in services.settings.server.trusted_proxies
        ]

    # -- plumbing --------------------------------------------------------------------

    def endpoint(self, route: str, handler: Handler) -> Handler:
        """Wrap a handler: native error body, metrics, and no 500 for bad input."""
        counter = self.s.metrics.requests
        latency = self.s.metrics.latency.labels(route)
        # labels() costs a lock and a dict lookup per call; keep each child.
        by_status: dict[int, Any] = {}

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except GatewayError as exc:
                response = json_response({"error": exc.message}, exc.http_status)
            except Exception as exc:
                # A store that cannot write (disk full, locked) is a 503 with nothing
                # written; anything else is a bug: 500, and only the log says more.
                error = from_exception(exc)
                if error.http_status == 500:
                    log.exception("unhandled error", extra={"route": route})
                else:
                    log.error("%s: %s", error.message, exc, extra={"route": route})
                response = json_response({"error": error.message}, error.http_status)
            quota = request.scope.get(QUOTA_SCOPE_KEY)
            if quota is not None:  # rate-limit headers left by a limit check
                response.raw_headers.extend(
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in quota.items()
                )
            latency.observe(time.perf_counter() - started)
            status = response.status_code
            child = by_status.get(status)
            if child is None:
                child = by_status[status] = counter.labels(route, str(status))
            child.inc()
            return response

        return wrapped

    async def _body(self, request: Request, type_: type[msgspec.Struct]) -> msgspec.Struct:
        return decode_json(await self.read(request), type_)

    async def read(self, request: Request) -> bytes:
        """The body within the size limit and the body deadline."""
        return await read_body(request, self.limit, self.body_timeout)

    async def _principal(self, request: Request) -> Principal:
        headers = request.headers
        return await self.s.auth.verify_token(headers.get("authorization"), headers.get("x-app-id"))

    async def _sms_principal(self, request: Request) -> Principal:
        """JWT, then the per-app (L2) limit: 001's order for /api/v1/sms/*."""
        principal = await self._principal(request)
        if self.s.ops is not None:
            self.s.ops.app_limits.check(principal.app_id, request.scope)
        return principal

    def _admin(self, request: Request) -> None:
        self.s.admin_key.check(request.headers.get("x-admin-key"))

    def _admin_unless_open(self, request: Request) -> None:
        self.s.admin_key.check_unless_open(request.headers.get("x-admin-key"))

    # -- monitoring ------------------------------------------------------------------

    async def healthy(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        return Response(
            generate_latest(self.s.metrics.registry),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    # -- auth ------------------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        self._admin_unless_open(request)
        body = await self._body(request, RegisterBody)
        assert isinstance(body, RegisterBody)
        created = await self.s.auth.register(body.email, body.password, body.app_name or None)
        return json_response(
            {
                "user_id": created.user_id,
                "app_id": created.app_id,
                "app_secret": created.app_secret,
                "error": "",
            },
            201,
        )

    async def login(self, request: Request) -> Response:
        body = await self._body(request, LoginBody)
        assert isinstance(body, LoginBody)
        guard = self.s.ops.login_guard if self.s.ops is not None else _NO_GUARD
        with guard.attempt(body.email, client_ip(request, self.trusted), request.scope):
            token = await self.s.auth.login(body.email, body.password, body.app_id)
        return json_response({"token": token, "error": ""})

    async def validate(self, request: Request) -> Response:
        self._admin_unless_open(request)
        body = await self._body(request, UserIdBody)
        assert isinstance(body, UserIdBody)
        return json_response({"is_admin": await self.s.auth.is_admin(body.user_id), "error": ""})

    async def delete(self, request: Request) -> Response:
        self._admin_unless_open(request)
        body = await self._body(request, UserIdBody)
        assert isinstance(body, UserIdBody)
        await self.s.auth.delete_user(body.user_id)
        return json_response({"result": True, "error": ""})

    # -- sms -------------------------------------------------------------------------

    async def send(self, request: Request) -> Response:
        principal = await self._sms_principal(request)
        body = await self._body(request, SendBody)
        assert isinstance(body, SendBody)
        result = await self.s.messages.submit(
            principal.app_id,
            SendRequest(
                esme=body.esme,
                source=body.source,
                destination=body.destination,
                message=body.message,
                transaction_id=body.transaction_id,
                campaign=body.campaign,
            ),
            client_ip(request, self.trusted),
        )
        # 001: an SMSC refusal answers 500 with the whole body, success false.
        return json_response(result, 200 if result.success else 500)

    async def check_esme(self, request: Request) -> Response:
        await self._sms_principal(request)
        body = await self._body(request, EsmeBody)
        assert isinstance(body, EsmeBody)
        return json_response(
            self.s.messages.check_link(body.esme, client_ip(request, self.trusted))
        )

    async def info(self, request: Request) -> Response:
        principal = await self._sms_principal(request)
        body = await self._body(request, InfoBody)
        assert isinstance(body, InfoBody)
        return json_response(
            await self.s.messages.info(
                principal.app_id, body.esme, body.message_id, client_ip(request, self.trusted)
            )
        )

    # -- routes ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        e = self.endpoint
        routes: list[BaseRoute] = [
            Route("/healthy", e("healthy", self.healthy), methods=["GET"]),
            Route("/metrics", e("metrics", self.metrics), methods=["GET"]),
        ]
        for prefix in ("/api/v1/auth", "/api/v1/user"):
            routes += [
                Route(f"{prefix}/register", e("register", self.register), methods=["POST"]),
                Route(f"{prefix}/login", e("login", self.login), methods=["POST"]),
                Route(f"{prefix}/validate", e("validate", self.validate), methods=["POST"]),
                Route(f"{prefix}/delete", e("delete", self.delete), methods=["POST"]),
            ]
        routes += [
            Route("/api/v1/sms/send", e("sms_send", self.send), methods=["POST"]),
            Route("/api/v1/sms/check-esme", e("sms_check", self.check_esme), methods=["POST"]),
            Route("/api/v1/sms/info", e("sms_info", self.info), methods=["POST"]),
        ]
        return routes


_NO_GUARD = LoginGuard.off()


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and wrong methods keep the native body shape.
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, exc.detail)
    return json_response({"error": message}, exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return json_response({"error": "internal error"}, 500)


class ExactRoutes:
    """Exact-path dispatch in front of Starlette.

    Fixed paths (all of them hot: send, info, check-esme, login) go straight to their
    handler, which already renders every error itself; Starlette's middleware stack and
    its route-by-route regex scan cost about a tenth of a send. Paths with parameters,
    unknown paths and wrong methods fall through to Starlette.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.exact: dict[tuple[str, str], Handler] = {}
        for route in app.routes:
            if isinstance(route, Route) and "{" not in route.path and route.methods:
                for method in route.methods - {"HEAD"}:
                    self.exact[(method, route.path)] = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.exact.get((scope["method"], scope["path"]))
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(services: Services) -> ExactRoutes:
    api = NativeApi(services)
    app = Starlette(
        routes=api.routes() + ops_routes(api),
        exception_handlers={HTTPException: _http_error, 500: _server_error},
    )
    from .openapi import build_openapi

    spec: list[bytes] = []

    async def openapi(request: Request) -> Response:
        # Built on first use from the routes really served, so it cannot go stale.
        if not spec:
            doc = build_openapi(app.routes, title="smsgateway", version=__version__)
            spec.append(msgspec.json.encode(doc))
        return Response(spec[0], media_type="application/json")

    app.router.routes.append(
        Route("/openapi.json", api.endpoint("openapi", openapi), methods=["GET"])
    )
    return ExactRoutes(app)
