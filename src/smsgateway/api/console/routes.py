"""The console face: /console (the page, its JSON and its live stream), /docs, and the
admin message API (`/api/v1/admin/messages`).

Handlers parse, check the session, call `core.console`, render. Console JSON errors
use the native body `{"error": "..."}`; every console answer carries the security
headers of security.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ...core.console import ConsoleService, ConsoleSession, Subscriber, build_query
from ...core.console.messages import AdminMessageAnswer, AdminMessagesAnswer
from ...core.errors import InvalidAdminKey, InvalidRequest, NotFound, Unauthorized
from ..http import client_ip, decode_json, json_response
from .assets import Asset, load_assets
from .pages import ActionContext, page, pages
from .security import (
    COOKIE,
    CrossOrigin,
    check_same_origin,
    clear_session_cookie,
    harden,
    set_session_cookie,
)

if TYPE_CHECKING:
    from ..rest import NativeApi

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
SessionHandler = Callable[[Request, ConsoleSession], Awaitable[Response]]

_MAX_ID = 2**63 - 1


class ConsoleLoginBody(msgspec.Struct, forbid_unknown_fields=True):
    admin_key: str = ""
    email: str = ""
    password: str = ""


class ConsoleToggleBody(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool
    reason: str = ""


class SessionRequired(Unauthorized):
    default_message = "console session required (sign in again)"


class PageNotFound(NotFound):
    default_message = "no such console page"


class ActionNotFound(NotFound):
    default_message = "no such action on this page"


class AssetNotFound(NotFound):
    default_message = "no such file"


def _html(template: Asset, scripts: list[str]) -> bytes:
    tags = "\n".join(f'    <script src="/console/static/{s}"></script>' for s in scripts)
    return template.body.replace(b"<!-- PAGE SCRIPTS -->", tags.encode())


class ConsoleApi:
    def __init__(self, api: NativeApi, console: ConsoleService) -> None:
        self.api = api
        self.console = console
        self.assets = load_assets()
        self._index = _html(self.assets["index.html"], [p.script for p in pages()])

    # -- plumbing --------------------------------------------------------------------

    async def _session(self, request: Request) -> ConsoleSession:
        session = await self.console.sessions.resolve(request.cookies.get(COOKIE))
        if session is None:
            raise SessionRequired()
        return session

    def _guarded(self, route: str, handler: Handler) -> Handler:
        """Same-origin check, errors in the native body, security headers."""

        async def wrapped(request: Request) -> Response:
            try:
                check_same_origin(request)
                response = await handler(request)
            except Exception as exc:
                if isinstance(exc, CrossOrigin):
                    log.warning(
                        "cross-origin console request refused",
                        extra={
                            "path": request.url.path,
                            "sec_fetch_site": request.headers.get("sec-fetch-site", ""),
                            "origin": request.headers.get("origin", ""),
                            "with_session": COOKIE in request.cookies,
                        },
                    )
                status, body = self.api._failure(exc, f"console_{route}")
                response = Response(body, status, media_type="application/json")
                quota = self.api._quota(request.scope)
                if quota is not None:
                    response.raw_headers.extend(quota)
            return harden(response)

        return wrapped

    def _with_session(self, route: str, handler: SessionHandler) -> Handler:
        async def with_session(request: Request) -> Response:
            return await handler(request, await self._session(request))

        return self._guarded(route, with_session)

    # -- documents -------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return Response(self._index, media_type="text/html; charset=utf-8")

    async def docs(self, request: Request) -> Response:
        return Response(self.assets["docs.html"].body, media_type="text/html; charset=utf-8")

    async def static(self, request: Request) -> Response:
        asset = self.assets.get(str(request.path_params["path"]))
        if asset is None:
            raise AssetNotFound()
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.content_type, headers=headers)

    # -- session ---------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        body = decode_json(await self.api.read(request), ConsoleLoginBody)
        address = client_ip(request, self.api.trusted)
        sessions = self.console.sessions
        if body.admin_key:
            session_id, session = await sessions.login_admin_key(
                body.admin_key, address, request.scope
            )
        elif body.email:
            session_id, session = await sessions.login_password(
                body.email, body.password, address, request.scope
            )
        else:
            raise InvalidRequest("give admin_key, or email and password")
        response = json_response(self._session_view(session))
        set_session_cookie(response, request, session_id, sessions.ttl_ms // 1000)
        log.info("console sign-in", extra={"actor": session.actor})
        return response

    async def logout(self, request: Request) -> Response:
        await self.console.logout(request.cookies.get(COOKIE))
        response = json_response({"signed_out": True})
        clear_session_cookie(response, request)
        return response

    def _session_view(self, session: ConsoleSession) -> dict[str, Any]:
        return {
            "signed_in": True,
            "actor": session.actor,
            "expires_at": session.expires_at_ms,
            "pages": [
                {"name": p.name, "title": p.title, "topics": list(p.topics)} for p in pages()
            ],
        }

    async def session(self, request: Request) -> Response:
        """Who is signed in; a 200 either way, so a signed-out page logs no error."""
        session = await self.console.sessions.resolve(request.cookies.get(COOKIE))
        if session is None:
            return json_response({"signed_in": False})
        return json_response(self._session_view(session))

    # -- pages -----------------------------------------------------------------------

    async def snapshot(self, request: Request, session: ConsoleSession) -> Response:
        found = page(str(request.path_params["name"]))
        if found is None:
            raise PageNotFound()
        return json_response(
            {
                "page": found.name,
                "at": int(time.time() * 1000),
                "data": await found.snapshot(self.api.s),
            }
        )

    async def stream(self, request: Request, session: ConsoleSession) -> Response:
        found = page(request.query_params.get("page", ""))
        if found is None:
            raise PageNotFound()
        sub = self.console.hub.subscribe(found.topics, session.key)
        return EventStream(sub, self.console, session)

    async def action(self, request: Request, session: ConsoleSession) -> Response:
        found = page(str(request.path_params["name"]))
        if found is None:
            raise PageNotFound()
        act = found.actions.get(str(request.path_params["action"]))
        if act is None:
            raise ActionNotFound()
        body = decode_json(await self.api.read(request), dict[str, Any])
        context = ActionContext(
            self.api.s, f"console:{session.actor}", str(request.base_url).rstrip("/")
        )
        answer = await act(context, body)
        return json_response({"ok": True, "data": answer})

    async def toggle(self, request: Request, session: ConsoleSession) -> Response:
        raw = str(request.path_params["id"])
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
            raise InvalidRequest("invalid link id")
        body = decode_json(await self.api.read(request), ConsoleToggleBody)
        await self.console.toggle_link(int(raw), body.enabled, body.reason, session.actor)
        return json_response(self.console.links_view())

    # -- admin message API (native face: X-Admin-Key or a console session) -----------

    async def _admin_or_session(self, request: Request) -> None:
        if "x-admin-key" in request.headers:
            self.api._admin(request)
            return
        if await self.console.sessions.resolve(request.cookies.get(COOKIE)) is None:
            raise InvalidAdminKey()

    async def admin_messages(self, request: Request) -> Response:
        await self._admin_or_session(request)
        q = request.query_params
        query = build_query(
            message_id=q.get("message_id", ""),
            transaction_id=q.get("transaction_id", ""),
            destination=q.get("destination", ""),
            owner=q.get("owner", ""),
            status=q.get("status", ""),
            since=q.get("since", ""),
            until=q.get("until", ""),
            limit=q.get("limit", ""),
        )
        rows = await self.console.messages.search(query)
        return json_response(AdminMessagesAnswer(True, rows))

    async def admin_message(self, request: Request) -> Response:
        await self._admin_or_session(request)
        detail = await self.console.messages.get(str(request.path_params["message_id"]))
        return json_response(AdminMessageAnswer(True, detail))

    # -- routes ----------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        g, s = self._guarded, self._with_session
        e = self.api.endpoint

        def hidden(path: str, handler: Handler, method: str = "GET") -> Route:
            # Pages and their JSON are not part of the public API document.
            return Route(path, handler, methods=[method], include_in_schema=False)

        api: list[BaseRoute] = [
            Route(
                "/api/v1/admin/messages",
                e("admin_messages", self.admin_messages),
                methods=["GET"],
            ),
            Route(
                "/api/v1/admin/messages/{message_id}",
                e("admin_message", self.admin_message),
                methods=["GET"],
            ),
        ]
        if not self.console.settings.enabled:
            return api  # the admin API stays; the pages go
        return [
            *api,
            hidden("/console", g("index", self.index)),
            hidden("/console/", g("index", self.index)),
            hidden("/docs", g("docs", self.docs)),
            hidden("/console/static/{path:path}", g("static", self.static)),
            hidden("/console/api/login", g("login", self.login), "POST"),
            hidden("/console/api/logout", g("logout", self.logout), "POST"),
            hidden("/console/api/session", g("session", self.session)),
            hidden("/console/api/pages/{name}", s("snapshot", self.snapshot)),
            hidden("/console/api/stream", s("stream", self.stream)),
            hidden("/console/api/links/{id}/toggle", s("toggle", self.toggle), "POST"),
            hidden("/console/api/pages/{name}/actions/{action}", s("action", self.action), "POST"),
        ]


class EventStream(Response):
    """One page's live stream (Server-Sent Events): the topics its page listens to,
    a comment line every `heartbeat_s`, and an end when the session expires, the
    client leaves, or the client is too slow (see core/console/live.py)."""

    media_type = "text/event-stream"

    def __init__(self, sub: Subscriber, console: ConsoleService, session: ConsoleSession) -> None:
        # Not Response.__init__: it would declare Content-Length 0 for a stream.
        self.status_code = 200
        self.background = None
        self.body = b""
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]
        self.sub = sub
        self.console = console
        self.session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub, sub = self.console.hub, self.sub
        heartbeat = self.console.settings.heartbeat_s

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            hub.unsubscribe(sub)

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if not await self._write(send, b"retry: 3000\n\n", heartbeat):
                return
            while True:
                left = self.session.expires_at_ms / 1000 - time.time()
                if left <= 0:
                    await self._write(send, b"event: expired\ndata: {}\n\n", heartbeat)
                    break
                event = await sub.next(min(heartbeat, left))
                if event is None and sub.dropped:
                    # Its queue overflowed: end without a clean finish, so the server
                    # closes the connection instead of keeping it for another request.
                    log.warning("console stream dropped: the client reads too slowly")
                    return
                if event is None:
                    break  # closed: client gone, or shutting down
                if isinstance(event, tuple):
                    topic, data = event
                    chunk = b"event: " + topic.encode() + b"\ndata: " + data + b"\n\n"
                else:
                    chunk = b": heartbeat\n\n"
                if not await self._write(send, chunk, heartbeat):
                    # The client takes nothing: drop it instead of buffering for it.
                    log.warning("console stream dropped: the client reads too slowly")
                    return
            async with asyncio.timeout(heartbeat):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            log.warning("console stream dropped: the client reads too slowly")
        finally:
            hub.unsubscribe(sub)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    @staticmethod
    async def _write(send: Send, chunk: bytes, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            return False
        return True


def console_routes(api: NativeApi) -> list[BaseRoute]:
    """The console's routes (only the admin message API when the console is off)."""
    console = api.s.console
    if console is None:
        return []
    return ConsoleApi(api, console).routes()
