"""The gateway as a real process, SIGKILLed after it stored an inbound OTP and before
the webhook was delivered: after the restart the outbox is read again and the
receiver gets the event, once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from numkit import DE, Receiver, de_numbers

from gwkit import ADMIN_KEY, admin, eventually
from gwproc import GatewayProcess
from smsgateway.smscsim.simulator import SmscSimulator


def _config(path: Path, data: Path, smpp_port: int) -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
rest_port = 0
grpc_port = 0

[storage]
path = "{data / "gw.db"}"

[auth]
admin_api_key = "{ADMIN_KEY}"
argon2_time_cost = 1
argon2_memory_cost = 8

[numbers]
allow_http_webhooks = true
allow_private_webhooks = true
webhook_backoff_base_s = 0.2
webhook_backoff_max_s = 0.5
webhook_timeout_s = 30

[[smpp.links]]
id = 1
name = "link-1"
host = "127.0.0.1"
port = {smpp_port}
system_id = "gw1"
password = "pw"
limit_tps = 0
""",
        encoding="utf-8",
    )
    return path


def _outbox(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT event_id, state FROM webhook_outbox").fetchall()


@pytest.mark.parametrize("moment", ["attempt-in-flight", "before-any-attempt"])
async def test_killed_between_storing_and_delivering_delivers_after_restart(
    tmp_path: Path,
    make_sim: Callable[..., Awaitable[SmscSimulator]],
    gateway_process: Callable[[Path], GatewayProcess],
    moment: str,
) -> None:
    sim = await make_sim()
    receiver = Receiver(hang=moment == "attempt-in-flight")
    await receiver.start()
    try:
        config = _config(tmp_path / "gw.toml", tmp_path / "data", sim.smpp_port)
        gw = gateway_process(config)
        gw.start()
        base = await gw.wait_ready()
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            r = await http.post(
                "/api/v1/admin/number-users",
                json={"email": "k@example.com", "webhook_url": receiver.url},
                headers=admin(),
            )
            assert r.status_code == 201, r.text
            user = r.json()["data"]
            receiver.secret = user["webhook_secret"]
            r = await http.post(
                "/api/v1/admin/numbers",
                json={"numbers": [{"phone_number": de_numbers(1)[0]}]},
                headers=admin(),
            )
            assert r.status_code == 201
            r = await http.get(f"/api/get-number/{user['api_key']}", params={"country_id": DE})
            phone = r.json()["data"]["phone_number"]
        await eventually(lambda: sim.server.bound_sessions(None, receivers=True), timeout=15)
        if moment == "before-any-attempt":
            await receiver.stop()  # refused: the first attempts fail fast
        resp = await sim.push_mo("Google", phone.lstrip("+"), "G-246810 is your code")
        assert resp.command_status == 0  # acknowledged: committed with its outbox row
        if moment == "attempt-in-flight":
            await eventually(lambda: receiver.received)  # POST in flight, never answered
        gw.kill()
        [(event_id, state)] = _outbox(tmp_path / "data" / "gw.db")
        assert state == "pending"

        receiver.hang = False
        receiver.status = 200
        if moment == "before-any-attempt":
            await receiver.start()
        gw.start()
        await gw.wait_ready()
        await eventually(lambda: receiver.delivered(), timeout=20)
        await eventually(lambda: _outbox(tmp_path / "data" / "gw.db")[0][1] == "delivered")
        [d] = receiver.delivered()
        assert receiver.signed_ok(d)
        payload = json.loads(d.body)
        assert payload["event_id"] == event_id
        assert payload["data"]["otp_code"] == "246810"
        assert payload["data"]["phone_number"] == phone
        # Every attempt is logged: one structured line each, with its outcome.
        attempts = [
            event
            for line in gw.log_text(whole=True).splitlines()
            if line.startswith("{")
            and (event := json.loads(line)).get("event") == "webhook attempt"
        ]
        assert attempts[-1]["outcome"] == "delivered" and attempts[-1]["event_id"] == event_id
        log_text = gw.log_text(whole=True)
        assert user["webhook_secret"] not in log_text and user["api_key"] not in log_text
    finally:
        await receiver.stop()
