"""The SMPP 3.4 session rules, with no I/O: bytes in, events out (in the manner of h11).

Why sans-I/O: the ESME client, the SMSC server and the tests all need the same
answers to the same questions (may this PDU be sent now? what do we tell a peer
that sent garbage? which requests are still unanswered?), and none of those
answers depends on sockets or on time. Keeping them here lets every rule be
tested byte for byte without a network, and lets the asyncio layers stay thin.

One `Connection` serves both roles: `Role.ESME` (we bind, we submit) and
`Role.SMSC` (we accept binds, we deliver). The role decides which requests each
side may issue in each state (SMPP 3.4 section 2.3 and table 2-1):

    OPEN --bind / bind_resp OK--> BOUND_TX | BOUND_RX | BOUND_TRX
    BOUND_* --unbind sent or received--> UNBINDING --unbind_resp--> UNBOUND
    any --connection_lost() or an unrecoverable frame--> CLOSED

What the caller gets from `receive_data()`:
- a decoded `Pdu` (request or response) that the caller must act on; a response
  whose sequence number matches an outstanding request has already been removed
  from `outstanding`;
- `BadPdu`: a PDU that could not be decoded or is not allowed now; its `reply`
  bytes (a generic_nack or the request's own response with an error status) must
  be sent to the peer, and the stream goes on;
- `ConnectionBroken`: the length prefix was impossible, so the stream cannot be
  resynchronised; send `reply` if you can, then close.

Limits, enforced here rather than left to each caller:
- `max_pdu` (default 64 KiB): a command_length above it (or below 16) breaks the
  connection, since a wrong length leaves no way to find the next PDU.
- `window` (default unlimited): the most requests that may be outstanding at
  once. bind, unbind and enquire_link are exempt, so keepalive and shutdown work
  even when a slow peer has filled the window.
- Sequence numbers run 1..0x7FFFFFFF and wrap back to 1, skipping any number that
  is still outstanding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from .constants import RESPONSE_BIT, CommandId, CommandStatus, status_name
from .errors import FrameError, PduError, SmppError
from .pdu import DEFAULT_MAX_PDU, PDU_CLASSES, Framer, GenericNack, Pdu, decode, encode

__all__ = [
    "MAX_SEQUENCE",
    "BadPdu",
    "Connection",
    "ConnectionBroken",
    "ConnectionState",
    "Event",
    "LocalProtocolError",
    "Role",
    "WindowFull",
]

MAX_SEQUENCE = 0x7FFFFFFF


class Role(Enum):
    ESME = "esme"
    SMSC = "smsc"


class ConnectionState(StrEnum):
    OPEN = "OPEN"
    BOUND_TX = "BOUND_TX"
    BOUND_RX = "BOUND_RX"
    BOUND_TRX = "BOUND_TRX"
    UNBINDING = "UNBINDING"
    UNBOUND = "UNBOUND"
    CLOSED = "CLOSED"


class LocalProtocolError(SmppError):
    """We tried to send something the protocol forbids in the current state.

    A bug or a race in the caller, never the peer's fault: it is raised before any
    byte is produced, so the connection is left as it was.
    """


class WindowFull(LocalProtocolError):
    """Sending this request would exceed the window of outstanding requests."""


@dataclass(slots=True)
class BadPdu:
    """A PDU we refused; `reply` is what the peer must be told (may be empty)."""

    error: PduError
    reply: bytes
    pdu: Pdu | None = None  # set when the PDU decoded but is not allowed now


@dataclass(slots=True)
class ConnectionBroken:
    """The byte stream is beyond repair; send `reply` (a generic_nack) and close."""

    error: FrameError
    reply: bytes


Event = Pdu | BadPdu | ConnectionBroken

_C = CommandId
_BINDS: dict[int, ConnectionState] = {
    _C.BIND_TRANSMITTER: ConnectionState.BOUND_TX,
    _C.BIND_RECEIVER: ConnectionState.BOUND_RX,
    _C.BIND_TRANSCEIVER: ConnectionState.BOUND_TRX,
}
_BIND_RESPS = {cid | RESPONSE_BIT: state for cid, state in _BINDS.items()}

# Requests each side may *issue* in each state.
_ESME_TX = frozenset(
    {_C.SUBMIT_SM, _C.DATA_SM, _C.QUERY_SM, _C.CANCEL_SM, _C.REPLACE_SM, _C.ENQUIRE_LINK, _C.UNBIND}
)
_ESME_RX = frozenset({_C.ENQUIRE_LINK, _C.UNBIND})
_SMSC_TO_RX = frozenset(
    {_C.DELIVER_SM, _C.DATA_SM, _C.ALERT_NOTIFICATION, _C.ENQUIRE_LINK, _C.UNBIND}
)
_SMSC_TO_TX = frozenset({_C.ENQUIRE_LINK, _C.UNBIND})

_ESME_ISSUES: dict[ConnectionState, frozenset[int]] = {
    ConnectionState.OPEN: frozenset({*_BINDS, _C.ENQUIRE_LINK}),
    ConnectionState.BOUND_TX: _ESME_TX,
    ConnectionState.BOUND_RX: _ESME_RX,
    ConnectionState.BOUND_TRX: _ESME_TX,
}
_SMSC_ISSUES: dict[ConnectionState, frozenset[int]] = {
    ConnectionState.OPEN: frozenset({_C.OUTBIND, _C.ENQUIRE_LINK}),
    ConnectionState.BOUND_TX: _SMSC_TO_TX,
    ConnectionState.BOUND_RX: _SMSC_TO_RX,
    ConnectionState.BOUND_TRX: _SMSC_TO_RX,
}
_BOUND = (ConnectionState.BOUND_TX, ConnectionState.BOUND_RX, ConnectionState.BOUND_TRX)
_WINDOW_EXEMPT = frozenset({*_BINDS, _C.UNBIND, _C.ENQUIRE_LINK})
_NO_RESPONSE = frozenset({_C.OUTBIND, _C.ALERT_NOTIFICATION})
_EMPTY: frozenset[int] = frozenset()


def _nack(status: int, sequence_number: int) -> bytes:
    return encode(GenericNack(sequence_number=sequence_number, command_status=status))


class Connection:
    """One SMPP connection's protocol state, for either role (see the module docstring).

    `on_frame(direction, frame)`, when given, sees every raw frame ("in"/"out"):
    a wire trace for debugging and interop checks at no cost when unused.
    """

    __slots__ = (
        "_bind_mode",
        "_framer",
        "_in_window",
        "_may_issue",
        "_may_receive",
        "_next_seq",
        "_outstanding",
        "_pending_bind",
        "_state",
        "on_frame",
        "remote_system_id",
        "role",
        "window",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_pdu: int = DEFAULT_MAX_PDU,
        window: int | None = None,
        next_sequence: int = 1,
        on_frame: Callable[[str, bytes], None] | None = None,
    ) -> None:
        if not 1 <= next_sequence <= MAX_SEQUENCE:
            raise ValueError("next_sequence must be in 1..0x7FFFFFFF")
        self.role = role
        self.window = window
        self.on_frame = on_frame
        self.remote_system_id: str | None = None
        self._framer = Framer(max_pdu)
        self._next_seq = next_sequence
        self._outstanding: dict[int, int] = {}  # sequence_number -> command_id
        self._in_window = 0  # outstanding requests that count against the window
        self._pending_bind: tuple[int, ConnectionState] | None = None
        self._bind_mode: ConnectionState | None = None  # kept while UNBINDING
        self._state = ConnectionState.OPEN
        self._may_issue: frozenset[int] = _EMPTY
        self._may_receive: frozenset[int] = _EMPTY
        self._set_state(ConnectionState.OPEN)

    # --- state ---------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def bound(self) -> bool:
        return self._state in _BOUND

    @property
    def bind_mode(self) -> ConnectionState | None:
        """BOUND_TX/RX/TRX once bound (kept while unbinding), else None."""
        return self._bind_mode

    @property
    def can_transmit(self) -> bool:
        """Whether the ESME side may submit in this state (TX or TRX)."""
        return self._state in (ConnectionState.BOUND_TX, ConnectionState.BOUND_TRX)

    @property
    def can_receive(self) -> bool:
        """Whether the SMSC side may deliver in this state (RX or TRX)."""
        return self._state in (ConnectionState.BOUND_RX, ConnectionState.BOUND_TRX)

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered (window-exempt ones included)."""
        return len(self._outstanding)

    @property
    def in_window(self) -> int:
        """Outstanding requests that count against the window."""
        return self._in_window

    @property
    def next_sequence(self) -> int:
        return self._next_seq

    def is_outstanding(self, sequence_number: int) -> bool:
        return sequence_number in self._outstanding

    def _set_state(self, state: ConnectionState) -> None:
        self._state = state
        if state in _BOUND:
            self._bind_mode = state
        esme_rules = _ESME_ISSUES.get(state, _EMPTY)
        smsc_rules = _SMSC_ISSUES.get(state, _EMPTY)
        if state is ConnectionState.UNBINDING and self._bind_mode is not None:
            # Requests already on the wire may still arrive and be answered; new
            # ones from us would only race the unbind.
            esme_rules = _ESME_ISSUES[self._bind_mode] | {_C.UNBIND, _C.ENQUIRE_LINK}
            smsc_rules = _SMSC_ISSUES[self._bind_mode] | {_C.UNBIND, _C.ENQUIRE_LINK}
            if self.role is Role.ESME:
                self._may_issue, self._may_receive = _EMPTY, smsc_rules
            else:
                self._may_issue, self._may_receive = _EMPTY, esme_rules
            return
        if self.role is Role.ESME:
            self._may_issue, self._may_receive = esme_rules, smsc_rules
        else:
            self._may_issue, self._may_receive = smsc_rules, esme_rules

    # --- outgoing ------------------------------------------------------------------

    def send(self, pdu: Pdu) -> bytes:
        """The bytes to write for `pdu`; requests get their sequence number here.

        Raises LocalProtocolError (WindowFull) when the PDU may not be sent now, and
        PduError when a field does not fit the wire format; either way nothing
        changed.
        """
        state = self._state
        if state is ConnectionState.CLOSED:
            raise LocalProtocolError("connection is closed")
        cid = pdu.command_id
        if cid & RESPONSE_BIT:
            data = encode(pdu)
            if cid in _BIND_RESPS and self.role is Role.SMSC:
                self._answered_bind(pdu)
            elif cid == _C.UNBIND_RESP and state is ConnectionState.UNBINDING:
                self._set_state(ConnectionState.UNBOUND)
            if self.on_frame is not None:
                self.on_frame("out", data)
            return data
        if cid not in self._may_issue:
            raise LocalProtocolError(
                f"{pdu.name} may not be sent by the {self.role.value} in {state}"
            )
        outstanding = self._outstanding
        windowed = cid not in _WINDOW_EXEMPT
        if windowed and self.window is not None and self._in_window >= self.window:
            raise WindowFull(f"{self._in_window} requests outstanding, window is {self.window}")
        if cid in _BINDS and self._pending_bind is not None:
            raise LocalProtocolError("a bind is already in progress")
        seq = self._next_seq
        while seq in outstanding:  # only after a wrap, with a very old request left
            seq = seq + 1 if seq < MAX_SEQUENCE else 1
        pdu.sequence_number = seq
        data = encode(pdu)
        self._next_seq = seq + 1 if seq < MAX_SEQUENCE else 1
        if cid not in _NO_RESPONSE:
            outstanding[seq] = cid
            if windowed:
                self._in_window += 1
        if cid in _BINDS:
            self._pending_bind = (seq, _BINDS[cid])
        elif cid == _C.UNBIND:
            self._set_state(ConnectionState.UNBINDING)
        if self.on_frame is not None:
            self.on_frame("out", data)
        return data

    def _answered_bind(self, resp: Pdu) -> None:
        pending = self._pending_bind
        if pending is None or pending[0] != resp.sequence_number:
            return
        self._pending_bind = None
        if resp.command_status == 0 and self._state is ConnectionState.OPEN:
            self._set_state(pending[1])

    def forget(self, sequence_number: int) -> bool:
        """Stop waiting for an answer (response timeout); a late one becomes stray."""
        cid = self._outstanding.pop(sequence_number, None)
        if cid is None:
            return False
        if cid not in _WINDOW_EXEMPT:
            self._in_window -= 1
        if self._pending_bind is not None and self._pending_bind[0] == sequence_number:
            self._pending_bind = None
        return True

    def connection_lost(self) -> list[int]:
        """Mark the connection closed; returns the sequence numbers left unanswered."""
        self._set_state(ConnectionState.CLOSED)
        self._pending_bind = None
        lost = list(self._outstanding)
        self._outstanding.clear()
        self._in_window = 0
        return lost

    # --- incoming ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; returns the events they complete, in order."""
        if self._state is ConnectionState.CLOSED:
            return []
        events: list[Event] = []
        on_frame = self.on_frame
        try:
            for frame in self._framer.feed(data):
                if on_frame is not None:
                    on_frame("in", frame)
                try:
                    pdu = decode(frame)
                except FrameError:
                    raise
                except PduError as exc:
                    events.append(self._bad(exc))
                    continue
                cid = pdu.command_id
                if cid & RESPONSE_BIT:
                    out = self._outstanding.pop(pdu.sequence_number, None)
                    if out is not None:
                        if out not in _WINDOW_EXEMPT:
                            self._in_window -= 1
                        elif cid in _BIND_RESPS or (cid == _C.GENERIC_NACK and out in _BINDS):
                            self._bind_answered(pdu)
                        elif cid == _C.UNBIND_RESP:
                            self._set_state(ConnectionState.UNBOUND)
                    events.append(pdu)
                elif cid in _BINDS and self.role is Role.SMSC:
                    events.append(self._incoming_bind(pdu))
                elif cid in self._may_receive:
                    if cid == _C.UNBIND:
                        self._set_state(ConnectionState.UNBINDING)
                    events.append(pdu)
                else:
                    events.append(self._refuse(pdu, CommandStatus.ESME_RINVBNDSTS))
        except FrameError as exc:
            self.connection_lost()
            events.append(ConnectionBroken(exc, _nack(exc.status, exc.sequence_number)))
        return events

    def _bind_answered(self, resp: Pdu) -> None:
        pending = self._pending_bind
        if pending is None or pending[0] != resp.sequence_number:
            return
        self._pending_bind = None
        if resp.command_id != _C.GENERIC_NACK and resp.command_status == 0:
            self.remote_system_id = getattr(resp, "system_id", None)
            self._set_state(pending[1])

    def _incoming_bind(self, pdu: Pdu) -> Event:
        if self._state is not ConnectionState.OPEN or self._pending_bind is not None:
            return self._refuse(pdu, CommandStatus.ESME_RALYBND)
        self._pending_bind = (pdu.sequence_number, _BINDS[pdu.command_id])
        self.remote_system_id = getattr(pdu, "system_id", None)
        return pdu

    def _refuse(self, pdu: Pdu, status: int) -> BadPdu:
        error = PduError(
            f"{pdu.name} not allowed for the {self.role.value} in {self._state}: "
            f"{status_name(status)}",
            status=status,
            command_id=pdu.command_id,
            sequence_number=pdu.sequence_number,
        )
        if pdu.command_id in _NO_RESPONSE:
            return BadPdu(error, _nack(status, pdu.sequence_number), pdu)
        return BadPdu(error, encode(pdu.response(status)), pdu)

    def _bad(self, exc: PduError) -> BadPdu:
        cid = exc.command_id
        status = exc.status
        seq = exc.sequence_number
        if cid & RESPONSE_BIT:
            # A garbled answer: it must not stay outstanding forever.
            out = self._outstanding.pop(seq, None)
            if out is not None and out not in _WINDOW_EXEMPT:
                self._in_window -= 1
            if self._pending_bind is not None and self._pending_bind[0] == seq:
                self._pending_bind = None
        cls = PDU_CLASSES.get(cid | RESPONSE_BIT) if not cid & RESPONSE_BIT else None
        if (
            cls is None
            or cid in _NO_RESPONSE
            or status in (CommandStatus.ESME_RINVCMDLEN, CommandStatus.ESME_RINVCMDID)
        ):
            return BadPdu(exc, _nack(status, seq))
        return BadPdu(exc, encode(cls(sequence_number=seq, command_status=status)))
