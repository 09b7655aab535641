"""Our gateway against Kannel on the independent harness in ../shared/bench, one run.

    uv run --frozen python bench/harness.py [--n 5000] [--rounds 3] [--warmup 500]
        [--face native] [--no-kannel] [--harness ../shared/bench]

The harness is not ours: an SMSC on the npm `smpp` package (`smsc/smsc.js`, receipts
after 50 ms), an aiohttp load generator (`load.py`, N requests, 50 in flight,
keep-alive) and the scripts that run Kannel 1.4.5 (`kannel/run.sh`). This script
copies it somewhere writable, installs what it needs (the SMSC's npm packages, a
venv with aiohttp for load.py), then alternates rounds: our gateway on fresh
processes, then Kannel on fresh processes (when /usr/sbin/bearerbox exists: Debian's
`apt-get install -y kannel`), and prints the medians and the ratio of the two.

Our round (the gateway configured as bench/e2e_load.py configures it), like for
like with Kannel's: one SMPP transceiver to a fresh SMSC with
the same window as Kannel's max-pending-submits (10), no pacing; every request carries
a bearer JWT that is checked and a unique transaction_id; receipts are requested,
and the gateway's CPU is counted until every receipt is applied (Kannel's default
round asks for none). Accepted means committed to SQLite (WAL, synchronous=NORMAL).
CPU per message is user+system of the gateway's process over the measured phase.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_load import (
    ADMIN_KEY,
    EMAIL,
    PASSWORD,
    Child,
    cpu_seconds,
    free_port,
    gateway_config,
    http_json,
    http_text,
    metric_sum,
    wait_until,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HARNESS = REPO.parent / "shared" / "bench"
BENCH_VENV = Path(os.environ.get("BENCH_VENV", "/tmp/benchvenv"))
KANNEL = Path("/usr/sbin/bearerbox")
QUIET_LOG = ["--log-level", "WARNING"]

FACES = {
    # face: (path, JSON template, ok regex)
    "native": (
        "/api/v1/sms/send",
        '{"esme": 1, "source": "Bench", "destination": "{dest}", "message": "{text}",'
        ' "transaction_id": "t{i}"}',
        r'"success"\s*:\s*true',
    ),
}


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def prepare(harness: Path) -> tuple[Path, Path]:
    """A writable copy of the harness with its npm packages, and a Python with aiohttp."""
    work = Path(tempfile.gettempdir()) / "smsgw-harness"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(harness, work)
    for path in work.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    sh(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work / "smsc")
    py = BENCH_VENV / "bin" / "python"
    if not py.exists() or subprocess.run([str(py), "-c", "import aiohttp"]).returncode:
        sh([sys.executable, "-m", "venv", str(BENCH_VENV)])
        sh([str(BENCH_VENV / "bin" / "pip"), "install", "--quiet", "aiohttp"])
    return work, py


def load(
    py: Path, work: Path, n: int, url: str, template: str, ok: str, headers: list[str], stats: str
) -> dict[str, Any]:
    cmd = [str(py), str(work / "load.py"), "-n", str(n), "-c", "50", "--timeout", "30"]
    cmd += ["--max-seconds", "600", "--wait-seconds", "300", "--url", url]
    cmd += ["--json-data", template, "--ok-regex", ok, "--stats-url", stats]
    for h in headers:
        cmd += ["--header", h]
    out = subprocess.run(cmd, text=True, capture_output=True)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "{}"
    result: dict[str, Any] = json.loads(line)
    result["load_rc"] = out.returncode
    return result


def gateway_round(work: Path, py: Path, args: argparse.Namespace) -> dict[str, Any]:
    run = Path(tempfile.mkdtemp(prefix="harness-gw-"))
    smsc_port, smsc_http, rest_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATEWAY_")}
    smsc_env = dict(env, SMSC_PORT=str(smsc_port), SMSC_HTTP_PORT=str(smsc_http), SMSC_QUIET="1")
    smsc = Child("smsc", ["node", str(work / "smsc" / "smsc.js")], run / "smsc.log")
    config = run / "gateway.toml"
    config.write_text(gateway_config(run / "data", rest_port, smsc_port, args.window))
    gateway = Child(
        "gateway",
        [sys.executable, "-m", "smsgateway", "serve", "--config", str(config), *QUIET_LOG],
        run / "gateway.log",
    )
    stats = f"http://127.0.0.1:{smsc_http}/stats"
    base = f"http://127.0.0.1:{rest_port}"
    try:
        smsc.start(smsc_env)
        wait_until(lambda: http_json("GET", stats)[0] == 200, 20, "harness SMSC")
        gateway.start(env)
        wait_until(lambda: http_json("GET", f"{base}/healthy", timeout=2)[0] == 200, 30, "gateway")
        status, reg = http_json(
            "POST",
            f"{base}/api/v1/auth/register",
            {"email": EMAIL, "password": PASSWORD},
            {"X-Admin-Key": ADMIN_KEY},
        )
        assert status == 201, reg
        app = int(reg["app_id"])
        _, body = http_json(
            "POST",
            f"{base}/api/v1/auth/login",
            {"email": EMAIL, "password": PASSWORD, "app_id": app},
        )
        headers = [f"Authorization: Bearer {body['token']}", f"X-App-ID: {app}"]
        auth = dict(h.split(": ", 1) for h in headers)
        wait_until(
            lambda: http_json("POST", f"{base}/api/v1/sms/check-esme", {"esme": 1}, auth)[1][
                "persist"
            ],
            20,
            "the link to bind",
        )
        path, template, ok = FACES[args.face]
        url = base + path
        load(py, work, args.warmup, url, template.replace("t{i}", "w{i}"), ok, headers, stats)

        def receipts() -> float:
            return metric_sum(http_text(f"{base}/metrics"), "smsgateway_receipts_total")

        proc = psutil.Process(gateway.pid)
        before_receipts, cpu0 = receipts(), cpu_seconds(proc)
        result = load(py, work, args.n, url, template, ok, headers, stats)
        wait_until(lambda: receipts() >= before_receipts + args.n, 120, "receipts", every=0.2)
        result["cpu_gateway_s"] = round(cpu_seconds(proc) - cpu0, 2)
        result["label"] = f"smsgateway {args.face} N={args.n} window={args.window} receipts"
        return result
    finally:
        gateway.stop()
        smsc.stop()
        shutil.rmtree(run, ignore_errors=True)


def kannel_round(work: Path, py: Path, args: argparse.Namespace) -> dict[str, Any]:
    results = Path(tempfile.mkdtemp(prefix="harness-kannel-")) / "kannel.jsonl"
    env = dict(os.environ, RUNS="1", WARMUP=str(args.warmup), RESULTS=str(results))
    env.update(PYTHON=str(py), MAX_PENDING=str(args.window), RUN_DIR=str(results.parent))
    subprocess.run(
        ["bash", str(work / "kannel" / "run.sh"), str(args.n)], env=env, capture_output=True
    )
    rows = [json.loads(x) for x in results.read_text().splitlines() if x.startswith("{")]
    if not rows:
        raise SystemExit(f"harness: Kannel produced no result (logs in {results.parent})")
    row: dict[str, Any] = rows[-1]
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    def med(key: str) -> float:
        vals = [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]
        return statistics.median(vals) if vals else float("nan")

    return {
        "e2e_per_s": med("e2e_per_s"),
        "lat_p99_ms": med("lat_p99_ms"),
        "cpu_ms": statistics.median(
            [1000 * float(r["cpu_gateway_s"]) / max(int(r["http_ok"]), 1) for r in rows]
        ),
        "complete": float(
            all(r.get("http_ok") == r.get("n") and r.get("smsc_complete") for r in rows)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--window", type=int, default=10, help="SMPP window, both systems")
    parser.add_argument("--face", choices=sorted(FACES), default="native")
    parser.add_argument("--no-kannel", action="store_true")
    parser.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    parser.add_argument("--quick", action="store_true", help="one round of 2,000")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.warmup = 2000, 1, 200
    if not (args.harness / "load.py").exists():
        raise SystemExit(f"harness: no load.py under {args.harness} (--harness PATH)")
    work, py = prepare(args.harness)
    with_kannel = KANNEL.exists() and not args.no_kannel
    if not with_kannel and not args.no_kannel:
        print("# Kannel not installed (apt-get install -y kannel): our rounds only")
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for i in range(1, args.rounds + 1):
        ours.append(gateway_round(work, py, args))
        print(f"# round {i} smsgateway: {json.dumps(ours[-1])}", flush=True)
        if with_kannel:
            theirs.append(kannel_round(work, py, args))
            print(f"# round {i} kannel:     {json.dumps(theirs[-1])}", flush=True)
        time.sleep(1)
    rows = [("smsgateway " + args.face + " (durable, receipts)", summary(ours))]
    if theirs:
        rows.append(("Kannel 1.4.5, in-memory queue, no receipts", summary(theirs)))
    print(f"\nmedians of {args.rounds} rounds, N={args.n}, 50 in flight, window {args.window}")
    print(f"{'system':48} {'msgs/s':>8} {'p99 ms':>8} {'CPU ms/msg':>11} complete")
    for name, s in rows:
        print(
            f"{name:48} {s['e2e_per_s']:8.0f} {s['lat_p99_ms']:8.1f} {s['cpu_ms']:11.3f} "
            f"{'yes' if s['complete'] else 'NO'}"
        )
    if theirs:
        a, b = rows[0][1], rows[1][1]
        print(
            f"ratio smsgateway/Kannel: rate {a['e2e_per_s'] / b['e2e_per_s']:.2f}, "
            f"CPU per message {a['cpu_ms'] / b['cpu_ms']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
