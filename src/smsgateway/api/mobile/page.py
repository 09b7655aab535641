"""The page the link QR code opens on the phone: server URL, one-time code, steps.

The app has no QR scanner, so the QR code carries a gateway URL; this page shows what
the app's "By code" sign-in needs, with copy buttons. No inline script or style: the
CSP allows only this gateway's own files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from importlib import resources

from starlette.responses import Response

from ...core.devices import LinkPage

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_STATIC = {
    "link.js": "text/javascript; charset=utf-8",
    "link.css": "text/css; charset=utf-8",
}


def _shell(body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Link this phone</title>"
        "<link rel='stylesheet' href='/mobile/static/link.css'>"
        "<script src='/mobile/static/link.js' defer></script>"
        f"</head><body><main>{body}</main></body></html>"
    )


def render(page: LinkPage | None) -> str:
    if page is None or page.code is None:
        return _shell(
            "<h1>Link this phone</h1><p class='gone'>This link has expired or was already "
            "used. Ask for a new one.</p>"
        )
    server = escape(page.server_url)
    until = datetime.fromtimestamp(page.expires_at_ms / 1000, UTC).strftime("%H:%M UTC")
    return _shell(
        "<h1>Link this phone</h1>"
        "<p>Install <b>SMS Gateway for Android</b> (by capcom6) from its app store, then:</p>"
        "<ol>"
        "<li>In the app open <b>Settings</b> &rarr; <b>Cloud Server</b> and set "
        "<b>API URL</b> to the server URL below.</li>"
        "<li>On <b>Home</b>, switch <b>Cloud server</b> on, tap <b>Offline</b> to sign "
        "in and choose the <b>By code</b> tab.</li>"
        "<li>Enter the one-time code below and tap <b>Continue</b>. The app shows "
        "<b>Online</b> when the phone is linked.</li>"
        "</ol>"
        "<section><h2>Server URL</h2>"
        f"<code id='server-url'>{server}</code>"
        "<button type='button' data-copy='server-url'>Copy</button></section>"
        "<section><h2>One-time code</h2>"
        f"<code id='code' class='code'>{escape(page.code)}</code>"
        "<button type='button' data-copy='code'>Copy</button>"
        f"<p>Works once, until {until}.</p></section>"
    )


def page_response(html: str, status: int = 200) -> Response:
    return Response(html, status, headers=_HEADERS, media_type="text/html; charset=utf-8")


def static_response(name: str) -> Response | None:
    media = _STATIC.get(name)
    if media is None:
        return None
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(body, headers=headers, media_type=media)
