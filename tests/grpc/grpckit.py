"""What the gRPC tests add to tests/gwkit.py: a gateway with a grpc.aio channel and
stubs, request builders, and settings a gRPC test needs (open registration, a fixed
gRPC port)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from gwkit import ADMIN_KEY, PASSWORD
from gwkit import make_settings as gw_settings
from smsgateway.api.grpc.gen import auth_pb2, auth_pb2_grpc, sms_pb2, sms_pb2_grpc
from smsgateway.runtime import Runtime
from smsgateway.settings import LinkSettings, Settings

Metadata = tuple[tuple[str, str], ...]
ADMIN_MD: Metadata = (("x-admin-key", ADMIN_KEY),)


def make_settings(
    data_dir: Path,
    links: list[LinkSettings],
    *,
    open_registration: bool = False,
    grpc_port: int = 0,
    **kw: Any,
) -> Settings:
    settings = gw_settings(data_dir, links, **kw)
    settings.auth.open_registration = open_registration
    settings.server.grpc_port = grpc_port
    return settings


def send_request(**kw: Any) -> sms_pb2.SendMessageRequest:
    fields: dict[str, Any] = {
        "esme": 1,
        "source": "+123456789",
        "destination": "+987654321",
        "message": "hello",
    }
    fields.update(kw)
    return sms_pb2.SendMessageRequest(**fields)


@dataclass
class GrpcGateway:
    runtime: Runtime
    channel: grpc.aio.Channel
    http: httpx.AsyncClient
    auth: auth_pb2_grpc.AuthStub
    sms: sms_pb2_grpc.SmsServiceStub

    async def register(self, email: str, password: str = PASSWORD) -> auth_pb2.RegisterResponse:
        reply: auth_pb2.RegisterResponse = await self.auth.Register(
            auth_pb2.RegisterRequest(email=email, password=password), metadata=ADMIN_MD
        )
        return reply

    async def user(self, email: str) -> Metadata:
        """Register and log in over gRPC: the metadata a protected call needs."""
        reg = await self.register(email)
        login: auth_pb2.LoginResponse = await self.auth.Login(
            auth_pb2.LoginRequest(email=email, password=PASSWORD, app_id=reg.app_id)
        )
        return (("authorization", f"Bearer {login.token}"), ("x-app-id", str(reg.app_id)))

    def raw(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        """A call that sends bytes as they are: for payloads no stub would produce."""
        return self.channel.unary_unary(method)

    async def bound(self, link_id: int = 1) -> None:
        from gwkit import eventually

        assert self.runtime.router is not None
        link = self.runtime.router.links[link_id]
        await eventually(lambda: link.bound)

    async def stop(self) -> None:
        await self.channel.close()
        await self.http.aclose()
        await self.runtime.stop()
