"""The gateway's own token endpoint over real HTTP: clients through the admin API, the
client_credentials grant with both client authentication methods, RFC 6749 errors,
RFC 9068 tokens checked against the published JWKS, and the attempt limit."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from gwkit import admin, make_settings
from smsgateway.settings_oauth import OAuthSettings
from tokkit import SEND, basic, create_client, get_token, token_response

GatewayFactory = Any


async def _gateway(tmp_path: Path, make_gateway: GatewayFactory, **oauth: Any) -> Any:
    settings = make_settings(tmp_path, [])
    settings.oauth = OAuthSettings(**oauth)
    settings.validate()
    return await make_gateway(settings)


async def test_client_credentials_token_is_an_rfc9068_jwt_checked_by_the_jwks(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gw = await _gateway(tmp_path, make_gateway)
    http: httpx.AsyncClient = gw.http
    client_id, secret = await create_client(http, [SEND, "other.scope"])
    r = await token_response(http, client_id, secret)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == f"{SEND} other.scope"

    discovery = (await http.get("/.well-known/openid-configuration")).json()
    issuer = f"http://127.0.0.1:{gw.runtime.rest_port}"
    assert discovery["issuer"] == issuer
    assert discovery["token_endpoint"] == f"{issuer}/oauth/token"
    assert "client_credentials" in discovery["grant_types_supported"]
    jwks = (await http.get(discovery["jwks_uri"])).json()
    assert len(jwks["keys"]) == 1
    public = jwks["keys"][0]
    assert "d" not in public  # the private scalar never leaves the data directory
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"] == public["kid"]
    claims = jwt.decode(
        body["access_token"],
        jwt.PyJWK(public).key,
        algorithms=["ES256"],
        audience="sms-api",
        issuer=issuer,
    )
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["scope"] == f"{SEND} other.scope"
    assert claims["exp"] - claims["iat"] == 600
    assert claims["jti"]
    # A second token is a different token.
    again = await get_token(http, client_id, secret)
    assert jwt.decode(again, options={"verify_signature": False})["jti"] != claims["jti"]


async def test_client_secret_post_scope_subset_ttl_and_oidc_path(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gw = await _gateway(tmp_path, make_gateway, token_ttl_s=60, audience="my-api")
    client_id, secret = await create_client(gw.http, [SEND, "b.read"])
    r = await token_response(
        gw.http, client_id, secret, method="post", scope="b.read", path="/oidc/token"
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "b.read"
    assert r.json()["expires_in"] == 60
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "my-api"
    assert claims["scope"] == "b.read"
    assert claims["exp"] - claims["iat"] == 60
    verified = await gw.runtime.tokens.verify(r.json()["access_token"])
    assert verified.scopes == frozenset({"b.read"})
    assert verified.owner == f"oauth:{client_id}"


def _error(r: httpx.Response) -> str:
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "error_description"}
    error: str = body["error"]
    return error


async def test_token_endpoint_errors_follow_rfc6749(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gw = await _gateway(tmp_path, make_gateway)
    http: httpx.AsyncClient = gw.http
    client_id, secret = await create_client(http)

    r = await token_response(http, client_id, "wrong secret")
    assert r.status_code == 401
    assert _error(r) == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic ")
    r = await token_response(http, "no-such-client", secret, method="post")
    assert (r.status_code, _error(r)) == (401, "invalid_client")
    r = await http.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert (r.status_code, _error(r)) == (401, "invalid_client")
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic %%%"},
    )
    assert (r.status_code, _error(r)) == (401, "invalid_client")
    assert "www-authenticate" in r.headers

    creds = basic(client_id, secret)
    r = await http.post("/oauth/token", data={}, headers=creds)
    assert (r.status_code, _error(r)) == (400, "invalid_request")
    r = await http.post("/oauth/token", data={"grant_type": "password"}, headers=creds)
    assert (r.status_code, _error(r)) == (400, "unsupported_grant_type")
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "admin.everything"},
        headers=creds,
    )
    assert (r.status_code, _error(r)) == (400, "invalid_scope")
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": f"{SEND}  "},
        headers=creds,
    )
    assert (r.status_code, _error(r)) == (400, "invalid_scope")
    # Two authentication methods at once; a parameter twice; not a form.
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        headers=creds,
    )
    assert (r.status_code, _error(r)) == (400, "invalid_request")
    r = await http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={**creds, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, _error(r)) == (400, "invalid_request")
    r = await http.post("/oauth/token", json={"grant_type": "client_credentials"}, headers=creds)
    assert (r.status_code, _error(r)) == (400, "invalid_request")
    r = await http.post(
        "/oauth/token",
        content=b"grant_type=\xff\xfe",
        headers={**creds, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, _error(r)) == (400, "invalid_request")
    r = await http.post(
        "/oauth/token",
        content=b"scope=" + b"a" * 70_000,
        headers={**creds, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, _error(r)) == (413, "invalid_request")
    # After all that, the right request still works.
    assert await get_token(http, client_id, secret)


async def test_basic_credentials_are_form_decoded(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    """RFC 6749 section 2.3.1: id and secret are form-encoded before Basic encoding."""
    gw = await _gateway(tmp_path, make_gateway)
    client_id, secret = await create_client(gw.http)
    from urllib.parse import quote_plus

    raw = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
    r = await gw.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
    )
    assert r.status_code == 200, r.text


async def test_failed_client_authentication_is_limited(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gw = await _gateway(tmp_path, make_gateway, client_auth_per_minute=1, client_auth_burst=3)
    client_id, secret = await create_client(gw.http)
    for _ in range(3):
        r = await token_response(gw.http, client_id, "guess")
        assert r.status_code == 401
    r = await token_response(gw.http, client_id, "guess")
    assert r.status_code == 429
    assert _error(r) == "temporarily_unavailable"
    assert int(r.headers["retry-after"]) >= 1
    # While limited, even the right secret is refused: guessing cannot go on.
    r = await token_response(gw.http, client_id, secret)
    assert r.status_code == 429
    # Successes do not use up the allowance of another client.
    other_id, other_secret = await create_client(gw.http)
    gw.runtime.tokens.guard._addresses._buckets.clear()  # same test address for both
    for _ in range(5):
        assert await get_token(gw.http, other_id, other_secret)


async def test_clients_admin_api(tmp_path: Path, make_gateway: GatewayFactory) -> None:
    gw = await _gateway(tmp_path, make_gateway)
    http: httpx.AsyncClient = gw.http
    r = await http.post("/api/v1/admin/oauth-clients", json={"name": "x", "scopes": [SEND]})
    assert r.status_code == 401
    r = await http.post(
        "/api/v1/admin/oauth-clients",
        json={"name": "x", "scopes": [SEND]},
        headers=admin("wrong"),
    )
    assert r.status_code == 401
    r = await http.post(
        "/api/v1/admin/oauth-clients", json={"name": "billing", "scopes": [SEND]}, headers=admin()
    )
    assert r.status_code == 201
    created = r.json()
    assert created["success"] is True
    data = created["data"]
    assert data["scopes"] == [SEND]
    assert len(data["client_secret"]) >= 40
    listed = (await http.get("/api/v1/admin/oauth-clients", headers=admin())).json()
    assert listed["success"] is True
    assert [c["client_id"] for c in listed["data"]] == [data["client_id"]]
    assert data["client_secret"] not in str(listed)
    assert "secret" not in str(listed)
    # Only the hash is stored.
    db = Path(gw.runtime.settings.storage.path).read_bytes()
    assert data["client_secret"].encode() not in db

    for bad in (
        {"name": "", "scopes": [SEND]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["has space"]},
        {"name": "x", "scopes": [SEND, SEND]},
        {"name": "x", "scopes": "client.sms.send"},
        {"name": "x"},
        {"name": "x", "scopes": [SEND], "extra": 1},
    ):
        r = await http.post("/api/v1/admin/oauth-clients", json=bad, headers=admin())
        assert r.status_code == 400, (bad, r.text)
        assert "error" in r.json()

    token = await get_token(http, data["client_id"], data["client_secret"])
    assert (await gw.runtime.tokens.verify(token)).client_id == data["client_id"]
    r = await http.delete(f"/api/v1/admin/oauth-clients/{data['client_id']}")
    assert r.status_code == 401
    r = await http.delete(f"/api/v1/admin/oauth-clients/{data['client_id']}", headers=admin())
    assert r.status_code == 200
    assert r.json() == {"success": True}
    r = await http.delete(f"/api/v1/admin/oauth-clients/{data['client_id']}", headers=admin())
    assert r.status_code == 404
    # Its secret no longer authenticates, and its tokens stop working.
    r = await token_response(http, data["client_id"], data["client_secret"])
    assert r.status_code == 401
    from smsgateway.core.errors import InvalidBearerToken

    with pytest.raises(InvalidBearerToken, match="no longer exists"):
        await gw.runtime.tokens.verify(token)
    audit = await gw.runtime.store.list_audit()
    assert {a.action for a in audit} >= {"oauth_client.create", "oauth_client.delete"}


async def test_signing_key_lives_in_the_data_directory_and_survives_restarts(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gw = await _gateway(tmp_path, make_gateway, issuer="http://gw.test:8080")
    key_file = tmp_path / "oauth-signing.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key_file.read_bytes()
    client_id, secret = await create_client(gw.http)
    token = await get_token(gw.http, client_id, secret)
    kid = (await gw.http.get("/oauth/jwks")).json()["keys"][0]["kid"]
    await gw.stop()

    gw = await _gateway(tmp_path, make_gateway, issuer="http://gw.test:8080")
    assert (await gw.http.get("/oauth/jwks")).json()["keys"][0]["kid"] == kid
    assert (await gw.runtime.tokens.verify(token)).client_id == client_id
    await gw.stop()

    # A key file others can read is refused, as master.key is.
    os.chmod(key_file, 0o644)
    from smsgateway.core.tokens import SigningKeyError
    from smsgateway.runtime import Runtime

    settings = make_settings(tmp_path, [])
    runtime = Runtime(settings)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        await runtime.start()
    await runtime.stop()
