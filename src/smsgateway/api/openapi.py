"""The OpenAPI document, generated from the routes actually served and the msgspec types
the handlers decode and return, so it cannot drift from the code.

Each served route is looked up in `OPERATIONS` for its body, answer, credentials and
documented statuses; a route missing there still appears (with a generic answer), and a
test fails on it so the table stays complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.routing import BaseRoute, Mount, Route

from ..core.console.messages import AdminMessageAnswer, AdminMessagesAnswer
from ..core.messages import LinkCheck, MessageInfo, SendResult
from ..core.otp.projects import ProjectPatch
from .numbers.admin import (
    CreateNumberUserBody,
    ImportBody,
    OperatorBody,
    PatchNumberUserBody,
    RedeliverBody,
    RotateBody,
)
from .numbers.face import (
    InitAnswer,
    MyNumbersAnswer,
    NumbersError,
    OtpsAnswer,
    PhoneAnswer,
    ReleaseBody,
)
from .oauth.routes import ClientBody, OAuthErrorBody, TokenAnswer, TokenForm
from .oneshot.routes import PROBLEM, ProblemBody, SmsBody
from .ops import FilterBody, ProxyUserBody, ToggleBody
from .otp.admin import DeviceLinkBody, KeyBody
from .otp.v1 import BulkBody, MessageBody, SendOtpBody, VerifyOtpBody
from .rest import EsmeBody, InfoBody, LoginBody, RegisterBody, SendBody, UserIdBody


class ErrorBody(msgspec.Struct):
    error: str


class RegisterAnswer(msgspec.Struct):
    user_id: int
    app_id: int
    app_secret: str
    error: str


class LoginAnswer(msgspec.Struct):
    token: str
    error: str


class ValidateAnswer(msgspec.Struct):
    is_admin: bool
    error: str


class DeleteAnswer(msgspec.Struct):
    result: bool
    error: str


class Health(msgspec.Struct):
    status: str


@dataclass(frozen=True)
class Op:
    summary: str
    auth: str = "none"  # none | jwt | admin | admin_or_open
    body: type[Any] | None = None
    answer: type[Any] | None = None
    ok: int = 200
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()  # positive integer query parameters
    text_query: tuple[str, ...] = ()  # string query parameters
    upload: str = ""  # a multipart/form-data file field, instead of a JSON body
    body_media: str = "application/json"  # or application/x-www-form-urlencoded
    error_body: type[Any] | None = None  # the face's error shape; None: ErrorBody
    error_media: str = "application/json"
    # The route's `{id}` is text (a message id): documented as `{message_id}`, since
    # an `id` in this document is always a positive integer.
    text_ids: bool = False


class V1ErrorDetail(msgspec.Struct, rename="camel"):
    code: str
    message: str
    origin: str
    request_id: str


class V1Error(msgspec.Struct):
    """The /v1 face's error envelope (api/otp/v1.py error_response)."""

    success: bool
    error: V1ErrorDetail


