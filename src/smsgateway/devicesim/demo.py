"""A reference phone for the demo: linked to a project of a running gateway as a user
would link a real phone, through the admin API (project, API key, device link) and
the app's sign-in by code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from .sim import DeviceSim, Received, SimConfig


class _Devices(Protocol):
    async def create_link(self, project_id: int, base_url: str) -> Any: ...


async def linked_phone(
    devices: _Devices, project_id: int, base_url: str, **config: Any
) -> DeviceSim:
    """Link a new reference phone to `project_id` through the gateway's DeviceService
    and bring it online (event stream open)."""
    link = await devices.create_link(project_id, base_url)
    return await _online(DeviceSim(SimConfig(server=link.server_url, code=link.code, **config)))


@dataclass
class DemoPhone:
    project_id: int
    api_key: str
    phone: DeviceSim


async def demo_project_phone(
    base_url: str, admin_key: str, on_received: Callable[[Received], None] | None = None
) -> DemoPhone:
    """A "Demo" project with one API key and a phone linked to it, made over HTTP
    with the admin key, as the README tells a user to."""
    admin = {"X-Admin-Key": admin_key}
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        # A demo started again on the same data directory reuses its project.
        r = await http.get("/api/v1/admin/projects", headers=admin)
        r.raise_for_status()
        known = [p for p in r.json()["data"] if p.get("name") == "Demo"]
        if known:
            project_id = int(known[0]["project_id"])
        else:
            r = await http.post("/api/v1/admin/projects", json={"name": "Demo"}, headers=admin)
            r.raise_for_status()
            project_id = int(r.json()["data"]["project_id"])
        r = await http.post(f"/api/v1/admin/projects/{project_id}/api-keys", headers=admin)
        r.raise_for_status()
        api_key = str(r.json()["data"]["api_key"])
        r = await http.post(f"/api/v1/admin/projects/{project_id}/device-link", headers=admin)
        r.raise_for_status()
        link = r.json()["data"]
    sim = DeviceSim(
        SimConfig(server=link["serverUrl"], code=link["code"], name="devicesim/demo"),
        on_received=on_received,
    )
    return DemoPhone(project_id, api_key, await _online(sim))


async def _online(sim: DeviceSim) -> DeviceSim:
    try:
        await sim.start()
        await sim.stream_open.wait()
    except BaseException:
        await sim.stop()
        raise
    return sim
