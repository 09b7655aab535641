"""The console's static files, read from the package once and served from memory.

Only files shipped under `static/` exist: a request names a key of this table, never
a path on disk, so nothing outside the package can be reached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
_NO_NAME = "LICENSE"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _content_type(name: str) -> str:
    if name in (_NO_NAME, "NOTICE"):
        return "text/plain; charset=utf-8"
    dot = name.rfind(".")
    return _TYPES.get(name[dot:], "application/octet-stream") if dot >= 0 else _TYPES[".txt"]


def _walk(root: Traversable, prefix: str = "") -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in root.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif entry.is_file():
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found[name] = Asset(body, _content_type(entry.name), etag)
    return found


def load_assets() -> dict[str, Asset]:
    return _walk(resources.files("smsgateway.api.console").joinpath("static"))
