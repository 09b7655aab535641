"""A gateway killed with SIGKILL while messages wait for an offline phone: after the
restart they are still queued for it, and the phone that comes back sends them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from gwkit import eventually
from gwproc import GatewayProcess
from smsgateway.devicesim import demo_project_phone

pytest.importorskip("smsgateway.core.otp", reason="needs the OTP projects (/v1)")

ADMIN_KEY = "sigkill-admin-key"


def write_config(path: Path, data_dir: Path) -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
rest_port = 0
grpc_port = 0

[storage]
path = "{data_dir / "gw.db"}"

[auth]
admin_api_key = "{ADMIN_KEY}"
argon2_time_cost = 1
argon2_memory_cost = 8

[devices]
sse_keepalive_s = 0.5
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[Callable[[], GatewayProcess]]:
    made: list[GatewayProcess] = []

    def make() -> GatewayProcess:
        config = write_config(tmp_path / "gw.toml", tmp_path)
        gw = GatewayProcess(config, tmp_path / "gw.log")
        made.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in made:
            gw.kill()


async def test_queued_device_messages_survive_sigkill(
    process: Callable[[], GatewayProcess],
) -> None:
    gw = process()
    gw.start()
    url = await gw.wait_ready()
    demo = await demo_project_phone(url, ADMIN_KEY)
    phone = demo.phone
    headers = {"X-SMX-API-Key": demo.api_key}
    try:
        await phone.go_offline()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            ids = []
            for i in range(3):
                r = await http.post(
                    "/v1/messages", json={"to": "+447700900123", "text": f"t{i}"}, headers=headers
                )
                assert r.status_code == 200, r.text
                ids.append(r.json()["data"]["messageId"])
        gw.kill()  # no shutdown code runs
        gw.start()
        url = await gw.wait_ready()
        phone.server = url + "/mobile/v1"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for m in ids:
                r = await http.get(f"/v1/messages/{m}", headers=headers)
                assert r.json()["data"]["status"] == "queued", r.text
            await phone.go_online()

            async def all_delivered() -> bool:
                for m in ids:
                    r = await http.get(f"/v1/messages/{m}", headers=headers)
                    if r.json()["data"]["status"] != "delivered":
                        return False
                return True

            await eventually(all_delivered, timeout=20)
        assert sorted(x.text for x in phone.messages.values()) == ["t0", "t1", "t2"]
    finally:
        await phone.stop()
