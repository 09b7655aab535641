"""The one verifier, for the gateway's own tokens and external issuers': issuer,
audience, expiry, algorithm allow-list, signature, scope claims, and how external keys
are fetched (discovery + JWKS over real HTTP), cached, refetched on a new kid with a
cooldown, kept when the issuer is down, and never waited on by other issuers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gwkit import make_settings
from smsgateway.core.errors import InvalidBearerToken
from smsgateway.core.tokens import SigningKey
from smsgateway.settings import SettingsError
from smsgateway.settings_oauth import IssuerSettings, OAuthSettings
from tokkit import SEND, LocalIssuer, create_client, forge, get_token, new_ec_key

GatewayFactory = Any
OWN = "http://gw.test"


@pytest.fixture
async def idp() -> AsyncIterator[LocalIssuer]:
    issuer = LocalIssuer()
    await issuer.start()
    yield issuer
    await issuer.stop()


async def _gateway(
    tmp_path: Path, make_gateway: GatewayFactory, issuers: list[IssuerSettings], **kw: Any
) -> Any:
    settings = make_settings(tmp_path, [])
    kw.setdefault("jwks_refetch_cooldown_s", 0.2)
    settings.oauth = OAuthSettings(issuer=OWN, issuers=issuers, **kw)
    settings.validate()
    return await make_gateway(settings)


def _own_key(tmp_path: Path) -> SigningKey:
    return SigningKey.load(tmp_path)  # the gateway's key file, as a thief would have it


async def _refused(gw: Any, token: str, reason: str) -> None:
    with pytest.raises(InvalidBearerToken, match=reason):
        await gw.runtime.tokens.verify(token)


async def test_own_tokens_claims_are_checked(tmp_path: Path, make_gateway: GatewayFactory) -> None:
    gw = await _gateway(tmp_path, make_gateway, [], leeway_s=30)
    client_id, secret = await create_client(gw.http)
    good = await get_token(gw.http, client_id, secret)
    assert (await gw.runtime.tokens.verify(good)).own
    key = _own_key(tmp_path)
    now = int(time.time())

    def own(**claims: Any) -> str:
        body = {
            "iss": OWN,
            "sub": client_id,
            "client_id": client_id,
            "aud": "sms-api",
            "scope": SEND,
            "iat": now,
            "exp": now + 60,
        }
        body.update(claims)
        return key.sign({k: v for k, v in body.items() if v is not None})

    assert (await gw.runtime.tokens.verify(own())).client_id == client_id
    await _refused(gw, own(exp=now - 120), "expired")
    # Within the leeway, an expired-by-seconds token still passes (clock skew).
    assert await gw.runtime.tokens.verify(own(exp=now - 5))
    await _refused(gw, own(nbf=now + 300), "not yet valid")
    await _refused(gw, own(aud="another-api"), "audience")
    await _refused(gw, own(iss="http://evil.test"), "unknown issuer")
    await _refused(gw, own(exp=None), "invalid")
    await _refused(gw, own(client_id="deleted-or-never-was", sub="x"), "no longer exists")
    await _refused(gw, good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), "signature")
    await _refused(gw, "not.a.jwt", "malformed")
    await _refused(gw, "x" * 9000, "malformed")


async def test_algorithm_allow_list_refuses_none_hs256_and_foreign_keys(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gw = await _gateway(tmp_path, make_gateway, [])
    client_id, _ = await create_client(gw.http)
    key = _own_key(tmp_path)
    claims = {
        "iss": OWN,
        "sub": client_id,
        "client_id": client_id,
        "aud": "sms-api",
        "scope": SEND,
        "exp": int(time.time()) + 60,
    }
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid})
    await _refused(gw, unsigned, "algorithm not allowed")
    # The classic confusion: HS256 keyed with the published public key.
    public_pem = (
        serialization.load_pem_private_key((tmp_path / "oauth-signing.pem").read_bytes(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    import hashlib
    import hmac
    import json
    from base64 import urlsafe_b64encode as b64

    def part(d: dict[str, Any]) -> str:
        return b64(json.dumps(d).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'kid': key.kid})}.{part(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{b64(mac).rstrip(b'=').decode()}"
    await _refused(gw, confused, "algorithm not allowed")
    # Signed by a stranger under the gateway's kid.
    stranger = forge(new_ec_key(), iss=OWN, kid=key.kid, sub=client_id, client_id=client_id)
    await _refused(gw, stranger, "signature")
    # A typ that says "not an access token" (an ID token or a logout token).
    typed = jwt.encode(
        claims, _private(tmp_path), algorithm="ES256", headers={"kid": key.kid, "typ": "logout+jwt"}
    )
    await _refused(gw, typed, "not an access token")


def _private(tmp_path: Path) -> Any:
    return serialization.load_pem_private_key((tmp_path / "oauth-signing.pem").read_bytes(), None)


async def test_external_issuer_keys_fetched_cached_and_rotated(
    tmp_path: Path, make_gateway: GatewayFactory, idp: LocalIssuer
) -> None:
    idp.add_key("k1")
    gw = await _gateway(
        tmp_path,
        make_gateway,
        [IssuerSettings(issuer=idp.issuer, audience="sms-api")],
        jwks_refetch_cooldown_s=0.3,
    )
    verified = await gw.runtime.tokens.verify(idp.token("k1", sub="user-7"))
    assert not verified.own
    assert verified.owner == f"oauth:{idp.issuer}#user-7"
    assert verified.scopes == frozenset({SEND})
    fetched = idp.jwks_requests
    assert fetched >= 1
    # Cached: more tokens, no more fetches.
    for _ in range(5):
        await gw.runtime.tokens.verify(idp.token("k1"))
    assert idp.jwks_requests == fetched
    # `scp` as a list (Okta, Azure AD) is read as the scope too.
    scp = idp.token("k1", scope=None, scp=[SEND, "x"])
    assert (await gw.runtime.tokens.verify(scp)).scopes == frozenset({SEND, "x"})

    # Rotation: a new kid makes the verifier fetch again and accept it.
    await asyncio.sleep(0.35)
    idp.keys.pop("k1")
    idp.add_key("k2")
    assert await gw.runtime.tokens.verify(idp.token("k2"))
    assert idp.jwks_requests == fetched + 1
    # Made-up kids inside the cooldown cost no fetch each.
    for n in range(5):
        forged = forge(new_ec_key(), iss=idp.issuer, kid=f"nope{n}")
        await _refused(gw, forged, "unknown key")
    assert idp.jwks_requests <= fetched + 2
    # Wrong audience and a stranger's key under a known kid are refused.
    await _refused(gw, idp.token("k2", aud="someone-else"), "audience")
    await _refused(gw, forge(new_ec_key(), iss=idp.issuer, kid="k2"), "signature")


async def test_keys_are_kept_when_the_issuer_fails(
    tmp_path: Path, make_gateway: GatewayFactory, idp: LocalIssuer
) -> None:
    idp.add_key("k1")
    gw = await _gateway(
        tmp_path,
        make_gateway,
        [IssuerSettings(issuer=idp.issuer, audience="sms-api")],
        jwks_max_age_s=0.1,
        jwks_refetch_cooldown_s=0.1,
    )
    assert await gw.runtime.tokens.verify(idp.token("k1"))
    idp.mode = "error"
    remote = gw.runtime.tokens.remote[0]
    failures = remote.failures
    await asyncio.sleep(0.15)
    # Stale keys trigger a background refresh that fails; the old key still works.
    assert await gw.runtime.tokens.verify(idp.token("k1"))

    async def failed() -> bool:
        return remote.failures > failures

    from gwkit import eventually

    await eventually(failed)
    assert await gw.runtime.tokens.verify(idp.token("k1"))


async def test_unreachable_issuer_refuses_its_tokens_and_blocks_nobody(
    tmp_path: Path, make_gateway: GatewayFactory, idp: LocalIssuer
) -> None:
    hanging = LocalIssuer()
    await hanging.start()
    hanging.mode = "hang"
    hanging.add_key("h1")
    closed = LocalIssuer()
    await closed.start()
    closed.add_key("c1")
    closed_token = closed.token("c1")
    await closed.stop()  # nothing listens there now
    idp.add_key("k1")
    try:
        gw = await _gateway(
            tmp_path,
            make_gateway,
            [
                IssuerSettings(issuer=hanging.issuer, audience="sms-api"),
                IssuerSettings(issuer=closed.issuer, audience="sms-api"),
                IssuerSettings(issuer=idp.issuer, audience="sms-api"),
            ],
            fetch_timeout_s=3.0,
            jwks_refetch_cooldown_s=60,
        )
        await _refused(gw, closed_token, "unavailable")
        # A request for the hanging issuer's token waits for its fetch...
        stuck = asyncio.create_task(gw.runtime.tokens.verify(hanging.token("h1")))
        await asyncio.sleep(0.1)
        assert not stuck.done()
        # ...while own tokens, another issuer's and the HTTP server all answer.
        client_id, secret = await create_client(gw.http)
        assert await gw.runtime.tokens.verify(await get_token(gw.http, client_id, secret))
        assert await gw.runtime.tokens.verify(idp.token("k1"))
        assert (await gw.http.get("/healthy")).status_code == 200
        assert not stuck.done()
        with pytest.raises(InvalidBearerToken, match="unavailable"):
            await stuck
        # Inside the cooldown the next token for it is refused at once.
        await _refused(gw, hanging.token("h1"), "unavailable")
    finally:
        await hanging.stop()


def test_issuer_settings_are_checked() -> None:
    def check(**kw: Any) -> None:
        settings = make_settings(Path("/tmp/unused-oauth"), [])
        settings.oauth = OAuthSettings(**kw)
        settings.validate()

    check(issuers=[IssuerSettings(issuer="https://idp.example.com", audience="a")])
    check(issuers=[IssuerSettings(issuer="http://127.0.0.1:9999", audience="a")])
    check(issuers=[IssuerSettings(issuer="http://[::1]:9999", audience="a")])
    with pytest.raises(SettingsError, match="plain http"):
        check(issuers=[IssuerSettings(issuer="http://idp.example.com", audience="a")])
    check(
        allow_http_issuers=True,
        issuers=[IssuerSettings(issuer="http://idp.example.com", audience="a")],
    )
    with pytest.raises(SettingsError, match="not allowed"):
        check(
            issuers=[
                IssuerSettings(issuer="https://idp.example.com", audience="a", algorithms=["HS256"])
            ]
        )
    with pytest.raises(SettingsError, match="twice"):
        check(
            issuers=[
                IssuerSettings(issuer="https://idp.example.com", audience="a"),
                IssuerSettings(issuer="https://idp.example.com", audience="b"),
            ]
        )
    with pytest.raises(SettingsError, match="audience"):
        check(issuers=[IssuerSettings(issuer="https://idp.example.com", audience="")])
    with pytest.raises(SettingsError, match="not an http"):
        check(issuers=[IssuerSettings(issuer="idp.example.com", audience="a")])
    with pytest.raises(SettingsError, match="token_ttl_s"):
        check(token_ttl_s=0)


def test_oauth_settings_from_toml_and_environment(tmp_path: Path) -> None:
    from smsgateway.settings import load_settings

    config = tmp_path / "gateway.toml"
    config.write_text(
        """
