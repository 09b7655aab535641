"""The whole gateway over real sockets: a Runtime on ephemeral ports, the simulator as
its SMSC, a real SQLite file, and an HTTP client talking to it like a user would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

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
    send_budget_s: float = 2.0,
    **server: Any,
) -> Settings:
    return Settings(
        server=ServerSettings(host="127.0.0.1", rest_port=0, grpc_port=0, **server),
        storage=StorageSettings(path=str(tmp_path / "data" / "gw.db")),
        # Cheap argon2 so tests spend their time on the gateway, not on hashing.
        auth=AuthSettings(admin_api_key=admin_key, argon2_time_cost=1, argon2_memory_cost=8),
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


@dataclass
class Gateway:
    runtime: Runtime
    http: httpx.AsyncClient

    async def register(self, email: str, password: str = "correct-horse-9") -> dict[str, Any]:
        r = await self.http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password},
            headers={"X-Admin-Key": ADMIN_KEY},
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def user(self, email: str) -> dict[str, str]:
        """Register and log in: the headers a protected call needs."""
        reg = await self.register(email)
        r = await self.http.post(
            "/api/v1/auth/login",
            json={"email": email, "password": "correct-horse-9", "app_id": reg["app_id"]},
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(reg["app_id"])}


GatewayFactory = Callable[[Settings], Awaitable[Gateway]]


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
    started: list[Gateway] = []

    async def make(settings: Settings) -> Gateway:
        runtime = Runtime(settings)
        await runtime.start()
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.rest_port}", timeout=15)
        gw = Gateway(runtime, http)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.http.aclose()
        await gw.runtime.stop()


async def wait_bound(gw: Gateway, link_id: int = 1) -> None:
    assert gw.runtime.router is not None
    link = gw.runtime.router.links[link_id]
    await eventually(lambda: link.bound)
