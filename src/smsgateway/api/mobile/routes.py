"""The device face: the private-server API the "SMS Gateway for Android" app speaks,
mounted at /mobile/v1, plus the link page its QR code opens.

Parse, authenticate, translate: the rules live in core.devices. Errors use the app's
server's body shape, `{"message": ...}`, with the catalogue's status; a 401 makes the
app sign in again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ...core.devices import (
    DeviceService,
    DeviceSession,
    InboundSms,
    InvalidLinkCode,
    StateReport,
    parse_app_date,
)
from ...core.devices.channel import FAILED
from ...core.errors import GatewayError, InvalidRequest, NotFound, Unavailable, from_exception
from ..http import client_ip, decode_json, encode_json, read_body
from ..services import Services
from . import page, wire

log = logging.getLogger(__name__)

PREFIX = "/mobile/v1"
_MAX_REPORTS = 1000
_ORDERS = {"lifo": True, "fifo": False}

Handler = Callable[[Request], Awaitable[Response]]


def _error(exc: Exception) -> Response:
    error = exc if isinstance(exc, GatewayError) else from_exception(exc)
    if error.http_status >= 500 and not isinstance(exc, GatewayError):
        log.exception("unhandled error on the device face", exc_info=exc)
    return Response(
        encode_json({"message": error.message}), error.http_status, media_type="application/json"
    )


def _json(data: Any, status: int = 200) -> Response:
    return Response(encode_json(data), status, media_type="application/json")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


class MobileApi:
    def __init__(self, services: Services, devices: DeviceService) -> None:
        self.devices = devices
        self.limit = services.settings.server.max_body_bytes
        self.body_timeout = services.settings.server.body_timeout_s
        self.keepalive = services.settings.devices.sse_keepalive_s
        self.trusted = [
            ipaddress.ip_network(c, strict=False) for c in services.settings.server.trusted_proxies
        ]

    def endpoint(self, handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return _error(exc)

        return wrapped

    async def _body(self, request: Request) -> bytes:
        return await read_body(request, self.limit, self.body_timeout)

    async def _session(self, request: Request) -> DeviceSession:
        return await self.devices.authenticate(_bearer(request))

    # -- registration -----------------------------------------------------------------

    async def register(self, request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "code":
            # Basic (an account's login) and Bearer (a server-wide private token) have
            # nothing behind them here: a phone links with a project's one-time code.
            raise InvalidLinkCode()
        body = decode_json(await self._body(request), wire.RegisterBody)
        _check_sims(body.simCards)
        if body.name is not None and len(body.name) > 128:
            raise InvalidRequest("name must be at most 128 characters")
        if body.pushToken is not None and len(body.pushToken) > 256:
            raise InvalidRequest("pushToken must be at most 256 characters")
        created = await self.devices.register(
            value.strip(),
            body.name or "",
            body.pushToken,
            body.simCards or [],
            client_ip(request, self.trusted),
        )
        return _json(
            wire.RegisterOut(
                id=created.id, token=created.token, login=created.login, password=created.password
            ),
            201,
        )

    async def get_device(self, request: Request) -> Response:
        """The app's check of its registration: no `device` means "not registered
        here" (unknown or revoked token), and the app signs in again."""
        answer: dict[str, Any] = {"externalIp": client_ip(request, self.trusted) or ""}
        try:
            session = await self._session(request)
        except GatewayError:
            return _json(answer)
        row = session.row
        answer["device"] = {
            "id": row.public_id,
            "name": row.name,
            "createdAt": wire.app_date(row.created_at),
            "updatedAt": wire.app_date(row.last_seen_at),
            "lastSeen": wire.app_date(row.last_seen_at),
        }
        return _json(answer)

    async def patch_device(self, request: Request) -> Response:
        session = await self._session(request)
        body = decode_json(await self._body(request), wire.PatchDeviceBody)
        _check_sims(body.simCards)
        if body.pushToken is not None and len(body.pushToken) > 256:
            raise InvalidRequest("pushToken must be at most 256 characters")
        await self.devices.update_device(session, body.id, body.pushToken, body.simCards or [])
        return Response(status_code=204)

    # -- messages -----------------------------------------------------------------------

    async def get_messages(self, request: Request) -> Response:
        session = await self._session(request)
        order = request.query_params.get("order", "fifo").lower()
        if order not in _ORDERS:
            raise InvalidRequest("order must be lifo or fifo")
        out = []
        for item in self.devices.pending(session, newest_first=_ORDERS[order]):
            job = item.job
            phone = ("+" if job.dest_ton == 1 else "") + job.destination
            out.append(
                wire.MessageOut(
                    id=job.message_id,
                    message=item.text,
                    textMessage=wire.TextMessageOut(item.text),
                    phoneNumbers=[phone],
                    simNumber=None,
                    withDeliveryReport=True,
                    isEncrypted=False,
                    priority=0,
                    validUntil=wire.app_date(item.valid_until_ms)
                    if item.valid_until_ms is not None
                    else None,
                    createdAt=wire.app_date(item.created_ms),
                    state="Pending",
                )
            )
        return _json(out)

    async def patch_messages(self, request: Request) -> Response:
        session = await self._session(request)
        items = decode_json(await self._body(request), list[wire.MessageStateIn])
        if len(items) > _MAX_REPORTS:
            raise InvalidRequest(f"at most {_MAX_REPORTS} message states per request")
        reports = []
        for item in items:
            if not item.id or len(item.id) > 36:
                raise InvalidRequest("id is required, at most 36 characters")
            state, error = item.state, None
            for recipient in item.recipients:
                if recipient.state == FAILED:
                    state, error = FAILED, (recipient.error or "failed")[:256]
                    break
            reports.append(StateReport(item.id, state, error))
        await self.devices.report(session, reports)
        return Response(status_code=204)

    # -- events, webhooks, settings -------------------------------------------------------

    async def events(self, request: Request) -> Response:
        session = await self._session(request)
        if self.devices.closed:
            raise Unavailable("gateway is stopping")
        keepalive = self.keepalive
        devices = self.devices

        async def stream() -> AsyncIterator[bytes]:
            with devices.events(session) as queue:
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), keepalive)
                    except TimeoutError:
                        if devices.closed:
                            return
                        yield b":keepalive\n\n"
                        continue
                    if not event:
                        return  # the device was unlinked, or the gateway stops
                    yield f"event: {event}\ndata: null\n\n".encode()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def webhooks(self, request: Request) -> Response:
        session = await self._session(request)
        hook = wire.WebhookOut(
            id=f"gw-{session.row.public_id}",
            deviceId=session.row.public_id,
            url=self.devices.webhook_url(session, _base_url(request)),
            event="sms:received",
        )
        return _json([hook])

    async def settings(self, request: Request) -> Response:
        session = await self._session(request)
        return _json(
            {
                "gateway": {"notification_channel": "SSE_ONLY"},
                "webhooks": {"signing_key": self.devices.signing_key(session)},
            }
        )

    async def inbox(self, request: Request) -> Response:
        body = await self._body(request)
        await self.devices.receive_webhook(
            request.path_params["device"],
            body,
            request.headers.get("x-signature"),
            request.headers.get("x-timestamp"),
            _parse_sms,
        )
        return Response(status_code=204)

    # -- the link page ----------------------------------------------------------------------

    async def link_page(self, request: Request) -> Response:
        try:
            found = await self.devices.link_page(request.path_params["token"], _base_url(request))
        except NotFound:
            return page.page_response(page.render(None), 404)
        return page.page_response(page.render(found), 200 if found.code else 410)

    async def static(self, request: Request) -> Response:
        response = page.static_response(request.path_params["name"])
        if response is None:
            raise NotFound()
        return response

    def routes(self) -> list[BaseRoute]:
        e = self.endpoint
        return [
            Route(f"{PREFIX}/device", e(self.register), methods=["POST"], include_in_schema=False),
            Route(f"{PREFIX}/device", e(self.get_device), methods=["GET"], include_in_schema=False),
            Route(
                f"{PREFIX}/device", e(self.patch_device), methods=["PATCH"], include_in_schema=False
            ),
            Route(
                f"{PREFIX}/message", e(self.get_messages), methods=["GET"], include_in_schema=False
            ),
            Route(
                f"{PREFIX}/message",
                e(self.patch_messages),
                methods=["PATCH"],
                include_in_schema=False,
            ),
            Route(f"{PREFIX}/events", e(self.events), methods=["GET"], include_in_schema=False),
            Route(f"{PREFIX}/webhooks", e(self.webhooks), methods=["GET"], include_in_schema=False),
            Route(f"{PREFIX}/settings", e(self.settings), methods=["GET"], include_in_schema=False),
            Route(
                f"{PREFIX}/inbox/{{device}}",
                e(self.inbox),
                methods=["POST"],
                include_in_schema=False,
            ),
            Route(
                "/mobile/link/{token}", e(self.link_page), methods=["GET"], include_in_schema=False
            ),
            Route(
                "/mobile/static/{name}", e(self.static), methods=["GET"], include_in_schema=False
            ),
        ]


