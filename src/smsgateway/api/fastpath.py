"""The hot REST routes without ASGI: the request a handler sees, the route table, and
the answer's bytes.

uvicorn's ASGI plumbing (scope dict, RequestResponseCycle, receive/send message dicts,
Starlette Request/Headers/Response, two transport writes per answer) costs more CPU
than some of these routes' own work. For a fixed set of exact (method, path) routes
the HTTP protocol (httpserver.py) skips it: it hands the route's handler a
`FastRequest` and writes the handler's `Answer` with one `transport.write`.

The same handlers serve the Starlette routes of those paths (rest.py adapts a
Request to a FastRequest), so every route has one implementation whichever way a
request arrives; requests the protocol does not take (other paths and methods, query
strings, `Expect: 100-continue`, upgrades, a middleware in front of the app) go the
ASGI way and meet the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from ..core.ratelimit import LIMIT_EXCEEDED

# (status, JSON body, extra headers as lower-case raw pairs or None).
Answer = tuple[int, bytes, list[tuple[bytes, bytes]] | None]
FastHandler = Callable[["FastRequest"], Awaitable[Answer]]

# The request headers the hot handlers read; the protocol keeps only these.
WANTED_HEADERS: dict[bytes, str] = {
    name.encode(): name
    for name in ("authorization", "x-app-id", "content-length", "x-forwarded-for", "x-admin-key")
}


class FastRequest:
    """What a hot handler sees of a request: a few headers (lower-case names), the
    peer's address, a per-request dict where limit checks leave the quota headers
    (`QUOTA_SCOPE_KEY`, as in an ASGI scope), and the body on demand.

    The body is read on demand, not handed over, so checks keep their order on both
    paths: a bad token answers 401 before an oversized body would answer 413.
    """

    __slots__ = ("client", "headers", "scope")

    def __init__(
        self, headers: Mapping[str, str], client: str | None, scope: MutableMapping[str, Any]
    ) -> None:
        self.headers = headers
        self.client = client
        self.scope = scope

    async def read(self) -> bytes:
        """The whole body, within the size limit and the body deadline."""
        raise NotImplementedError


class FastRoutes:
    """The routes the protocol serves itself, keyed by the raw method and request
    target as they arrive (so `/healthy?x=1` or `/heal%74hy` is not a key and goes
    the ASGI way), with the body rules of the settings."""

    def __init__(
        self,
        handlers: Mapping[tuple[str, str], FastHandler],
        *,
        body_limit: int,
        body_timeout: float,
    ) -> None:
        self.handlers = {(m.encode(), p.encode()): h for (m, p), h in handlers.items()}
        self.body_limit = body_limit
        self.body_timeout = body_timeout
        self.served = 0  # answers written by the fast path (tests prove it is taken)
        self._defaults_of: list[tuple[bytes, bytes]] | None = None
        self._defaults = b""

    def behind(self, check: Callable[[str], list[tuple[bytes, bytes]] | None]) -> FastRoutes:
        """These routes behind a limit that every request meets first (the global L1
        rate limit): `check(path)` gives None to go on, or the headers of a 429."""

        def gated(path: str, handler: FastHandler) -> FastHandler:
            async def run(request: FastRequest) -> Answer:
                refused = check(path)
                if refused is not None:
                    return 429, LIMIT_EXCEEDED, refused
                return await handler(request)

            return run

        self.handlers = {
            key: gated(key[1].decode("latin-1"), handler) for key, handler in self.handlers.items()
        }
        return self

    def render(
        self,
        answer: Answer,
        default_headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
    ) -> bytes:
        """The whole answer: status line, uvicorn's default headers (date, server),
        the headers a Starlette JSON Response carries in its order, any extra ones,
        `connection: close` when the connection ends with this answer, then the body.

        uvicorn replaces `default_headers` (a new list) once a second for the date,
        so their rendering is kept until the list changes.
        """
        if default_headers is not self._defaults_of:
            self._defaults_of = default_headers
            self._defaults = b"".join(n + b": " + v + b"\r\n" for n, v in default_headers)
        status, body, extra = answer
        out = [
            STATUS_LINE[status],
            self._defaults,
            b"content-length: %d\r\ncontent-type: application/json\r\n" % len(body),
        ]
        if extra:
            # Built by the gateway from numbers (rate-limit quotas), never from input:
            # no CR/LF check needed, unlike headers an ASGI app could pass through.
            for name, value in extra:
                out += (name, b": ", value, b"\r\n")
        if not keep_alive:
            out.append(b"connection: close\r\n")
        out += (b"\r\n", body)
        return b"".join(out)
