"""The asyncio ESME: binds to an SMSC, keeps the link up, submits at the link's pace.

Why it is built the way it is:
- `asyncio.Protocol`, not streams: a stream reader costs a task wake-up and a
  buffer copy per read, and `drain()` per PDU serialises writers. Here bytes go
  straight from `data_received` into the sans-I/O `Connection`, responses resolve
  one future each, and outgoing PDUs are gathered and written once per event-loop
  pass (so a window of 50 answers becomes one `write` of 50 submits, not 50
  system calls). Flow control still holds: while the transport is paused, new
  requests wait for it to resume.
- No task per PDU: a request is a future in a dict keyed by sequence number;
  timeouts are found by one periodic check per connection rather than one timer
  per request.
- A dropped connection fails every in-flight request at once with `SessionClosed`
  (retriable), so callers never wait out their response timeouts on a dead link.

`PduProtocol` is the plumbing shared with the SMSC side (`smsc.py`): window of
outstanding requests, response timeouts, enquire_link when idle, batched writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast

from .connection import (
    BadPdu,
    Connection,
    ConnectionBroken,
    ConnectionState,
    LocalProtocolError,
    Role,
)
from .constants import RESPONSE_BIT, CommandId, CommandStatus, status_name
from .errors import CommandError, PduError, ResponseTimeout, SessionClosed, SmppError
from .pacing import Pacer
from .pdu import (
    DEFAULT_MAX_PDU,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    EnquireLink,
    Outbind,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Unbind,
)

__all__ = [
    "BindMode",
    "ClientConfig",
    "DeliverCallback",
    "EsmeClient",
    "LinkState",
    "PduProtocol",
]

log = logging.getLogger("smsgateway.smpp.session")

BindMode = Literal["transceiver", "transmitter", "receiver"]
DeliverCallback = Callable[[DeliverSm | DataSm], Awaitable[int | None] | int | None]

_UNWINDOWED = frozenset(
    {
        CommandId.BIND_RECEIVER,
        CommandId.BIND_TRANSMITTER,
        CommandId.BIND_TRANSCEIVER,
        CommandId.UNBIND,
        CommandId.ENQUIRE_LINK,
    }
)
_THROTTLED = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
_GONE = (ConnectionState.UNBINDING, ConnectionState.UNBOUND, ConnectionState.CLOSED)


class _Throttled(Exception):
    """A submit refused with a throttling status, to be retried (after the back-off)."""


class _Pending:
    __slots__ = ("command_id", "deadline", "fut", "windowed")

    def __init__(
        self, fut: asyncio.Future[Pdu], deadline: float, windowed: bool, command_id: int
    ) -> None:
        self.fut = fut
        self.deadline = deadline
        self.windowed = windowed
        self.command_id = command_id


_SlotWaiter = asyncio.Future[None] | tuple[Pdu, "asyncio.Future[Pdu]"]


class PduProtocol(asyncio.Protocol):
    """One TCP connection carrying SMPP, for either role; subclasses answer requests.

    Window: at most `window` requests other than bind/unbind/enquire_link are
    outstanding; `acquire_slot()` waits for room and hands slots over in FIFO
    order. Timeouts: a check every `response_timeout / 10` (10-250 ms) fails
    overdue requests with `ResponseTimeout` and frees their slots. Keepalive:
    after `enquire_link_interval` seconds without a byte from the peer, an
    enquire_link goes out; if that is not answered in time the connection is
    aborted, since a peer that does not answer it answers nothing.
    """

    def __init__(
        self,
        conn: Connection,
        *,
        window: int,
        response_timeout: float,
        enquire_link_interval: float | None,
    ) -> None:
        self.conn = conn
        self.window = max(1, window)
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.closing = False
        self.close_reason = ""
        self.window_used = 0
        self.enquire_links_sent = 0
        now = time.monotonic()
        self.opened_at = now
        self.last_received = now
        self.received_at = now  # when the bytes being handled arrived (monotonic)
        self._pending: dict[int, _Pending] = {}
        self._slot_waiters: deque[_SlotWaiter] = deque()
        self._wbuf: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        self._write_paused = False
        self._keepalive: asyncio.Future[Pdu] | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._tick_every = min(0.25, max(0.01, response_timeout / 10))

    # --- transport callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._ticker = self.loop.call_later(self._tick_every, self._tick)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.received_at = now
        self.last_received = now
        pending = self._pending
        for event in self.conn.receive_data(data):
            try:
                if isinstance(event, Pdu):
                    if event.command_id & RESPONSE_BIT:
                        entry = pending.pop(event.sequence_number, None)
                        if entry is None:
                            self.on_stray_response(event)
                            continue
                        if entry.windowed:
                            self.window_used -= 1
                            if self._slot_waiters:
                                self._grant()
                        if not entry.fut.done():
                            entry.fut.set_result(event)
                    else:
                        self.on_request(event)
                elif isinstance(event, BadPdu):
                    self._on_bad_pdu(event)
                else:
                    self._on_broken(event)
            except Exception:  # a bug in a handler must not take the link down
                log.exception("error handling %r", event)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if not self.close_reason:
            self.close_reason = f"connection lost: {exc}" if exc else "connection closed"
        self.conn.connection_lost()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._wbuf.clear()
        reason = self.close_reason
        pending, self._pending = self._pending, {}
        self.window_used = 0
        for entry in pending.values():
            if not entry.fut.done():
                entry.fut.set_exception(SessionClosed(reason, written=True))
        waiters, self._slot_waiters = self._slot_waiters, deque()
        for waiter in waiters:
            fut = waiter[1] if isinstance(waiter, tuple) else waiter
            if not fut.done():
                fut.set_exception(SessionClosed(reason))
        if not self.closed.done():
            self.closed.set_result(None)
        self.on_closed()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._slot_waiters:
            self._grant()

    # --- hooks for subclasses ------------------------------------------------------

    def on_request(self, pdu: Pdu) -> None:
        """A request from the peer; answer with `respond()`."""
        if pdu.command_id == CommandId.ENQUIRE_LINK:
            self.respond(pdu.response())
        else:
            self.respond(pdu.response(CommandStatus.ESME_RINVCMDID))

    def on_stray_response(self, pdu: Pdu) -> None:
        """A response to nothing we are waiting for (typically after a timeout)."""
        log.debug("%s: stray %s seq=%d", self.peer, pdu.name, pdu.sequence_number)

    def on_timeout(self, command_id: int, sequence_number: int) -> None:
        """A request of ours went unanswered for its whole timeout."""

    def on_closed(self) -> None:
        """The connection is gone; every pending request has already failed."""

    # --- writing -------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes; they leave at the end of this event-loop pass, in one write."""
        if self.closing:
            return
        self._wbuf.append(data)
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def flush(self) -> None:
        """Write what is queued now rather than at the end of this loop pass."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()

    def _flush(self) -> None:
        self._flush_handle = None
        buf = self._wbuf
        if not buf:
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(buf[0] if len(buf) == 1 else b"".join(buf))
        buf.clear()

    def respond(self, pdu: Pdu) -> None:
        """Send a response (or any PDU whose sequence number is already set)."""
        if self.closing:
            return
        try:
            data = self.conn.send(pdu)
        except LocalProtocolError:
            # A broken frame later in the same read closed the stream before this
            # request's answer could go out: there is nobody left to answer.
            if self.conn.state is ConnectionState.CLOSED:
                return
            raise
        self.write(data)

    # --- requests ------------------------------------------------------------------

    async def acquire_slot(self) -> None:
        """Wait for room in the window; the caller owns one slot afterwards."""
        if self.closing:
            raise SessionClosed(self.close_reason or "closing")
        if self.window_used < self.window and not self._slot_waiters and not self._write_paused:
            self.window_used += 1
            return
        fut: asyncio.Future[None] = self.loop.create_future()
        self._slot_waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release_slot()  # granted, but our caller is gone
            else:
                with contextlib.suppress(ValueError):
                    self._slot_waiters.remove(fut)
            raise

    def release_slot(self) -> None:
        """Give back a slot that was acquired but not used for a request."""
        if self.window_used > 0:
            self.window_used -= 1
        if self._slot_waiters:
            self._grant()

    def _grant(self) -> None:
        waiters = self._slot_waiters
        while waiters and self.window_used < self.window and not self._write_paused:
            waiter = waiters.popleft()
            if isinstance(waiter, tuple):
                pdu, fut = waiter
                if fut.done():
                    continue
                self.window_used += 1
                try:
                    self.send_into(pdu, fut, True, self.response_timeout)
                except Exception as exc:
                    self.window_used -= 1
                    fut.set_exception(exc)
            elif not waiter.done():
                self.window_used += 1
                waiter.set_result(None)

    def send_request(
        self, pdu: Pdu, *, windowed: bool | None = None, timeout: float | None = None
    ) -> asyncio.Future[Pdu]:
        """Send a request now and return the future of its response.

        A windowed request must hold a slot from `acquire_slot()`; the slot is
        released when the response, the timeout or the end of the connection
        settles the future.
        """
        if self.closing:
            raise SessionClosed(self.close_reason or "closing")
        fut: asyncio.Future[Pdu] = self.loop.create_future()
        if windowed is None:
            windowed = pdu.command_id not in _UNWINDOWED
        self.send_into(pdu, fut, windowed, self.response_timeout if timeout is None else timeout)
        return fut

    def send_into(self, pdu: Pdu, fut: asyncio.Future[Pdu], windowed: bool, timeout: float) -> None:
        """Send a request whose response will settle `fut` (see `send_request`)."""
        data = self.conn.send(pdu)
        self._pending[pdu.sequence_number] = _Pending(
            fut, time.monotonic() + timeout, windowed, pdu.command_id
        )
        self.write(data)

    async def request(self, pdu: Pdu, *, timeout: float | None = None) -> Pdu:
        """Send a request within the window and wait for its response (any status)."""
        windowed = pdu.command_id not in _UNWINDOWED
        if windowed:
            await self.acquire_slot()
            try:
                fut = self.send_request(pdu, windowed=True, timeout=timeout)
            except BaseException:
                self.release_slot()
                raise
        else:
            fut = self.send_request(pdu, windowed=False, timeout=timeout)
        return await fut

    def has_room(self) -> bool:
        """Whether a windowed request would go out now rather than wait for a slot."""
        return (
            not self.closing
            and self.window_used < self.window
            and not self._slot_waiters
            and not self._write_paused
        )

    def request_nowait(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Queue a windowed request without a task: sent as soon as a slot is free."""
        fut: asyncio.Future[Pdu] = self.loop.create_future()
        if self.closing:
            fut.set_exception(SessionClosed(self.close_reason or "closing"))
            return fut
        if self.window_used < self.window and not self._slot_waiters and not self._write_paused:
            self.window_used += 1
            try:
                self.send_into(pdu, fut, True, self.response_timeout)
            except Exception as exc:
                self.window_used -= 1
                fut.set_exception(exc)
        else:
            self._slot_waiters.append((pdu, fut))
        return fut

    # --- closing -------------------------------------------------------------------

    def close(self, reason: str = "closed locally") -> None:
        """Send what is queued, then close."""
        if self.transport is None or self.transport.is_closing():
            return
        if not self.close_reason:
            self.close_reason = reason
        self._flush()
        self.closing = True
        self.transport.close()

    def abort(self, reason: str = "aborted") -> None:
        """Drop the connection now, unsent bytes included."""
        if not self.close_reason:
            self.close_reason = reason
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    async def unbind(self, timeout: float = 1.0) -> None:
        """Unbind politely and close; gives up waiting after `timeout` seconds."""
        if not self.close_reason:
            self.close_reason = "unbound"
        if self.conn.bound:
            with contextlib.suppress(SmppError, TimeoutError):
                fut = self.send_request(Unbind(), windowed=False, timeout=timeout)
                await asyncio.wait_for(fut, timeout + 0.5)
        self.close("unbound")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        if not self.closed.done():
            self.abort("unbind: close timed out")

    # --- errors from the peer --------------------------------------------------------

    def _on_bad_pdu(self, event: BadPdu) -> None:
        log.warning("%s: bad PDU from peer: %s", self.peer, event.error)
        if event.reply:
            self.write(event.reply)
        error = event.error
        if error.command_id & RESPONSE_BIT:
            entry = self._pending.pop(error.sequence_number, None)
            if entry is not None:
                if entry.windowed:
                    self.release_slot()
                if not entry.fut.done():
                    entry.fut.set_exception(error)

    def _on_broken(self, event: ConnectionBroken) -> None:
        log.warning("%s: unrecoverable stream, closing: %s", self.peer, event.error)
        self.close_reason = f"bad frame: {event.error}"
        self.write(event.reply)
        self.close(self.close_reason)

    # --- periodic duties -------------------------------------------------------------

    def _tick(self) -> None:
        self._ticker = None
        if self.closing:
            return
        now = time.monotonic()
        pending = self._pending
        if pending:
            expired = [seq for seq, entry in pending.items() if entry.deadline <= now]
            for seq in expired:
                entry = pending.pop(seq)
                self.conn.forget(seq)
                if entry.windowed:
                    self.release_slot()
                if not entry.fut.done():
                    entry.fut.set_exception(
                        ResponseTimeout(
                            f"no response to {CommandId(entry.command_id).name.lower()} "
                            f"seq={seq} within {self.response_timeout:g}s"
                        )
                    )
                self.on_timeout(entry.command_id, seq)
        interval = self.enquire_link_interval
        if (
            interval
            and self._keepalive is None
            and self.conn.bound
            and now - self.last_received >= interval
        ):
            try:
                self._keepalive = self.send_request(EnquireLink(), windowed=False)
                self.enquire_links_sent += 1
                self._keepalive.add_done_callback(self._keepalive_done)
            except SmppError:
                pass
        self.on_tick(now)
        if not self.closing:
            self._ticker = self.loop.call_later(self._tick_every, self._tick)

    def on_tick(self, now: float) -> None:
        """Called on every periodic check (for subclass duties such as bind timeouts)."""

    def _keepalive_done(self, fut: asyncio.Future[Pdu]) -> None:
        self._keepalive = None
        if fut.cancelled():
            return
        exc = fut.exception()
        if isinstance(exc, ResponseTimeout):
            log.warning("%s: enquire_link unanswered, dropping the connection", self.peer)
            self.abort("enquire_link unanswered")


