"""`POST /sms/messages` (document 003): parse, authenticate, translate.

Answers: 200 with an empty body once a gateway accepted the message; otherwise a
problem body (`application/problem+json`), 003's shape: `instance` (the full request
URL), `method`, `status`, `type`, `title`, and `violations: [{message}]` for a 400 (one
per broken rule) or `detail` for the other statuses. 401 and 403 carry RFC 6750's
`WWW-Authenticate: Bearer` challenges. Every outcome is counted in
`smsgateway_sms_api_requests{outcome}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ...core.errors import (
    ConstraintViolations,
    GatewayError,
    InsufficientScope,
    InvalidBearerToken,
    InvalidRequest,
    NoGatewayAccepted,
    from_exception,
)
from ...core.metrics import METRICS, FastCounter
from ...core.oneshot import OneShotService
from ..http import BodyTimeout, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    from ..rest import NativeApi

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

PATH = "/sms/messages"
PROBLEM = "application/problem+json"
VIOLATION_TYPE = "base:constraint-violation-problem"

REQUESTS = FastCounter(
    "smsgateway_sms_api_requests",
    "POST /sms/messages answers by outcome: sent, replayed, invalid, unauthorized,"
    " forbidden, conflict, refused (no gateway accepted), error",
    ["outcome"],
)
METRICS.registry.register(REQUESTS)


class Violation(msgspec.Struct):
    message: str


class ViolationProblem(msgspec.Struct):
    """003's 400 body (also 413, 415 and 408: bodies that cannot be read as an Sms)."""

    instance: str
    method: str
    status: int
    type: str
    title: str
    violations: list[Violation]


class Problem(msgspec.Struct):
    instance: str
    method: str
    status: int
    type: str
    title: str
    detail: str


class ProblemBody(msgspec.Struct):
    """Either problem shape, for the OpenAPI document."""

    instance: str
    method: str
    status: int
    type: str
    title: str
    violations: list[Violation] | None = None
    detail: str | None = None


class SmsBody(msgspec.Struct):
    """The Sms object of document 003 (for the OpenAPI document; the face checks the
    decoded JSON itself, so that every broken rule is reported)."""

    sender: str
    recipient: str
    message: str


_encoder = msgspec.json.Encoder()


def _title(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _outcome(status: int) -> str:
    return {
        400: "invalid",
        401: "unauthorized",
        403: "forbidden",
        408: "invalid",
        409: "conflict",
        413: "invalid",
        415: "invalid",
    }.get(status, "refused" if status == 500 else "error")


def _bearer(header: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`; None for no header or another
    scheme (RFC 6750: no credentials, so a challenge without an error code)."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _quoted(text: str) -> str:
    # RFC 6750 error_description: %x20-21 / %x23-5B / %x5D-7E, no quote or backslash.
    return "".join(c for c in text if c.isascii() and c.isprintable() and c not in '"\\')


class OneShotRoutes:
    def __init__(self, api: NativeApi, service: OneShotService) -> None:
        self.api = api
        self.service = service

    def _problem(self, request: Request, exc: Exception) -> Response:
        error = exc if isinstance(exc, GatewayError) else from_exception(exc)
        status = error.http_status
        if isinstance(error, PayloadTooLarge | BodyTimeout) or status == 415:
            violations = [error.message]
        elif isinstance(error, ConstraintViolations):
            violations = error.violations
        elif isinstance(error, InvalidRequest) and status == 400:
            violations = [error.message]
        else:
            violations = []
        headers: dict[str, str] = {}
        if isinstance(error, InsufficientScope):
            headers["WWW-Authenticate"] = (
                f'Bearer error="insufficient_scope", scope="{error.scope}"'
            )
        elif isinstance(error, InvalidBearerToken):
            headers["WWW-Authenticate"] = (
                f'Bearer error="invalid_token", error_description="{_quoted(error.message)}"'
            )
        elif status == 401:  # no token (BearerRequired), or another scheme
            headers["WWW-Authenticate"] = "Bearer"
        if status == 500 and not isinstance(error, NoGatewayAccepted):
            # Only the log names what went wrong; the body names no internals.
            log.error("sms api failed", exc_info=exc if exc is not error else None)
        body: ViolationProblem | Problem
        instance = str(request.url)
        if violations:
            body = ViolationProblem(
                instance,
                request.method,
                status,
                VIOLATION_TYPE,
                _title(status),
                [Violation(v) for v in violations],
            )
        else:
            body = Problem(
                instance, request.method, status, "about:blank", _title(status), error.message
            )
        return Response(_encoder.encode(body), status, headers, media_type=PROBLEM)

    async def send(self, request: Request) -> Response:
        try:
            token = await self.service.authorize(_bearer(request.headers.get("authorization")))
            raw = await self.api.read(request)
            content_type = request.headers.get("content-type")
            if content_type is not None and not _is_json(content_type):
                raise UnsupportedMediaType()
            body = _decode(raw)
            replayed = await self.service.send(token, body, request.headers.get("idempotency-key"))
        except Exception as exc:
            return self._problem(request, exc)
        REQUESTS.labels("replayed" if replayed else "sent").inc()
        return Response(b"", 200)

    async def wrong_method(self, request: Request) -> Response:
        exc = _MethodNotAllowed()
        response = self._problem(request, exc)
        response.headers["Allow"] = "POST"
        return response

    def _metered(self, handler: Handler) -> Handler:
        record = self.api._meter("sms_messages")

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            if response.status_code != 200:
                REQUESTS.labels(_outcome(response.status_code)).inc()
            record(started, response.status_code)
            return response

        return wrapped

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PATH, self._metered(self.send), methods=["POST"]),
            # Any other method: 405 in this face's problem shape. An ASGI app, not a
            # function, so the route matches every method and (methods None) is neither
            # listed in OpenAPI nor taken by the exact-path dispatcher.
            Route(PATH, _AsgiEndpoint(self._metered(self.wrong_method))),
        ]


class _AsgiEndpoint:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


class _MethodNotAllowed(GatewayError):
    code = "method_not_allowed"
    http_status = 405
    grpc_status = "UNIMPLEMENTED"
    default_message = "only POST is allowed on /sms/messages"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        raise ConstraintViolations(["The request body must be an Sms object in JSON"])
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ConstraintViolations([f"The request body is not valid JSON: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConstraintViolations(["The request body is not valid JSON: invalid UTF-8"]) from None
    except RecursionError:
        raise ConstraintViolations(
            ["The request body is not valid JSON: nested too deeply"]
        ) from None


def oneshot_routes(api: NativeApi) -> list[BaseRoute]:
    """The face's routes, or none when the services carry no one-shot side."""
    service = api.s.oneshot
    return OneShotRoutes(api, service).routes() if service is not None else []
