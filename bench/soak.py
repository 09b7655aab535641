"""Soak: minutes of steady traffic through a gateway that keeps being hurt, then a count.

    uv run --frozen python bench/soak.py [--minutes 3] [--rate 150] [--concurrency 12]
        [--kill-every 25] [--fault-every 6] [--seed N] [--quick] [--keep]

Two processes besides this one, as in production:
- the SMSC simulator (this script re-run as `--sim-child`: the built-in SmscSimulator
  with its HTTP control surface, keeping every submit it receives so the end count
  covers the whole run);
- the gateway, `python -m smsgateway serve --config <tmp toml>` on a fixed REST port,
  one link to the simulator (window 20, response_timeout 2 s, enquire_link every 5 s).

While a steady load of sends runs (each with its own destination and transaction_id;
one in three is a 3-part message, GSM or UCS-2), faults are injected at random moments
through the simulator's control surface (`POST /disconnect`, `POST /unbind`,
`POST /config`: throttling, ESME_RMSGQFUL refusals, slow answers, answers that never
come, refused binds, receipts that beat their submit_sm_resp), each for a few seconds,
and the gateway is SIGKILLed and restarted on the same data directory every
`--kill-every` seconds (with jitter). A send whose answer is lost (connection refused
or cut by a kill) is retried with the same transaction_id until it gets one: the
gateway's idempotency must keep that from sending twice.

At the end the faults stop, and the script waits until every accepted message is
complete at the SMSC and reconciles: accepted (2xx) vs counted at the SMSC, lost
(must be 0: exit code 1 otherwise), duplicate part copies (at-least-once: allowed
only where a submit_sm_resp was lost; shown with how many fall near a kill or a
connection fault), refusals by kind, and the final states /sms/info shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_KEY = "soak-admin-key"
PASSWORD = "correct-horse-9"
NEAR_S = 3.0  # a duplicate's first copy within this long before a kill/fault is "explained"


# -- the simulator child ------------------------------------------------------------------


def sim_child(argv: list[str]) -> int:
    """Run the simulator in this process until SIGTERM (keeping every submit)."""
    from smsgateway.smscsim.simulator import SimulatorConfig, SmscSimulator

    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    args = p.parse_args(argv)

    async def run() -> None:
        sim = SmscSimulator(
            SimulatorConfig(
                port=args.port,
                http_port=args.http_port,
                dlr_delay_ms=30.0,
                keep_messages=5_000_000,
            )
        )
        await sim.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        print("simulator ready", flush=True)
        await stop.wait()
        await sim.stop()

    asyncio.run(run())
    return 0


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Child:
    cmd: list[str]
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=out, env=self.env)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


async def wait_http(url: str, timeout: float, child: Child) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if child.proc is not None and child.proc.poll() is not None:
                tail = child.log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"{child.cmd[2:4]} exited {child.proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within {timeout}s")
            await asyncio.sleep(0.05)


def gateway_config(path: Path, data: Path, rest_port: int, smsc_port: int) -> Path:
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
rest_port = {rest_port}
grpc_port = 0

[storage]
path = "{data / "gw.db"}"

[auth]
admin_api_key = "{ADMIN_KEY}"
argon2_time_cost = 1
argon2_memory_cost = 8

[ratelimit]
login_per_minute = 0

[messages]
send_budget_s = 0.5

[[smpp.links]]
id = 1
name = "soak"
host = "127.0.0.1"
port = {smsc_port}
system_id = "soak"
password = "pw"
limit_tps = 0
window = 20
response_timeout = 2.0
enquire_link_interval = 5.0
""",
        encoding="utf-8",
    )
    return path


# -- what is sent ---------------------------------------------------------------------------


def destination(i: int) -> str:
    return f"+4916{i:08d}"


def text_for(i: int) -> str:
    if i % 6 == 0:
        return f"soak {i}: " + "long GSM text that needs three parts " * 11
    if i % 6 == 3:
        return f"soak {i}: Grüße 👋 " + "ещё немного текста " * 8
    return f"soak {i}: hello"