def _check_sims(sims: list[Any] | None) -> None:
    if sims is not None and (len(sims) > 8 or not all(isinstance(s, dict) for s in sims)):
        raise InvalidRequest("simCards must be at most 8 objects")


def _parse_sms(body: bytes) -> InboundSms:
    event = decode_json(body, wire.WebhookEventIn)
    if event.event != "sms:received":
        return InboundSms(event.id, event.event, "", "", "", "", 0)
    try:
        payload = msgspec.convert(event.payload, wire.SmsReceivedPayload)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid payload: {exc}") from None
    if not payload.phoneNumber and not payload.sender:
        raise InvalidRequest("payload.phoneNumber is required")
    if len(payload.message) > 10_000:
        raise InvalidRequest("payload.message too long")
    try:
        received = parse_app_date(payload.receivedAt) if payload.receivedAt else None
    except ValueError:
        raise InvalidRequest("payload.receivedAt is not a date") from None
    if received is None:
        received = int(time.time() * 1000)
    return InboundSms(
        event_id=event.id[:64],
        event=event.event,
        message_id=payload.messageId[:64],
        text=payload.message,
        sender=(payload.sender or payload.phoneNumber)[:32],
        recipient=(payload.recipient or "")[:32],
        received_at_ms=received,
    )


def mobile_routes(services: Services) -> list[BaseRoute]:
    """The device face's routes, when the runtime built a DeviceService."""
    devices = getattr(services, "devices", None)
    if devices is None:
        return []
    return MobileApi(services, devices).routes()


__all__ = ["PREFIX", "MobileApi", "mobile_routes"]
