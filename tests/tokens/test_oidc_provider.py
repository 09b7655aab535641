"""The verifier against a real, independent OpenID Connect provider (npm oidc-provider
under Node.js): its JWT access tokens are accepted for the configured audience, its
discovery and JWKS are fetched over HTTP, and a key rotation (the provider restarted
with a new key) is picked up without restarting the gateway."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from gwkit import make_settings
from oidckit import AUDIENCE, SEND, OidcProvider
from smsgateway.core.errors import InvalidBearerToken
from smsgateway.settings_oauth import IssuerSettings, OAuthSettings

GatewayFactory = Any


async def _gateway(
    tmp_path: Path, make_gateway: GatewayFactory, oidc: OidcProvider, **kw: Any
) -> Any:
    settings = make_settings(tmp_path, [])
    kw.setdefault("jwks_refetch_cooldown_s", 0.2)
    settings.oauth = OAuthSettings(
        issuers=[IssuerSettings(issuer=oidc.issuer, audience=AUDIENCE)], **kw
    )
    settings.validate()
    return await make_gateway(settings)


async def test_oidc_provider_tokens_are_verified(
    tmp_path: Path, make_gateway: GatewayFactory, oidc: OidcProvider
) -> None:
    gw = await _gateway(tmp_path, make_gateway, oidc)
    token = await oidc.token()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["kid"] == oidc.kid
    verified = await gw.runtime.tokens.verify(token)
    assert verified.issuer == oidc.issuer
    assert verified.client_id == "main-client"
    assert verified.owner == f"oauth:{oidc.issuer}#main-client"
    assert SEND in verified.scopes and not verified.own
    # A token for another resource (audience) is not for us.
    other = await oidc.token(resource="urn:another:api")
    with pytest.raises(InvalidBearerToken, match="audience"):
        await gw.runtime.tokens.verify(other)
    # A client without the SMS scope gets a valid token without it.
    plain = await gw.runtime.tokens.verify(await oidc.token("noscope", scope="other.read"))
    assert SEND not in plain.scopes


async def test_oidc_provider_expired_token_is_refused(
    tmp_path: Path, make_gateway: GatewayFactory, oidc: OidcProvider
) -> None:
    gw = await _gateway(tmp_path, make_gateway, oidc, leeway_s=0)
    token = await oidc.token("brief")
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, exp - time.time()) + 1.1)
    with pytest.raises(InvalidBearerToken, match="expired"):
        await gw.runtime.tokens.verify(token)


async def test_key_rotation_is_picked_up_without_a_restart(
    tmp_path: Path, make_gateway: GatewayFactory, oidc: OidcProvider
) -> None:
    gw = await _gateway(tmp_path, make_gateway, oidc)
    before = await oidc.token()
    old_kid = oidc.kid
    assert await gw.runtime.tokens.verify(before)

    # The provider goes away: the keys it published stay usable.
    await oidc.stop()
    await asyncio.sleep(0.25)
    assert await gw.runtime.tokens.verify(before)

    # Back with a new key: its tokens verify at once, the retired key's do not.
    await oidc.rotate()
    assert oidc.kid != old_kid
    after = await oidc.token()
    assert jwt.get_unverified_header(after)["kid"] == oidc.kid
    await asyncio.sleep(0.25)  # past the refetch cooldown
    verified = await gw.runtime.tokens.verify(after)
    assert verified.client_id == "main-client"
    with pytest.raises(InvalidBearerToken, match="unknown key"):
        await gw.runtime.tokens.verify(before)


async def test_rs256_provider_tokens_are_verified(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    provider = OidcProvider(tmp_path / "rsa-idp", alg="RS256")
    provider.workdir.mkdir()
    await provider.start()
    try:
        gw = await _gateway(tmp_path, make_gateway, provider)
        token = await provider.token()
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        verified = await gw.runtime.tokens.verify(token)
        assert verified.client_id == "main-client" and SEND in verified.scopes
    finally:
        await provider.stop()


async def test_another_gateway_trusts_this_gateways_tokens(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    """The gateway's own discovery document and JWKS are what an external issuer's are:
    a second gateway configured with the first as an issuer accepts its tokens."""
    from tokkit import create_client, get_token

    first_dir = tmp_path / "first"
    first_dir.mkdir()
    first = await make_gateway(make_settings(first_dir, []))
    issuer = f"http://127.0.0.1:{first.runtime.rest_port}"
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    settings = make_settings(second_dir, [])
    settings.oauth = OAuthSettings(issuers=[IssuerSettings(issuer=issuer, audience="sms-api")])
    settings.validate()
    second = await make_gateway(settings)
    client_id, secret = await create_client(first.http)
    token = await get_token(first.http, client_id, secret)
    verified = await second.runtime.tokens.verify(token)
    assert not verified.own
    assert verified.owner == f"oauth:{issuer}#{client_id}"
    # The second gateway's own key does not sign for the first.
    with pytest.raises(InvalidBearerToken):
        await first.runtime.tokens.verify(
            await get_token(second.http, *await create_client(second.http))
        )