_AUTH_ERRORS = {
    "jwt": (400, 401, 429),
    "admin": (401, 503),
    "admin_or_open": (401, 503),
    "oauth_client": (401, 429),
    "bearer": (401, 403),
    # /v1: a missing or revoked API key, the per-project request limit.
    "api_key": (401, 429),
}
_REG = Op(
    "Register a user and its first app", "admin_or_open", RegisterBody, RegisterAnswer, 201, (400,)
)
_LOGIN = Op("Log in: a JWT for one app", "none", LoginBody, LoginAnswer, 200, (400, 401, 429))
_VALIDATE = Op(
    "Is the user an admin?", "admin_or_open", UserIdBody, ValidateAnswer, 200, (400, 404)
)
_DELETE = Op("Delete a non-admin user", "admin_or_open", UserIdBody, DeleteAnswer, 200, (400, 404))

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/healthy"): Op("Liveness", answer=Health),
    ("GET", "/metrics"): Op("Prometheus metrics (text format)"),
    ("GET", "/openapi.json"): Op("This document"),
    ("POST", "/api/v1/sms/send"): Op(
        "Send an SMS through a link or pool (500: the SMSC refused a part)",
        "jwt",
        SendBody,
        SendResult,
        200,
        (400, 403, 404, 413, 500, 503),
    ),
    ("POST", "/api/v1/sms/check-esme"): Op(
        "Is the link (or any pool member) bound now?", "jwt", EsmeBody, LinkCheck, 200, (403, 404)
    ),
    ("POST", "/api/v1/sms/info"): Op(
        "Delivery state of a message and each part", "jwt", InfoBody, MessageInfo, 200, (403, 404)
    ),
    ("PUT", "/api/v1/smpp/{id}/toggle"): Op(
        "Enable or disable a link", "jwt", ToggleBody, None, 200, (400, 404, 503)
    ),
    ("PUT", "/api/v1/admin/smpp/{id}/toggle"): Op(
        "Enable or disable a link", "admin", ToggleBody, None, 200, (400, 404)
    ),
    ("POST", "/api/v1/admin/proxy-users/register"): Op(
        "Create a proxy user with an app", "admin", ProxyUserBody, None, 201, (400,)
    ),
    ("POST", "/api/v1/admin/filters"): Op(
        "Create or replace a filter (CEL rule)", "admin", FilterBody, None, 200, (400,)
    ),
    ("DELETE", "/api/v1/admin/filters/{name}"): Op("Delete a filter", "admin", errors=(400, 404)),
    ("GET", "/api/v1/admin/metrics/campaigns"): Op(
        "Campaign counts per link, paged", "admin", errors=(400,), query=("page", "limit")
    ),
    ("GET", "/api/v1/admin/messages"): Op(
        "Search every tenant's messages, newest first (since / until: Unix ms or"
        " ISO-8601; owner: app:<id>, oauth:<client>, project:<id>, numbers:<id>);"
        " admin key or a console session",
        "admin",
        answer=AdminMessagesAnswer,
        errors=(400,),
        query=("limit",),
        text_query=(
            "message_id",
            "transaction_id",
            "destination",
            "owner",
            "status",
            "since",
            "until",
        ),
    ),
    ("GET", "/api/v1/admin/messages/{message_id}"): Op(
        "One message with its parts (SMSC id, state, receipt time) and attempts",
        "admin",
        answer=AdminMessageAnswer,
        errors=(404,),
    ),
    ("POST", "/api/v1/settings/license/upload"): Op(
        "Upload a signed license", "jwt", errors=(400, 503), upload="license"
    ),
    ("POST", "/api/v1/admin/settings/license/upload"): Op(
        "Upload a signed license", "admin", errors=(400,), upload="license"
    ),
}
# -- OAuth2 (issue 11, tokens) --
_TOKEN = Op(
    "OAuth2 token endpoint: client_credentials grant (RFC 6749 4.4), RFC 9068 JWT",
    "oauth_client",
    TokenForm,
    TokenAnswer,
    200,
    (400, 503),
    body_media="application/x-www-form-urlencoded",
    error_body=OAuthErrorBody,
)
OPERATIONS[("POST", "/oauth/token")] = _TOKEN
OPERATIONS[("POST", "/oidc/token")] = _TOKEN
OPERATIONS[("GET", "/.well-known/openid-configuration")] = Op("Discovery document (OIDC)")
OPERATIONS[("GET", "/.well-known/oauth-authorization-server")] = Op(
    "Authorization server metadata (RFC 8414)"
)
OPERATIONS[("GET", "/oauth/jwks")] = Op("The token signing keys (public JWKS)")
OPERATIONS[("GET", "/api/v1/admin/oauth-clients")] = Op("OAuth clients (no secrets)", "admin")
OPERATIONS[("POST", "/api/v1/admin/oauth-clients")] = Op(
    "Create an OAuth client; its secret is shown once", "admin", ClientBody, None, 201, (400,)
)
OPERATIONS[("DELETE", "/api/v1/admin/oauth-clients/{client_id}")] = Op(
    "Delete an OAuth client: its tokens stop working", "admin", errors=(404,)
)
# -- The one-shot SMS face, document 003 (issue 11, tokens) --
OPERATIONS[("POST", "/sms/messages")] = Op(
    "Send one OTP SMS through the [sms_api] gateways in priority order (200: a gateway"
    " accepted it; 500: none did)",
    "bearer",
    SmsBody,
    None,
    200,
    (400, 409, 413, 415, 500),
    error_body=ProblemBody,
    error_media=PROBLEM,
)

