"""The one-shot SMS face of document 003: `POST /sms/messages` with OAuth2 bearer
tokens and problem-style errors."""

from .routes import OneShotRoutes, oneshot_routes

__all__ = ["OneShotRoutes", "oneshot_routes"]
