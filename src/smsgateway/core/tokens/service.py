"""The token side of the gateway: OAuth clients, the client_credentials grant, and the
verifier every bearer-token face calls.

Client secrets are 32 random bytes shown once at creation and stored as a keyed hash
(HMAC-SHA256 under the master key's API-key subkey, bound to the client id); checking
one is a constant-time compare, and an unknown client id costs the same hash. Failed
client authentications are limited per client id and per address (a LoginGuard).
"""

from __future__ import annotations

import logging
import re
import secrets as stdlib_secrets
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx

from ...settings_oauth import ALLOWED_ALGORITHMS, OAuthSettings
from ...store.oauth import OAuthClientRow, OAuthStore
from ..errors import (
    InvalidRequest,
    OAuthClientNotFound,
    OAuthInvalidClient,
    OAuthInvalidRequest,
    OAuthInvalidScope,
    OAuthUnsupportedGrantType,
    store_errors,
)
from ..ratelimit import LoginGuard
from ..secrets import Secrets, constant_time_equals
from .jwks import OwnKeys, RemoteKeys
from .keys import SigningKey
from .verifier import TokenVerifier, TrustedIssuer, VerifiedToken

log = logging.getLogger(__name__)

SMS_SEND_SCOPE = "client.sms.send"
CLIENT_CREDENTIALS = "client_credentials"
NAME_MAX = 100
SCOPES_MAX = 20
SCOPE_MAX_CHARS = 100
CLIENT_ID_MAX_CHARS = 100
SECRET_MAX_CHARS = 200
# RFC 6749 appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,100}")
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request as the face parsed it (form fields and the Basic header)."""

    grant_type: str | None
    scope: str | None
    basic: ClientCredentials | None  # from Authorization: Basic
    posted: ClientCredentials | None  # from client_id / client_secret form fields
    posted_id_only: str | None = None  # client_id in the form without a secret


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


@dataclass(frozen=True, slots=True)
class CreatedClient:
    client_id: str
    client_secret: str
    name: str
    scopes: list[str]


def check_scopes(scopes: list[str]) -> list[str]:
    """Scope tokens for a new client: 1..20 RFC 6749 scope-tokens, no duplicates."""
    if not scopes or len(scopes) > SCOPES_MAX:
        raise InvalidRequest(f"scopes must list 1 to {SCOPES_MAX} scopes")
    for scope in scopes:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise InvalidRequest(f"invalid scope {scope[:SCOPE_MAX_CHARS]!r}")
    if len(set(scopes)) != len(scopes):
        raise InvalidRequest("scopes must not repeat")
    return scopes


class TokenService:
    def __init__(
        self,
        settings: OAuthSettings,
        store: OAuthStore,
        secrets: Secrets,
        signing_key: SigningKey,
        *,
        issuer: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self._secrets = secrets
        self.signing_key = signing_key
        self._issuer = issuer
        self._clock = clock
        self.guard = LoginGuard(settings.client_auth_per_minute, settings.client_auth_burst)
        self.verifier = TokenVerifier(leeway_s=settings.leeway_s)
        self.verifier.trust(
            TrustedIssuer(
                keys=OwnKeys(issuer, signing_key),
                audience=settings.audience,
                algorithms=frozenset({signing_key.algorithm}),
                own=True,
                still_valid=self._client_exists,
            )
        )
        # trust_env=False: no proxy from the environment; redirects are not followed
        # (the discovery and JWKS URLs are the ones the issuer names).
        self._http = httpx.AsyncClient(
            timeout=settings.fetch_timeout_s, follow_redirects=False, trust_env=False
        )
        self.remote: list[RemoteKeys] = []
        for item in settings.issuers:
            keys = RemoteKeys(
                item.issuer,
                self._http,
                cooldown_s=settings.jwks_refetch_cooldown_s,
                max_age_s=settings.jwks_max_age_s,
                timeout_s=settings.fetch_timeout_s,
                allow_http=settings.allow_http_issuers,
            )
            self.remote.append(keys)
            self.verifier.trust(
                TrustedIssuer(
                    keys=keys,
                    audience=item.audience,
                    algorithms=frozenset(item.algorithms or ALLOWED_ALGORITHMS),
                )
            )

    @property
    def issuer(self) -> str:
        return self._issuer()

    async def start(self) -> None:
        """Fetch every external issuer's keys in the background (never waited for)."""
        for keys in self.remote:
            keys.refresh_soon()

    async def stop(self) -> None:
        for keys in self.remote:
            await keys.close()
        await self._http.aclose()

    # -- verifying -----------------------------------------------------------------

    async def verify(self, token: str) -> VerifiedToken:
        return await self.verifier.verify(token)

    async def _client_exists(self, client_id: str) -> bool:
        with store_errors():
            return await self.store.get_client(client_id) is not None

    # -- the token endpoint ----------------------------------------------------------

    async def token(
        self,
        request: TokenRequest,
        address: str | None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> IssuedToken:
        """The client_credentials grant (RFC 6749 section 4.4)."""
        if request.basic is not None and (
            request.posted is not None or request.posted_id_only is not None
        ):
            # Section 2.3: a client MUST NOT use more than one authentication method.
            raise OAuthInvalidRequest("use one client authentication method, not two")
        creds = request.basic or request.posted
        if creds is None:
            raise OAuthInvalidClient("client authentication is required")
        if request.grant_type is None:
            raise OAuthInvalidRequest("grant_type is required")
        if request.grant_type != CLIENT_CREDENTIALS:
            raise OAuthUnsupportedGrantType()
        with self.guard.attempt(f"oauth:{creds.client_id}", address, scope):
            client = await self._authenticate(creds)
        granted = self._grant_scopes(client, request.scope)
        now = int(self._clock())
        ttl = self.settings.token_ttl_s
        claims = {
            "iss": self.issuer,
            "sub": client.client_id,
            "aud": self.settings.audience,
            "client_id": client.client_id,
            "scope": " ".join(granted),
            "iat": now,
            "exp": now + ttl,
            "jti": stdlib_secrets.token_urlsafe(16),
        }
        return IssuedToken(self.signing_key.sign(claims), ttl, " ".join(granted))

    async def _authenticate(self, creds: ClientCredentials) -> OAuthClientRow:
        if (
            not creds.client_id
            or len(creds.client_id) > CLIENT_ID_MAX_CHARS
            or len(creds.client_secret) > SECRET_MAX_CHARS
        ):
            raise OAuthInvalidClient()
        with store_errors():
            client = await self.store.get_client(creds.client_id)
        presented = self._hash(creds.client_id, creds.client_secret)
        stored = client.secret_hash if client is not None else _DUMMY_HASH
        if not constant_time_equals(presented, stored) or client is None:
            raise OAuthInvalidClient()
        return client

    @staticmethod
    def _grant_scopes(client: OAuthClientRow, requested: str | None) -> list[str]:
        if requested is None:
            return list(client.scopes)
        asked = requested.split(" ")
        if not requested or any(not _SCOPE_TOKEN.fullmatch(s) for s in asked):
            raise OAuthInvalidScope("malformed scope")
        unknown = [s for s in asked if s not in client.scopes]
        if unknown:
            raise OAuthInvalidScope(f"scope not allowed for this client: {' '.join(unknown)}")
        # The client's own order, each once.
        return [s for s in client.scopes if s in asked]

    def _hash(self, client_id: str, secret: str) -> str:
        # Domain-separated from API keys, and bound to the id: a secret hash copied
        # onto another client row does not authenticate it.
        return self._secrets.hash_api_key(f"oauth-client\x00{client_id}\x00{secret}")

    # -- clients (admin API) -----------------------------------------------------------

    async def create_client(self, name: str, scopes: list[str], actor: str) -> CreatedClient:
        name = name.strip()
        if not name or len(name) > NAME_MAX:
            raise InvalidRequest(f"name must be 1 to {NAME_MAX} characters")
        check_scopes(scopes)
        client_id = stdlib_secrets.token_urlsafe(12)
        secret = stdlib_secrets.token_urlsafe(32)
        with store_errors():
            await self.store.create_client(
                client_id, name, self._hash(client_id, secret), scopes, actor
            )
        log.info("oauth client created", extra={"client_id": client_id, "actor": actor})
        return CreatedClient(client_id, secret, name, list(scopes))

    async def list_clients(self) -> list[OAuthClientRow]:
        with store_errors():
            return await self.store.list_clients()

    async def delete_client(self, client_id: str, actor: str) -> None:
        if not client_id or len(client_id) > CLIENT_ID_MAX_CHARS:
            raise OAuthClientNotFound()
        with store_errors():
            gone = await self.store.delete_client(client_id, actor)
        if not gone:
            raise OAuthClientNotFound()
        log.info("oauth client deleted", extra={"client_id": client_id, "actor": actor})

    # -- discovery -----------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.issuer.rstrip("/")
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{base}/oauth/token",
            "jwks_uri": f"{base}/oauth/jwks",
            "grant_types_supported": [CLIENT_CREDENTIALS],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.signing_key.algorithm],
            "scopes_supported": [SMS_SEND_SCOPE],
        }

    def jwks(self) -> dict[str, Any]:
        return self.signing_key.jwks()


def default_issuer(host: str, port: int, tls: bool) -> str:
    """The own issuer URL when `oauth.issuer` is not set."""
    # A wildcard bind has no name of its own; the loopback address is one that works.
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}"


__all__ = [
    "SMS_SEND_SCOPE",
    "ClientCredentials",
    "CreatedClient",
    "IssuedToken",
    "TokenRequest",
    "TokenService",
    "VerifiedToken",
    "default_issuer",
]
