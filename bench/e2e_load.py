"""End-to-end load: HTTP sends through the gateway to the SMSC simulator, with receipts.

    uv run --frozen python bench/e2e_load.py [--messages 20000] [--concurrency 50]
        [--generator auto|wrk|python] [--profile /tmp/profile.txt] [--quick]

Three processes: the SMSC simulator (`python -m smsgateway smsc-sim`, receipts after
50 ms), the gateway (`python -m smsgateway serve --config <tmp toml>`: one link to the
simulator, limit_tps 0 i.e. unlimited, window 50, SQLite in a temporary directory)
and the load generator. The generator is `wrk` with bench/wrk/send.lua (Debian:
`apt-get install -y wrk`); without wrk a Python asyncio raw-socket generator runs
instead and every figure says so (it costs more client CPU on the same cores, so
its figures are lower bounds).

Honest conditions: every request carries a JWT the gateway checks (cached after the
first verification, as in production), a unique transaction_id (so every send also
writes its idempotency record), asks for a delivery receipt (the gateway default),
and every answer waits for its database commit and for the SMSC's submit_sm_resp (or
the send budget). Nothing is pipelined. A warm-up runs first and is not counted.

Printed figures:
- accepted msgs/s: sends answered 2xx / load-generator wall time;
- HTTP latency p50 / p90 / p99 / max (wrk's figures include the few GET /healthy
  a connection sends after its thread's share is done, see send.lua);
- time until the simulator counted all N submits (from the start of the load);
- receipts processed by the gateway (smsgateway_receipts_total on /metrics, read at
  the end) and the time until all N were applied (watched at the simulator: it counts
  the deliver_sm_resps, which the gateway sends after applying a receipt; polling the
  simulator, not the gateway, keeps the measurement off the gateway's CPU);
- gateway CPU per message: user+system CPU of the gateway process (all threads) from
  the start of the load until the last receipt was applied, divided by N; split into
  the event-loop thread and the rest (the store writer's SQLite work, mostly);
- non-2xx answers by status class, socket errors.

Targets (2-core machine): >= 3,000 msgs/s, p99 < 30 ms at concurrency 50, gateway
CPU <= 0.35 ms/message. `--profile OUT` samples the gateway with py-spy during the
load (raw collapsed stacks in OUT) and prints where its CPU goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil  # type: ignore[import-untyped,unused-ignore]

HERE = Path(__file__).resolve().parent
SEND_LUA = HERE / "wrk" / "send.lua"
ADMIN_KEY = "bench-admin-key"
EMAIL = "bench@example.com"
PASSWORD = "bench-password-1"

TARGET_RATE = 3000.0
TARGET_P99_MS = 30.0
TARGET_CPU_MS = 0.35

T = TypeVar("T")


# --- small helpers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_json(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def http_text(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text: str = resp.read().decode()
        return text


def wait_until(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            raise SystemExit(f"e2e_load: timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def metric_sum(text: str, name: str, label: str = "") -> float:
    """Sum of a Prometheus metric's samples (optionally only those with `label`)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ ") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def thread_cpu(proc: psutil.Process) -> dict[int, float]:
    """CPU seconds (user+system) per thread id."""
    return {t.id: float(t.user_time + t.system_time) for t in proc.threads()}


@dataclass
class Child:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=out, env=env)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"e2e_load: {self.name} exited {self.proc.returncode}:\n{tail}")

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)


def gateway_config(data_dir: Path, rest_port: int, smsc_port: int, window: int) -> str:
    return f"""
[server]
host = "127.0.0.1"
rest_port = {rest_port}
grpc_port = {free_port()}

[storage]
path = "{data_dir / "gateway.db"}"

[auth]
admin_api_key = "{ADMIN_KEY}"

[messages]
send_budget_s = 2.0

[[smpp.links]]
id = 1
name = "bench-link"
host = "127.0.0.1"
port = {smsc_port}
system_id = "bench"
password = "bench"
limit_tps = 0
window = {window}
response_timeout = 5.0
"""


# --- load generators -----------------------------------------------------------------


