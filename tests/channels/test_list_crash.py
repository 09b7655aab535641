"""A priority list survives SIGKILL: the gateway as a real process, link 1's SMSC
refusing everything, link 2's SMSC holding its answers when the process is killed.
After the restart every accepted message goes through the list again and reaches
link 2's SMSC; the store records each try."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from gwkit import eventually
from gwproc import GatewayProcess
from smsgateway.smscsim.simulator import SmscSimulator

ADMIN_KEY = "list-crash-key"
PASSWORD = "correct-horse-9"
N = 10


def write_config(path: Path, data_dir: Path, refusing: int, holding: int) -> Path:
    links = "".join(
        f"""
[[smpp.links]]
id = {link_id}
host = "127.0.0.1"
port = {port}
system_id = "gw{link_id}"
password = "pw"
limit_tps = 0
window = 50
response_timeout = 60.0
"""
        for link_id, port in ((1, refusing), (2, holding))
    )
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

[messages]
send_budget_s = 0.3
{links}
[[smpp.lists]]
id = 200
members = [1, 2]
attempt_timeout_s = 30.0
""",
        encoding="utf-8",
    )
    return path


async def login(http: httpx.AsyncClient) -> dict[str, str]:
    r = await http.post(
        "/api/v1/auth/register",
        json={"email": "list@example.com", "password": PASSWORD},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert r.status_code == 201, r.text
    app_id = r.json()["app_id"]
    r = await http.post(
        "/api/v1/auth/login",
        json={"email": "list@example.com", "password": PASSWORD, "app_id": app_id},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(app_id)}


async def test_list_sends_in_flight_at_sigkill_go_out_after_the_restart(
    tmp_path: Path,
    gateway_process: Callable[[Path], GatewayProcess],
    make_sim: Callable[..., Awaitable[SmscSimulator]],
) -> None:
    refusing = await make_sim(fail_rate=1.0)
    holding = await make_sim()
    config = write_config(
        tmp_path / "gw.toml", tmp_path / "data", refusing.smpp_port, holding.smpp_port
    )
    gw = gateway_process(config)
    gw.start()
    url = await gw.wait_ready()
    await eventually(lambda: refusing.binds == 1 and holding.binds == 1, timeout=10)
    holding.configure(resp_delay_ms=60_000)
    sent: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        headers = await login(http)
        for i in range(N):
            r = await http.post(
                "/api/v1/sms/send",
                json={
                    "esme": 200,
                    "source": "Crash",
                    "destination": f"+4915100{i:05d}",
                    "message": f"list {i}",
                },
                headers=headers,
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "queued"  # the budget ran out at link 2
            sent[r.json()["message_id"]] = i
        await eventually(lambda: holding.unanswered == N, timeout=10)

    gw.kill()  # SIGKILL: no shutdown code runs
    holding.configure(resp_delay_ms=0)
    gw.start()
    url = await gw.wait_ready()
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:

        async def all_sent() -> bool:
            for message_id in sent:
                r = await http.post(
                    "/api/v1/sms/info", json={"message_id": message_id}, headers=headers
                )
                if r.json()["status"] not in ("submitted", "delivered"):
                    return False
            return True

        await eventually(all_sent, timeout=30)

    at_holding = [m["destination_addr"] for m in holding.recent_messages(1000)]
    for i in range(N):
        # Sent before the kill (unanswered) and again after it: at least once, at most twice.
        assert 1 <= at_holding.count(f"4915100{i:05d}") <= 2, i
    assert all(m["status"] == "ESME_RSUBMITFAIL" for m in refusing.recent_messages(1000))
    conn = sqlite3.connect(tmp_path / "data" / "gw.db")
    try:
        rows = conn.execute(
            "SELECT message_id, attempt, channel_id, outcome FROM attempts ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()
    by_message: dict[str, list[tuple[int, int, str]]] = {}
    for message_id, attempt, channel_id, outcome in rows:
        by_message.setdefault(message_id, []).append((attempt, channel_id, outcome))
    # Before the kill nothing had ended (link 2 held its answers); after it, each
    # message tried link 1 again (refused) and link 2 (accepted).
    assert by_message == {m: [(1, 1, "refused"), (2, 2, "accepted")] for m in sent}
