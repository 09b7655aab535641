"""End-to-end SendMessage load over gRPC, and the same load over REST for comparison.

    uv run --frozen python bench/grpc_load.py [-n 10000] [-c 32] [--face grpc|rest|both]
                                              [--rounds 3] [--clients 1]

For each round and face it starts a fresh SMSC simulator (`smsgateway smsc-sim`) and a
fresh gateway (`smsgateway serve --config <tmp toml>`) as separate processes, registers
and logs in a user, waits for the link to bind, then sends N messages with C calls in
flight. Every call carries a JWT and X-App-ID that the gateway checks, a unique
transaction_id (so the idempotency store is written), and asks for a delivery receipt;
the run ends only when the gateway has matched a receipt for every message.

The REST face is driven by a minimal keep-alive HTTP/1.1 client in the same event
loop style, so the two figures differ by the face, not by the load generator.

Prints per run: msgs/s, p50/p99 latency, CPU µs per message of the gateway (all its
threads, until the last receipt) and of the load generator, receipts matched; with both
faces, the gRPC/REST throughput ratio (target >= 0.7), also as the median of each
round's own ratio, which a shared, noisy machine disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil

from smsgateway.api.grpc.gen import auth_pb2, auth_pb2_grpc, sms_pb2, sms_pb2_grpc

ADMIN_KEY = "bench-admin-key"
PASSWORD = "bench-password-1"
TEXT = "Your code is 482913. It expires in 10 minutes."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    """A simulator and a gateway, each its own process."""

    tmp: Path
    sim: subprocess.Popen[bytes]
    gateway: subprocess.Popen[bytes]
    rest_port: int
    grpc_port: int

    @classmethod
    def start(cls, window: int) -> Stack:
        tmp = Path(tempfile.mkdtemp(prefix="grpc-bench-"))
        smpp, sim_http, rest, grpc_port = (free_port() for _ in range(4))
        sim = subprocess.Popen(
            [
                *(sys.executable, "-m", "smsgateway", "smsc-sim", "--port", str(smpp)),
                *("--http-port", str(sim_http), "--dlr-delay-ms", "50", "--log-level", "WARNING"),
            ]
        )
        config = tmp / "gateway.toml"
        config.write_text(
            f"""
[server]
host = "127.0.0.1"
rest_port = {rest}
grpc_port = {grpc_port}

[storage]
path = "{tmp / "data" / "gw.db"}"

[auth]
admin_api_key = "{ADMIN_KEY}"

[messages]
send_budget_s = 5.0

