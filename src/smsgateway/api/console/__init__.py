"""The operator console face (issue 14): /console, /docs, the admin message API."""

from __future__ import annotations

from .pages import ActionContext, Page, register_page
from .routes import console_routes

__all__ = ["ActionContext", "Page", "console_routes", "register_page"]
