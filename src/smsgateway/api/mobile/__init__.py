"""The device face: the Android app's private-server API and the link page."""

from .routes import PREFIX, MobileApi, mobile_routes

__all__ = ["PREFIX", "MobileApi", "mobile_routes"]