@dataclass
class LoadResult:
    generator: str
    sends: int
    ok: int
    elapsed_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: dict[str, int] = field(default_factory=dict)
    socket_errors: int = 0
    note: str = ""
    sample_error: str = ""


def run_wrk(
    url: str, token: str, app_id: int, n: int, concurrency: int, threads: int, run_id: str
) -> LoadResult:
    wrk = shutil.which("wrk")
    assert wrk is not None
    threads = max(1, min(threads, concurrency))
    limit_s = max(60, n // 200 + 60)
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{limit_s}s",
        "--timeout",
        "10s",
        "-s",
        str(SEND_LUA),
        url,
        "--",
        token,
        str(app_id),
        str(n),
        str(threads),
        run_id,
        "1",
    ]
    with tempfile.TemporaryDirectory(prefix="wrk-done-") as done_dir:
        cmd.append(done_dir)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wrk runs until -d; stop it (SIGINT: it still prints its summary) once every
        # thread has reported its share answered.
        deadline = time.monotonic() + limit_s + 30
        while proc.poll() is None and time.monotonic() < deadline:
            if len(os.listdir(done_dir)) >= threads:
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.005)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    done = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    line = next((x for x in done.stdout.splitlines() if x.startswith('{"wrk"')), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"e2e_load: wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = json.loads(line)
    non2xx = {k: int(r[f"non2xx_{k}"]) for k in ("4xx", "5xx", "other") if int(r[f"non2xx_{k}"])}
    answered = int(r["answered_sends"])
    return LoadResult(
        generator=f"wrk -t{threads} -c{concurrency} (bench/wrk/send.lua)",
        sends=answered,
        ok=answered - sum(non2xx.values()),
        elapsed_s=int(r["duration_us"]) / 1e6,
        p50_ms=int(r["p50_us"]) / 1000,
        p90_ms=int(r["p90_us"]) / 1000,
        p99_ms=int(r["p99_us"]) / 1000,
        max_ms=int(r["max_us"]) / 1000,
        non2xx=non2xx,
        socket_errors=int(r["socket_errors"]) + int(r["timeouts"]),
        note=f"{r['healthy_tail']} GET /healthy at the tail are in the latency figures"
        if r["healthy_tail"]
        else "",
        sample_error=str(r["sample"]),
    )


async def _python_load(
    host: str, port: int, token: str, app_id: int, n: int, concurrency: int, run_id: str
) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    sample = ""
    counter = iter(range(n))
    head = (
        "POST /api/v1/sms/send HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "X-App-ID: {app_id}\r\nContent-Type: application/json\r\nContent-Length: {{}}\r\n\r\n"
    ).format(host=f"{host}:{port}", token=token, app_id=app_id)

    async def worker() -> None:
        nonlocal errors, sample
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                body = (
                    f'{{"esme":1,"source":"Bench","destination":"+4478{i:09d}",'
                    f'"message":"Load test message {i}, run {run_id}",'
                    f'"transaction_id":"{run_id}-{i}"}}'
                ).encode()
                started = time.perf_counter()
                writer.write(head.format(len(body)).encode() + body)
                try:
                    status_line = await reader.readline()
                    status = int(status_line.split()[1])
                    length = 0
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b""):
                            break
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    data = await reader.readexactly(length)
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
                if not 200 <= status < 300 and not sample:
                    sample = f"{status} {data[:200].decode(errors='replace')}"
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    non2xx: dict[str, int] = {}
    for status, count in statuses.items():
        if not 200 <= status < 300:
            kind = f"{status // 100}xx" if status >= 400 else "other"
            non2xx[kind] = non2xx.get(kind, 0) + count
    return LoadResult(
        generator=f"FALLBACK python asyncio raw-socket generator, {concurrency} connections "
        "(prefer wrk: apt-get install -y wrk)",
        sends=sum(statuses.values()),
        ok=sum(c for s, c in statuses.items() if 200 <= s < 300),
        elapsed_s=elapsed,
        p50_ms=pct(0.50),
        p90_ms=pct(0.90),
        p99_ms=pct(0.99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0,
        non2xx=non2xx,
        socket_errors=errors,
        note="client in Python on the same cores: figures are lower bounds",
        sample_error=sample,
    )


def run_python(
    host: str, port: int, token: str, app_id: int, n: int, concurrency: int, run_id: str
) -> LoadResult:
    coro = _python_load(host, port, token, app_id, n, concurrency, run_id)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    return uvloop.run(coro)


def healthy_baseline(
    url: str, gw_proc: psutil.Process, concurrency: int, threads: int
) -> tuple[float, float]:
    """wrk on GET /healthy for 5 s: the web stack's own floor (no auth, body, store)."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    cpu0 = cpu_seconds(gw_proc)
    done = subprocess.run(
        [wrk, f"-t{threads}", f"-c{concurrency}", "-d5s", f"{url}/healthy"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    cpu = cpu_seconds(gw_proc) - cpu0
    match = re.search(r"(\d+) requests in ([\d.]+)s", done.stdout)
    if match is None:
        raise SystemExit(f"e2e_load: wrk baseline failed:\n{done.stdout}\n{done.stderr}")
    requests, seconds = int(match.group(1)), float(match.group(2))
    return requests / seconds, 1000 * cpu / max(requests, 1)


# --- profile -------------------------------------------------------------------------


def py_spy_command() -> list[str] | None:
    exe = shutil.which("py-spy")
    if exe:
        return [exe]
    uv = shutil.which("uv")
    if uv:
        return [uv, "run", "--frozen", "--with", "py-spy", "py-spy"]
    return None


def summarise_profile(path: Path, top: int = 25) -> str:
    """Where the gateway's CPU went, from py-spy's raw format (recorded with --threads).

    Per thread: its share of all samples; then, for the busiest threads, the self
    share (time in the function itself) and the inclusive share (the function and
    what it calls) of each function, as % of ALL samples, so figures add up across
    threads. py-spy leaves out idle threads (blocked in a syscall or on a lock).
    """
    per_thread: Counter[str] = Counter()
    self_counts: dict[str, Counter[str]] = {}
    incl_counts: dict[str, Counter[str]] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        thread = "all threads"
        if frames and frames[0].startswith("thread ("):
            thread = frames[0].split(": ", 1)[-1] if ": " in frames[0] else frames[0]
            frames = frames[1:]
        if not frames:
            continue
        total += count
        per_thread[thread] += count
        self_counts.setdefault(thread, Counter())[_frame_name(frames[-1])] += count
        incl = incl_counts.setdefault(thread, Counter())
        for name in {_frame_name(f) for f in frames}:
            incl[name] += count
    if not total:
        return "  (no samples)"
    out = [f"  {total} samples (non-idle), by thread:"]
    for thread, count in per_thread.most_common():
        out.append(f"  {100 * count / total:6.2f}%  {thread}")
    for thread, count in per_thread.most_common(2):
        if count < total * 0.05:
            break
        out.append(f"  -- {thread}: self time (% of all samples)")
        for name, c in self_counts[thread].most_common(top):
            out.append(f"  {100 * c / total:6.2f}%  {name}")
        out.append(f"  -- {thread}: inclusive time (% of all samples)")
        shown = 0
        for name, c in incl_counts[thread].most_common():
            if c >= count * 0.995:
                continue  # the thread's bootstrap frames: 100% of the thread
            out.append(f"  {100 * c / total:6.2f}%  {name}")
            shown += 1
            if shown >= top + 10:
                break
    return "\n".join(out)


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; drop the line number.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})" if file else name


# --- the run -------------------------------------------------------------------------


@dataclass
class Figures:
    load: LoadResult
    n: int
    smsc_all_s: float | None
    smsc_counted: int
    receipts: int
    receipts_all_s: float | None
    gateway_cpu_s: float
    loop_cpu_s: float  # the event-loop (main) thread alone
    sim_cpu_s: float
    accepted_metric: int
    parts_ok: int
    duplicates: int
    baseline: tuple[float, float] | None = None  # GET /healthy: req/s, CPU ms per request
    store_commits: int = 0
    store_units: int = 0

    @property
    def rate(self) -> float:
        return self.load.ok / self.load.elapsed_s if self.load.elapsed_s else 0.0

    @property
    def cpu_ms_per_msg(self) -> float:
        return 1000 * self.gateway_cpu_s / self.n


def run(args: argparse.Namespace) -> Figures:
    py = sys.executable
    smsc_port, sim_http, rest_port = free_port(), free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="smsgw-bench-"))
    print(f"# work dir {work} (logs: sim.log, gateway.log)", flush=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SMSGATEWAY_") and k != "ADMIN_API_KEY"
    }
    sim = Child(
        "simulator",
        [
            py,
            "-m",
            "smsgateway",
            "smsc-sim",
            "--port",
            str(smsc_port),
            "--http-port",
            str(sim_http),
            "--dlr-delay-ms",
            str(args.dlr_delay_ms),
            "--log-level",
            "WARNING",
        ],
        work / "sim.log",
    )
    config = work / "gateway.toml"
    config.write_text(gateway_config(work / "data", rest_port, smsc_port, args.window))
    gateway = Child(
        "gateway",
        [py, "-m", "smsgateway", "serve", "--config", str(config), "--log-level", "WARNING"],
        work / "gateway.log",
    )
    sim_url = f"http://127.0.0.1:{sim_http}"
    base = f"http://127.0.0.1:{rest_port}"
    spy: subprocess.Popen[bytes] | None = None
    try:
        sim.start(env)
        wait_until(lambda: http_json("GET", f"{sim_url}/stats")[0] == 200, 20, "simulator")
        gateway.start(env)

        def healthy() -> bool:
            gateway.check_alive()
            answer: object = http_json("GET", f"{base}/healthy", timeout=2)[1]
            return answer == {"status": "ok"}

        wait_until(healthy, 30, "gateway /healthy")
        status, reg = http_json(
            "POST",
            f"{base}/api/v1/auth/register",
            {"email": EMAIL, "password": PASSWORD},
            {"X-Admin-Key": ADMIN_KEY},
        )
        assert status == 201, reg
        app_id = int(reg["app_id"])
        status, body = http_json(
            "POST",
            f"{base}/api/v1/auth/login",
            {"email": EMAIL, "password": PASSWORD, "app_id": app_id},
        )
        assert status == 200, body
        token = str(body["token"])
        auth = {"Authorization": f"Bearer {token}", "X-App-ID": str(app_id)}
        wait_until(
            lambda: http_json("POST", f"{base}/api/v1/sms/check-esme", {"esme": 1}, auth)[1][
                "persist"
            ],
            20,
            "the link to bind",
        )

        use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
        if args.generator == "wrk" and not shutil.which("wrk"):
            raise SystemExit("e2e_load: wrk not found; install it with `apt-get install -y wrk`")
        if not use_wrk and args.generator == "auto":
            print(
                "# wrk not found (install: apt-get install -y wrk); using the Python fallback "
                "load generator, figures labelled FALLBACK",
                flush=True,
            )
        run_id = f"{int(time.time())}"

        def load(n: int, tag: str) -> LoadResult:
            if use_wrk:
                return run_wrk(base, token, app_id, n, args.concurrency, args.threads, tag)
            return run_python("127.0.0.1", rest_port, token, app_id, n, args.concurrency, tag)

        def metrics() -> str:
            return http_text(f"{base}/metrics")

        def smsc_submits() -> int:
            return int(http_json("GET", f"{sim_url}/stats")[1]["submits"])

        def smsc_acked() -> int:
            return int(http_json("GET", f"{sim_url}/stats")[1]["receipts_acked"])

        # Warm-up (not counted): imports, caches, SQLite pages, the token cache.
        if args.warmup:
            load(args.warmup, f"warm{run_id}")
            wait_until(lambda: smsc_submits() >= args.warmup, 60, "warm-up submits")
            wait_until(lambda: smsc_acked() >= args.warmup, 60, "warm-up receipts", every=0.2)
        time.sleep(0.5)

        gw_proc = psutil.Process(gateway.pid)
        sim_proc = psutil.Process(sim.pid)
        m0 = metrics()
        receipts0 = metric_sum(m0, "smsgateway_receipts_total")
        accepted0 = metric_sum(m0, "smsgateway_messages_accepted_total")
        parts0 = metric_sum(m0, "smsgateway_parts_submitted_total", 'result="ok"')
        commits0 = metric_sum(m0, "smsgateway_store_commits_total")
        units0 = metric_sum(m0, "smsgateway_store_units_total")
        stats0 = http_json("GET", f"{sim_url}/stats")[1]
        submits0, dup0 = int(stats0["submits"]), int(stats0["duplicates"])
        acked0 = int(stats0["receipts_acked"])
        if args.profile:
            cmd = py_spy_command()
            if cmd is None:
                print("# py-spy not found: no profile", flush=True)
            else:
                spy = subprocess.Popen(
                    [
                        *cmd,
                        *("record", "--threads", "--gil", "--format", "raw", "-r", "200"),
                        *("-p", str(gateway.pid), "-o", str(args.profile)),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(work / "py-spy.log").open("wb"),
                )
                time.sleep(2.0)  # let it attach before the load starts
        cpu0, sim_cpu0 = cpu_seconds(gw_proc), cpu_seconds(sim_proc)
        threads0 = thread_cpu(gw_proc)
        started = time.monotonic()

        result = load(args.messages, run_id)

        n = args.messages
        smsc_all: float | None = None
        receipts_all: float | None = None
        # Drain: watched at the simulator, so the measurement costs the gateway nothing.
        # receipts_acked counts deliver_sm_resps from the gateway, which answers a
        # receipt only after it has applied it; /metrics confirms at the end.
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            stats = http_json("GET", f"{sim_url}/stats")[1]
            now = time.monotonic() - started
            if smsc_all is None and int(stats["submits"]) - submits0 >= n:
                smsc_all = now
            if receipts_all is None and int(stats["receipts_acked"]) - acked0 >= n:
                receipts_all = now
            if smsc_all is not None and receipts_all is not None:
                break
            time.sleep(0.02)
        cpu1, sim_cpu1 = cpu_seconds(gw_proc), cpu_seconds(sim_proc)
        threads1 = thread_cpu(gw_proc)
        receipts = metric_sum(metrics(), "smsgateway_receipts_total") - receipts0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=30)
        m1 = metrics()
        stats1 = http_json("GET", f"{sim_url}/stats")[1]
        baseline = None
        if args.baseline and use_wrk:
            baseline = healthy_baseline(base, gw_proc, args.concurrency, args.threads)
        return Figures(
            load=result,
            n=n,
            smsc_all_s=smsc_all,
            smsc_counted=int(stats1["submits"]) - submits0,
            receipts=int(receipts),
            receipts_all_s=receipts_all,
            gateway_cpu_s=cpu1 - cpu0,
            loop_cpu_s=threads1.get(gateway.pid, 0.0) - threads0.get(gateway.pid, 0.0),
            sim_cpu_s=sim_cpu1 - sim_cpu0,
            accepted_metric=int(metric_sum(m1, "smsgateway_messages_accepted_total") - accepted0),
            parts_ok=int(
                metric_sum(m1, "smsgateway_parts_submitted_total", 'result="ok"') - parts0
            ),
            duplicates=int(stats1["duplicates"]) - dup0,
            baseline=baseline,
            store_commits=int(metric_sum(m1, "smsgateway_store_commits_total") - commits0),
            store_units=int(metric_sum(m1, "smsgateway_store_units_total") - units0),
        )
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        code = gateway.stop()
        sim.stop()
        if code not in (0, None):
            print(f"# gateway exited {code} on SIGTERM (see {gateway.log})", flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(f: Figures, args: argparse.Namespace) -> bool:
    r = f.load
    fallback = " (FALLBACK generator)" if r.generator.startswith("FALLBACK") else ""

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISS"

    ok_rate = f.rate >= TARGET_RATE
    ok_p99 = r.p99_ms < TARGET_P99_MS
    ok_cpu = f.cpu_ms_per_msg <= TARGET_CPU_MS
    complete = f.smsc_counted >= f.n and f.receipts >= f.n and r.ok == f.n
    non2xx = ", ".join(f"{k}: {v}" for k, v in sorted(r.non2xx.items())) or "none"
    lines = [
        f"e2e load generator           {r.generator}",
        f"e2e messages / concurrency   {f.n} / {args.concurrency} (warm-up {args.warmup}, "
        f"receipts after {args.dlr_delay_ms:g} ms, link window {args.window}, limit_tps 0)",
        f"e2e accepted msgs/s          {f.rate:,.0f} msgs/s over {r.elapsed_s:.2f} s "
        f"[target >= {TARGET_RATE:,.0f}: {mark(ok_rate)}]{fallback}",
        f"e2e HTTP latency             p50 {r.p50_ms:.2f} ms, p90 {r.p90_ms:.2f} ms, "
        f"p99 {r.p99_ms:.2f} ms, max {r.max_ms:.1f} ms "
        f"[target p99 < {TARGET_P99_MS:g} ms: {mark(ok_p99)}]{fallback}",
        f"e2e non-2xx answers          {non2xx}; socket errors/timeouts: {r.socket_errors}"
        + (f"; first: {r.sample_error}" if r.sample_error else ""),
        "e2e SMSC counted all N       "
        + (
            f"{f.smsc_all_s:.2f} s after the load started"
            if f.smsc_all_s is not None
            else f"NO: {f.smsc_counted} of {f.n} within {args.drain_timeout:g} s"
        )
        + f" (duplicates at the SMSC: {f.duplicates})",
        f"e2e receipts processed       {f.receipts} of {f.n}"
        + (
            f", all in {f.receipts_all_s:.2f} s after the load started"
            if f.receipts_all_s is not None
            else f" (NOT all within {args.drain_timeout:g} s)"
        ),
        f"e2e gateway CPU per message  {f.cpu_ms_per_msg:.3f} ms "
        f"({f.gateway_cpu_s:.2f} s CPU for {f.n} messages incl. receipts) "
        f"[target <= {TARGET_CPU_MS} ms: {mark(ok_cpu)}]",
        f"e2e   event-loop thread      {1000 * f.loop_cpu_s / f.n:.3f} ms per message",
        f"e2e   other threads          {1000 * (f.gateway_cpu_s - f.loop_cpu_s) / f.n:.3f} ms per "
        "message (store writer, SQLite commits)",
        f"e2e simulator CPU per msg    {1000 * f.sim_cpu_s / f.n:.3f} ms (context: same cores)",
        f"e2e gateway counters         accepted {f.accepted_metric}, parts submitted ok "
        f"{f.parts_ok}",
        f"e2e store writes             {f.store_units / f.n:.2f} units and "
        f"{f.store_commits / f.n:.3f} commits per message "
        f"({f.store_units / max(f.store_commits, 1):.1f} units per commit)",
    ]
    if f.baseline is not None:
        lines.append(
            f"e2e baseline GET /healthy    {f.baseline[0]:,.0f} req/s, "
            f"{f.baseline[1]:.3f} ms gateway CPU per request (web stack floor)"
        )
    if r.note:
        lines.append(f"e2e note                     {r.note}")
    if not complete:
        lines.append("e2e WARNING                  the run is incomplete (see figures above)")
    print("\n".join(lines), flush=True)
    if args.profile and Path(args.profile).exists():
        print(f"e2e profile                  py-spy raw stacks in {args.profile}")
        print(summarise_profile(Path(args.profile)))
    return complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", "-n", type=int, default=20_000)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--threads", "-t", type=int, default=2, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=2_000, help="sends before measuring")
    parser.add_argument("--window", type=int, default=50, help="the link's SMPP window")
    parser.add_argument("--dlr-delay-ms", type=float, default=50.0)
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--profile", metavar="OUT", help="py-spy the gateway into OUT")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument(
        "--baseline", action="store_true", help="also wrk GET /healthy for 5 s (web floor)"
    )
    parser.add_argument("--quick", action="store_true", help="5,000 messages, 500 warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.warmup = 5_000, 500
    figures = run(args)
    return 0 if report(figures, args) else 1


if __name__ == "__main__":
    sys.exit(main())
