"""Settings of the Android device channel (the `[devices]` section)."""

from __future__ import annotations

import msgspec


class DeviceSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The base URL phones reach the gateway at (scheme, host, port), as the app is
    # given it; "" = taken from each link request's own URL (fine behind no proxy).
    public_url: str = ""
    # How long a one-time link code is good for.
    code_ttl_s: int = 600
    # Android's own default SMS limit is 30 per 30 minutes: a phone that sends more is
    # stopped by the OS with a prompt nobody is there to answer.
    limit_count: int = 30
    limit_period_s: float = 1800.0
    # A comment line on the SSE stream this often keeps proxies and NATs from closing it.
    sse_keepalive_s: float = 15.0
    # A device counts as online with its SSE stream open or a request this recent.
    online_window_s: float = 60.0
    # Inbound webhooks whose X-Timestamp is further than this from our clock are refused
    # (replays).
    webhook_max_skew_s: int = 300
    # Wrong one-time codes allowed per client address per minute (guessing guard).
    code_attempts_per_min: int = 10

    def validate(self) -> None:
        if self.code_ttl_s < 1:
            raise ValueError("devices.code_ttl_s must be at least 1")
        if self.limit_count < 1 or self.limit_period_s <= 0:
            raise ValueError("devices.limit_count must be >= 1 and limit_period_s positive")
        if self.sse_keepalive_s <= 0 or self.online_window_s <= 0:
            raise ValueError("devices.sse_keepalive_s and online_window_s must be positive")
        if self.webhook_max_skew_s < 1 or self.code_attempts_per_min < 1:
            raise ValueError("devices.webhook_max_skew_s and code_attempts_per_min must be >= 1")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError("devices.public_url must start with http:// or https://")
