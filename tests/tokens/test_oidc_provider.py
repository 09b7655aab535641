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