for _prefix in ("/api/v1/auth", "/api/v1/user"):
    OPERATIONS[("POST", f"{_prefix}/register")] = _REG
    OPERATIONS[("POST", f"{_prefix}/login")] = _LOGIN
    OPERATIONS[("POST", f"{_prefix}/validate")] = _VALIDATE
    OPERATIONS[("POST", f"{_prefix}/delete")] = _DELETE

# OTP projects (api/otp/admin.py); the /v1 API itself is a mounted app of its own.
_PROJECTS = "/api/v1/admin/projects"
OPERATIONS.update(
    {
        ("POST", _PROJECTS): Op("Create an OTP project", "admin", ProjectPatch, None, 201, (400,)),
        ("GET", _PROJECTS): Op("List OTP projects", "admin"),
        ("GET", f"{_PROJECTS}/{{id}}"): Op(
            "An OTP project and its API keys", "admin", errors=(400, 404)
        ),
        ("PATCH", f"{_PROJECTS}/{{id}}"): Op(
            "Change a project's name or settings", "admin", ProjectPatch, None, 200, (400, 404)
        ),
        ("DELETE", f"{_PROJECTS}/{{id}}"): Op(
            "Delete a project with its keys and verifications", "admin", errors=(400, 404)
        ),
        ("POST", f"{_PROJECTS}/{{id}}/api-keys"): Op(
            "Create an API key (shown once)", "admin", KeyBody, None, 201, (400, 404)
        ),
        ("GET", f"{_PROJECTS}/{{id}}/api-keys"): Op(
            "A project's API keys (no secrets)", "admin", errors=(400, 404)
        ),
        ("DELETE", f"{_PROJECTS}/{{id}}/api-keys/{{key_id}}"): Op(
            "Revoke an API key", "admin", errors=(400, 404)
        ),
        ("POST", f"{_PROJECTS}/{{id}}/device-link"): Op(
            "Link a device: one-time code, server URL and QR",
            "admin",
            DeviceLinkBody,
            None,
            201,
            (400, 404, 503),
        ),
        ("DELETE", f"{_PROJECTS}/{{id}}/device"): Op(
            "Revoke the project's device", "admin", errors=(400, 404)
        ),
    }
)
# Virtual numbers (002): its own error body; the api_key rides in the path.
_N002 = (400, 401, 403, 404, 429, 500)
OPERATIONS.update(
    {
        ("GET", "/api/init/{api_key}"): Op(
            "Countries and operators", answer=InitAnswer, errors=_N002, error_body=NumbersError
        ),
        ("GET", "/api/get-number/{api_key}"): Op(
            "Assign a free number",
            answer=PhoneAnswer,
            errors=_N002,
            query=("country_id", "operator_id", "user_id"),
            error_body=NumbersError,
        ),
        ("POST", "/api/release-number/{api_key}"): Op(
            "Release an assigned number", body=ReleaseBody, errors=_N002, error_body=NumbersError
        ),
        ("GET", "/api/my-numbers/{api_key}"): Op(
            "The caller's assigned numbers",
            answer=MyNumbersAnswer,
            errors=_N002,
            error_body=NumbersError,
        ),
        ("GET", "/api/otps/{api_key}"): Op(
            "OTPs received (polling fallback)",
            answer=OtpsAnswer,
            errors=_N002,
            error_body=NumbersError,
        ),
        ("POST", "/api/v1/admin/number-users"): Op(
            "Create a number user", "admin", CreateNumberUserBody, None, 201, (400,)
        ),
        ("PATCH", "/api/v1/admin/number-users/{id}"): Op(
            "Change a number user", "admin", PatchNumberUserBody, None, 200, (400, 404)
        ),
        ("POST", "/api/v1/admin/number-users/{id}/rotate"): Op(
            "New API key and/or webhook secret", "admin", RotateBody, None, 200, (400, 404)
        ),
        ("POST", "/api/v1/admin/operators"): Op(
            "Create an operator", "admin", OperatorBody, None, 201, (400,)
        ),
        ("POST", "/api/v1/admin/numbers"): Op(
            "Import numbers", "admin", ImportBody, None, 201, (400,)
        ),
        ("POST", "/api/v1/admin/webhooks/{event_id}/redeliver"): Op(
            "Deliver a webhook event again", "admin", RedeliverBody, None, 202, (400, 404)
        ),
    }
)
for _path in ("/api/init", "/api/get-number", "/api/my-numbers", "/api/otps"):
    for _p in (_path, _path + "/"):
        OPERATIONS[("GET", _p)] = Op("No api_key: 401", errors=(401, 429), error_body=NumbersError)
