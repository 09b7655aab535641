"""Bearer tokens: the gateway's own OAuth2 token endpoint (client_credentials, RFC 9068
JWTs signed with its own key) and one verifier for its own and external issuers'."""

from .keys import SigningKey, SigningKeyError
from .service import (
    SMS_SEND_SCOPE,
    ClientCredentials,
    CreatedClient,
    IssuedToken,
    TokenRequest,
    TokenService,
    default_issuer,
)
from .verifier import TokenVerifier, VerifiedToken

__all__ = [
    "SMS_SEND_SCOPE",
    "ClientCredentials",
    "CreatedClient",
    "IssuedToken",
    "SigningKey",
    "SigningKeyError",
    "TokenRequest",
    "TokenService",
    "TokenVerifier",
    "VerifiedToken",
    "default_issuer",
]