# --- the ESME client ---------------------------------------------------------------------


class LinkState(StrEnum):
    """A link's state as the dashboard, CheckESME and metrics report it."""

    CONNECTING = "CONNECTING"
    BOUND = "BOUND"
    UNBINDING = "UNBINDING"
    CLOSED = "CLOSED"


@dataclass(slots=True)
class ClientConfig:
    """Everything an ESME link needs; times in seconds.

    `window` is the most requests awaiting a response at once; `limit_tps` 0 means
    unpaced. `throttle_pause` is how long every submit waits after the SMSC says
    ESME_RTHROTTLED/ESME_RMSGQFUL, and `max_retry_time` how long one submit keeps
    retrying through throttling before it fails with that status.
    """

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = 0x34
    bind_mode: BindMode = "transceiver"
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 10
    limit_tps: float = 0.0
    enquire_link_interval: float = 30.0
    response_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    bind_timeout: float = 10.0
    max_pdu: int = DEFAULT_MAX_PDU
    throttle_pause: float = 1.0
    max_retry_time: float = 30.0
    unbind_timeout: float = 1.0


_BIND_CLASSES: dict[str, type[BindTransmitter | BindReceiver | BindTransceiver]] = {
    "transceiver": BindTransceiver,
    "transmitter": BindTransmitter,
    "receiver": BindReceiver,
}


