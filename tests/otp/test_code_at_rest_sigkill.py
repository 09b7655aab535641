"""A pending OTP survives SIGKILL sealed: the gateway as a real process, its SMSC
holding the answer when the process is killed. The SQLite files never hold the code;
after the restart the message is sent again with the right code (it verifies) and,
once delivered, its stored text is wiped."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from otpkit import NUMBER, code_in, key, texts_to
from test_code_at_rest import TEMPLATE, stored_bytes

from gwkit import eventually
from gwproc import GatewayProcess
from smsgateway.core.sealed import WIPED_BODY
from smsgateway.smscsim.simulator import SmscSimulator

ADMIN_KEY = "otp-crash-key"


def write_config(path: Path, data_dir: Path, port: int) -> Path:
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

[[smpp.links]]
id = 1
host = "127.0.0.1"
port = {port}
system_id = "gw1"
password = "pw"
limit_tps = 0
response_timeout = 60.0
""",
        encoding="utf-8",
    )
    return path


def statuses(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT status, body FROM messages").fetchall()


async def test_pending_otp_at_sigkill_is_sealed_and_sent_after_restart(
    tmp_path: Path,
    gateway_process: Callable[[Path], GatewayProcess],
    make_sim: Callable[..., Awaitable[SmscSimulator]],
) -> None:
    sim = await make_sim()
    db = tmp_path / "data" / "gw.db"
    gw = gateway_process(write_config(tmp_path / "gw.toml", tmp_path / "data", sim.smpp_port))
    gw.start()
    url = await gw.wait_ready()
    await eventually(lambda: sim.binds == 1, timeout=10)
    sim.configure(resp_delay_ms=60_000)  # the submit is in flight when we kill
    admin = {"X-Admin-Key": ADMIN_KEY}
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        r = await http.post(
            "/api/v1/admin/projects",
            json={"name": "Acme", "channel": 1, "code_length": 8, "template": TEMPLATE},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        pid = r.json()["data"]["project_id"]
        r = await http.post(f"/api/v1/admin/projects/{pid}/api-keys", headers=admin)
        k = r.json()["data"]["api_key"]
        r = await http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
        assert r.status_code == 200, r.text
        vid = r.json()["data"]["verificationId"]
        await eventually(lambda: sim.unanswered == 1, timeout=10)
    gw.kill()  # SIGKILL: no shutdown code runs
    [held] = texts_to(sim, NUMBER)
    code = code_in(held)
    assert code.encode() not in stored_bytes(db)
    [(status, body)] = statuses(db)
    assert status == "queued" and body.startswith("\x00sealed:")

    sim.configure(resp_delay_ms=0)
    gw.start()
    url = await gw.wait_ready()
    await eventually(lambda: len(texts_to(sim, NUMBER)) == 2, timeout=15)
    assert texts_to(sim, NUMBER)[1] == held  # the same code, sent again
    await eventually(lambda: statuses(db)[0][0] == "delivered", timeout=15)
    assert statuses(db)[0][1] == WIPED_BODY
    assert code.encode() not in stored_bytes(db)
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        r = await http.post(
            "/v1/verify-otp", json={"verificationId": vid, "otp": code}, headers=key(k)
        )
        assert r.json()["data"]["verified"] is True, r.text
