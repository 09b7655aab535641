"""The gRPC face over real sockets: a Runtime on ephemeral ports, the simulator as its
SMSC, a real SQLite file, and a grpc.aio channel talking to it like a client would.

Same style as tests/e2e/conftest.py (copied, not imported: each test directory's
conftest stands alone).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from smsgateway.api.grpc.gen import auth_pb2, auth_pb2_grpc, sms_pb2, sms_pb2_grpc
from smsgateway.runtime import Runtime
from smsgateway.settings import (
    AuthSettings,
    LinkSettings,
    MessageSettings,
    PoolSettings,
    ServerSettings,
    Settings,
    SmppSettings,
    StorageSettings,
)
from smsgateway.smscsim.simulator import SimulatorConfig, SmscSimulator

ADMIN_KEY = "test-admin-key"
PASSWORD = "correct-horse-9"
Metadata = tuple[tuple[str, str], ...]
ADMIN_MD: Metadata = (("x-admin-key", ADMIN_KEY),)


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` until truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


def make_settings(
    tmp_path: Path,
    links: list[LinkSettings],
    pools: list[PoolSettings] | None = None,
    *,
    admin_key: str = ADMIN_KEY,
    open_registration: bool = False,
    send_budget_s: float = 2.0,
    **server: Any,
) -> Settings:
    server = {"host": "127.0.0.1", "rest_port": 0, "grpc_port": 0, **server}
    return Settings(
        server=ServerSettings(**server),
        storage=StorageSettings(path=str(tmp_path / "data" / "gw.db")),
        # Cheap argon2 so tests spend their time on the gateway, not on hashing.
        auth=AuthSettings(
            admin_api_key=admin_key,
            open_registration=open_registration,
            argon2_time_cost=1,
            argon2_memory_cost=8,
        ),
        smpp=SmppSettings(links=links, pools=pools or []),
        messages=MessageSettings(send_budget_s=send_budget_s),
    )


def link_to(sim: SmscSimulator, link_id: int = 1, **kw: Any) -> LinkSettings:
    kw.setdefault("limit_tps", 0)
    kw.setdefault("response_timeout", 2.0)
    return LinkSettings(
        id=link_id,
        name=f"link-{link_id}",
        host="127.0.0.1",
        port=sim.smpp_port,
        system_id="gw",
        password="pw",
        **kw,
    )


def dead_link(link_id: int = 1, **kw: Any) -> LinkSettings:
    """A link whose SMSC is not there: routing and checks work, nothing binds."""
    kw.setdefault("limit_tps", 0)
    return LinkSettings(id=link_id, name=f"link-{link_id}", host="127.0.0.1", port=1, **kw)


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


GatewayFactory = Callable[[Settings], Awaitable[GrpcGateway]]


@pytest.fixture
async def make_sim() -> AsyncIterator[Callable[..., Awaitable[SmscSimulator]]]:
    sims: list[SmscSimulator] = []

    async def make(**kw: Any) -> SmscSimulator:
        kw.setdefault("http_port", None)
        kw.setdefault("dlr_delay_ms", 20.0)
        sim = SmscSimulator(SimulatorConfig(**kw))
        await sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def make_gateway() -> AsyncIterator[GatewayFactory]:
    started: list[GrpcGateway] = []

    async def make(settings: Settings) -> GrpcGateway:
        runtime = Runtime(settings)
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}")
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.rest_port}", timeout=15)
        gw = GrpcGateway(
            runtime,
            channel,
            http,
            auth_pb2_grpc.AuthStub(channel),
            sms_pb2_grpc.SmsServiceStub(channel),
        )
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.channel.close()
        await gw.http.aclose()
        await gw.runtime.stop()


async def wait_bound(gw: GrpcGateway, link_id: int = 1) -> None:
    assert gw.runtime.router is not None
    link = gw.runtime.router.links[link_id]
    await eventually(lambda: link.bound)