def parts_of(i: int) -> int:
    return 3 if i % 3 == 0 else 1


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Stats:
    accepted: dict[int, dict[str, Any]] = field(default_factory=dict)
    lost_answers: Counter[str] = field(default_factory=Counter)  # retried with the same tx
    refusals: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    kills: list[float] = field(default_factory=list)
    faults: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, kind
    latencies: list[float] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.rest_port = free_port()
        self.smsc_port = free_port()
        self.control_port = free_port()
        self.base = f"http://127.0.0.1:{self.rest_port}"
        self.control = f"http://127.0.0.1:{self.control_port}"
        py = sys.executable
        self.sim = Child(
            [
                py,
                str(Path(__file__).resolve()),
                "--sim-child",
                "--port",
                str(self.smsc_port),
                "--http-port",
                str(self.control_port),
            ],
            work / "sim.log",
        )
        config = gateway_config(
            work / "gateway.toml", work / "data", self.rest_port, self.smsc_port
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SMSGATEWAY_") and k != "ADMIN_API_KEY"
        }
        self.gateway = Child(
            [py, "-m", "smsgateway", "serve", "--config", str(config), "--log-level", "WARNING"],
            work / "gateway.log",
            env,
        )
        self.headers: dict[str, str] = {}
        self.gateway_up = asyncio.Event()

    async def start_gateway(self) -> None:
        self.gateway.start()
        await wait_http(f"{self.base}/healthy", 30, self.gateway)
        self.gateway_up.set()

    async def login(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            r = await http.post(
                "/api/v1/auth/register",
                json={"email": "soak@example.com", "password": PASSWORD},
                headers={"X-Admin-Key": ADMIN_KEY},
            )
            r.raise_for_status()
            app_id = r.json()["app_id"]
            r = await http.post(
                "/api/v1/auth/login",
                json={"email": "soak@example.com", "password": PASSWORD, "app_id": app_id},
            )
            r.raise_for_status()
            self.headers = {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(app_id)}

    async def sender(
        self, http: httpx.AsyncClient, indexes: itertools.count[int], until: float
    ) -> None:
        interval = self.args.concurrency / self.args.rate
        while time.monotonic() < until:
            i = next(indexes)
            body = {
                "esme": 1,
                "source": "Soak",
                "destination": destination(i),
                "message": text_for(i),
                "transaction_id": f"soak-{i}",
            }
            while True:  # until this message has an answer
                started = time.monotonic()
                try:
                    r = await http.post("/api/v1/sms/send", json=body, headers=self.headers)
                except httpx.TransportError as exc:
                    self.stats.lost_answers[type(exc).__name__] += 1
                    await asyncio.sleep(0.05)
                    continue
                self.stats.latencies.append(time.monotonic() - started)
                try:
                    answer = r.json()
                except ValueError:
                    answer = {"error": r.text[:40]}
                if r.status_code == 200 and answer.get("success"):
                    self.stats.accepted[i] = answer
                    break
                key = f"{r.status_code} {answer.get('error', '')}"
                self.stats.refusals[key] += 1
                if r.status_code >= 500 and r.status_code != 500:
                    await asyncio.sleep(0.1)  # 503: storage or link; try again
                    continue
                break  # 500 (SMSC refusal) or 4xx: an answer, not an acceptance
            await asyncio.sleep(interval * (0.5 + self.rng.random()))

    async def configure(self, http: httpx.AsyncClient, **settings: Any) -> None:
        r = await http.post(f"{self.control}/config", json=settings)
        r.raise_for_status()

    async def fault(self, http: httpx.AsyncClient) -> None:
        kind = self.rng.choice(
            [
                "disconnect",
                "unbind",
                "throttle",
                "msgqful",
                "slow answers",
                "answers never come",
                "refused binds",
                "receipts before resps",
            ]
        )
        started = time.monotonic()
        hold = self.rng.uniform(2.0, 5.0)
        if kind == "disconnect":
            await http.post(f"{self.control}/disconnect")
            hold = 0.0
        elif kind == "unbind":
            await http.post(f"{self.control}/unbind")
            hold = 0.0
        elif kind == "throttle":
            await self.configure(http, throttle_tps=max(5, self.args.rate // 3))
        elif kind == "msgqful":
            await self.configure(http, fail_rate=0.5, fail_status=0x14)
        elif kind == "slow answers":
            await self.configure(http, resp_delay_ms=1500)
        elif kind == "answers never come":
            await self.configure(http, resp_delay_ms=600_000)
        elif kind == "refused binds":
            await self.configure(http, refuse_binds=True)
            await http.post(f"{self.control}/disconnect")
        elif kind == "receipts before resps":
            await self.configure(http, resp_delay_ms=300, dlr_delay_ms=10)
        await asyncio.sleep(hold)
        await self.heal(http)
        self.stats.faults.append((started, time.monotonic(), kind))

    async def heal(self, http: httpx.AsyncClient) -> None:
        await self.configure(
            http,
            throttle_tps=0,
            fail_rate=0.0,
            resp_delay_ms=0,
            refuse_binds=False,
            dlr_delay_ms=30,
        )

    async def chaos(self, until: float) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            next_kill = time.monotonic() + self.args.kill_every * self.rng.uniform(0.5, 1.5)
            while time.monotonic() < until:
                await asyncio.sleep(self.args.fault_every * self.rng.uniform(0.5, 1.5))
                if time.monotonic() >= until:
                    break
                if time.monotonic() >= next_kill:
                    self.stats.kills.append(time.monotonic())
                    self.gateway_up.clear()
                    self.gateway.kill()
                    await asyncio.sleep(self.rng.uniform(0.0, 1.0))
                    await self.start_gateway()
                    next_kill = time.monotonic() + self.args.kill_every * self.rng.uniform(0.5, 1.5)
                else:
                    await self.fault(http)
            await self.heal(http)

    async def smsc_record(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=120) as http:
            r = await http.get(f"{self.control}/messages", params={"limit": 10_000_000})
            r.raise_for_status()
            messages: list[dict[str, Any]] = r.json()["messages"]
            return messages

    async def run(self) -> int:
        from smsgateway.smpp.text import decode_short_message

        self.sim.start()
        await wait_http(f"{self.control}/health", 30, self.sim)
        await self.start_gateway()
        await self.login()
        seconds = self.args.minutes * 60
        print(
            f"# soak {seconds:.0f} s: ~{self.args.rate} sends/s from {self.args.concurrency} "
            f"clients, a fault every ~{self.args.fault_every} s, SIGKILL every "
            f"~{self.args.kill_every} s, seed {self.args.seed}; work dir {self.work}",
            flush=True,
        )
        started = time.monotonic()
        until = started + seconds
        indexes = itertools.count()
        limits = httpx.Limits(max_connections=self.args.concurrency * 2)
        async with httpx.AsyncClient(base_url=self.base, timeout=30, limits=limits) as http:
            await asyncio.gather(
                self.chaos(until),
                *(self.sender(http, indexes, until) for _ in range(self.args.concurrency)),
            )
        load_seconds = time.monotonic() - started
        accepted = self.stats.accepted

        # Everything accepted must reach the SMSC.
        def by_destination(record: list[dict[str, Any]]) -> dict[str, dict[int, list[Any]]]:
            out: dict[str, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
            for m in record:
                if m["status"] != "OK":
                    continue
                inbound = decode_short_message(
                    bytes.fromhex(m["short_message"]),
                    m["data_coding"],
                    udhi=bool(m["esm_class"] & 0x40),
                )
                seq = inbound.concat.seq if inbound.concat else 1
                out["+" + m["destination_addr"]][seq].append(
                    (inbound.text, m["received_monotonic"])
                )
            return out

        deadline = time.monotonic() + 120
        while True:
            got = by_destination(await self.smsc_record())
            lost = [
                i
                for i in accepted
                if sorted(got.get(destination(i), {})) != list(range(1, parts_of(i) + 1))
            ]
            if not lost or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        record = await self.smsc_record()
        wrong = [
            i
            for i in accepted
            if i not in lost
            and "".join(got[destination(i)][s][0][0] for s in sorted(got[destination(i)]))
            != text_for(i)
        ]
        duplicates = 0
        near_kill = near_fault = 0
        cut = {"disconnect", "unbind", "answers never come", "refused binds"}
        for i in accepted:
            for copies in got.get(destination(i), {}).values():
                extra = len(copies) - 1
                if extra <= 0:
                    continue
                duplicates += extra
                first = min(t for _, t in copies)
                if any(0 <= k - first <= NEAR_S for k in self.stats.kills):
                    near_kill += extra
                elif any(
                    s - NEAR_S <= first <= e + NEAR_S
                    for s, e, kind in self.stats.faults
                    if kind in cut
                ):
                    near_fault += extra

        # What the gateway shows for each accepted message.
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            sem = asyncio.Semaphore(16)

            async def info(body: dict[str, Any]) -> None:
                async with sem:
                    r = await http.post(
                        "/api/v1/sms/info",
                        json={"message_id": body["message_id"]},
                        headers=self.headers,
                    )
                    self.stats.statuses[r.json().get("status", str(r.status_code))] += 1

            for _ in range(30):  # receipts of the last messages settle
                self.stats.statuses.clear()
                await asyncio.gather(*(info(b) for b in accepted.values()))
                if set(self.stats.statuses) <= {"delivered", "rejected"}:
                    break
                await asyncio.sleep(1.0)

        parts = sum(parts_of(i) for i in accepted)
        ok_submits = sum(1 for m in record if m["status"] == "OK")
        lat = sorted(self.stats.latencies) or [0.0]
        faults = Counter(kind for _, _, kind in self.stats.faults)
        print(
            f"load: {load_seconds:.0f} s; sends accepted (2xx): {len(accepted)} messages, "
            f"{parts} parts; {len(accepted) / load_seconds:.1f} msgs/s"
        )
        print(
            f"answers lost to kills/refused connections (retried, same transaction_id): "
            f"{sum(self.stats.lost_answers.values())} {dict(self.stats.lost_answers)}"
        )
        print(f"other answers: {dict(self.stats.refusals) or 'none'}")
        print(
            f"HTTP latency p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
            f"p99 {lat[int(len(lat) * 0.99)] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )
        print(
            f"faults injected: {sum(faults.values())} {dict(faults)}; "
            f"gateway SIGKILLs: {len(self.stats.kills)}"
        )
        print(f"SMSC: {len(record)} submits received, {ok_submits} accepted")
        print(
            f"LOST (accepted, not complete at the SMSC): {len(lost)}"
            + (f" e.g. {lost[:10]}" if lost else "")
        )
        print(f"wrong text at the SMSC: {len(wrong)}")
        print(
            f"duplicate part copies at the SMSC: {duplicates} "
            f"({near_kill} within {NEAR_S:.0f} s before a kill, {near_fault} around a "
            f"connection fault, {duplicates - near_kill - near_fault} elsewhere: response "
            "timeouts under slow/throttled answers)"
        )
        print(f"final states (/sms/info): {dict(self.stats.statuses)}")
        return 1 if lost or wrong else 0


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    soak = Soak(args, work)
    try:
        return await soak.run()
    finally:
        soak.gateway.stop()
        soak.sim.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"# kept {work}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--sim-child"]:
        return sim_child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=150, help="target sends per second")
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--kill-every", type=float, default=25.0, help="seconds, with jitter")
    parser.add_argument("--fault-every", type=float, default=6.0, help="seconds, with jitter")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="45 seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 0.75
        args.kill_every = min(args.kill_every, 15.0)
    if args.seed is None:
        args.seed = random.randrange(1, 1_000_000)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
