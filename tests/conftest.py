"""Fixtures for every gateway-level test: simulators and gateways, stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwkit import Gateway
from gwproc import GatewayProcess
from smsgateway.runtime import Runtime
from smsgateway.settings import Settings
from smsgateway.smscsim.simulator import SimulatorConfig, SmscSimulator

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
    """Start gateways; a test may stop one early (`await gw.stop()`) to restart it."""
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
        await gw.stop()


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[Callable[[Path], GatewayProcess]]:
    """Gateways as real processes on a config file (the SIGKILL tests), logging to
    tmp_path/gateway.log; whatever is still running at the end is killed."""
    made: list[GatewayProcess] = []

    def make(config: Path) -> GatewayProcess:
        gw = GatewayProcess(config, tmp_path / "gateway.log")
        made.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in made:
            gw.kill()