[[smpp.links]]
id = 1
name = "bench"
host = "127.0.0.1"
port = {smpp}
limit_tps = 0
window = {window}
""",
            encoding="utf-8",
        )
        gateway = subprocess.Popen(
            [
                *(sys.executable, "-m", "smsgateway", "serve", "--config", str(config)),
                *("--log-level", "WARNING"),
            ]
        )
        stack = cls(tmp, sim, gateway, rest, grpc_port)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{rest}/healthy", timeout=1):
                    break
            except OSError:
                if gateway.poll() is not None or time.monotonic() > deadline:
                    stack.stop()
                    raise SystemExit("gateway did not start") from None
                time.sleep(0.1)
        return stack

    def receipts(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/metrics") as r:
            text = r.read().decode()
        return sum(
            float(m.group(1))
            for m in re.finditer(r"^smsgateway_receipts_total\{[^}]*\} (\S+)$", text, re.M)
        )

    def stop(self) -> None:
        for proc in (self.gateway, self.sim):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.gateway, self.sim):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- clients -------------------------------------------------------------------------


async def login(grpc_port: int) -> tuple[str, int]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        auth = auth_pb2_grpc.AuthStub(channel)
        reg = await auth.Register(
            auth_pb2.RegisterRequest(email="bench@example.com", password=PASSWORD),
            metadata=(("x-admin-key", ADMIN_KEY),),
        )
        reply = await auth.Login(
            auth_pb2.LoginRequest(email="bench@example.com", password=PASSWORD, app_id=reg.app_id)
        )
        md = (("authorization", f"Bearer {reply.token}"), ("x-app-id", str(reg.app_id)))
        sms = sms_pb2_grpc.SmsServiceStub(channel)
        deadline = time.monotonic() + 30
        while not (await sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=md)).persist:
            if time.monotonic() > deadline:
                raise SystemExit("link did not bind")
            await asyncio.sleep(0.1)
        return reply.token, reg.app_id


Send = Callable[[int], Awaitable[bool]]


async def grpc_sender(port: int, token: str, app_id: int, tag: str) -> tuple[Send, Any]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = sms_pb2_grpc.SmsServiceStub(channel)
    md = (("authorization", f"Bearer {token}"), ("x-app-id", str(app_id)))

    async def send(i: int) -> bool:
        reply = await stub.SendMessage(
            sms_pb2.SendMessageRequest(
                esme=1,
                source="Bench",
                destination=f"+4477{i:08d}",
                message=TEXT,
                transaction_id=f"{tag}-{i}",
            ),
            metadata=md,
        )
        return reply.success and reply.status == "submitted"

    return send, channel.close


async def grpc_batch_sender(
    port: int, token: str, app_id: int, tag: str, batch: int
) -> tuple[Send, Any]:
    """`send(i)` sends messages i*batch .. i*batch+batch-1 in one SendMessages call."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = sms_pb2_grpc.SmsServiceStub(channel)
    md = (("authorization", f"Bearer {token}"), ("x-app-id", str(app_id)))

    async def send(i: int) -> bool:
        first = i * batch
        reply = await stub.SendMessages(
            sms_pb2.SendMessagesRequest(
                messages=[
                    sms_pb2.SendMessageRequest(
                        esme=1,
                        source="Bench",
                        destination=f"+4477{k:08d}",
                        message=TEXT,
                        transaction_id=f"{tag}-{k}",
                    )
                    for k in range(first, first + batch)
                ]
            ),
            metadata=md,
        )
        return all(r.success and r.status == "submitted" for r in reply.results)

    return send, channel.close


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: request, read headers, read Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = int(re.search(rb"(?i)content-length: *(\d+)", headers).group(1))  # type: ignore[union-attr]
        return status, await self.reader.readexactly(length)


