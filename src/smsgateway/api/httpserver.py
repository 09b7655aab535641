"""uvicorn's httptools protocol with a deadline on every request head, and the hot
routes served without ASGI.

Head deadline: uvicorn closes an idle keep-alive connection only after a response, and
re-arms that timer on any byte, so a client can hold a connection forever by sending
nothing or a byte at a time (slowloris). Here each request head must be complete
within a deadline counted from the connection's start (or the previous response),
whatever trickles in.

Fast path: for the exact routes of `FastRoutes` (api/fastpath.py) the protocol builds
no ASGI scope, cycle, messages or Starlette objects. It collects the body itself,
calls the route's handler and writes the whole answer with one `transport.write`. A
fast request takes the place of uvicorn's `RequestResponseCycle` on the connection
(`self.cycle`, `self.pipeline`), so keep-alive, pipelining, flow control, the
keep-alive timer, `shutdown()` and the server's wait for `server_state.tasks` treat
both kinds alike. This leans on uvicorn internals (pinned 0.54.0): the attributes
`cycle`, `pipeline`, `flow`, `tasks`, `headers`, `url`, `parser`,
`expect_100_continue`, `server_state.default_headers`, the method
`_start_asgi_task` (which `on_response_complete` calls for the next pipelined
request) and the fields of `self.cycle` that uvicorn reads (`response_complete`,
`keep_alive`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from starlette.requests import ClientDisconnect
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .fastpath import WANTED_HEADERS, FastHandler, FastRequest, FastRoutes
from .http import BodyTimeout, check_length, too_large

log = logging.getLogger(__name__)

# uvicorn's answer when an ASGI app fails before answering (after the status line
# and the default headers); a fast handler renders its own errors, so this is only
# for a bug in the fast path or a handler cancelled at the end of a shutdown.
_SERVER_ERROR = (
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n"
    b"connection: close\r\n\r\nInternal Server Error"
)


async def _fast_app(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for the ASGI app next to a queued fast request in `pipeline`."""
    raise AssertionError("a fast request reached the ASGI path")