class _EsmeLink(PduProtocol):
    """One connection of an EsmeClient; dies with its TCP connection."""

    def __init__(self, client: EsmeClient, conn: Connection) -> None:
        cfg = client.config
        super().__init__(
            conn,
            window=cfg.window,
            response_timeout=cfg.response_timeout,
            enquire_link_interval=cfg.enquire_link_interval,
        )
        self.client = client
        # Requests holding a window slot while they wait for the pacer.
        self.paced: set[asyncio.Future[Pdu]] = set()

    def on_request(self, pdu: Pdu) -> None:
        cid = pdu.command_id
        if cid == CommandId.DELIVER_SM or cid == CommandId.DATA_SM:
            assert isinstance(pdu, DeliverSm | DataSm)
            self.client._on_deliver_pdu(self, pdu)
        elif cid == CommandId.ENQUIRE_LINK:
            self.respond(pdu.response())
        elif cid == CommandId.UNBIND:
            log.info("%s: peer unbound", self.peer)
            self.respond(pdu.response())
            self.close("unbound by peer")
        elif isinstance(pdu, Outbind | AlertNotification):
            log.info("%s: ignoring %s", self.peer, pdu.name)
        else:
            self.respond(pdu.response(CommandStatus.ESME_RINVCMDID))

    def on_timeout(self, command_id: int, sequence_number: int) -> None:
        if command_id not in _UNWINDOWED:
            self.client.errors += 1
            self.client.last_error = "response timeout"

    def on_closed(self) -> None:
        paced, self.paced = self.paced, set()
        for fut in paced:
            if not fut.done():
                fut.set_exception(SessionClosed(self.close_reason))
        self.client._link_closed(self)


