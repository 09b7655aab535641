"""The OAuth2 face: token endpoint, discovery, JWKS and the admin API for clients."""

from .routes import OAuthRoutes, oauth_routes

__all__ = ["OAuthRoutes", "oauth_routes"]
