"""Nothing accepted is lost: the gateway as a real process, killed with SIGKILL.

The gateway runs as `python -m smsgateway serve --config <toml>` on a SQLite file in
tmp_path; the SMSC is the in-process simulator, so the test sees exactly what reached
the far end. Every wait is bounded and every process is killed in `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gwkit import eventually
from smsgateway.smpp.text import decode_short_message
from smsgateway.smscsim.simulator import SmscSimulator

ADMIN_KEY = "crash-admin-key"
PASSWORD = "correct-horse-9"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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


def clean_env(**overrides: str) -> dict[str, str]:
    """The test's environment without settings that would leak into the gateway."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMSGATEWAY_") and k not in ("ADMIN_API_KEY", "FORWARDED_ALLOW_IPS")
    }
    env.update(overrides)
    return env


class GatewayProcess:
    """`python -m smsgateway serve --config ...` as a child process, its log in a file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = log
        self.env = env if env is not None else clean_env()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log_offset = 0

    def start(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smsgateway", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=out,
                env=self.env,
            )

    def log_text(self) -> str:
        return self.log.read_bytes()[self._log_offset :].decode("utf-8", "replace")

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        """Until the REST port answers /healthy; the base URL."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self.port:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start:\n{self.log_text()}")
            for line in self.log_text().splitlines():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if event.get("event") == "gateway started":
                        self.port = int(event["rest_port"])
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    r = await http.get(f"{self.url}/healthy")
                    if r.json() == {"status": "ok"}:
                        return self.url
                if time.monotonic() > deadline:
                    raise AssertionError(f"/healthy never answered:\n{self.log_text()}")
                await asyncio.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.port = 0

    async def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.proc.poll()


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