class EsmeClient:
    """An SMPP link to one SMSC that stays bound until `stop()`.

    `start()` connects and binds in a background task and reconnects after any
    loss with exponential backoff and jitter (`reconnect_min`..`reconnect_max`).
    `submit()` and `request()` fail fast with `SessionClosed` when not bound:
    deciding whether to wait, retry or fail over is the caller's business.

    `on_deliver` receives deliver_sm/data_sm (receipts and MO). It returns the
    command_status to answer (None means ESME_ROK), directly or as an awaitable;
    if it raises, the answer is ESME_RX_T_APPN so the SMSC tries again later. A
    plain function is answered inline; a coroutine costs one task per PDU.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        on_deliver: DeliverCallback | None = None,
        on_state_change: Callable[[LinkState], object] | None = None,
    ) -> None:
        self.config = config
        self.on_deliver = on_deliver
        self.on_state_change = on_state_change
        self.pacer = Pacer(config.limit_tps)
        self.state = LinkState.CLOSED
        self.remote_system_id: str | None = None
        self.submitted = 0
        self.throttled = 0
        self.retries = 0
        self.errors = 0
        self.received = 0
        self.disconnects = 0
        self.last_error: str | None = None
        self.last_bind_status: int | None = None
        # The last failed bind (refused, unreachable, timed out) and when (Unix s);
        # kept after a later success so an operator can still read it.
        self.last_bind_error: str | None = None
        self.last_bind_error_at: float | None = None
        self._link: _EsmeLink | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._bound = asyncio.Event()
        # Throttled `submit_soon`s retrying in `_submit` (see there).
        self._retrying: set[asyncio.Task[SubmitSmResp]] = set()
        self._tps_bucket = 0
        self._tps_count = 0
        self._tps_history: deque[tuple[int, int]] = deque(maxlen=200)

    # --- observation ---------------------------------------------------------------

    @property
    def bound(self) -> bool:
        return self.state is LinkState.BOUND

    @property
    def in_flight(self) -> int:
        link = self._link
        return link.window_used if link is not None else 0

    def measured_tps(self, period: float = 5.0) -> float:
        """Accepted submits per second over the last `period` seconds (100 ms buckets)."""
        now_bucket = int(time.monotonic() * 10)
        first = now_bucket - max(1, round(period * 10)) + 1
        total = self._tps_count if self._tps_bucket >= first else 0
        for bucket, count in self._tps_history:
            if bucket >= first:
                total += count
        return total / period

    def _count_submit(self) -> None:
        bucket = int(time.monotonic() * 10)
        if bucket == self._tps_bucket:
            self._tps_count += 1
        else:
            if self._tps_count:
                self._tps_history.append((self._tps_bucket, self._tps_count))
            self._tps_bucket = bucket
            self._tps_count = 1

    def set_rate(self, limit_tps: float) -> None:
        """Change the pace at run time."""
        self.config.limit_tps = limit_tps
        self.pacer.set_rate(limit_tps)

    def _set_state(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state = state
        if self.on_state_change is not None:
            try:
                self.on_state_change(state)
            except Exception:
                log.exception("on_state_change failed")

    # --- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting; returns at once (see `wait_bound`)."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._set_state(LinkState.CONNECTING)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="esme-link")

    async def wait_bound(self, timeout: float | None = None) -> None:
        """Wait until bound; raises TimeoutError after `timeout` seconds."""
        await asyncio.wait_for(self._bound.wait(), timeout)

    async def stop(self) -> None:
        """Unbind (waiting briefly for unbind_resp), close, and stop reconnecting."""
        self._stopping = True
        link = self._link
        if link is not None and link.conn.bound and not link.closing:
            self._set_state(LinkState.UNBINDING)
            await link.unbind(self.config.unbind_timeout)
        elif link is not None:
            link.abort("stopped")
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._bound.clear()
        self._set_state(LinkState.CLOSED)

    async def _run(self) -> None:
        cfg = self.config
        backoff = cfg.reconnect_min
        while not self._stopping:
            self._set_state(LinkState.CONNECTING)
            try:
                link = await self._connect_and_bind()
            except asyncio.CancelledError:
                raise
            except (OSError, SmppError, TimeoutError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                self.last_bind_error = self.last_error
                self.last_bind_error_at = time.time()
                if isinstance(exc, CommandError):
                    # The SMSC answered and said no: retrying will not change its
                    # mind, so an operator must hear of it.
                    log.warning(
                        "%s:%d: bind refused by the SMSC: %s",
                        cfg.host,
                        cfg.port,
                        exc.status_name,
                        extra={"system_id": cfg.system_id, "status": exc.status_name},
                    )
                else:
                    log.info("%s:%d: bind failed: %s", cfg.host, cfg.port, self.last_error)
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(cfg.reconnect_max, backoff * 2)
                continue
            backoff = cfg.reconnect_min
            self._link = link
            self._set_state(LinkState.BOUND)
            self._bound.set()
            log.info(
                "%s:%d: bound %s as %r to %r",
                cfg.host,
                cfg.port,
                cfg.bind_mode,
                cfg.system_id,
                self.remote_system_id,
            )
            await link.closed
            self._bound.clear()
            if self._link is link:
                self._link = None
            if not self._stopping:
                self.disconnects += 1
                log.info("%s:%d: link lost (%s)", cfg.host, cfg.port, link.close_reason)
                self._set_state(LinkState.CONNECTING)
                await asyncio.sleep(cfg.reconnect_min * (0.5 + random.random() / 2))

    async def _connect_and_bind(self) -> _EsmeLink:
        cfg = self.config
        loop = asyncio.get_running_loop()
        conn = Connection(Role.ESME, max_pdu=cfg.max_pdu, window=cfg.window)
        _, link = await asyncio.wait_for(
            loop.create_connection(lambda: _EsmeLink(self, conn), cfg.host, cfg.port),
            cfg.bind_timeout,
        )
        try:
            bind = _BIND_CLASSES[cfg.bind_mode](
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
                interface_version=cfg.interface_version,
                addr_ton=cfg.addr_ton,
                addr_npi=cfg.addr_npi,
                address_range=cfg.address_range,
            )
            resp = await link.send_request(bind, windowed=False, timeout=cfg.bind_timeout)
            self.last_bind_status = resp.command_status
            if resp.command_status or resp.command_id == CommandId.GENERIC_NACK:
                raise CommandError(resp.command_status or CommandStatus.ESME_RBINDFAIL, "bind")
        except BaseException:
            link.abort("bind failed")
            raise
        self.remote_system_id = conn.remote_system_id
        return link

    def _link_closed(self, link: _EsmeLink) -> None:
        if self._link is link:
            self._bound.clear()

    # --- sending -------------------------------------------------------------------

    def _current_link(self) -> _EsmeLink:
        link = self._link
        if link is None or link.closing:
            raise SessionClosed("not bound")
        if link.conn.state in _GONE:
            raise SessionClosed(f"link is {link.conn.state}")
        return link

    async def submit(self, pdu: SubmitSm) -> SubmitSmResp:
        """Submit within the window and at the link's pace; returns the SMSC's answer.

        Throttling answers are retried transparently (the pacer backs off) for up
        to `max_retry_time`; any other error status raises CommandError. Raises
        ResponseTimeout or SessionClosed (both retriable) when no answer came.
        """
        return await self._submit(pdu, 0.0)

    def submit_soon(self, pdu: SubmitSm) -> asyncio.Future[SubmitSmResp] | None:
        """`submit` without a task, when the window has room and the pacer a token
        right now: the PDU goes out at once, and the future settles as `submit`
        would return or raise. None when the submit would have to wait: use `submit`.

        Raises SessionClosed when not bound. A throttled answer hands the retries to
        `submit`'s loop (a task, on that rare path), so the semantics are the same.
        """
        link = self._current_link()
        pacer = self.pacer
        if not link.has_room() or not (pacer.free or pacer.try_acquire()):
            return None
        outer: asyncio.Future[SubmitSmResp] = link.loop.create_future()
        link.request_nowait(pdu).add_done_callback(
            functools.partial(self._submit_answered, pdu, outer)
        )
        return outer

    def _submit_answered(
        self, pdu: SubmitSm, outer: asyncio.Future[SubmitSmResp], inner: asyncio.Future[Pdu]
    ) -> None:
        if outer.done():
            return  # the caller gave up; the window slot is already back
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if exc is not None:
            if isinstance(exc, PduError):
                self.errors += 1
                self.last_error = f"bad response: {exc}"
            outer.set_exception(exc)
            return
        retry_until = time.monotonic() + self.config.max_retry_time
        try:
            outer.set_result(self._accepted(inner.result(), retry_until))
        except CommandError as err:
            outer.set_exception(err)
        except _Throttled:
            task = asyncio.get_running_loop().create_task(self._submit(pdu, retry_until))
            self._retrying.add(task)  # a strong reference while it runs
            task.add_done_callback(functools.partial(self._retried, outer))

    def _retried(
        self, outer: asyncio.Future[SubmitSmResp], task: asyncio.Task[SubmitSmResp]
    ) -> None:
        self._retrying.discard(task)
        if outer.done():
            return
        if task.cancelled():
            outer.cancel()
        elif task.exception() is not None:
            outer.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            outer.set_result(task.result())

    def _accepted(self, resp: Pdu, retry_until: float) -> SubmitSmResp:
        """A submit_sm's answer: the resp if accepted; raises _Throttled when it may be
        retried (before `retry_until`), CommandError for any other refusal (counted)."""
        status = resp.command_status
        if not status and type(resp) is SubmitSmResp:
            self.submitted += 1
            self._count_submit()
            return resp
        if status in _THROTTLED and not self._stopping:
            self.throttled += 1
            if time.monotonic() < retry_until:
                self.retries += 1
                self.pacer.back_off(self.config.throttle_pause)
                raise _Throttled()
        status = status or CommandStatus.ESME_RSYSERR
        self.errors += 1
        self.last_error = status_name(status)
        raise CommandError(status, "submit_sm")

    async def _submit(self, pdu: SubmitSm, retry_until: float) -> SubmitSmResp:
        while True:
            try:
                resp = await self._paced_request(pdu)
            except ResponseTimeout:
                raise
            except PduError as exc:
                self.errors += 1
                self.last_error = f"bad response: {exc}"
                raise
            if not retry_until and resp.command_status in _THROTTLED:
                retry_until = time.monotonic() + self.config.max_retry_time
            try:
                return self._accepted(resp, retry_until)
            except _Throttled:
                continue

    async def _paced_request(self, pdu: Pdu) -> Pdu:
        link = self._current_link()
        await link.acquire_slot()
        pacer = self.pacer
        if pacer.free or pacer.try_acquire():
            try:
                fut = link.send_request(pdu, windowed=True)
            except BaseException:
                link.release_slot()
                raise
            return await fut
        # Wait for the pacer without a task hop: the PDU is written from the timer
        # callback that grants the token, so the spacing on the wire is the pacer's.
        fut = link.loop.create_future()
        link.paced.add(fut)

        def send_now() -> bool:
            link.paced.discard(fut)
            if fut.done():  # cancelled meanwhile, or failed by a lost connection
                link.release_slot()
                return False
            if link.closing or link.conn.state in _GONE:
                link.release_slot()
                fut.set_exception(SessionClosed(link.close_reason or "link closed while pacing"))
                return False
            try:
                link.send_into(pdu, fut, True, link.response_timeout)
            except Exception as exc:
                link.release_slot()
                fut.set_exception(exc)
                return False
            link.flush()
            return True

        pacer.call_when_ready(send_now)
        return await fut

    async def request(self, pdu: Pdu) -> Pdu:
        """Any request (query_sm, data_sm, cancel_sm...): the response, whatever its status.

        data_sm is paced like submit_sm; the rest only take a window slot.
        """
        if pdu.command_id == CommandId.DATA_SM or pdu.command_id == CommandId.SUBMIT_SM:
            return await self._paced_request(pdu)
        link = self._current_link()
        try:
            return await link.request(pdu)
        except LocalProtocolError as exc:
            if link.closing:
                raise SessionClosed(str(exc)) from exc
            raise

    # --- receiving -----------------------------------------------------------------

    def _on_deliver_pdu(self, link: _EsmeLink, pdu: DeliverSm | DataSm) -> None:
        self.received += 1
        callback = self.on_deliver
        if callback is None:
            link.respond(pdu.response())
            return
        try:
            result = callback(pdu)
        except Exception:
            log.exception("on_deliver failed; answering ESME_RX_T_APPN")
            link.respond(pdu.response(CommandStatus.ESME_RX_T_APPN))
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t: self._deliver_done(link, pdu, t))
            return
        link.respond(pdu.response(int(result) if result is not None else 0))

    @staticmethod
    def _deliver_done(link: _EsmeLink, pdu: Pdu, task: asyncio.Future[int | None]) -> None:
        status: int
        if task.cancelled():
            status = CommandStatus.ESME_RX_T_APPN
        elif task.exception() is not None:
            log.error("on_deliver failed; answering ESME_RX_T_APPN", exc_info=task.exception())
            status = CommandStatus.ESME_RX_T_APPN
        else:
            result = task.result()
            status = int(result) if result is not None else 0
        link.respond(pdu.response(status))
