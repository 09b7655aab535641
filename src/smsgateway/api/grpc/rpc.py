"""gRPC plumbing shared by the servicers: credentials, payloads, peers, errors.

The counterpart of `api/http.py`: it reads metadata and bytes, the servicers
translate. Each RPC is declared as an `Rpc` (who may call it, its message types,
its handler); `method_handler` wraps one so that every call authenticates, decodes,
runs and answers errors the same way.

Requests reach the wrapper as raw bytes (no request_deserializer): grpc.aio answers
a deserializer's exception with UNKNOWN, while a payload that is not the declared
message is the client's mistake and must be INVALID_ARGUMENT, as bad JSON is 400.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar
from urllib.parse import unquote

import grpc
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet
from prometheus_client import CollectorRegistry, Counter, Histogram

from ...core.admin import AdminKey
from ...core.auth import AuthService, Principal
from ...core.errors import GatewayError, Internal, InvalidRequest, from_exception
from ...core.ops import OpsService
from ...core.ratelimit import QUOTA_SCOPE_KEY

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
Context = grpc.aio.ServicerContext[Any, Any]


class Access(enum.Enum):
    """Which credential a call needs (the same split as the REST routes)."""

    PUBLIC = "public"
    # The shared admin key in `x-admin-key` (AdminKey knows about open registration).
    ADMIN = "admin"
    # `authorization: Bearer <jwt>` with `x-app-id`.
    TOKEN = "token"


@dataclass(slots=True)
class Caller:
    """Who is calling: the peer's address and, for TOKEN calls, the verified principal."""

    ip: str | None
    principal: Principal | None = None
    # Where the core's rate limiters leave their answer headers, as they do in REST's
    # ASGI scope; the wrapper sends them back as trailing metadata.
    scope: dict[str, Any] = field(default_factory=dict)

    @property
    def app_id(self) -> int:
        # Only TOKEN handlers ask, and the wrapper verified the token before them.
        assert self.principal is not None, "app_id asked of a call without a token"
        return self.principal.app_id


@dataclass(frozen=True)
class Rpc(Generic[Req, Resp]):
    name: str
    access: Access
    request_type: type[Req]
    response_type: type[Resp]
    handler: Callable[[Req, Caller], Awaitable[Resp]]


@dataclass(frozen=True)
class Guards:
    """What the wrapper checks credentials against (the same objects REST uses)."""

    auth: AuthService
    admin_key: AdminKey
    # Rate limits (global L1, per-app L2 on SmsService, failed-login guard); None in
    # bare setups.
    ops: OpsService | None = None


