"""Nothing accepted is lost: the gateway as a real process, killed with SIGKILL.

The gateway runs as `python -m smsgateway serve --config <toml>` on a SQLite file in
tmp_path; the SMSC is the in-process simulator, so the test sees exactly what reached
the far end. Every wait is bounded and every process is killed in `finally`.
"""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwkit import eventually
from gwproc import GatewayProcess, free_port
from smsgateway.smpp.text import decode_short_message
from smsgateway.smscsim.simulator import SmscSimulator

ADMIN_KEY = "crash-admin-key"
PASSWORD = "correct-horse-9"
START_TIMEOUT = 20.0


def write_config(
    path: Path,
    data_dir: Path,
    smsc_port: int,
    *,
    admin_key: str = ADMIN_KEY,
    send_budget_s: float = 0.3,
    response_timeout: float = 5.0,
    window: int = 50,
    extra: str = "",
) -> Path:
    """The README's TOML shape, with cheap argon2 and ephemeral REST/gRPC ports."""
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
rest_port = 0
grpc_port = 0

[storage]
path = "{data_dir / "gw.db"}"

[auth]
admin_api_key = "{admin_key}"
argon2_time_cost = 1
argon2_memory_cost = 8

[messages]
send_budget_s = {send_budget_s}

[[smpp.links]]
id = 1
name = "smsc-1"
host = "127.0.0.1"
port = {smsc_port}
system_id = "gw"
password = "pw"
limit_tps = 0
window = {window}
response_timeout = {response_timeout}
enquire_link_interval = 30.0
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def processes() -> AsyncIterator[Callable[..., GatewayProcess]]:
    made: list[GatewayProcess] = []

    def make(config: Path, log: Path, env: dict[str, str] | None = None) -> GatewayProcess:
        gw = GatewayProcess(config, log, env)
        made.append(gw)
        return gw

    try:
        yield make
    finally:
        for gw in made:
            gw.kill()


