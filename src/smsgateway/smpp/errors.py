"""Errors raised by the SMPP layer.

The codec raises only `PduError` (and its subclass `FrameError`) on bad input, so a
session can turn any decoding problem into a generic_nack or a clean close without
guessing what else might escape.
"""

from __future__ import annotations

from .constants import CommandStatus, status_name


class SmppError(Exception):
    """Base of every error raised by `smsgateway.smpp`."""


class PduError(SmppError):
    """A PDU that cannot be decoded or encoded.

    `status` is the command_status a peer should be told (in a generic_nack or in
    the matching response); `command_id` and `sequence_number` are filled in when
    the header could be read, so the answer can carry them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = CommandStatus.ESME_RSYSERR,
        command_id: int = 0,
        sequence_number: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.command_id = command_id
        self.sequence_number = sequence_number


class FrameError(PduError):
    """The length prefix is impossible: the byte stream cannot be resynchronised.

    Unlike other PduErrors the connection must be closed after answering.
    """


class CommandError(SmppError):
    """A request the peer answered with a non-zero command_status."""

    def __init__(self, status: int, command: str = "") -> None:
        self.status = status
        self.status_name = status_name(status)
        super().__init__(f"{command} failed: {self.status_name}" if command else self.status_name)


class SessionClosed(SmppError):
    """The session ended (dropped, unbound, closed) before the request was answered.

    It is retriable. `written` says whether the request had been written to the
    connection (or queued to be), so the peer may have it and sending it again may
    duplicate it; False when it never got that far (no bind, still waiting for a
    window slot or the pacer).
    """

    def __init__(self, message: str = "", *, written: bool = False) -> None:
        super().__init__(message)
        self.written = written


class ResponseTimeout(SmppError):
    """No response arrived within the response timeout. Retriable; the request was
    written, so the peer may have it."""
