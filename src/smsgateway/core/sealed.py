"""Sensitive message texts at rest: sealed while pending, wiped once final.

An OTP message's text holds the code, and DESIGN.md promises a database leak hands
out no code. So a sensitive message's `messages.body` and its parts' `short_message`
are stored sealed (AES-256-GCM under the master key, see core/secrets.py), bound to
the message id (and part seq) so a blob cannot be moved to another row. Once the
message is final the store replaces them with fixed markers (store/sensitive.py),
in the unit that records the final state: nothing is left to decrypt later.

A sealed or wiped body starts with NUL, which `check_text` refuses in any text a
caller sends, so no real message can be taken for a sealed one. Only sensitive
messages pay; the send path keeps the clear text in memory for the channels.
"""

from __future__ import annotations

import base64

from .secrets import Secrets, SecretsError

SEALED_PREFIX = "\x00sealed:v1:"
WIPED_BODY = "\x00wiped"
WIPED_PART = b"\x00wiped"
# What admin views show in place of a sensitive message's text.
REDACTED_TEXT = "[redacted: sensitive message]"

_BODY_AAD = b"smsgateway/message-body/v1:"
_PART_AAD = b"smsgateway/message-part/v1:"


def is_sensitive_body(body: str) -> bool:
    """A body stored sealed or wiped (a sensitive message's)."""
    return body.startswith("\x00")


def shown_text(body: str) -> str:
    """The text an admin may see: a sensitive message's is never shown."""
    return REDACTED_TEXT if is_sensitive_body(body) else body


class Sealer:
    """Seals and opens sensitive message texts and part payloads."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets

    def seal_body(self, message_id: str, text: str) -> str:
        blob = self._secrets.encrypt_bytes(text.encode("utf-8"), _BODY_AAD + message_id.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(blob).decode("ascii")

    def open_body(self, message_id: str, body: str) -> str:
        """The clear text of a stored body (a plain body comes back as it is)."""
        if not body.startswith(SEALED_PREFIX):
            if is_sensitive_body(body):
                raise SecretsError("the message's text was wiped")
            return body
        blob = base64.urlsafe_b64decode(body[len(SEALED_PREFIX) :])
        plain = self._secrets.decrypt_bytes(blob, _BODY_AAD + message_id.encode())
        return plain.decode("utf-8")

    def seal_part(self, message_id: str, seq: int, payload: bytes) -> bytes:
        return self._secrets.encrypt_bytes(payload, self._part_aad(message_id, seq))

    def open_part(self, message_id: str, seq: int, blob: bytes) -> bytes:
        return self._secrets.decrypt_bytes(blob, self._part_aad(message_id, seq))

    @staticmethod
    def _part_aad(message_id: str, seq: int) -> bytes:
        return _PART_AAD + f"{message_id}:{seq}".encode()
