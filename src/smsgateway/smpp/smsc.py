"""The SMSC side of SMPP over asyncio: accept ESMEs, authenticate binds, serve requests.

It exists for the built-in simulator and for tests, but knows nothing of either:
what a submit means is the business of an `SmscHandler`, who may bind is the
business of an `Authenticator`. The plumbing (window, timeouts, keepalive,
batched writes) is the same `PduProtocol` the ESME client uses, so both sides
are equally fast and equally strict.

Handlers answer synchronously when they can: returning the response PDU costs
nothing extra, while returning an awaitable costs a task. Returning None means
"I will call `session.respond()` myself", which is how a simulator delays
answers with a plain timer instead of a task per PDU.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from .connection import Connection, ConnectionState, Role
from .constants import CommandId, CommandStatus
from .errors import CommandError, SessionClosed
from .pdu import (
    DEFAULT_MAX_PDU,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    Pdu,
    QuerySm,
    ReplaceSm,
    SubmitSm,
)
from .session import PduProtocol

__all__ = [
    "Authenticator",
    "BindRequest",
    "Reply",
    "SmscHandler",
    "SmscServer",
    "SmscSession",
]

log = logging.getLogger("smsgateway.smpp.smsc")

BindRequest: TypeAlias = BindTransmitter | BindReceiver | BindTransceiver
Reply: TypeAlias = Pdu | Awaitable[Pdu] | None
Authenticator: TypeAlias = Callable[["SmscSession", BindRequest], int | Awaitable[int]]

_MODES = {
    ConnectionState.BOUND_TX: "transmitter",
    ConnectionState.BOUND_RX: "receiver",
    ConnectionState.BOUND_TRX: "transceiver",
}


class SmscHandler(ABC):
    """What an SMSC does with requests; the simulator is one implementation.

    Every method gets the session and the request, and returns a Reply: the
    response PDU (sent at once), an awaitable of it (sent when ready), or None
    (the handler calls `session.respond()` itself later). Exceptions become
    ESME_RSYSERR answers. Unimplemented operations answer with their "failed"
    status, which is what a real SMSC without the feature says.
    """

    def session_bound(self, session: SmscSession) -> None:  # noqa: B027 - optional hook
        """A session completed its bind."""

    def session_closed(self, session: SmscSession) -> None:  # noqa: B027 - optional hook
        """A session's connection ended (bound or not)."""

    @abstractmethod
    def submit_sm(self, session: SmscSession, pdu: SubmitSm) -> Reply: ...

    def data_sm(self, session: SmscSession, pdu: DataSm) -> Reply:
        return pdu.response(CommandStatus.ESME_RINVCMDID)

    def query_sm(self, session: SmscSession, pdu: QuerySm) -> Reply:
        return pdu.response(CommandStatus.ESME_RQUERYFAIL)

    def cancel_sm(self, session: SmscSession, pdu: CancelSm) -> Reply:
        return pdu.response(CommandStatus.ESME_RCANCELFAIL)

    def replace_sm(self, session: SmscSession, pdu: ReplaceSm) -> Reply:
        return pdu.response(CommandStatus.ESME_RREPLACEFAIL)