class GrpcMetrics:
    """Calls by method and status code, and their latency.

    Kept apart from the HTTP series so dashboards can compare the faces; created once
    per registry because Prometheus refuses a second series of the same name.
    """

    _by_registry: dict[int, GrpcMetrics] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "smsgateway_grpc_requests",
            "gRPC calls by method and status code",
            ["method", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "smsgateway_grpc_request_seconds",
            "gRPC call latency",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> GrpcMetrics:
        found = cls._by_registry.get(id(registry))
        if found is None:
            found = cls._by_registry[id(registry)] = cls(registry)
        return found


class WrongFieldType(InvalidRequest):
    pass


def decode(raw: bytes, request_type: type[Req]) -> Req:
    """Bytes to the declared message, or InvalidRequest naming what is wrong."""
    try:
        request = request_type.FromString(raw)
    except DecodeError as exc:
        raise InvalidRequest(f"malformed protobuf: {exc}") from None
    # A known field number sent with another wire type (a string where an int64
    # belongs) is kept as an unknown field instead of failing the parse. Unknown
    # numbers alone are a newer client's fields and pass; a known number there is
    # a wrong-typed value and must not silently read as the field's default.
    unknown = UnknownFieldSet(request)
    if len(unknown):
        fields = request_type.DESCRIPTOR.fields_by_number
        for i in range(len(unknown)):
            field = fields.get(unknown[i].field_number)
            if field is not None:
                raise WrongFieldType(
                    f"invalid request body: field `{field.name}` has the wrong type"
                )
    return request


def metadata_values(context: Context) -> dict[str, str]:
    """Text metadata by (lowercase) key; the first value of a repeated key wins, as in REST."""
    found: dict[str, str] = {}
    raw: Iterable[tuple[str, str | bytes]] = context.invocation_metadata() or ()
    for key, value in raw:
        if isinstance(value, str) and key not in found:
            found[key] = value
    return found


@lru_cache(maxsize=4096)
def peer_ip(peer: str) -> str | None:
    """The address in `context.peer()` ("ipv4:1.2.3.4:5", "ipv6:[::1]:5"), or None.

    gRPC may percent-encode the brackets of an IPv6 peer. An IPv4-mapped IPv6 peer
    (a dual-stack listener) is shown as the IPv4 address so IPv4 allow-lists match.
    """
    kind, _, rest = unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None  # unix sockets and in-process transports have no address
    host = rest.rpartition(":")[0].strip("[]")
    host = host.partition("%")[0]  # an IPv6 zone id is not part of the address
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def method_handler(
    service: str, rpc: Rpc[Req, Resp], guards: Guards, metrics: GrpcMetrics
) -> grpc.RpcMethodHandler[bytes, Resp]:
    """One unary RPC: authenticate, decode, run, and map errors to statuses.

    Credentials are checked before the payload is decoded, as the REST face checks
    headers before the body: an anonymous caller learns nothing about the schema.
    """
    label = f"{service}/{rpc.name}"
    latency = metrics.latency.labels(label)
    counter = metrics.requests
    ok = counter.labels(label, "OK")  # the hot path skips the label lookup

    path = f"/{service}/{rpc.name}"

    async def authenticate(context: Context, caller: Caller) -> None:
        # L1 before anything else, as REST takes it before routing. Looked up per call:
        # the REST face creates the limit after these handlers exist.
        if guards.ops is not None and guards.ops.global_limit is not None:
            guards.ops.global_limit.enforce(path, caller.scope)
        if rpc.access is Access.PUBLIC:
            return
        md = metadata_values(context)
        if rpc.access is Access.ADMIN:
            guards.admin_key.check_unless_open(md.get("x-admin-key"))
            return
        principal = await guards.auth.verify_token(md.get("authorization"), md.get("x-app-id"))
        caller.principal = principal
        # JWT first, then the app's own limit: the order REST keeps on /api/v1/sms/*.
        if guards.ops is not None:
            guards.ops.app_limits.check(principal.app_id, caller.scope)

    async def behavior(raw: bytes, context: Context) -> Resp:
        started = time.perf_counter()
        caller = Caller(peer_ip(context.peer()))
        try:
            await authenticate(context, caller)
            request = decode(raw, rpc.request_type)
            response = await rpc.handler(request, caller)
        except GatewayError as exc:
            error = exc
        except Exception as exc:
            # Store refusals (disk full, locked) are UNAVAILABLE, as REST's 503.
            error = from_exception(exc)
            if isinstance(error, Internal):
                log.exception("unhandled error", extra={"method": label})
            else:
                log.error("%s: %s", error.message, exc, extra={"method": label})
        else:
            latency.observe(time.perf_counter() - started)
            ok.inc()
            if caller.scope:
                context.set_trailing_metadata(_quota_metadata(caller.scope))
            return response
        code = grpc.StatusCode[error.grpc_status]
        latency.observe(time.perf_counter() - started)
        counter.labels(label, code.name).inc()
        # Same text as the REST face's {"error": ...}: the catalogue owns the wording.
        await context.abort(code, error.message, _quota_metadata(caller.scope))

    return grpc.unary_unary_rpc_method_handler(
        behavior, response_serializer=rpc.response_type.SerializeToString
    )


def _quota_metadata(scope: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The limiter's answer headers (X-RateLimit-*, Retry-After) as metadata keys."""
    quota: dict[str, Any] = scope.get(QUOTA_SCOPE_KEY) or {}
    return tuple((name.lower(), str(value)) for name, value in quota.items())