async def user_headers(http: httpx.AsyncClient) -> dict[str, str]:
    r = await http.post(
        "/api/v1/auth/register",
        json={"email": "crash@example.com", "password": PASSWORD},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert r.status_code == 201, r.text
    app_id = r.json()["app_id"]
    r = await http.post(
        "/api/v1/auth/login",
        json={"email": "crash@example.com", "password": PASSWORD, "app_id": app_id},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(app_id)}


def text_for(i: int) -> str:
    """Every third message is long (GSM 3 parts or UCS-2 3 parts), the rest single."""
    if i % 6 == 0:
        return f"msg {i}: " + "long GSM text that needs three parts " * 11
    if i % 6 == 3:
        return f"msg {i}: Grüße 👋 " + "ещё немного текста " * 8
    return f"msg {i}: hello"


def destination(i: int) -> str:
    return f"+4915100{i:05d}"


async def send_all(
    http: httpx.AsyncClient, headers: dict[str, str], indexes: range
) -> dict[int, dict[str, Any]]:
    async def one(i: int) -> tuple[int, dict[str, Any]]:
        r = await http.post(
            "/api/v1/sms/send",
            json={
                "esme": 1,
                "source": "Crash",
                "destination": destination(i),
                "message": text_for(i),
                "transaction_id": f"tx-{i}",
            },
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["success"] is True, body
        return i, body

    return dict(await asyncio.gather(*(one(i) for i in indexes)))


def received(sim: SmscSimulator) -> dict[str, dict[int, list[str]]]:
    """destination -> part seq -> texts of every submit of that part the SMSC got."""
    out: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for _mid, _sid, pdu, _at, _status in sim.messages:
        inbound = decode_short_message(
            pdu.short_message, pdu.data_coding, udhi=bool(pdu.esm_class & 0x40)
        )
        seq = inbound.concat.seq if inbound.concat else 1
        out["+" + pdu.destination_addr][seq].append(inbound.text)
    return out


def complete(sim: SmscSimulator, indexes: range, parts: dict[int, int]) -> bool:
    got = received(sim)
    return all(len(got.get(destination(i), {})) == parts[i] for i in indexes)


def check_texts(sim: SmscSimulator, indexes: range) -> dict[int, int]:
    """Every part of every message arrived and they join to the sent text; the
    number of extra copies per message."""
    got = received(sim)
    extra: dict[int, int] = {}
    for i in indexes:
        by_seq = got[destination(i)]
        seqs = sorted(by_seq)
        assert seqs == list(range(1, len(seqs) + 1)), (i, seqs)
        for seq in seqs:
            assert len(set(by_seq[seq])) == 1, (i, seq, by_seq[seq])
        assert "".join(by_seq[s][0] for s in seqs) == text_for(i), i
        extra[i] = sum(len(v) - 1 for v in by_seq.values())
    return extra


async def all_delivered(
    http: httpx.AsyncClient, headers: dict[str, str], sent: dict[int, dict[str, Any]]
) -> bool:
    for body in sent.values():
        r = await http.post(
            "/api/v1/sms/info", json={"message_id": body["message_id"]}, headers=headers
        )
        if r.json().get("status") != "delivered":
            return False
    return True


def parts_of(i: int) -> int:
    if i % 6 == 0:
        return 3
    if i % 6 == 3:
        return 3
    return 1


N = 20


async def test_accepted_while_smsc_down_survive_sigkill(
    tmp_path: Path, processes, make_sim: Callable[..., Awaitable[SmscSimulator]]
) -> None:
    smsc_port = free_port()
    config = write_config(tmp_path / "gw.toml", tmp_path / "data", smsc_port)
    log = tmp_path / "gateway.log"
    gw = processes(config, log)
    gw.start()
    url = await gw.wait_ready()
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        headers = await user_headers(http)
        r = await http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=headers)
        assert r.json()["persist"] is False
        sent = await send_all(http, headers, range(N))
    assert all(b["status"] == "queued" and b["sms_ids"] == [] for b in sent.values())

    gw.kill()  # SIGKILL: no shutdown code runs
    sim = await make_sim(port=smsc_port)
    gw.start()
    url = await gw.wait_ready()
    expected = {i: parts_of(i) for i in range(N)}
    await eventually(lambda: complete(sim, range(N), expected), timeout=20)
    extra = check_texts(sim, range(N))
    assert sum(extra.values()) == 0 and sim.duplicates == 0
    assert sim.submits == sum(expected.values())

    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        # The token from before the crash still works: secrets live in the data dir.
        await eventually(lambda: all_delivered(http, headers, sent), timeout=20)
        # transaction_id still names the first answer after the restart.
        r = await http.post(
            "/api/v1/sms/send",
            json={
                "esme": 1,
                "source": "Crash",
                "destination": destination(0),
                "message": text_for(0),
                "transaction_id": "tx-0",
            },
            headers=headers,
        )
        assert r.json()["message_id"] == sent[0]["message_id"]
    assert sim.submits == sum(expected.values())


async def test_in_flight_submits_survive_sigkill(
    tmp_path: Path, processes, make_sim: Callable[..., Awaitable[SmscSimulator]]
) -> None:
    sim = await make_sim()
    config = write_config(
        tmp_path / "gw.toml", tmp_path / "data", sim.smpp_port, response_timeout=60.0
    )
    gw = processes(config, tmp_path / "gateway.log")
    gw.start()
    url = await gw.wait_ready()
    acked = range(0, 10)  # fully answered before the crash
    in_flight = range(10, 22)  # at the SMSC, submit_sm_resp held back, then SIGKILL
    expected = {i: parts_of(i) for i in range(22)}
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        headers = await user_headers(http)

        async def bound() -> bool:
            r = await http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=headers)
            return bool(r.json()["persist"])

        await eventually(bound, timeout=10)
        sent = await send_all(http, headers, acked)
        assert all(b["status"] == "submitted" for b in sent.values())
        # Receipts arrived, so the submit_sm_resps are committed too.
        await eventually(lambda: all_delivered(http, headers, sent), timeout=20)

        sim.configure(resp_delay_ms=60_000)
        sent |= await send_all(http, headers, in_flight)
        in_flight_parts = sum(expected[i] for i in in_flight)
        assert all(sent[i]["status"] == "queued" for i in in_flight)
        await eventually(lambda: sim.unanswered == in_flight_parts, timeout=10)

    gw.kill()
    unanswered_at_kill = sim.unanswered
    sim.configure(resp_delay_ms=0)
    submits_before = sim.submits
    gw.start()
    url = await gw.wait_ready()
    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        await eventually(lambda: all_delivered(http, headers, sent), timeout=30)
    extra = check_texts(sim, range(22))
    duplicates = sum(extra.values())
    print(
        f"\nin flight at SIGKILL: {unanswered_at_kill} parts; "
        f"resent after restart: {sim.submits - submits_before}; duplicates at the SMSC: "
        f"{duplicates} (simulator counted {sim.duplicates})"
    )
    # Parts whose resp had arrived are never sent twice; the others at most twice.
    assert all(extra[i] == 0 for i in acked), extra
    assert all(extra[i] <= expected[i] for i in in_flight), extra
    assert duplicates <= unanswered_at_kill
    assert sim.duplicates == duplicates


async def test_sigterm_when_idle_exits_cleanly_and_unbinds(
    tmp_path: Path, processes, make_sim: Callable[..., Awaitable[SmscSimulator]]
) -> None:
    sim = await make_sim()
    config = write_config(tmp_path / "gw.toml", tmp_path / "data", sim.smpp_port)
    gw = processes(config, tmp_path / "gateway.log")
    gw.start()
    await gw.wait_ready()
    await eventually(lambda: sim.binds == 1, timeout=10)
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGTERM)
    code = await gw.wait_exit(timeout=10)
    assert code == 0, gw.log_text()
    await eventually(lambda: sim.closes.get("unbound by ESME", 0) == 1, timeout=5)
    assert "shutting down" in gw.log_text()
