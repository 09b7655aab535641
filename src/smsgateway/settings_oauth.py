"""Settings of the token side: the gateway's own token endpoint and external issuers.

Kept apart from `settings.py` (as settings_ops.py is) so this section can grow without
touching the file every face edits; `settings.Settings` holds one `oauth` field.

```toml
[oauth]
token_ttl_s = 600
[[oauth.issuers]]
issuer = "https://idp.example.com"
audience = "sms-api"
```
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import msgspec

# Asymmetric algorithms only: `none` and HS* are never accepted for bearer tokens
# (an HS* token could be forged by anyone who knows the public key material).
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class IssuerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The `iss` its tokens carry; discovery at issuer + /.well-known/openid-configuration.
    issuer: str
    # What its tokens' `aud` must hold (the resource indicator the IdP was asked for).
    audience: str
    # Which of ALLOWED_ALGORITHMS its tokens may use; empty: all of them.
    algorithms: list[str] = []


class OAuthSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The `iss` of the gateway's own tokens and the base of its discovery document;
    # "": http(s)://server.host:<REST port>. Set it when clients reach the gateway
    # through a proxy or a DNS name.
    issuer: str = ""
    # The `aud` of the gateway's own tokens (and what they must carry to be accepted).
    audience: str = "sms-api"
    token_ttl_s: int = 600
    # Clock skew allowed on exp / nbf / iat, own and external tokens alike.
    leeway_s: int = 30
    # Failed client authentications at the token endpoint, per client id and per
    # address: `client_auth_burst` at once, then `client_auth_per_minute`. 0: no limit.
    client_auth_per_minute: int = 10
    client_auth_burst: int = 20
    issuers: list[IssuerSettings] = []
    # External issuers: a token with an unknown `kid` refetches the JWKS, at most once
    # per `jwks_refetch_cooldown_s`; keys are refreshed anyway after `jwks_max_age_s`.
    jwks_refetch_cooldown_s: float = 10.0
    jwks_max_age_s: float = 3600.0
    fetch_timeout_s: float = 5.0
    # Plain-http issuers are accepted only on loopback addresses (local test IdPs)
    # unless this is set; anything else must be https.
    allow_http_issuers: bool = False

    def validate(self) -> None:
        if self.token_ttl_s < 1:
            raise ValueError("oauth.token_ttl_s must be at least 1")
        if self.leeway_s < 0 or self.leeway_s > 300:
            raise ValueError("oauth.leeway_s must be within 0..300")
        if self.client_auth_per_minute < 0 or self.client_auth_burst < 0:
            raise ValueError(
                "oauth.client_auth_per_minute and client_auth_burst must not be negative"
            )
        for key in ("jwks_refetch_cooldown_s", "jwks_max_age_s", "fetch_timeout_s"):
            if not getattr(self, key) > 0:
                raise ValueError(f"oauth.{key} must be positive")
        if not self.audience:
            raise ValueError("oauth.audience must not be empty")
        if self.issuer:
            check_issuer_url(self.issuer, "oauth.issuer", allow_http=True)
        seen: set[str] = set()
        for i, item in enumerate(self.issuers):
            where = f"oauth.issuers[{i}]"
            check_issuer_url(item.issuer, f"{where}.issuer", allow_http=self.allow_http_issuers)
            if item.issuer in seen or item.issuer == self.issuer:
                raise ValueError(f"{where}: issuer {item.issuer!r} configured twice")
            seen.add(item.issuer)
            if not item.audience:
                raise ValueError(f"{where}.audience must not be empty")
            bad = [a for a in item.algorithms if a not in ALLOWED_ALGORITHMS]
            if bad:
                raise ValueError(
                    f"{where}.algorithms: {bad} not allowed (asymmetric only: "
                    f"{', '.join(ALLOWED_ALGORITHMS)})"
                )


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str, where: str, *, allow_http: bool) -> None:
    """An issuer is an https URL (RFC 8414 section 2), or http on loopback / by setting."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{where}: {url!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{where}: {url!r} must not have a query or fragment")
    if parts.scheme == "http" and not allow_http and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"{where}: {url!r} is plain http; use https, a loopback address, "
            "or set oauth.allow_http_issuers"
        )
