"""Fixtures for the SMPP tests: a simulator on ephemeral ports and clients bound to it.

Everything runs over real TCP on 127.0.0.1 with short timeouts, so a hung test fails
in seconds; nothing here asserts how fast anything is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from smsgateway.smpp.session import ClientConfig, EsmeClient
from smsgateway.smscsim.simulator import SimulatorConfig, SmscSimulator

SimFactory = Callable[..., Awaitable[SmscSimulator]]
ClientFactory = Callable[..., Awaitable[EsmeClient]]


async def _eventually(
    check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01
) -> Any:
    """Poll `check` until it returns something truthy (fails the test after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    """`await eventually(lambda: condition)`: poll until true, fail after a timeout."""
    return _eventually


@pytest.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    sims: list[SmscSimulator] = []

    async def make(**kwargs: Any) -> SmscSimulator:
        kwargs.setdefault("http_port", None)
        kwargs.setdefault("dlr_delay_ms", 10.0)
        sim = SmscSimulator(SimulatorConfig(**kwargs))
        await sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: SimFactory) -> SmscSimulator:
    return await make_sim()


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[EsmeClient] = []

    async def make(
        port: int, *, bound: bool = True, on_deliver: Any = None, **kwargs: Any
    ) -> EsmeClient:
        kwargs.setdefault("system_id", "tester")
        kwargs.setdefault("password", "pw")
        kwargs.setdefault("reconnect_min", 0.05)
        kwargs.setdefault("reconnect_max", 0.2)
        kwargs.setdefault("response_timeout", 5.0)
        kwargs.setdefault("bind_timeout", 5.0)
        client = EsmeClient(ClientConfig("127.0.0.1", port, **kwargs), on_deliver=on_deliver)
        clients.append(client)
        await client.start()
        if bound:
            await client.wait_bound(10)
        return client

    yield make
    for client in clients:
        await client.stop()
