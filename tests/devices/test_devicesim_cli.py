"""`smsgateway device-sim` as its own process, driven through its control API."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
from devkit import GatewayFactory, db, device_settings, mobile, new_code, svc

from gwkit import eventually


async def test_device_sim_process_links_and_obeys_its_control_api(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    code = await new_code(gw, 8)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgateway.cli",
        "device-sim",
        "--server",
        mobile(gw),
        "--code",
        code,
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        control = f"http://127.0.0.1:{found.group(1)}"
        info = await svc(gw).active_device(8)
        assert info is not None
        device_id = info.id
        await eventually(lambda: svc(gw).hub.connected(device_id))
        async with httpx.AsyncClient(base_url=control, timeout=10) as c:
            state = (await c.get("/state")).json()
            assert state["online"] and not state["unauthorized"]
            r = await c.post("/inbound", json={"from": "+447700900777", "text": "hi gateway"})
            assert r.json() == {"statuses": [204]}
            with db(gw) as conn:
                texts = [t for (t,) in conn.execute("SELECT text FROM inbound")]
            assert texts == ["hi gateway"]
            await c.post("/offline")
            await eventually(lambda: not svc(gw).hub.connected(device_id))
            await c.post("/online")
            await eventually(lambda: svc(gw).hub.connected(device_id))
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_device_sim_refuses_a_used_code(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgateway.cli",
        "device-sim",
        "--server",
        mobile(gw),
        "--code",
        "000000",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1
    assert b"refused the code" in out
