"""Helpers for the token tests: OAuth clients through the admin API, tokens through the
gateway's token endpoint, and keys and JWTs a test signs itself."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from gwkit import ADMIN_KEY, admin

SEND = "client.sms.send"


async def create_client(
    http: httpx.AsyncClient, scopes: list[str] | None = None, name: str = "test client"
) -> tuple[str, str]:
    r = await http.post(
        "/api/v1/admin/oauth-clients",
        json={"name": name, "scopes": [SEND] if scopes is None else scopes},
        headers=admin(ADMIN_KEY),
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    return data["client_id"], data["client_secret"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def token_response(
    http: httpx.AsyncClient,
    client_id: str,
    secret: str,
    *,
    scope: str | None = None,
    method: str = "basic",
    path: str = "/oauth/token",
) -> httpx.Response:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    headers: dict[str, str] = {}
    if method == "basic":
        headers = basic(client_id, secret)
    else:
        form |= {"client_id": client_id, "client_secret": secret}
    return await http.post(path, data=form, headers=headers)


async def get_token(http: httpx.AsyncClient, client_id: str, secret: str, **kw: Any) -> str:
    r = await token_response(http, client_id, secret, **kw)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def own_token(http: httpx.AsyncClient, scopes: list[str] | None = None) -> str:
    client_id, secret = await create_client(http, scopes)
    return await get_token(http, client_id, secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forge(
    key: Any,
    *,
    iss: str,
    aud: str = "sms-api",
    scope: str = SEND,
    alg: str = "ES256",
    kid: str | None = "forged",
    lifetime: int = 300,
    **claims: Any,
) -> str:
    """A token signed with a key the test holds (not the issuer's)."""
    now = int(time.time())
    body = {
        "iss": iss,
        "sub": "someone",
        "aud": aud,
        "client_id": "someone",
        "scope": scope,
        "iat": now,
        "exp": now + lifetime,
        **claims,
    }
    headers = {"typ": "at+jwt"} | ({"kid": kid} if kid else {})
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class LocalIssuer:
    """A minimal OIDC issuer over real HTTP on loopback: a discovery document and a
    JWKS the test controls. `mode` "up" serves, "error" answers 500, "hang" accepts
    and never answers. Counts the JWKS requests it got."""

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.mode = "up"
        self.jwks_requests = 0
        self._server: asyncio.Server | None = None
        self.port = 0
        self._hung: list[asyncio.StreamWriter] = []

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_key(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = new_ec_key()
        self.keys[kid] = key
        return key

    def token(self, kid: str, **kw: Any) -> str:
        return forge(self.keys[kid], iss=self.issuer, kid=kid, **kw)

    def _jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            out.append(jwk | {"kid": kid, "use": "sig", "alg": "ES256"})
        return {"keys": out}

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for w in self._hung:
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        path = head.split(b" ")[1].decode()
        if self.mode == "hang":
            self._hung.append(writer)
            return
        status, body = 404, b"{}"
        if self.mode == "error":
            status = 500
        elif path == "/.well-known/openid-configuration":
            doc = {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks"}
            status, body = 200, json.dumps(doc).encode()
        elif path == "/jwks":
            self.jwks_requests += 1
            status, body = 200, json.dumps(self._jwks()).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
