"""Settings of the operations side: rate limits, dashboard, license, content filters.

Kept apart from `settings.py` so the sections can grow without touching the file
every face edits; `settings.Settings` holds one field per section.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AppRateLimit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One app's own L2 limit; 0 turns the limit off for that app."""

    rps: float = 0.0
    burst: int = 0


class RateLimitSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # L1: one bucket for every request, before routing. 0 = off. The default is off:
    # the node's own capacity (uvicorn's limit_concurrency) is the first guard, and a
    # benchmark must never meet a limit it did not ask for.
    global_rps: float = 0.0
    global_burst: int = 0
    # Probes keep answering under a flood, or the orchestrator restarts a healthy node.
    global_exempt: list[str] = msgspec.field(default_factory=lambda: ["/healthy", "/metrics"])
    # L2: one bucket per app on /api/v1/sms/*, after the JWT check. 0 = off.
    app_rps: float = 5000.0
    app_burst: int = 10000
    # Per-app overrides: `[ratelimit.apps.12] rps = 50, burst = 100`.
    apps: dict[int, AppRateLimit] = {}
    # Failed logins per email and per client address: `login_burst` at once, then
    # `login_per_minute`. Enough for typos, far too few to guess a password.
    login_per_minute: int = 10
    login_burst: int = 20


class DashboardSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # /dashboard/* without credentials (documents 000 and 001 section 1); false: admin key.
    public_stats: bool = True
    # How many campaigns topCampaignStats lists.
    top_campaigns: int = 5


class LicenseSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The vendor's Ed25519 public key (base64 of the 32 raw bytes, or PEM). Licenses are
    # verified against this key only, never against anything the license carries.
    public_key: str = ""
    # Where the license file lives; "" = `license.json` in the data directory. Uploads
    # replace this file.
    path: str = ""


class FilterSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    active: bool = True
    # blacklist: a message the rule matches is blocked; whitelist: one it does not match is.
    mode: Literal["blacklist", "whitelist"] = "blacklist"
    description: str = ""
    # A CEL expression over `source`, `destination`, `text` (strings), `app`, `link` (ints).
    rule: str