[oauth]
token_ttl_s = 120
audience = "my-sms"

[[oauth.issuers]]
issuer = "https://idp.example.com"
audience = "sms-api"
algorithms = ["RS256", "ES256"]

[[oauth.issuers]]
issuer = "http://127.0.0.1:9000"
audience = "urn:local"
"""
    )
    settings = load_settings(config, env={"SMSGATEWAY_OAUTH_LEEWAY_S": "5"})
    assert settings.oauth.token_ttl_s == 120
    assert settings.oauth.audience == "my-sms"
    assert settings.oauth.leeway_s == 5
    assert [i.issuer for i in settings.oauth.issuers] == [
        "https://idp.example.com",
        "http://127.0.0.1:9000",
    ]
    assert settings.oauth.issuers[0].algorithms == ["RS256", "ES256"]
    config.write_text('[[oauth.issuers]]\nissuer = "http://idp.example.com"\naudience = "a"\n')
    with pytest.raises(SettingsError, match="plain http"):
        load_settings(config, env={})


def test_owner_names_the_tenant_and_fits_the_column() -> None:
    from smsgateway.core.tokens import VerifiedToken

    own = VerifiedToken("http://gw", "c1", "c1", frozenset(), 0, own=True)
    assert own.owner == "oauth:c1"
    ext = VerifiedToken("https://idp.example.com", "user-1", "app", frozenset(), 0, own=False)
    assert ext.owner == "oauth:https://idp.example.com#user-1"
    long = VerifiedToken("https://idp.example.com/" + "x" * 200, "s", "s", frozenset(), 0, False)
    assert long.owner.startswith("oauth:sha256:") and len(long.owner) <= 128
    other = VerifiedToken("https://idp.example.com/" + "x" * 200, "t", "t", frozenset(), 0, False)
    assert other.owner != long.owner
