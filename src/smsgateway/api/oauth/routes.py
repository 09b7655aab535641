"""The OAuth2 routes: `POST /oauth/token` (also `/oidc/token`), the discovery document
and JWKS, and `/api/v1/admin/oauth-clients` (X-Admin-Key, native `{"success": ..}`
bodies as api/ops.py renders them).

The token endpoint answers in RFC 6749's shapes: `{access_token, token_type,
expires_in, scope}` or `{error, error_description}`, always with `Cache-Control:
no-store`; `invalid_client` is a 401 with `WWW-Authenticate: Basic`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote_plus

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.errors import (
    GatewayError,
    OAuthInvalidClient,
    OAuthInvalidRequest,
    RateLimited,
    from_exception,
)
from ...core.ratelimit import QUOTA_SCOPE_KEY
from ...core.tokens import ClientCredentials, TokenRequest, TokenService
from ..http import client_ip, decode_json, encode_json, json_response

if TYPE_CHECKING:
    from ..rest import NativeApi

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"
_MAX_FIELDS = 20
REALM = "smsgateway"


class ClientBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    scopes: list[str]


class TokenForm(msgspec.Struct):
    """The token request's form fields (for the OpenAPI document; parsed by `_form`)."""

    grant_type: str
    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


class TokenAnswer(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class OAuthErrorBody(msgspec.Struct):
    error: str
    error_description: str


class CreatedClientData(msgspec.Struct):
    client_id: str
    client_secret: str
    name: str
    scopes: list[str]


class ClientData(msgspec.Struct):
    client_id: str
    name: str
    scopes: list[str]
    created_at: str


class _BadForm(Exception):
    pass


def _form(body: bytes) -> dict[str, str]:
    """An x-www-form-urlencoded body; a parameter given twice is an error (RFC 6749
    section 3.2)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise _BadForm("malformed form body") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise _BadForm(f"parameter {key!r} given more than once")
        out[key] = value
    return out


def _basic(header: str | None) -> ClientCredentials | bool | None:
    """Credentials from `Authorization: Basic`: None without that scheme, False when
    the header is malformed (RFC 6749 section 2.3.1: both parts form-encoded)."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return False
    return ClientCredentials(unquote_plus(client_id), unquote_plus(secret))


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


class OAuthRoutes:
    def __init__(self, api: NativeApi, tokens: TokenService) -> None:
        self.api = api
        self.tokens = tokens

    # -- token endpoint ------------------------------------------------------------------

    def _oauth_error(self, exc: Exception, request: Request) -> Response:
        error = exc if isinstance(exc, GatewayError) else from_exception(exc)
        status = error.http_status
        code = getattr(error, "oauth_error", None)
        headers = dict(_NO_STORE)
        if code is None:
            if isinstance(error, RateLimited):
                code = "temporarily_unavailable"
                quota = request.scope.get(QUOTA_SCOPE_KEY) or {}
                headers.update(quota)
            elif status >= 500:
                code = "server_error" if status == 500 else "temporarily_unavailable"
                if status == 500:
                    log.error("token endpoint failed", exc_info=exc)
            else:
                code = "invalid_request"
        if status == 401:
            # RFC 6749 section 5.2: MUST when Basic was used; RFC 9110 wants a challenge on
            # any 401, and Basic is the method a client should use.
            headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
        body = OAuthErrorBody(code, error.message)
        return Response(encode_json(body), status, headers, media_type="application/json")

    async def token(self, request: Request) -> Response:
        basic = _basic(request.headers.get("authorization"))
        try:
            if basic is False:
                raise OAuthInvalidClient("malformed Basic credentials")
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() != _FORM:
                raise OAuthInvalidRequest(f"the body must be {_FORM}")
            try:
                form = _form(await self.api.read(request))
            except _BadForm as exc:
                raise OAuthInvalidRequest(str(exc)) from None
            posted_id = form.get("client_id")
            posted_secret = form.get("client_secret")
            posted = (
                ClientCredentials(posted_id, posted_secret)
                if posted_id is not None and posted_secret is not None
                else None
            )
            issued = await self.tokens.token(
                TokenRequest(
                    grant_type=form.get("grant_type"),
                    scope=form.get("scope"),
                    basic=basic if isinstance(basic, ClientCredentials) else None,
                    posted=posted,
                    posted_id_only=posted_id if posted is None else None,
                ),
                client_ip(request, self.api.trusted),
                request.scope,
            )
        except Exception as exc:
            return self._oauth_error(exc, request)
        answer = TokenAnswer(issued.access_token, "Bearer", issued.expires_in, issued.scope)
        return Response(encode_json(answer), 200, _NO_STORE, media_type="application/json")

    async def discovery(self, request: Request) -> Response:
        return json_response(self.tokens.discovery(), headers={"Cache-Control": "max-age=300"})

    async def jwks(self, request: Request) -> Response:
        return json_response(self.tokens.jwks(), headers={"Cache-Control": "max-age=300"})

    # -- admin: clients --------------------------------------------------------------------

    async def create_client(self, request: Request) -> Response:
        self.api._admin(request)
        body = decode_json(await self.api.read(request), ClientBody)
        created = await self.tokens.create_client(body.name, body.scopes, "admin")
        data = CreatedClientData(
            created.client_id, created.client_secret, created.name, created.scopes
        )
        return json_response({"success": True, "data": data}, 201, headers=_NO_STORE)

    async def list_clients(self, request: Request) -> Response:
        self.api._admin(request)
        rows = await self.tokens.list_clients()
        data = [ClientData(r.client_id, r.name, list(r.scopes), _iso(r.created_at)) for r in rows]
        return json_response({"success": True, "data": data})

    async def delete_client(self, request: Request) -> Response:
        self.api._admin(request)
        await self.tokens.delete_client(str(request.path_params["client_id"]), "admin")
        return json_response({"success": True})

    # -- routes ------------------------------------------------------------------------------

    def _metered(self, route: str, handler: Handler) -> Handler:
        """Count the token endpoint's answers like every other route."""
        record = self.api._meter(route)

        async def wrapped(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            record(started, response.status_code)
            return response

        return wrapped

    def routes(self) -> list[BaseRoute]:
        e = self.api.endpoint
        token = self._metered("oauth_token", self.token)
        return [
            Route("/oauth/token", token, methods=["POST"]),
            Route("/oidc/token", token, methods=["POST"]),
            Route(
                "/.well-known/openid-configuration",
                e("oauth_discovery", self.discovery),
                methods=["GET"],
            ),
            Route(
                "/.well-known/oauth-authorization-server",
                e("oauth_discovery", self.discovery),
                methods=["GET"],
            ),
            Route("/oauth/jwks", e("oauth_jwks", self.jwks), methods=["GET"]),
            Route(
                "/api/v1/admin/oauth-clients",
                e("admin_oauth_clients", self.list_clients),
                methods=["GET"],
            ),
            Route(
                "/api/v1/admin/oauth-clients",
                e("admin_oauth_client_create", self.create_client),
                methods=["POST"],
            ),
            Route(
                "/api/v1/admin/oauth-clients/{client_id}",
                e("admin_oauth_client_delete", self.delete_client),
                methods=["DELETE"],
            ),
        ]


def oauth_routes(api: NativeApi) -> list[BaseRoute]:
    """The OAuth routes, or none when the services carry no token side."""
    tokens = api.s.tokens
    return OAuthRoutes(api, tokens).routes() if tokens is not None else []
