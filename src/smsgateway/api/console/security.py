"""What every console answer carries, and the checks every console request meets.

- A strict Content-Security-Policy: scripts, styles, images and connections from
  this origin only; no inline script or style; no framing.
- The session cookie: HttpOnly, SameSite=Strict, Path=/, Secure under TLS.
- Unsafe methods only from this origin: Fetch Metadata (`Sec-Fetch-Site`) when the
  browser sends it, else `Origin`; a request with neither is refused.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ...core.errors import Forbidden

COOKIE = "smsgw_console"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class CrossOrigin(Forbidden):
    default_message = "cross-origin request refused"


def harden(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers[name] = value
    # Static files say "no-cache" (revalidate by ETag); everything else is not kept.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def is_tls(request: Request) -> bool:
    return request.url.scheme in ("https", "wss")


def check_same_origin(request: Request) -> None:
    """Raise CrossOrigin for an unsafe request another site could have made."""
    if request.method in _SAFE:
        return
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site != "same-origin":
            raise CrossOrigin()
        return
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if origin is None or host is None or origin != f"{request.url.scheme}://{host}":
        raise CrossOrigin()


def set_session_cookie(
    response: Response, request: Request, session_id: str, max_age_s: int
) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max_age_s,
        path="/",
        secure=is_tls(request),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", secure=is_tls(request), httponly=True, samesite="strict"
    )
