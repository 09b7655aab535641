"""uvicorn's httptools protocol with a deadline on every request head.

uvicorn closes an idle keep-alive connection only after a response, and re-arms that
timer on any byte, so a client can hold a connection forever by sending nothing or a
byte at a time (slowloris). Here each request head must be complete within a deadline
counted from the connection's start (or the previous response), whatever trickles in.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    head_timeout: float = 10.0  # seconds; `guarded_protocol` makes one per setting
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head(self.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm_head()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            # The next head gets the keep-alive time, no longer however it trickles.
            self._arm_head(float(self.timeout_keep_alive) + self.head_timeout)

    def _arm_head(self, seconds: float) -> None:
        self._disarm_head()
        self._head_timer = self.loop.call_later(seconds, self._head_expired)

    def _disarm_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(head_timeout: float) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`, with this head deadline."""
    return type(
        "GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"head_timeout": head_timeout}
    )