for _p in ("/api/release-number", "/api/release-number/"):
    OPERATIONS[("POST", _p)] = Op(
        "No api_key: 401", body=ReleaseBody, errors=(401, 429), error_body=NumbersError
    )

# The OTP /v1 face (document 004): a mounted app of its own (api/otp/v1.py), listed
# here under its full paths. Every answer is {"success": true, "data": ...} or V1Error.
_V1_POST = (400, 408, 409, 413, 415, 503)
OPERATIONS.update(
    {
        ("POST", "/v1/send-otp"): Op(
            "Send a one-time code (a repeat within its life resends the same code)",
            "api_key",
            SendOtpBody,
            errors=_V1_POST,
            error_body=V1Error,
        ),
        ("POST", "/v1/verify-otp"): Op(
            "Check a code",
            "api_key",
            VerifyOtpBody,
            errors=(*_V1_POST, 403, 404, 410),
            error_body=V1Error,
        ),
        ("POST", "/v1/messages"): Op(
            "Send (or schedule) one custom message",
            "api_key",
            MessageBody,
            errors=_V1_POST,
            error_body=V1Error,
        ),
        ("POST", "/v1/messages/bulk"): Op(
            "Send many custom messages (per-message ids and states)",
            "api_key",
            BulkBody,
            errors=_V1_POST,
            error_body=V1Error,
        ),
        ("GET", "/v1/messages/{id}"): Op(
            "A custom message's state",
            "api_key",
            errors=(400, 404, 503),
            error_body=V1Error,
            text_ids=True,
        ),
        ("GET", "/v1/status"): Op(
            "The project's channel and whether it can send now",
            "api_key",
            errors=(503,),
            error_body=V1Error,
        ),
        ("GET", "/v1/stats"): Op(
            "Sent / verified / delivered counts per day",
            "api_key",
            errors=(400, 503),
            text_query=("days",),
            error_body=V1Error,
        ),
    }
)
# Mounted apps whose routes the document lists (others, like the device protocol and
# the console, are documented apart).
_DOCUMENTED_MOUNTS = frozenset({"/v1"})

_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
_TEXT = {"type": "string", "minLength": 1}


def _default_op(method: str, path: str) -> Op:
    if path.startswith("/api/v1/admin/"):
        auth = "admin"
    elif path.startswith("/api/v1/"):
        auth = "jwt"
    else:
        auth = "none"
    errors: tuple[int, ...] = (400, 404) if "{" in path or method != "GET" else ()
    return Op(f"{method} {path}", auth, errors=errors)


def _security(auth: str) -> list[dict[str, list[str]]]:
    if auth == "jwt":
        return [{"bearer": [], "appId": []}]
    if auth == "admin":
        return [{"adminKey": []}]
    if auth == "admin_or_open":
        return [{"adminKey": []}, {}]
    if auth == "oauth_client":
        return [{"clientBasic": []}, {}]  # or client_id + client_secret in the form
    if auth == "bearer":
        return [{"oauth2": ["client.sms.send"]}]
    if auth == "api_key":
        return [{"projectKey": []}]
    return []


