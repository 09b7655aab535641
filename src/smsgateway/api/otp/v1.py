"""The public /v1 API (document 004): X-SMX-API-Key, Idempotency-Key, and the
`{"success": ..., "data" | "error": ...}` envelope for every answer under /v1,
unknown paths, bad JSON and oversized bodies included.

Handlers parse and render; the rules are in core/otp.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ...core.errors import (
    DeviceNotLinked,
    Forbidden,
    GatewayError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    OtpAlreadyVerified,
    OtpExpired,
    OtpMaxAttempts,
    RateLimited,
    RetryLater,
    Unauthorized,
    Unavailable,
    from_exception,
)
from ...core.idempotency import Answer, request_hash
from ...core.ids import uuid7
from ...core.otp.projects import Project
from ...core.otp.service import MessageAccepted, MessageItem, day_text, iso, shown_status
from ...core.otp.wiring import OtpServices
from ...store.otp import DayCounts
from ..http import BodyTimeout, PayloadTooLarge, UnsupportedMediaType, decode_json, read_body

if TYPE_CHECKING:
    from ..rest import NativeApi

log = logging.getLogger(__name__)

V1Handler = Callable[[Request, Project, bytes], Awaitable[tuple[int, Any]]]

_encoder = msgspec.json.Encoder()

# The /v1 code of an error: the first class of its MRO found here.
_CODES: dict[type[Exception], tuple[str, str]] = {
    DeviceNotLinked: ("DEVICE_NOT_LINKED", "device"),
    OtpExpired: ("OTP_EXPIRED", "otp"),
    OtpMaxAttempts: ("OTP_MAX_ATTEMPTS", "otp"),
    OtpAlreadyVerified: ("OTP_ALREADY_VERIFIED", "otp"),
    IdempotencyKeyReused: ("IDEMPOTENCY_KEY_REUSED", "idempotency"),
    IdempotencyInProgress: ("IDEMPOTENCY_IN_PROGRESS", "idempotency"),
    PayloadTooLarge: ("PAYLOAD_TOO_LARGE", "request"),
    BodyTimeout: ("REQUEST_TIMEOUT", "request"),
    UnsupportedMediaType: ("UNSUPPORTED_MEDIA_TYPE", "request"),
    InvalidRequest: ("VALIDATION_ERROR", "request"),
    Unauthorized: ("UNAUTHORIZED", "auth"),
    Forbidden: ("FORBIDDEN", "auth"),
    NotFound: ("NOT_FOUND", "request"),
    RateLimited: ("RATE_LIMITED", "rate_limit"),
    Unavailable: ("SERVICE_UNAVAILABLE", "gateway"),
}


def v1_code(error: GatewayError) -> tuple[str, str]:
    """(code, origin) of an error on /v1."""
    for cls in type(error).__mro__:
        found = _CODES.get(cls)
        if found is not None:
            return found
    return "INTERNAL_ERROR", "gateway"


def error_response(exc: Exception, request_id: str) -> Response:
    if isinstance(exc, GatewayError):
        error = exc
    else:
        error = from_exception(exc)
        if error.http_status == 500:
            log.exception("unhandled error on /v1", extra={"request_id": request_id})
    code, origin = v1_code(error)
    body = {
        "success": False,
        "error": {
            "code": code,
            "message": error.message,
            "origin": origin,
            "requestId": request_id,
        },
    }
    headers = {"X-Request-Id": request_id}
    if isinstance(error, RetryLater):
        headers["Retry-After"] = str(max(1, int(error.retry_after_s + 0.999)))
    return Response(_encoder.encode(body), error.http_status, headers, "application/json")


def _ok(data: Any, status: int = 200) -> tuple[int, Any]:
    return status, {"success": True, "data": data}


# -- request bodies (camelCase as document 004 writes them) ----------------------------


class SendOtpBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    to: str
    template: str | None = None
    code_length: int | None = None


class VerifyOtpBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    verification_id: str
    otp: str


class MessageBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    to: str
    text: str
    send_at: str | None = None


class BulkBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    messages: list[MessageBody]
    send_at: str | None = None  # for every message that names none


def _accepted(a: MessageAccepted) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": a.index,
        "to": a.to,
        "messageId": a.message_id,
        "status": a.status,
    }
    if a.send_at_ms is not None:
        out["sendAt"] = iso(a.send_at_ms)
    if a.error is not None:
        code, _ = v1_code(a.error)
        out["error"] = {"code": code, "message": a.error.message}
    return out


def _counts(c: DayCounts) -> dict[str, Any]:
    return {
        "otp": {
            "sent": c.otp_sent,
            "verified": c.otp_verified,
            "failed": c.otp_failed,
            "expired": c.otp_expired,
        },
        "custom": {
            "sent": c.custom_sent,
            "delivered": c.custom_delivered,
            "failed": c.custom_failed,
        },
    }


class V1Face:
    def __init__(self, api: NativeApi, otp: OtpServices) -> None:
        self.api = api
        self.otp = otp

    # -- plumbing ---------------------------------------------------------------------

    def endpoint(
        self, route: str, handler: V1Handler, *, post: bool, limit: int = 0
    ) -> Callable[..., Any]:
        record = self.api._meter(f"v1_{route}")

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            request_id = uuid7()
            try:
                response = await self._serve(request, handler, post, limit)
            except Exception as exc:
                response = error_response(exc, request_id)
            response.headers["X-Request-Id"] = request_id
            record(started, response.status_code)
            return response

        return wrapped

    async def _serve(
        self, request: Request, handler: V1Handler, post: bool, limit: int
    ) -> Response:
        project = await self.otp.projects.authenticate(request.headers.get("x-smx-api-key"))
        self.otp.otp.limits.request(project.id)
        body = b""
        if post:
            body = await read_body(request, max(limit, self.api.limit), self.api.body_timeout)

        async def work() -> Answer:
            status, data = await handler(request, project, body)
            return Answer(status, _encoder.encode(data))

        replayed = False
        key = request.headers.get("idempotency-key")
        if post and key is not None:
            digest = request_hash(request.method.encode(), request.url.path.encode(), body)
            answer, replayed = await self.otp.idempotency.run(f"v1:{project.id}", key, digest, work)
        else:
            answer = await work()
        response = Response(answer.body, answer.status, media_type="application/json")
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    # -- OTP --------------------------------------------------------------------------

    async def send_otp(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        body = decode_json(raw, SendOtpBody)
        sent = await self.otp.otp.send_otp(project, body.to, body.template, body.code_length)
        return _ok(
            {
                "verificationId": sent.verification_id,
                "status": sent.status,
                "expiresAt": iso(sent.expires_at_ms),
                "channel": sent.channel,
                "resent": sent.resent,
            }
        )

    async def verify_otp(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        body = decode_json(raw, VerifyOtpBody)
        checked = await self.otp.otp.verify_otp(project, body.verification_id, body.otp)
        return _ok(
            {
                "verified": checked.verified,
                "status": checked.status,
                "attemptsLeft": checked.attempts_left,
            }
        )

    # -- messages ---------------------------------------------------------------------

    async def message(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        body = decode_json(raw, MessageBody)
        accepted = await self.otp.otp.send_message(
            project, MessageItem(body.to, body.text, body.send_at)
        )
        data = _accepted(accepted)
        del data["index"]
        return _ok(data)

    async def bulk(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        body = decode_json(raw, BulkBody)
        items = [MessageItem(m.to, m.text, m.send_at or body.send_at) for m in body.messages]
        results = await self.otp.otp.send_messages(project, items)
        accepted = sum(1 for r in results if r.message_id is not None)
        return _ok(
            {
                "accepted": accepted,
                "rejected": len(results) - accepted,
                "messages": [_accepted(r) for r in results],
            }
        )

    async def get_message(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        found = await self.otp.otp.get_message(project, str(request.path_params["id"]))
        m = found.message
        return _ok(
            {
                "messageId": m.id,
                "to": m.destination,
                "status": shown_status(m.status, m.not_before, time.time_ns() // 1_000_000),
                "error": m.error or None,
                "createdAt": iso(m.created_at),
                "updatedAt": iso(max([m.updated_at, *(p.updated_at for p in found.parts)])),
                "sendAt": iso(m.not_before),
                "parts": [{"seq": p.seq, "status": p.state, "error": p.error} for p in found.parts],
            }
        )

    # -- status and stats -------------------------------------------------------------

    async def status(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        st = await self.otp.otp.status(project)
        device = st.device
        return _ok(
            {
                "project": {"id": project.id, "name": project.name},
                "channel": st.channel,
                "ready": st.ready,
                "blockers": [{"code": b.code, "message": b.message} for b in st.blockers],
                "device": (
                    {
                        "linked": device is not None,
                        "id": device.id if device else None,
                        "name": device.name if device else None,
                        "online": bool(device and device.online),
                        "lastSeen": iso(device.last_seen_ms) if device else None,
                        "queueDepth": device.queue_depth if device else 0,
                    }
                    if st.channel == "device"
                    else None
                ),
                "link": (
                    {"id": st.channel_id, "name": st.link_name, "status": st.link_status}
                    if st.channel != "device"
                    else None
                ),
            }
        )

    async def stats(self, request: Request, project: Project, raw: bytes) -> tuple[int, Any]:
        text = request.query_params.get("days", "30")
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 366:
            raise InvalidRequest("days must be within 1..366")
        stats = await self.otp.otp.stats(project, int(text))
        return _ok(
            {
                "totals": _counts(stats.totals),
                "days": [{"date": day_text(d.day), **_counts(d)} for d in stats.days],
            }
        )

    # -- routes -----------------------------------------------------------------------

    def app(self) -> Starlette:
        e = self.endpoint
        bulk_limit = self.otp.settings.bulk_max_body_bytes
        routes = [
            Route("/send-otp", e("send_otp", self.send_otp, post=True), methods=["POST"]),
            Route("/verify-otp", e("verify_otp", self.verify_otp, post=True), methods=["POST"]),
            Route("/messages", e("messages", self.message, post=True), methods=["POST"]),
            Route(
                "/messages/bulk",
                e("messages_bulk", self.bulk, post=True, limit=bulk_limit),
                methods=["POST"],
            ),
            Route("/messages/{id}", e("message", self.get_message, post=False), methods=["GET"]),
            Route("/status", e("status", self.status, post=False), methods=["GET"]),
            Route("/stats", e("stats", self.stats, post=False), methods=["GET"]),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={HTTPException: _http_error, 500: _server_error},
        )

    def routes(self) -> list[BaseRoute]:
        return [Mount("/v1", app=self.app())]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: GatewayError = _MethodNotAllowed()
    elif exc.status_code == 404:
        error = NotFound("no such /v1 endpoint")
    else:
        error = InvalidRequest(str(exc.detail))
    response = error_response(error, uuid7())
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(exc, uuid7())


class _MethodNotAllowed(GatewayError):
    code = "method_not_allowed"
    http_status = 405
    grpc_status = "UNIMPLEMENTED"
    default_message = "method not allowed"


_CODES[_MethodNotAllowed] = ("METHOD_NOT_ALLOWED", "request")
