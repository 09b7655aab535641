"""Settings of the OTP projects face (/v1): limits, idempotency, bulk size.

Kept apart from `settings.py` (one field there, `otp`), like settings_ops.py.
Per-project OTP settings (code length, ttl, templates...) live on the project row and
are changed through the admin API, not here.
"""

from __future__ import annotations

import msgspec


class OtpSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Every authenticated /v1 request of one project takes a token: `project_burst` at
    # once, then `project_rps` per second. 0 turns the limit off.
    project_rps: float = 20.0
    project_burst: int = 100
    # The SMS-pumping guard: sends (OTP or custom) to one number from one project,
    # `destination_burst` at once, then `destination_per_hour`. 0 turns it off.
    destination_per_hour: float = 10.0
    destination_burst: int = 5
    # Idempotency-Key answers are replayed this long.
    idempotency_ttl_s: int = 24 * 3600
    # A duplicate that arrives while the first is running waits this long for it.
    idempotency_wait_s: float = 30.0
    # POST /v1/messages/bulk takes at most this many messages.
    max_bulk: int = 1000
    # Its body may be larger than server.max_body_bytes: up to this many bytes.
    bulk_max_body_bytes: int = 2 * 1024 * 1024
    # How far ahead `sendAt` may schedule a message.
    max_schedule_days: int = 30

    def validate(self) -> None:
        if self.project_rps < 0 or self.destination_per_hour < 0:
            raise ValueError("otp.project_rps and otp.destination_per_hour must not be negative")
        if self.idempotency_ttl_s < 1 or self.idempotency_wait_s <= 0:
            raise ValueError("otp.idempotency_ttl_s and otp.idempotency_wait_s must be positive")
        if not 1 <= self.max_bulk <= 10_000:
            raise ValueError("otp.max_bulk must be within 1..10000")
        if self.max_schedule_days < 1:
            raise ValueError("otp.max_schedule_days must be at least 1")