def _served(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, Route]]:
    """(full path, route) of every documented route, the /v1 mount's included."""
    out: list[tuple[str, Route]] = []
    for route in routes:
        if isinstance(route, Mount) and route.path in _DOCUMENTED_MOUNTS:
            out += _served(list(route.routes), prefix + route.path)
        elif isinstance(route, Route) and route.methods and route.include_in_schema:
            out.append((prefix + route.path, route))
    return out


def build_openapi(routes: list[BaseRoute], *, title: str, version: str) -> dict[str, Any]:
    ops: list[tuple[str, str, Op]] = []
    # Routes left out of the schema (include_in_schema=False) are another program's
    # protocol (the Android app's), documented apart.
    for path, route in _served(routes):
        assert route.methods is not None
        for method in sorted(route.methods - {"HEAD"}):
            op = OPERATIONS.get((method, path)) or _default_op(method, path)
            ops.append((method, path, op))
    types = {t for _, _, op in ops for t in (op.body, op.answer) if t is not None}
    types.add(ErrorBody)
    types |= {op.error_body for _, _, op in ops if op.error_body is not None}
    ordered = sorted(types, key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}"
    )
    ref = "#/components/schemas/{}".format
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in ops:
        if op.text_ids:
            path = path.replace("{id}", "{message_id}")
        oapath = _PARAM.sub(r"{\1}", path)
        ok_content: dict[str, Any] = {}
        if op.answer is not None:
            ok_content = {"application/json": {"schema": {"$ref": ref(op.answer.__name__)}}}
        responses: dict[str, Any] = {
            str(op.ok): {"description": "OK", **({"content": ok_content} if ok_content else {})}
        }
        # Every body is read under server.max_body_bytes: 413 above it.
        too_large = (413,) if op.body is not None or op.upload else ()
        error_ref = {"schema": {"$ref": ref((op.error_body or ErrorBody).__name__)}}
        for status in sorted({*op.errors, *too_large, *_AUTH_ERRORS.get(op.auth, ())}):
            responses[str(status)] = {
                "description": _REASONS.get(status, "error"),
                "content": {op.error_media: error_ref},
            }
        if op.answer is SendResult:
            # An SMSC refusal answers the whole result body with success false.
            responses["500"]["content"] = ok_content
        slug = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{method.lower()}_{slug}",
            "security": _security(op.auth),
            "responses": responses,
        }
        # Ids in paths are positive integers; other path parameters (filter names) text.
        params: list[dict[str, Any]] = [
            {
                "name": p,
                "in": "path",
                "required": True,
                "schema": _ID if p == "id" else _TEXT,
            }
            for p in _PARAM.findall(path)
        ]
        params += [{"name": q, "in": "query", "required": False, "schema": _ID} for q in op.query]
        params += [
            {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
            for q in op.text_query
        ]
        if params:
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {op.body_media: {"schema": {"$ref": ref(op.body.__name__)}}},
            }
        elif op.upload:
            upload = {"type": "string", "contentMediaType": "application/octet-stream"}
            form = {"type": "object", "properties": {op.upload: upload}, "required": [op.upload]}
            entry["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": form}},
            }
        paths.setdefault(oapath, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "appId": {"type": "apiKey", "in": "header", "name": "X-App-ID"},
                "adminKey": {"type": "apiKey", "in": "header", "name": "X-Admin-Key"},
                "projectKey": {"type": "apiKey", "in": "header", "name": "X-SMX-API-Key"},
                "clientBasic": {"type": "http", "scheme": "basic"},
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {"client.sms.send": "Send one-time-password SMS"},
                        }
                    },
                },
            },
        },
    }


_REASONS = {
    400: "Invalid request",
    401: "Missing or invalid credentials",
    403: "IP not allowed, or the access token lacks the scope",
    404: "Not found",
    413: "Request body too large",
    409: "Idempotency-Key reused with another body, or still in progress",
    415: "Content-Type must be application/json",
    429: "Rate limit exceeded",
    500: "SMSC refusal or infrastructure failure",
    503: "Link disabled, admin key not configured, or storage unavailable",
}
