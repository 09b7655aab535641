"""Settings of the operator console (`[console]`) and of the log output (`[log]`)."""

from __future__ import annotations

from typing import Literal

import msgspec


class ConsoleSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # /console and /docs on the REST port; false: neither is served.
    enabled: bool = True
    # A session ends this long after login, whatever happens in between.
    session_ttl_s: int = 8 * 3600
    # Failed console logins per account (email, or the admin key) and per address:
    # `login_burst` at once, then `login_per_minute`.
    login_per_minute: int = 5
    login_burst: int = 10
    # Live stream: a comment line this often keeps proxies and the browser sure the
    # stream lives; a client whose queue holds this many unsent events is dropped.
    heartbeat_s: float = 15.0
    client_queue: int = 64
    max_streams: int = 32


class LogSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # auto: one readable line per event on a terminal, JSON lines otherwise.
    format: Literal["auto", "text", "json"] = "auto"
    level: str = ""  # "" = the command line's --log-level (INFO)


def validate_console(console: ConsoleSettings) -> None:
    """ValueError naming the key when a console setting cannot work."""
    if console.session_ttl_s < 1:
        raise ValueError("console.session_ttl_s must be at least 1")
    if console.login_per_minute < 0 or console.login_burst < 0:
        raise ValueError("console.login_per_minute and login_burst must not be negative")
    if not console.heartbeat_s > 0:
        raise ValueError("console.heartbeat_s must be positive")
    if console.client_queue < 1 or console.max_streams < 1:
        raise ValueError("console.client_queue and max_streams must be at least 1")
