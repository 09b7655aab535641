"""Settings of the virtual-numbers service (document 002) and its webhooks: `[numbers]`.

Kept apart from `settings.py` so the section grows without touching the shared file;
`settings.Settings.numbers` holds it.
"""

from __future__ import annotations

import msgspec


class NumbersSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The key servers use as `{api_key}` with `?user_id=N` to act for a user. Empty:
    # such requests answer 500 "System configuration error" (document 002).
    system_api_key: str = ""
    # An assignment lapses this long after get-number; the number then rests in
    # quarantine (late SMS for the old user are not handed to the next one) and
    # returns to the free pool.
    assignment_ttl_s: float = 20 * 60.0
    quarantine_s: float = 10 * 60.0
    # Failed api_key checks per client address and minute on the 002 paths (0 = off).
    failed_auth_per_minute: int = 30
    # Webhook URLs: https only and public addresses only, unless these say otherwise.
    allow_http_webhooks: bool = False
    allow_private_webhooks: bool = False
    # Delivery: a failed attempt (timeout, connection error, non-2xx) is retried with
    # exponential backoff (base * 2^n, capped, with jitter) until `webhook_retry_s`
    # after the event was stored; then the event is marked failed.
    webhook_retry_s: float = 24 * 3600.0
    webhook_timeout_s: float = 10.0
    webhook_backoff_base_s: float = 5.0
    webhook_backoff_max_s: float = 3600.0
    # Attempts in flight per receiver (user): a slow receiver holds only its own slots.
    webhook_concurrency: int = 4
    # Parts of a concatenated inbound SMS wait this long for their siblings; then
    # what arrived is stored as it is.
    inbound_part_timeout_s: float = 600.0


def validate_numbers(s: NumbersSettings) -> None:
    """Raise ValueError naming the key when a value cannot work."""
    for key in (
        "assignment_ttl_s",
        "webhook_timeout_s",
        "webhook_backoff_base_s",
        "webhook_backoff_max_s",
        "inbound_part_timeout_s",
    ):
        if not getattr(s, key) > 0:
            raise ValueError(f"numbers.{key} must be positive")
    for key in ("quarantine_s", "webhook_retry_s"):
        if getattr(s, key) < 0:
            raise ValueError(f"numbers.{key} must not be negative")
    if s.failed_auth_per_minute < 0:
        raise ValueError("numbers.failed_auth_per_minute must not be negative")
    if s.webhook_concurrency < 1:
        raise ValueError("numbers.webhook_concurrency must be at least 1")
