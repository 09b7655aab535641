"""The one error catalogue every face renders.

Each error carries a stable `code`, the HTTP status the REST faces answer with, the
gRPC status name the gRPC faces answer with, and its message text. Faces choose only
the body shape (native `{"error": ...}`, problem body, `/v1` envelope); the wording
and the numbers live here so two faces can never disagree.

Subclasses are data: a class per kind (status numbers) and a class per message that
a document fixes word for word (auth header errors, "user is admin", ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from ..store.errors import DuplicateError, StoreError, StoreUnavailable


class GatewayError(Exception):
    """Base of every error a face may show to a client."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[str] = "INTERNAL"
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# Kinds: one per status pair. Raise these with a message, or a named subclass below.


class InvalidRequest(GatewayError):
    code = "invalid_request"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
    default_message = "invalid request"


class Unauthorized(GatewayError):
    code = "unauthorized"
    http_status = 401
    grpc_status = "UNAUTHENTICATED"
    default_message = "unauthorized"


class Forbidden(GatewayError):
    code = "forbidden"
    http_status = 403
    grpc_status = "PERMISSION_DENIED"
    default_message = "forbidden"


class NotFound(GatewayError):
    code = "not_found"
    http_status = 404
    grpc_status = "NOT_FOUND"
    default_message = "not found"


class Conflict(GatewayError):
    # 400, not 409: document 001 answers a duplicate user with 400.
    code = "conflict"
    http_status = 400
    grpc_status = "ALREADY_EXISTS"
    default_message = "already exists"


class RateLimited(GatewayError):
    code = "rate_limited"
    http_status = 429
    grpc_status = "RESOURCE_EXHAUSTED"
    default_message = "rate limit exceeded"


class Unavailable(GatewayError):
    code = "unavailable"
    http_status = 503
    grpc_status = "UNAVAILABLE"
    default_message = "service unavailable"


class Internal(GatewayError):
    pass


# Messages fixed by the documents (001 section "Authentication", section 2).


class AuthorizationRequired(Unauthorized):
    default_message = "authorization header required"


class AppIdRequired(Unauthorized):
    default_message = "X-App-ID header required"


class InvalidAppId(InvalidRequest):
    default_message = "invalid X-App-ID"


class UnknownApp(Unauthorized):
    default_message = "unknown app_id"


class InvalidToken(Unauthorized):
    default_message = "invalid or expired token"


class InvalidCredentials(Unauthorized):
    default_message = "invalid email or password"


class AdminKeyNotConfigured(Unavailable):
    default_message = "admin API key not configured"


class InvalidAdminKey(Unauthorized):
    default_message = "invalid or missing admin key"


class IpNotAllowed(Forbidden):
    default_message = "IP not allowed"


class UserNotFound(NotFound):
    default_message = "user not found"


class UserIsAdmin(InvalidRequest):
    default_message = "user is admin"


class DuplicateUser(Conflict):
    default_message = "user already exists"


class MessageNotFound(NotFound):
    default_message = "message not found"


# -- OTP projects and the /v1 face (issue 12) -----------------------------------------


class ProjectNotFound(NotFound):
    default_message = "project not found"


class ApiKeyNotFound(NotFound):
    default_message = "API key not found"


class VerificationNotFound(NotFound):
    default_message = "verification not found"


class InvalidApiKey(Unauthorized):
    default_message = "missing or invalid X-SMX-API-Key"


class DeviceNotLinked(GatewayError):
    code = "device_not_linked"
    http_status = 409
    grpc_status = "FAILED_PRECONDITION"
    default_message = "no active device is linked to this project"


class OtpExpired(GatewayError):
    code = "otp_expired"
    http_status = 410
    grpc_status = "FAILED_PRECONDITION"
    default_message = "this verification has expired; send a new code"


class OtpMaxAttempts(GatewayError):
    code = "otp_max_attempts"
    http_status = 403
    grpc_status = "FAILED_PRECONDITION"
    default_message = "too many wrong codes; this verification is closed, send a new code"


class OtpAlreadyVerified(GatewayError):
    code = "otp_already_verified"
    http_status = 409
    grpc_status = "FAILED_PRECONDITION"
    default_message = "this verification has already been verified"


class IdempotencyKeyReused(GatewayError):
    code = "idempotency_key_reused"
    http_status = 409
    grpc_status = "ALREADY_EXISTS"
    default_message = "this Idempotency-Key was used with a different request body"


class IdempotencyInProgress(GatewayError):
    code = "idempotency_in_progress"
    http_status = 409
    grpc_status = "ABORTED"
    default_message = "a request with this Idempotency-Key is still being processed"


