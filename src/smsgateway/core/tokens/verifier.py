"""One verifier for the gateway's own access tokens and external issuers' alike.

Checks, in order: the token parses as a JWS; its `iss` is a configured issuer; its
`alg` is on that issuer's allow-list (asymmetric only: never `none`, never HS*); the
`typ`, if any, is an access-token type; the signature verifies with the issuer's key
for the token's `kid`; `exp` (required), `nbf` and `iat` hold with a small leeway; `aud`
holds the issuer's audience. The scopes come from `scope` (space-separated, RFC 9068)
or `scp` (a list or a string, as some IdPs write it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from ..errors import InvalidBearerToken
from .jwks import KeySource

TOKEN_MAX_CHARS = 8192
OWNER_MAX_CHARS = 128
# RFC 9068 section 4 names at+jwt; "JWT" is what many IdPs still write.
_ACCESS_TYPES = frozenset({"at+jwt", "application/at+jwt", "jwt"})


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    issuer: str
    subject: str
    client_id: str
    scopes: frozenset[str]
    expires_at: int
    own: bool  # issued by this gateway's token endpoint

    @property
    def owner(self) -> str:
        """The tenant its messages belong to: `oauth:<client id>` for the gateway's own
        clients, `oauth:<iss>#<sub>` for an external issuer's subjects."""
        if self.own:
            return f"oauth:{self.client_id}"
        owner = f"oauth:{self.issuer}#{self.subject}"
        if len(owner) <= OWNER_MAX_CHARS:
            return owner
        # Owners are at most 128 characters; a long issuer URL + subject is hashed.
        digest = hashlib.sha256(f"{self.issuer}#{self.subject}".encode()).hexdigest()
        return f"oauth:sha256:{digest}"


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    keys: KeySource
    audience: str
    algorithms: frozenset[str]
    own: bool = False
    # For own tokens: is the client still there (deleting it ends its tokens).
    still_valid: Callable[[str], Awaitable[bool]] | None = None


class TokenVerifier:
    def __init__(self, *, leeway_s: int) -> None:
        self._leeway = leeway_s
        self._issuers: list[TrustedIssuer] = []

    def trust(self, issuer: TrustedIssuer) -> None:
        self._issuers.append(issuer)

    def _find(self, iss: str) -> TrustedIssuer | None:
        # A handful of issuers; the own issuer's URL is known only once the port is.
        for trusted in self._issuers:
            if trusted.keys.issuer == iss:
                return trusted
        return None

    async def verify(self, token: str) -> VerifiedToken:
        if not token or len(token) > TOKEN_MAX_CHARS:
            raise InvalidBearerToken("malformed access token")
        try:
            header = jwt.get_unverified_header(token)
            unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt_errors.InvalidTokenError:
            raise InvalidBearerToken("malformed access token") from None
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise InvalidBearerToken("token from an unknown issuer")
        trusted = self._find(iss)
        if trusted is None:
            raise InvalidBearerToken("token from an unknown issuer")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in trusted.algorithms:
            raise InvalidBearerToken("token signing algorithm not allowed")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCESS_TYPES):
            raise InvalidBearerToken("not an access token")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidBearerToken("malformed access token")
        key = await trusted.keys.key_for(kid, alg)
        if key is None:
            if not trusted.keys.available:
                raise InvalidBearerToken("the token's issuer is unavailable")
            raise InvalidBearerToken("token signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=trusted.audience,
                issuer=iss,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"], "verify_sub": False},
            )
        except jwt_errors.ExpiredSignatureError:
            raise InvalidBearerToken("token expired") from None
        except jwt_errors.ImmatureSignatureError:
            raise InvalidBearerToken("token not yet valid") from None
        except jwt_errors.InvalidAudienceError:
            raise InvalidBearerToken("token not meant for this audience") from None
        except jwt_errors.InvalidSignatureError:
            raise InvalidBearerToken("token signature does not verify") from None
        except jwt_errors.InvalidTokenError:
            raise InvalidBearerToken("invalid access token") from None
        client_id = claims.get("client_id")
        subject = claims.get("sub", client_id)
        if not isinstance(subject, str) or not subject:
            raise InvalidBearerToken("token has no subject")
        if client_id is not None and not isinstance(client_id, str):
            raise InvalidBearerToken("invalid access token")
        client = client_id or subject
        if trusted.still_valid is not None and not await trusted.still_valid(client):
            raise InvalidBearerToken("the token's client no longer exists")
        return VerifiedToken(
            issuer=iss,
            subject=subject,
            client_id=client,
            scopes=_scopes(claims),
            expires_at=int(claims["exp"]),
            own=trusted.own,
        )


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope")
    if raw is None:
        raw = claims.get("scp")
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(s for s in raw if isinstance(s, str))
    return frozenset()