class FastCycle(FastRequest):
    """One request on the fast path: the handler's view of it (FastRequest), its body
    as the parser delivers it, and the state uvicorn reads off `protocol.cycle`."""

    __slots__ = (
        "_waiter",
        "chunks",
        "disconnected",
        "handler",
        "keep_alive",
        "more_body",
        "protocol",
        "response_complete",
        "size",
        "too_large",
    )

    def __init__(
        self,
        protocol: GuardedHttpToolsProtocol,
        handler: FastHandler,
        headers: dict[str, str],
        client: str | None,
        keep_alive: bool,
    ) -> None:
        super().__init__(headers, client, {})
        self.protocol = protocol
        self.handler = handler
        self.keep_alive = keep_alive  # uvicorn's shutdown() sets it False
        self.response_complete = False
        self.disconnected = False
        self.more_body = True
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False  # a chunked body went over the limit: dropped, 413
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes, limit: int) -> None:
        if self.too_large:
            return
        self.size += len(data)
        if self.size > limit:
            # Drop what came and stop reading until the answer (on_response_complete
            # resumes; the parser then skips the rest): memory stays within the limit.
            self.too_large = True
            self.chunks = []
            self.protocol.flow.pause_reading()
        else:
            self.chunks.append(data)
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> bytes:
        routes = self.protocol.fast_routes
        assert routes is not None
        limit = routes.body_limit
        check_length(self.headers.get("content-length"), limit)
        if self.more_body and not self.too_large:
            await self._wait_body(routes.body_timeout)
        if self.too_large:
            raise too_large(limit)
        # One chunk (the usual case) is returned as is: bytes.join does not copy it.
        return b"".join(self.chunks)

    async def _wait_body(self, timeout: float) -> None:
        protocol = self.protocol
        try:
            async with asyncio.timeout(timeout):
                while self.more_body and not self.too_large:
                    if self.disconnected:
                        # As the ASGI path (Starlette raises it on http.disconnect). A
                        # body that did arrive whole is served even if the client left.
                        raise ClientDisconnect()
                    protocol.flow.resume_reading()
                    self._waiter = protocol.loop.create_future()
                    await self._waiter
        except TimeoutError:
            raise BodyTimeout() from None
        finally:
            self._waiter = None


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    head_timeout: float = 10.0  # seconds; `guarded_protocol` makes one per setting
    fast_routes: FastRoutes | None = None  # likewise; None: everything goes ASGI
    _fast: FastRoutes | None = None  # fast_routes, if this connection may use them
    _head_timer: asyncio.TimerHandle | None = None
    # When the head being awaited is late (loop time); None while none is awaited.
    _head_due: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Settings under which the fast path would differ from uvicorn's: an access
        # log that writes (uvicorn logs at INFO), a concurrency limit (503s), a root
        # path. None of them is used by the runtime.
        access_log = self.access_log and self.access_logger.isEnabledFor(logging.INFO)
        self._fast = (
            self.fast_routes
            if not access_log and self.limit_concurrency is None and not self.root_path
            else None
        )
        self._arm_head(self.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        cycle: object = self.cycle  # object: uvicorn types it as its own cycle only
        if isinstance(cycle, FastCycle):
            # What uvicorn does for its own cycle (it would also set an ASGI cycle's
            # message_event, which a fast one does not have). The handler is not
            # cancelled: a send whose body arrived is still processed and stored.
            if not cycle.response_complete:
                cycle.disconnected = True
            cycle.wake()
            self.cycle = None  # type: ignore[assignment]  # uvicorn's own initial value
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm_head()
        fast = self._fast
        if fast is not None:
            handler = fast.handlers.get((self.parser.get_method(), self.url))
            if (
                handler is not None
                and not self.expect_100_continue
                and not self.parser.should_upgrade()
            ):
                self._start_fast_request(handler)
                return
        super().on_headers_complete()

    def _start_fast_request(self, handler: FastHandler) -> None:
        # uvicorn's on_header has already lower-cased the names; the first of a
        # repeated header wins, as with Starlette's Headers.get.
        headers: dict[str, str] = {}
        for name, value in self.headers:
            key = WANTED_HEADERS.get(name)
            if key is not None and key not in headers:
                headers[key] = value.decode("latin-1")
        parser = self.parser
        cycle = FastCycle(
            self,
            handler,
            headers,
            self.client[0] if self.client else None,
            # As uvicorn: HTTP/1.0 always closes, 1.1 unless `Connection: close`.
            parser.get_http_version() != "1.0" and parser.should_keep_alive(),
        )
        existing = self.cycle
        self.cycle = cast(RequestResponseCycle, cycle)
        if existing is None or existing.response_complete:
            self._run_fast(cycle)
        else:
            # Pipelined behind an unanswered request: queued as uvicorn queues its own,
            # started by on_response_complete through _start_asgi_task.
            self.flow.pause_reading()
            self.pipeline.appendleft((cast(RequestResponseCycle, cycle), _fast_app))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        queued: object = cycle
        if isinstance(queued, FastCycle):
            self._run_fast(queued)
        else:
            super()._start_asgi_task(cycle, app)

    def _run_fast(self, cycle: FastCycle) -> None:
        # In server_state.tasks like an ASGI task: a graceful shutdown waits for it.
        task = self.loop.create_task(self._serve_fast(cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _serve_fast(self, cycle: FastCycle) -> None:
        try:
            answer = await cycle.handler(cycle)
        except BaseException as exc:
            # The handlers render every error themselves; this is a bug or a handler
            # cancelled at the end of a graceful shutdown. As uvicorn's run_asgi.
            log.error("exception in a fast-path handler", exc_info=exc)
            if not cycle.disconnected and not self.transport.is_closing():
                defaults = self.server_state.default_headers
                head = [STATUS_LINE[500], *(n + b": " + v + b"\r\n" for n, v in defaults)]
                self.transport.write(b"".join(head) + _SERVER_ERROR)
                self.transport.close()
            return
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()  # a client that does not read its answers
        transport = self.transport
        if cycle.disconnected or transport.is_closing():
            return
        routes = self.fast_routes
        assert routes is not None
        transport.write(routes.render(answer, self.server_state.default_headers, cycle.keep_alive))
        routes.served += 1
        cycle.response_complete = True
        if not cycle.keep_alive:
            transport.close()
        self.on_response_complete()

    def on_body(self, body: bytes) -> None:
        cycle: object = self.cycle
        if not isinstance(cycle, FastCycle):
            super().on_body(body)
        elif not cycle.response_complete:  # else: the rest of a body nobody read
            routes = self.fast_routes
            assert routes is not None
            cycle.feed(body, routes.body_limit)

    def on_message_complete(self) -> None:
        cycle: object = self.cycle
        if not isinstance(cycle, FastCycle):
            super().on_message_complete()
        elif not cycle.response_complete:
            cycle.more_body = False
            cycle.wake()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            # The next head gets the keep-alive time, no longer however it trickles.
            self._arm_head(float(self.timeout_keep_alive) + self.head_timeout)

    # The head deadline is a time, and the loop timer is lazy: on a keep-alive
    # connection each request moves the deadline, and the timer (set once, usually
    # many requests ago) looks when it runs, and goes again for the current deadline
    # if that is later. A timer per request (call_later and cancel, about 4 µs) is
    # what this saves.

    def _arm_head(self, seconds: float) -> None:
        due = self.loop.time() + seconds
        self._head_due = due
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(due, self._head_check)

    def _disarm_head(self) -> None:
        self._head_due = None

    def _head_check(self) -> None:
        self._head_timer = None
        due = self._head_due
        if due is None:
            return  # no head awaited now; the next _arm_head sets a timer again
        if due > self.loop.time() + 0.001:  # uvloop rounds timers to the millisecond
            self._head_timer = self.loop.call_at(due, self._head_check)
        elif not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(
    head_timeout: float, fast_routes: FastRoutes | None = None
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`, with this head deadline and these
    routes served without ASGI (None: none)."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"head_timeout": head_timeout, "fast_routes": fast_routes},
    )