class RetryLater(RateLimited):
    """A rate limit that knows when the caller may try again (Retry-After)."""

    def __init__(self, message: str | None = None, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeviceServiceMissing(Unavailable):
    default_message = "device linking is not available on this gateway"


# Android devices (issue 12): the /mobile/v1 face answers these as the app expects.


class InvalidDeviceToken(Unauthorized):
    default_message = "invalid or revoked device token"


class InvalidLinkCode(Unauthorized):
    default_message = "invalid, used or expired one-time code"


class TooManyCodeAttempts(RateLimited):
    default_message = "too many wrong codes; wait a minute"


class BadSignature(Unauthorized):
    default_message = "invalid webhook signature"


class LinkNotFound(NotFound):
    default_message = "link not found"


def catalogue() -> list[type[GatewayError]]:
    """Every error class, base first: for OpenAPI/gRPC docs and for tests."""
    found: list[type[GatewayError]] = [GatewayError]
    i = 0
    while i < len(found):
        for sub in found[i].__subclasses__():
            if sub not in found:
                found.append(sub)
        i += 1
    return found


def from_exception(exc: BaseException) -> GatewayError:
    """The error a face should show for any exception (a last-resort handler).

    Gateway errors pass through; store errors get their catalogue kind; anything
    else is an internal error whose text is not shown to clients.
    """
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, StoreUnavailable):
        return Unavailable("storage unavailable")
    if isinstance(exc, DuplicateError):
        return Conflict(str(exc))
    return Internal()


@contextmanager
def store_errors() -> Iterator[None]:
    """Re-raise store errors as catalogue errors (cause chained for the logs)."""
    try:
        yield
    except StoreError as exc:
        raise from_exception(exc) from exc


# Virtual numbers (document 002, issue 13). The 002 face renders these as
# {"status": "error", "message": ...}; the messages are 002's, word for word.


class NumbersUserIdRequired(InvalidRequest):
    default_message = "user_id is required with api_key"


class CountryIdRequired(InvalidRequest):
    default_message = "country_id is required"


class NumbersInvalidApiKey(Unauthorized):
    default_message = "Invalid api_key"


class NumbersMissingCredentials(Unauthorized):
    default_message = "Missing or invalid credentials"


class ManagerInactive(Forbidden):
    default_message = "Manager inactive. Contact support."


class TargetUserNotFound(NotFound):
    default_message = "Target user not found or inactive"


class NoNumberReceived(NotFound):
    default_message = "No number received"


class SystemConfigurationError(Internal):
    default_message = "System configuration error"


class ServiceFetchFailed(Internal):
    default_message = "Service fetch failed"


class CouldNotFetchServiceData(Internal):
    default_message = "Could not fetch service data"


class UnableToGetNumber(Internal):
    default_message = "Unable to get number"


class NumberNotAssigned(NotFound):
    default_message = "number is not assigned to this user"


class NumberUserNotFound(NotFound):
    default_message = "number user not found"


class OperatorNotFound(NotFound):
    default_message = "operator not found"


class InvalidWebhookUrl(InvalidRequest):
    default_message = "invalid webhook_url"


class WebhookEventNotFound(NotFound):
    default_message = "webhook event not found"


# -- OAuth2 bearer tokens and the token endpoint (issue 11, tokens) -------------------
#
# Bearer errors (RFC 6750) are what a resource face answers; the OAuth errors carry
# their RFC 6749 section 5.2 `error` code in `oauth_error` for the token endpoint.


class BearerRequired(Unauthorized):
    default_message = "a bearer access token is required"


class InvalidBearerToken(Unauthorized):
    default_message = "invalid access token"


class InsufficientScope(Forbidden):
    default_message = "the access token lacks the required scope"

    def __init__(self, message: str | None = None, *, scope: str = "") -> None:
        super().__init__(message)
        self.scope = scope  # the scope the resource needs (WWW-Authenticate names it)


class OAuthInvalidRequest(InvalidRequest):
    oauth_error: ClassVar[str] = "invalid_request"
    default_message = "invalid token request"


class OAuthInvalidScope(OAuthInvalidRequest):
    oauth_error = "invalid_scope"
    default_message = "the requested scope is invalid or exceeds what the client may ask for"


class OAuthUnsupportedGrantType(OAuthInvalidRequest):
    oauth_error = "unsupported_grant_type"
    default_message = "only grant_type=client_credentials is supported"


class OAuthInvalidClient(InvalidCredentials):
    # An InvalidCredentials, so a LoginGuard counts it as a failed attempt.
    oauth_error: ClassVar[str] = "invalid_client"
    default_message = "client authentication failed"


class OAuthClientNotFound(NotFound):
    default_message = "oauth client not found"


# -- The one-shot SMS face, POST /sms/messages (issue 11, tokens) ----------------------


class ConstraintViolations(InvalidRequest):
    """A request that breaks rules; `violations` names each (document 003's 400 body)."""

    default_message = "the request breaks the sms constraints"

    def __init__(self, violations: list[str] | None = None, message: str | None = None) -> None:
        super().__init__(message or "; ".join(violations or []) or None)
        self.violations = list(violations or [self.message])


class NoGatewayAccepted(Internal):
    default_message = "the SMS could not be delegated to any of the configured gateways"


class NoGatewaysConfigured(Internal):
    default_message = "no gateways are configured for the SMS API ([sms_api] gateways)"
