"""Webhook signatures: `X-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
under the receiver's secret, `X-Timestamp: <unix seconds>`.

Signing the timestamp with the body lets a receiver refuse replays of old requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + sign(secret, timestamp, body)


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature, in constant time, and a fresh timestamp."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(header, signature_header(secret, timestamp, body))
