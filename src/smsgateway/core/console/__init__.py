"""The operator console's core (issue 14): sessions, time series, live topics."""

from __future__ import annotations

from .live import Hub, Subscriber, TooManyStreams
from .messages import AdminMessages, build_query
from .service import ConsoleService
from .sessions import ConsoleSession, SessionService

__all__ = [
    "AdminMessages",
    "ConsoleService",
    "ConsoleSession",
    "Hub",
    "SessionService",
    "Subscriber",
    "TooManyStreams",
    "build_query",
]
