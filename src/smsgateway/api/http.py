"""HTTP plumbing shared by the REST faces: bodies, JSON, client address, errors.

Kept free of business rules: it reads and writes bytes, the faces translate.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import GatewayError, InvalidRequest

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


class PayloadTooLarge(GatewayError):
    code = "payload_too_large"
    http_status = 413
    grpc_status = "RESOURCE_EXHAUSTED"
    default_message = "request body too large"


class UnsupportedMediaType(GatewayError):
    code = "unsupported_media_type"
    http_status = 415
    grpc_status = "INVALID_ARGUMENT"
    default_message = "Content-Type must be application/json"


def encode_json(data: Any) -> bytes:
    return _encoder.encode(data)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(data), status, headers, media_type="application/json")


class BodyTimeout(GatewayError):
    code = "request_timeout"
    http_status = 408
    grpc_status = "DEADLINE_EXCEEDED"
    default_message = "request body not received in time"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body too large (limit {limit} bytes)")


def check_length(declared: str | None, limit: int) -> None:
    """Refuse a declared Content-Length over `limit` before reading a byte of the body.
    (Both server paths use it: `read_body` here, the fast path in httpserver.py.)"""
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("invalid Content-Length")
        if int(declared) > limit:
            raise too_large(limit)


async def read_body(request: Request, limit: int, timeout: float = 10.0) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them, and
    refusing a body that trickles in for longer than `timeout` seconds (slow-body
    attacks hold a task and a connection each)."""
    declared = request.headers.get("content-length")
    check_length(declared, limit)
    try:
        async with asyncio.timeout(timeout):
            if declared is not None:
                return await request.body()
            chunks = bytearray()
            async for chunk in request.stream():
                chunks += chunk
                if len(chunks) > limit:
                    raise too_large(limit)
            return bytes(chunks)
    except TimeoutError:
        raise BodyTimeout() from None


def decode_json(body: bytes, type_: type[T]) -> T:
    """Body to a typed struct; any defect is a 400 that names the field at fault."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    if not body.strip():
        raise InvalidRequest("request body is required")
    try:
        result: T = decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        # msgspec raises this (not DecodeError) for bad UTF-8 inside a string.
        raise InvalidRequest("malformed JSON: invalid UTF-8 in a string") from None
    except RecursionError:
        # ...and this for nesting deeper than the interpreter's recursion limit.
        raise InvalidRequest("malformed JSON: nested too deeply") from None
    return result


Networks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def client_ip(request: Request, trusted: Networks) -> str | None:
    """The caller's address; X-Forwarded-For counts only when a trusted proxy sent it."""
    peer = request.client.host if request.client else None
    if peer is None or not trusted:
        return peer
    return forwarded_client(peer, request.headers.get("x-forwarded-for"), trusted)


def forwarded_client(peer: str | None, forwarded: str | None, trusted: Networks) -> str | None:
    """`client_ip` from its parts: the peer's address and its X-Forwarded-For header
    (the fast path has no Starlette Request)."""
    if peer is None or not trusted:
        return peer
    try:
        peer_ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if not any(peer_ip in net for net in trusted):
        return peer
    forwarded = forwarded or ""
    # Walk from the nearest hop back, skipping our own proxies.
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            hop_ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not any(hop_ip in net for net in trusted):
            return str(hop_ip)
    return peer
