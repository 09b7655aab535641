"""A reference phone linked to a project of a running gateway, for the demo: makes a
link code through the gateway's DeviceService and signs in with it over HTTP, as a
user with a real phone would."""

from __future__ import annotations

from typing import Any, Protocol

from .sim import DeviceSim, SimConfig


class _Link(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def server_url(self) -> str: ...


class _Devices(Protocol):
    async def create_link(self, project_id: int, base_url: str) -> Any: ...


async def linked_phone(
    devices: _Devices, project_id: int, base_url: str, **config: Any
) -> DeviceSim:
    """Link a new reference phone to `project_id` and bring it online (stream open)."""
    link: _Link = await devices.create_link(project_id, base_url)
    sim = DeviceSim(SimConfig(server=link.server_url, code=link.code, **config))
    try:
        await sim.start()
        await sim.stream_open.wait()
    except BaseException:
        await sim.stop()
        raise
    return sim
