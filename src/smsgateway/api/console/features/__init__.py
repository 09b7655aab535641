"""Console pages of the features beyond the native API, one module each; importing
this package registers them (api/console/pages.py imports it last)."""

from __future__ import annotations

from . import numbers as numbers
from . import oauth as oauth
from . import projects as projects

__all__ = ["numbers", "oauth", "projects"]