async def rest_sender(port: int, token: str, app_id: int, tag: str, c: int) -> tuple[Send, Any]:
    conns: asyncio.Queue[HttpConnection] = asyncio.Queue()
    opened = []
    for _ in range(c):
        conn = HttpConnection(*await asyncio.open_connection("127.0.0.1", port))
        opened.append(conn)
        conns.put_nowait(conn)
    head = (
        f"POST /api/v1/sms/send HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nX-App-ID: {app_id}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()

    async def send(i: int) -> bool:
        body = json.dumps(
            {
                "esme": 1,
                "source": "Bench",
                "destination": f"+4477{i:08d}",
                "message": TEXT,
                "transaction_id": f"{tag}-{i}",
            }
        ).encode()
        conn = await conns.get()
        try:
            status, answer = await conn.post(head, body)
        finally:
            conns.put_nowait(conn)
        return status == 200 and json.loads(answer)["status"] == "submitted"

    async def close() -> None:
        for conn in opened:
            conn.writer.close()

    return send, close


async def drive(send: Send, start: int, n: int, c: int) -> tuple[float, list[float], int]:
    """n sends, c in flight; (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    next_i = start

    async def worker() -> None:
        nonlocal next_i, failures
        while next_i < start + n:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            try:
                ok = await send(i)
            except Exception as exc:
                if not failures:
                    print(f"first failure: {exc!r}"[:300], flush=True)
                ok = False
            latencies.append(time.perf_counter() - t0)
            failures += not ok

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return time.perf_counter() - t0, latencies, failures


def client_process(
    face: str,
    port: int,
    token: str,
    app_id: int,
    tag: str,
    start: int,
    n: int,
    c: int,
    batch: int = 1,
) -> tuple[float, list[float], int, float]:
    """One load-generating process: (seconds, latencies, failures, its own CPU seconds)."""

    async def run() -> tuple[float, list[float], int, float]:
        calls = n
        if face == "grpc":
            send, close = await grpc_sender(port, token, app_id, tag)
        elif face == "grpc-batch":
            send, close = await grpc_batch_sender(port, token, app_id, tag, batch)
            calls = n // batch  # latencies below are per call of `batch` messages
        else:
            send, close = await rest_sender(port, token, app_id, tag, c)
        warm = min(200, n) if face != "grpc-batch" else max(1, 200 // batch)
        await drive(send, (start + 10**7) // batch, warm, c)  # warm-up, not counted
        cpu0 = time.process_time()
        seconds, latencies, failures = await drive(send, start // batch, calls, c)
        cpu = time.process_time() - cpu0
        await close()
        return seconds, latencies, failures, cpu

    try:
        import uvloop

        return uvloop.run(run())
    except ImportError:  # pragma: no cover
        return asyncio.run(run())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(
    face: str, n: int, c: int, clients: int, window: int, batch: int = 1
) -> dict[str, float]:
    stack = Stack.start(window)
    try:
        token, app_id = asyncio.run(login(stack.grpc_port))
        port = stack.rest_port if face == "rest" else stack.grpc_port
        gw = psutil.Process(stack.gateway.pid)
        cpu0 = sum(gw.cpu_times()[:2])
        share, extra = divmod(n, clients)
        jobs = [
            (
                face,
                port,
                token,
                app_id,
                f"{face}{k}",
                k * 10**8,
                share + (k < extra),
                c // clients,
                batch,
            )
            for k in range(clients)
        ]
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            results = pool.starmap(client_process, jobs)
        elapsed = max(r[0] for r in results)
        latencies = [x for r in results for x in r[1]]
        failures = sum(r[2] for r in results)
        client_cpu = sum(r[3] for r in results)
        warmups = [
            min(200, j[6]) if face != "grpc-batch" else max(1, 200 // batch) * batch for j in jobs
        ]
        expected = n + sum(warmups)
        deadline = time.monotonic() + 60
        while (matched := stack.receipts()) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
        # Measured once the receipts are in: their handling is part of a message's cost.
        cpu = sum(gw.cpu_times()[:2]) - cpu0
        return {
            "msgs_per_s": n / elapsed,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "cpu_us_per_msg": cpu / expected * 1e6,
            "client_cpu_us_per_msg": client_cpu / n * 1e6,
            "failures": failures,
            "receipts": matched,
            "expected_receipts": expected,
        }
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10000, help="messages per run")
    parser.add_argument("-c", type=int, default=32, help="calls in flight")
    parser.add_argument(
        "--face", choices=("grpc", "rest", "both", "grpc-batch", "all"), default="both"
    )
    parser.add_argument(
        "--batch", type=int, default=50, help="messages per SendMessages call (grpc-batch)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1, help="client processes")
    parser.add_argument("--window", type=int, default=50, help="SMPP window of the link")
    args = parser.parse_args()
    if args.n < 1 or args.c < args.clients:
        parser.error("need -n >= 1 and -c >= --clients")
    faces = {"both": ["grpc", "rest"], "all": ["grpc", "grpc-batch", "rest"]}.get(
        args.face, [args.face]
    )
    figures: dict[str, list[float]] = {f: [] for f in faces}
    print(f"cpus={os.cpu_count()} n={args.n} c={args.c} clients={args.clients}", flush=True)
    for round_no in range(args.rounds):
        for face in faces:
            r = one_run(face, args.n, args.c, args.clients, args.window, args.batch)
            figures[face].append(r["msgs_per_s"])
            print(
                f"round {round_no + 1} {face:10s}: {r['msgs_per_s']:7.0f} msgs/s  "
                f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                f"CPU/msg gateway {r['cpu_us_per_msg']:4.0f} us client "
                f"{r['client_cpu_us_per_msg']:4.0f} us  failures {r['failures']:.0f}  "
                f"receipts {r['receipts']:.0f}/{r['expected_receipts']:.0f}",
                flush=True,
            )
    for face in faces:
        print(f"median {face}: {statistics.median(figures[face]):.0f} msgs/s")
    if "grpc-batch" in faces and "rest" in faces:
        ratio = statistics.median(figures["grpc-batch"]) / statistics.median(figures["rest"])
        print(f"grpc-batch/rest throughput: {ratio:.2f} of medians (batch {args.batch})")
    if "grpc" in faces and "rest" in faces:
        ratio = statistics.median(figures["grpc"]) / statistics.median(figures["rest"])
        # Each round runs the faces back to back, so a round's own ratio cancels most of
        # the drift of a shared, noisy machine; its median is the steadier figure.
        rounds = zip(figures["grpc"], figures["rest"], strict=True)
        paired = statistics.median(g / r for g, r in rounds)
        print(f"grpc/rest throughput: {ratio:.2f} of medians, {paired:.2f} median of rounds")
        print("target: >= 0.70")
    return 0


if __name__ == "__main__":
    sys.exit(main())
