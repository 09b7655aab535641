"""The native REST face (documents 000 and 001): parse, authenticate, translate.

Handlers hold no rules: each one decodes its body into a typed struct, calls one core
service, and renders the answer or the error in the native shape `{"error": "..."}`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
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
from .console import console_routes
from .fastpath import Answer, FastHandler, FastRequest, FastRoutes
from .http import client_ip, decode_json, encode_json, forwarded_client, json_response, read_body
from .mobile import mobile_routes
from .numbers import numbers_routes
from .oauth import oauth_routes
from .oneshot import oneshot_routes
from .ops import ops_routes
from .otp import otp_routes
from .services import Services

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
# A hot route's own work: (status, JSON body); `NativeApi.hot` adds errors and metrics.
HotCore = Callable[[FastRequest], Awaitable[tuple[int, bytes]]]

_HEALTHY = encode_json({"status": "ok"})


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
        # The hot routes: served by the HTTP protocol itself (fast_routes) and, for
        # requests that come the ASGI way, by Starlette (routes); one handler each.
        self._hot: dict[tuple[str, str], FastHandler] = {
            ("GET", "/healthy"): self.hot("healthy", self.healthy),
            ("POST", "/api/v1/sms/send"): self.hot("sms_send", self.send),
            ("POST", "/api/v1/sms/check-esme"): self.hot("sms_check", self.check_esme),
            ("POST", "/api/v1/sms/info"): self.hot("sms_info", self.info),
        }

    # -- plumbing --------------------------------------------------------------------
    #
    # Two wrappers, one rule set: `endpoint` for handlers of Starlette requests, `hot`
    # for the FastRequest handlers of the hot routes (served by the HTTP protocol
    # itself, or through Starlette by `_asgi`). Both render errors with `_failure`,
    # count with `_meter` and copy quota headers with `_quota`.

    def _meter(self, route: str) -> Callable[[float, int], None]:
        """Record one answer of `route`: latency since `started`, count by status."""
        counter = self.s.metrics.requests
        latency = self.s.metrics.latency.labels(route)
        # labels() costs a lock and a dict lookup per call; keep each child.
        by_status: dict[int, Any] = {}

        def record(started: float, status: int) -> None:
            latency.observe(time.perf_counter() - started)
            child = by_status.get(status)
            if child is None:
                child = by_status[status] = counter.labels(route, str(status))
            child.inc()

        return record

    @staticmethod
    def _failure(exc: Exception, route: str) -> tuple[int, bytes]:
        """The native error answer for an exception: no 500 for bad input."""
        if isinstance(exc, GatewayError):
            error = exc
        else:
            # A store that cannot write (disk full, locked) is a 503 with nothing
            # written; anything else is a bug: 500, and only the log says more.
            error = from_exception(exc)
            if error.http_status == 500:
                log.exception("unhandled error", extra={"route": route})
            else:
                log.error("%s: %s", error.message, exc, extra={"route": route})
        return error.http_status, encode_json({"error": error.message})

    @staticmethod
    def _quota(scope: Mapping[str, Any]) -> list[tuple[bytes, bytes]] | None:
        """The rate-limit headers a limit check left in the scope, as raw pairs."""
        quota: dict[str, str] | None = scope.get(QUOTA_SCOPE_KEY)
        if quota is None:
            return None
        return [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in quota.items()
        ]

    def endpoint(self, route: str, handler: Handler) -> Handler:
        """Wrap a handler: native error body, metrics, and no 500 for bad input."""
        record = self._meter(route)

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Exception as exc:
                status, body = self._failure(exc, route)
                response = Response(body, status, media_type="application/json")
            quota = self._quota(request.scope)
            if quota is not None:
                response.raw_headers.extend(quota)
            record(started, response.status_code)
            return response

        return wrapped

    def hot(self, route: str, core: HotCore) -> FastHandler:
        """`endpoint` for a hot route's core: the same error bodies, metrics and quota
        headers, as an Answer the HTTP protocol writes itself."""
        record = self._meter(route)

        async def wrapped(request: FastRequest) -> Answer:
            started = time.perf_counter()
            try:
                status, body = await core(request)
            except Exception as exc:
                status, body = self._failure(exc, route)
            quota = self._quota(request.scope)
            record(started, status)
            return status, body, quota

        return wrapped

    def _asgi(self, handler: FastHandler) -> Handler:
        """A hot route as a Starlette endpoint, for requests that came the ASGI way."""

        async def endpoint(request: Request) -> Response:
            status, body, extra = await handler(_StarletteRequest(request, self))
            response = Response(body, status, media_type="application/json")
            if extra:
                response.raw_headers.extend(extra)
            return response

        return endpoint

    def fast_routes(self) -> FastRoutes:
        """The hot routes for the HTTP protocol to serve without ASGI."""
        return FastRoutes(self._hot, body_limit=self.limit, body_timeout=self.body_timeout)

    async def _body(self, request: Request, type_: type[msgspec.Struct]) -> msgspec.Struct:
        return decode_json(await self.read(request), type_)

    async def read(self, request: Request) -> bytes:
        """The body within the size limit and the body deadline."""
        return await read_body(request, self.limit, self.body_timeout)

    async def _principal(self, headers: Mapping[str, str]) -> Principal:
        return await self.s.auth.verify_token(headers.get("authorization"), headers.get("x-app-id"))

    async def _sms_principal(self, request: FastRequest) -> Principal:
        """JWT, then the per-app (L2) limit: 001's order for /api/v1/sms/*."""
        principal = await self._principal(request.headers)
        if self.s.ops is not None:
            self.s.ops.app_limits.check(principal.app_id, request.scope)
        return principal

    def _client(self, request: FastRequest) -> str | None:
        return forwarded_client(
            request.client, request.headers.get("x-forwarded-for"), self.trusted
        )

    def _admin(self, request: Request) -> None:
        self.s.admin_key.check(request.headers.get("x-admin-key"))

    def _admin_unless_open(self, request: Request) -> None:
        self.s.admin_key.check_unless_open(request.headers.get("x-admin-key"))

    # -- monitoring ------------------------------------------------------------------

    async def healthy(self, request: FastRequest) -> tuple[int, bytes]:
        return 200, _HEALTHY

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

    async def send(self, request: FastRequest) -> tuple[int, bytes]:
        principal = await self._sms_principal(request)
        body = decode_json(await request.read(), SendBody)
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
            self._client(request),
        )
        # 001: an SMSC refusal answers 500 with the whole body, success false.
        return 200 if result.success else 500, encode_json(result)

    async def check_esme(self, request: FastRequest) -> tuple[int, bytes]:
        await self._sms_principal(request)
        body = decode_json(await request.read(), EsmeBody)
        return 200, encode_json(self.s.messages.check_link(body.esme, self._client(request)))

    async def info(self, request: FastRequest) -> tuple[int, bytes]:
        principal = await self._sms_principal(request)
        body = decode_json(await request.read(), InfoBody)
        info = await self.s.messages.info(
            principal.app_id, body.esme, body.message_id, self._client(request)
        )
        return 200, encode_json(info)

    # -- routes ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        e = self.endpoint

        def hot(method: str, path: str) -> Route:
            return Route(path, self._asgi(self._hot[(method, path)]), methods=[method])

        routes: list[BaseRoute] = [
            hot("GET", "/healthy"),
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
            hot("POST", "/api/v1/sms/send"),
            hot("POST", "/api/v1/sms/check-esme"),
            hot("POST", "/api/v1/sms/info"),
        ]
        return routes


class _StarletteRequest(FastRequest):
    """A Starlette request as a hot handler sees it."""

    __slots__ = ("_api", "_request")

    def __init__(self, request: Request, api: NativeApi) -> None:
        client = request.client
        super().__init__(request.headers, client.host if client else None, request.scope)
        self._request = request
        self._api = api

    async def read(self) -> bytes:
        return await self._api.read(self._request)


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
    unknown paths and wrong methods fall through to Starlette. (Most requests on
    /healthy, send, info and check-esme never get here: the HTTP protocol serves them
    itself with the same handlers, `fast`; see api/fastpath.py.)
    """

    def __init__(self, app: Starlette, fast: FastRoutes | None = None) -> None:
        self.app = app
        # The hot routes for the HTTP protocol to serve without ASGI (runtime.py).
        self.fast = fast
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
        routes=api.routes()
        + ops_routes(api)
        + otp_routes(api)
        + numbers_routes(api)
        + oauth_routes(api)
        + oneshot_routes(api)
        + mobile_routes(services)
        + console_routes(api),
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
    return ExactRoutes(app, api.fast_routes())
