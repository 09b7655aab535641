"""The gRPC face: `auth.Auth` and `sms.v1.SmsService` on grpc.aio, plus health and
reflection, in the gateway's own event loop.

The Runtime builds a `GrpcServer` from the same `Services` the REST face gets, starts
it after REST and stops it before REST.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ...core.ratelimit import LoginGuard
from ...settings import ServerSettings, SettingsError
from ..services import Services
from .auth_service import AuthServicer
from .rpc import GrpcMetrics, Guards, Rpc, method_handler
from .sms_service import SmsServicer

log = logging.getLogger(__name__)

# Like uvicorn's limit_concurrency on the REST side: past this many calls in flight
# new ones get RESOURCE_EXHAUSTED instead of queueing without bound.
MAX_CONCURRENT_RPCS = 4096


class Servicer(Protocol):
    descriptor: ServiceDescriptor

    def rpcs(self) -> list[Rpc[Any, Any]]: ...


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from `server.tls_cert` / `server.tls_key`, or None for plaintext.

    Read when the server is built, so a wrong path fails before any port is bound.
    """
    cert, key = settings.tls_cert, settings.tls_key
    if not cert and not key:
        return None
    if not (cert and key):
        raise SettingsError("server.tls_cert and server.tls_key must be set together")
    try:
        pair = (Path(key).read_bytes(), Path(cert).read_bytes())
    except OSError as exc:
        raise SettingsError(f"server.tls_cert/tls_key: {exc}") from exc
    return grpc.ssl_server_credentials([pair])


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class GrpcServer:
    def __init__(self, services: Services, *, grace_s: float = 5.0) -> None:
        self._services = services
        self._grace_s = grace_s
        self._credentials = server_credentials(services.settings.server)
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self.port = 0

    def _servicers(self) -> list[Servicer]:
        ops = self._services.ops
        guard = ops.login_guard if ops is not None else LoginGuard.off()
        return [AuthServicer(self._services.auth, guard), SmsServicer(self._services.messages)]

    def _register(self, server: grpc.aio.Server, servicer: Servicer, guards: Guards) -> str:
        name = servicer.descriptor.full_name
        metrics = GrpcMetrics.for_registry(self._services.metrics.registry)
        rpcs = {rpc.name: rpc for rpc in servicer.rpcs()}
        declared = {m.name: m for m in servicer.descriptor.methods}
        # The .proto is the contract: a method without a handler (or a handler for a
        # method the .proto lost) is a programming error, refused at start.
        if set(rpcs) != set(declared):
            raise RuntimeError(f"{name}: handlers {sorted(rpcs)} != methods {sorted(declared)}")
        for method_name, rpc in rpcs.items():
            method = declared[method_name]
            same = rpc.request_type.DESCRIPTOR is method.input_type
            if not same or rpc.response_type.DESCRIPTOR is not method.output_type:
                raise RuntimeError(f"{name}/{method_name}: message types differ from the .proto")
        handlers = {n: method_handler(name, rpc, guards, metrics) for n, rpc in rpcs.items()}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
        # Registered methods skip a per-call lookup by path string.
        server.add_registered_method_handlers(name, handlers)
        return name

    async def start(self) -> int:
        """Bind and serve; the bound port (the configured one, or ephemeral for 0)."""
        settings = self._services.settings
        server = grpc.aio.server(
            options=[
                # The REST body limit applies here too; a larger message is refused
                # with RESOURCE_EXHAUSTED before it is read into memory.
                ("grpc.max_receive_message_length", settings.server.max_body_bytes),
                # grpc enables SO_REUSEPORT by default, which would let a second gateway
                # bind the same port silently and steal half the calls.
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        guards = Guards(
            auth=self._services.auth,
            admin_key=self._services.admin_key,
            ops=self._services.ops,
        )
        names = [self._register(server, s, guards) for s in self._servicers()]
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ["", *names]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        address = listen_address(settings.server.host, settings.server.grpc_port)
        if self._credentials is not None:
            port = server.add_secure_port(address, self._credentials)
        else:
            port = server.add_insecure_port(address)
        await server.start()
        self._server, self._health, self.port = server, health_servicer, port
        log.info("grpc started", extra={"grpc_port": port, "tls": self._credentials is not None})
        return port

    async def stop(self) -> None:
        """Report NOT_SERVING, refuse new calls, let running ones finish within grace."""
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(self._grace_s)
        self._server = self._health = None