class SmscSession(PduProtocol):
    """One ESME connection as the SMSC sees it."""

    def __init__(self, server: SmscServer) -> None:
        super().__init__(
            Connection(Role.SMSC, max_pdu=server.max_pdu, window=server.deliver_window),
            window=server.deliver_window,
            response_timeout=server.response_timeout,
            enquire_link_interval=server.enquire_link_interval,
        )
        self.server = server
        self.system_id: str | None = None
        self.bind_pdu: BindRequest | None = None
        self.bound_at: float | None = None
        self._dispatch: dict[int, Callable[[SmscSession, Pdu], Reply]] = {
            CommandId.SUBMIT_SM: server.handler.submit_sm,  # type: ignore[dict-item]
            CommandId.DATA_SM: server.handler.data_sm,  # type: ignore[dict-item]
            CommandId.QUERY_SM: server.handler.query_sm,  # type: ignore[dict-item]
            CommandId.CANCEL_SM: server.handler.cancel_sm,  # type: ignore[dict-item]
            CommandId.REPLACE_SM: server.handler.replace_sm,  # type: ignore[dict-item]
        }

    def __repr__(self) -> str:
        return f"<SmscSession {self.system_id!r} {self.bind_mode} {self.peer}>"

    @property
    def bind_mode(self) -> str | None:
        """ "transmitter", "receiver" or "transceiver" once bound."""
        mode = self.conn.bind_mode
        return _MODES[mode] if mode is not None else None

    @property
    def bound(self) -> bool:
        return self.conn.bound and not self.closing

    @property
    def can_receive(self) -> bool:
        """Whether deliver_sm may be sent to this session now."""
        return self.conn.can_receive and not self.closing

    # --- transport callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server.sessions.add(self)

    def on_closed(self) -> None:
        self.server.sessions.discard(self)
        try:
            self.server.handler.session_closed(self)
        except Exception:
            log.exception("session_closed hook failed")

    def on_tick(self, now: float) -> None:
        timeout = self.server.bind_timeout
        if timeout and self.bound_at is None and now - self.opened_at > timeout:
            log.info("%s: no bind within %gs, closing", self.peer, timeout)
            self.close("no bind")

    # --- requests from the ESME ----------------------------------------------------

    def on_request(self, pdu: Pdu) -> None:
        cid = pdu.command_id
        handler = self._dispatch.get(cid)
        if handler is not None:
            try:
                reply = handler(self, pdu)
            except Exception:
                log.exception("handler failed on %s", pdu.name)
                self.respond(pdu.response(CommandStatus.ESME_RSYSERR))
                return
            if reply is None:
                return
            if isinstance(reply, Pdu):
                self.respond(reply)
            else:
                self._later(pdu, reply)
        elif cid == CommandId.ENQUIRE_LINK:
            self.respond(pdu.response())
        elif cid == CommandId.UNBIND:
            log.info("%s: %r unbound", self.peer, self.system_id)
            self.respond(pdu.response())
            self.close("unbound by ESME")
        elif isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver):
            self._bind(pdu)
        else:
            self.respond(pdu.response(CommandStatus.ESME_RINVCMDID))

    def _later(self, pdu: Pdu, reply: Awaitable[Pdu]) -> None:
        def done(fut: asyncio.Future[Pdu]) -> None:
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                log.error("handler failed on %s", pdu.name, exc_info=exc)
                self.respond(pdu.response(CommandStatus.ESME_RSYSERR))
            else:
                self.respond(fut.result())

        asyncio.ensure_future(reply).add_done_callback(done)

    def _bind(self, pdu: BindRequest) -> None:
        self.bind_pdu = pdu
        auth = self.server.authenticator
        if auth is None:
            self._bind_result(pdu, 0)
            return
        try:
            result = auth(self, pdu)
        except Exception:
            log.exception("authenticator failed")
            self._bind_result(pdu, CommandStatus.ESME_RBINDFAIL)
            return
        if inspect.isawaitable(result):

            def done(fut: asyncio.Future[int]) -> None:
                if fut.cancelled() or fut.exception() is not None:
                    log.error("authenticator failed", exc_info=fut.exception())
                    self._bind_result(pdu, CommandStatus.ESME_RBINDFAIL)
                else:
                    self._bind_result(pdu, fut.result())

            asyncio.ensure_future(result).add_done_callback(done)
        else:
            self._bind_result(pdu, int(result))

    def _bind_result(self, pdu: BindRequest, status: int) -> None:
        if self.closing:
            return
        self.respond(pdu.response(status, system_id=self.server.system_id))
        if status:
            log.info("%s: bind refused for %r: 0x%X", self.peer, pdu.system_id, status)
            self.close("bind refused")
            return
        self.system_id = pdu.system_id
        self.bound_at = self.received_at
        log.info("%s: bound %r as %s", self.peer, pdu.system_id, self.bind_mode)
        try:
            self.server.handler.session_bound(self)
        except Exception:
            log.exception("session_bound hook failed")

    # --- requests to the ESME ------------------------------------------------------

    async def deliver(self, pdu: DeliverSm) -> DeliverSmResp:
        """Send a deliver_sm within this session's window and return the answer.

        The answer is returned whatever its command_status (the caller decides
        whether to retry); a generic_nack raises CommandError, and a lost
        connection SessionClosed.
        """
        if not self.can_receive:
            raise SessionClosed(f"session {self.system_id!r} cannot receive now")
        resp = await self.request(pdu)
        if not isinstance(resp, DeliverSmResp):
            raise CommandError(resp.command_status or CommandStatus.ESME_RSYSERR, "deliver_sm")
        return resp

    def deliver_nowait(self, pdu: DeliverSm | DataSm) -> asyncio.Future[Pdu]:
        """Queue a deliver_sm/data_sm without a task; the future gets the answer."""
        if not self.can_receive:
            fut: asyncio.Future[Pdu] = self.loop.create_future()
            fut.set_exception(SessionClosed(f"session {self.system_id!r} cannot receive now"))
            return fut
        return self.request_nowait(pdu)


class SmscServer:
    """Listens for ESMEs and runs one `SmscSession` per connection.

    `authenticator(session, bind_pdu)` returns the bind's command_status (0
    accepts), directly or as an awaitable; without one every bind is accepted.
    """

    def __init__(
        self,
        handler: SmscHandler,
        *,
        authenticator: Authenticator | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        system_id: str = "smsc",
        max_pdu: int = DEFAULT_MAX_PDU,
        deliver_window: int = 10,
        response_timeout: float = 5.0,
        enquire_link_interval: float | None = 30.0,
        bind_timeout: float | None = 30.0,
    ) -> None:
        self.handler = handler
        self.authenticator = authenticator
        self.host = host
        self.port = port
        self.system_id = system_id
        self.max_pdu = max_pdu
        self.deliver_window = deliver_window
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.bind_timeout = bind_timeout
        self.sessions: set[SmscSession] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SmscSession(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def bound_sessions(
        self, system_id: str | None = None, *, receivers: bool = False
    ) -> list[SmscSession]:
        """Bound sessions, optionally of one system_id and/or able to receive."""
        return [
            s
            for s in self.sessions
            if s.bound
            and (system_id is None or s.system_id == system_id)
            and (not receivers or s.can_receive)
        ]

    def drop_all(self, reason: str = "dropped") -> int:
        """Abort every connection at once, as a crashing SMSC would."""
        sessions = list(self.sessions)
        for session in sessions:
            session.abort(reason)
        return len(sessions)

    async def unbind_all(self, timeout: float = 1.0) -> int:
        """Unbind every bound session from the SMSC side and close them."""
        sessions = self.bound_sessions()
        await asyncio.gather(*(s.unbind(timeout) for s in sessions), return_exceptions=True)
        return len(sessions)

    async def stop(self, *, unbind: bool = True, timeout: float = 1.0) -> None:
        """Stop listening, unbind (or drop) every session, and wait for them to go."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if unbind:
            await self.unbind_all(timeout)
        for session in list(self.sessions):
            session.abort("server stopped")
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout)
