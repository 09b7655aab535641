"""POST /sms/messages over a real socket: 003's problem bodies for every violation row
and for bodies that are not an Sms at all, the bearer-token answers (401 / 403 with
their WWW-Authenticate challenges) for the gateway's own tokens and for tokens of a
real OIDC provider, and the face's metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from gwkit import admin, make_settings, metric
from oidckit import AUDIENCE, OidcProvider
from smsgateway.core.tokens import SigningKey
from smsgateway.settings_oauth import IssuerSettings, OAuthSettings
from tokkit import SEND, bearer, create_client, forge, get_token, new_ec_key, own_token

GatewayFactory = Any
OK = {"sender": "+4740003410", "recipient": "+4798765432", "message": "Your code: 1234"}
EMOJI = "\U0001f600"


async def _gateway(
    tmp_path: Path, make_gateway: GatewayFactory, oidc: OidcProvider | None = None, **kw: Any
) -> Any:
    settings = make_settings(tmp_path, [])
    issuers = [IssuerSettings(issuer=oidc.issuer, audience=AUDIENCE)] if oidc else []
    settings.oauth = OAuthSettings(issuers=issuers, **kw)
    settings.validate()
    return await make_gateway(settings)


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["instance"] == str(r.request.url)
    assert body["method"] == "POST"
    assert body["status"] == status
    return body


def _violations(r: httpx.Response, status: int = 400) -> list[str]:
    body = _problem(r, status)
    assert list(body) == ["instance", "method", "status", "type", "title", "violations"]
    assert body["type"] == "base:constraint-violation-problem"
    assert body["title"].startswith(f"{status} ")
    if status == 400:
        assert body["title"] == "400 Bad Request"
    assert all(list(v) == ["message"] for v in body["violations"])
    return [v["message"] for v in body["violations"]]


ROWS: list[tuple[Any, list[str]]] = [
    ({"recipient": OK["recipient"], "message": "x"}, ["'sender' has to be set"]),
    ({**OK, "sender": "1234567890123456"}, ["'sender' must be numeric"]),
    ({**OK, "sender": "ABCDEFGHIJKL"}, ["'sender' must be numeric"]),
    ({**OK, "sender": "AB_C"}, ["'sender' must be numeric"]),
    ({**OK, "sender": 4740003410}, ["'sender' must be a string"]),
    ({"sender": "Bank", "message": "x"}, ["'recipient' has to be set"]),
    ({**OK, "recipient": "4798765432"}, ["'recipient' must be an E.164"]),
    ({**OK, "recipient": "+1234567890123456"}, ["'recipient' must be an E.164"]),
    ({**OK, "recipient": "+99912345678"}, ["'recipient' is not a valid phone number"]),
    ({"sender": "Bank", "recipient": OK["recipient"]}, ["'message' has to be set"]),
    ({**OK, "message": ""}, ["'message' must have at least one character"]),
    ({**OK, "message": "a" * 161}, ["at most 160 GSM-7", "needs 161"]),
    ({**OK, "message": "a" * 159 + "€"}, ["needs 161"]),
    ({**OK, "message": "€" * 81}, ["needs 162"]),
    ({**OK, "message": "ж" * 71}, ["at most 70 UCS-2", "needs 71"]),
    ({**OK, "message": EMOJI * 36}, ["needs 72"]),
    ({**OK, "message": "ж" * 69 + EMOJI}, ["needs 71"]),
    ({**OK, "message": None}, ["'message' has to be set"]),
    ([OK], ["must be a JSON object"]),
    ("just a string", ["must be a JSON object"]),
]


async def test_every_violation_row_over_http(tmp_path: Path, make_gateway: GatewayFactory) -> None:
    gw = await _gateway(tmp_path, make_gateway)
    auth = bearer(await own_token(gw.http))
    for body, expected in ROWS:
        r = await gw.http.post("/sms/messages", json=body, headers=auth)
        violations = _violations(r)
        assert len(violations) == 1, (body, violations)
        for part in expected:
            assert part in violations[0], (body, violations)
    # 003's own example: the message property missing.
    r = await gw.http.post(
        "/sms/messages", json={"sender": OK["sender"], "recipient": OK["recipient"]}, headers=auth
    )
    assert r.json()["violations"] == [{"message": "The sms property 'message' has to be set"}]
    # All three missing: three violations, in field order.
    r = await gw.http.post("/sms/messages", json={}, headers=auth)
    assert _violations(r) == [
        "The sms property 'sender' has to be set",
        "The sms property 'recipient' has to be set",
        "The sms property 'message' has to be set",
    ]


async def test_bodies_that_are_not_an_sms(tmp_path: Path, make_gateway: GatewayFactory) -> None:
    gw = await _gateway(tmp_path, make_gateway)
    auth = bearer(await own_token(gw.http)) | {"Content-Type": "application/json"}
    for raw in (b"{", b'{"sender": }', b"", b"   ", b"\xff\xfe{}", b'{"a": "\xff"}'):
        r = await gw.http.post("/sms/messages", content=raw, headers=auth)
        assert len(_violations(r)) == 1, raw
    r = await gw.http.post("/sms/messages", content=b"[" * 5000 + b"]" * 5000, headers=auth)
    assert len(_violations(r)) == 1
    r = await gw.http.post(
        "/sms/messages", content=b'{"message": "' + b"a" * 70_000 + b'"}', headers=auth
    )
    assert "too large" in _violations(r, 413)[0]
    r = await gw.http.post(
        "/sms/messages", content=b"sender=x", headers={**auth, "Content-Type": "text/plain"}
    )
    assert _violations(r, 415) == ["Content-Type must be application/json"]
    r = await gw.http.get("/sms/messages", headers=auth)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "405 Method Not Allowed"


async def test_bearer_token_answers(tmp_path: Path, make_gateway: GatewayFactory) -> None:
    gw = await _gateway(tmp_path, make_gateway, leeway_s=0)
    http: httpx.AsyncClient = gw.http
    # Counters are process-global (one pytest process): compare before and after.
    outcomes = ("unauthorized", "forbidden", "invalid")
    series = {o: f'smsgateway_sms_api_requests_total{{outcome="{o}"}}' for o in outcomes}
    before = {o: await metric(http, s) for o, s in series.items()}
    # Auth is checked before the body: a bad body with no token is a 401.
    for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer"}):
        r = await http.post("/sms/messages", json={}, headers=headers)
        body = _problem(r, 401)
        assert body["title"] == "401 Unauthorized"
        assert body["detail"]
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer")
        if headers.get("Authorization") == "Bearer":
            assert challenge.startswith('Bearer error="invalid_token", error_description="')
        else:
            assert challenge == "Bearer"

    def invalid(r: httpx.Response, why: str) -> None:
        body = _problem(r, 401)
        assert why in body["detail"]
        assert 'error="invalid_token"' in r.headers["www-authenticate"]

    client_id, secret = await create_client(http)
    key = SigningKey.load(tmp_path)
    issuer = f"http://127.0.0.1:{gw.runtime.rest_port}"
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": client_id,
        "client_id": client_id,
        "aud": "sms-api",
        "scope": SEND,
        "iat": now - 700,
        "exp": now - 100,
    }
    invalid(await http.post("/sms/messages", json=OK, headers=bearer("garbage")), "malformed")
    invalid(await http.post("/sms/messages", json=OK, headers=bearer(key.sign(claims))), "expired")
    fresh = claims | {"iat": now, "exp": now + 60}
    wrong_aud = key.sign(fresh | {"aud": "other"})
    invalid(await http.post("/sms/messages", json=OK, headers=bearer(wrong_aud)), "audience")
    wrong_iss = key.sign(fresh | {"iss": "http://127.0.0.1:1"})
    invalid(await http.post("/sms/messages", json=OK, headers=bearer(wrong_iss)), "issuer")
    stranger = forge(new_ec_key(), iss=issuer, kid=key.kid, sub=client_id, client_id=client_id)
    invalid(await http.post("/sms/messages", json=OK, headers=bearer(stranger)), "signature")
    # The native face's HS256 JWTs are not bearer tokens here.
    native = await gw.user("native@example.com")
    r = await http.post("/sms/messages", json=OK, headers=native)
    invalid(r, "")

    # A valid token without client.sms.send: 403 with the scope it needs.
    other_id, other_secret = await create_client(http, ["other.scope"])
    r = await http.post(
        "/sms/messages", json=OK, headers=bearer(await get_token(http, other_id, other_secret))
    )
    body = _problem(r, 403)
    assert body["title"] == "403 Forbidden"
    assert r.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="client.sms.send"'
    )
    # A client that may ask for the scope but did not (scope narrowed at the endpoint).
    wide_id, wide_secret = await create_client(http, [SEND, "other.scope"])
    narrow = await get_token(http, wide_id, wide_secret, scope="other.scope")
    _problem(await http.post("/sms/messages", json=OK, headers=bearer(narrow)), 403)

    # A valid token gets past authentication: the bad body is what is refused.
    token = await get_token(http, client_id, secret)
    r = await http.post("/sms/messages", json={}, headers=bearer(token))
    assert len(_violations(r)) == 3
    # The client is deleted: its token stops working.
    await http.delete(f"/api/v1/admin/oauth-clients/{client_id}", headers=admin())
    invalid(await http.post("/sms/messages", json={}, headers=bearer(token)), "no longer exists")

    for outcome, name in series.items():
        assert await metric(http, name) > before[outcome], outcome


async def test_oidc_provider_tokens_at_the_face(
    tmp_path: Path, make_gateway: GatewayFactory, oidc: OidcProvider
) -> None:
    gw = await _gateway(tmp_path, make_gateway, oidc, leeway_s=0)
    brief = await oidc.token("brief")  # valid for 1 s
    token = await oidc.token()
    r = await gw.http.post("/sms/messages", json={}, headers=bearer(token))
    assert len(_violations(r)) == 3  # authenticated: the body is what is wrong
    r = await gw.http.post(
        "/sms/messages",
        json=OK,
        headers=bearer(await oidc.token("noscope", scope="other.read")),
    )
    _problem(r, 403)
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = await gw.http.post(
        "/sms/messages", json=OK, headers=bearer(await oidc.token(resource="urn:other"))
    )
    assert "audience" in _problem(r, 401)["detail"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    # Signed by someone else under the provider's kid.
    kid = jwt.get_unverified_header(token)["kid"]
    assert kid == oidc.kid
    forged = forge(new_ec_key(), iss=oidc.issuer, aud=AUDIENCE, kid=kid)
    r = await gw.http.post("/sms/messages", json=OK, headers=bearer(forged))
    assert "signature" in _problem(r, 401)["detail"]
    # The provider's own token, expired.
    exp = jwt.decode(brief, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, exp - time.time()) + 1.1)
    r = await gw.http.post("/sms/messages", json=OK, headers=bearer(brief))
    assert "expired" in _problem(r, 401)["detail"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/sms/messages"])
async def test_openapi_lists_the_face_and_the_token_endpoint(
    tmp_path: Path, make_gateway: GatewayFactory, path: str
) -> None:
    gw = await _gateway(tmp_path, make_gateway)
    doc = (await gw.http.get("/openapi.json")).json()
    op = doc["paths"][path]["post"]
    assert op["security"] == [{"oauth2": ["client.sms.send"]}]
    assert set(op["responses"]) >= {"200", "400", "401", "403", "409", "413", "500"}
    assert "application/problem+json" in op["responses"]["400"]["content"]
    schema = doc["components"]["schemas"]["SmsBody"]
    assert set(schema["required"]) == {"sender", "recipient", "message"}
    token = doc["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    assert "/.well-known/openid-configuration" in doc["paths"]
    assert "/api/v1/admin/oauth-clients/{client_id}" in doc["paths"]
