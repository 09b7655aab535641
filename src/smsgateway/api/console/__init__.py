"""The operator console face (issue 14): /console, /docs, the admin message API."""

from __future__ import annotations

from .pages import Page, register_page
from .routes import console_routes

__all__ = ["Page", "console_routes", "register_page"]
