"""SMPP benchmarks: codec speed, session throughput, and pacing accuracy measured at the SMSC.

    uv run --frozen python bench/smpp_bench.py [--quick]

- codec: encode + decode pairs per second of a 160-character GSM submit_sm;
- session: submit_sm answered per second by the simulator running as a separate
  process (`python -m smsgateway smsc-sim`), for windows 1, 10 and 50. Receipts are
  not requested and the simulator runs with --no-receipts, so the figure is the
  submit path alone (the gateway's end-to-end benchmark covers receipts);
- pacing: a paced client at 50, 200 and 1000 TPS; the rate and the largest count in
  any sliding 100 ms window come from the simulator's arrival timestamps (its
  GET /pacing), not from the sender's own clock.

Targets: codec >= 150k pairs/s, session >= 15k submit/s at window 50, pacing within
2% of the limit with no 100 ms window above limit/10. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

from smsgateway.smpp.gsm import encode_gsm
from smsgateway.smpp.pdu import SubmitSm, decode, encode
from smsgateway.smpp.session import ClientConfig, EsmeClient

TEXT = (
    "Your verification code is 482913. It expires in 10 minutes. If you did not ask "
    "for it, ignore this message; nobody from us will ever ask you for this code. "
).ljust(160, ".")[:160]


def submit_pdu(i: int = 0) -> SubmitSm:
    return SubmitSm(
        source_addr_ton=5,
        source_addr="Gateway",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr=f"4477009{i % 100000:05d}",
        data_coding=0,
        short_message=encode_gsm(TEXT),
    )


# --- codec -------------------------------------------------------------------------------


def bench_codec(seconds: float) -> float:
    pdu = submit_pdu()
    pdu.sequence_number = 1
    assert len(pdu.short_message) == 160
    best = 0.0
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(2000):
                decode(encode(pdu))
            n += 2000
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


# --- the simulator in its own process ------------------------------------------------------


class SimProcess:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.smpp_port = 0
        self.http_port = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smsgateway",
                "smsc-sim",
                "--port",
                "0",
                "--http-port",
                "0",
                "--no-receipts",
                "--dlr-delay-ms",
                "60000",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            match = re.search(r"smpp=[\d.]+:(\d+) http=[\d.]+:(\d+)", line)
            if match:
                self.smpp_port, self.http_port = int(match.group(1)), int(match.group(2))
                return
        raise RuntimeError("simulator did not start")

    def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.http_port}{path}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def connect(sim: SimProcess, **kwargs: Any) -> EsmeClient:
    client = EsmeClient(ClientConfig("127.0.0.1", sim.smpp_port, "bench", "bench", **kwargs))
    await client.start()
    await client.wait_bound(10)
    return client


async def run_for(client: EsmeClient, workers: int, seconds: float) -> tuple[int, float]:
    """Submit from `workers` coroutines for `seconds`; returns (answered, elapsed)."""
    stop_at = time.perf_counter() + seconds
    done = 0

    async def worker(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop_at:
            await client.submit(submit_pdu(i))
            done += 1
            i += workers

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(workers)))
    return done, time.perf_counter() - start


async def bench_session(sim: SimProcess, window: int, seconds: float) -> tuple[float, float]:
    """Submits answered per second by the client, and as counted by the SMSC."""
    client = await connect(sim, window=window, response_timeout=30)
    try:
        await run_for(client, max(2, window * 2), min(0.5, seconds / 4))  # warm-up
        since = time.monotonic()
        done, elapsed = await run_for(client, max(2, window * 2), seconds)
        at_smsc = sim.get(f"/pacing?since={since}&until={time.monotonic()}")["tps"]
        return done / elapsed, at_smsc
    finally:
        await client.stop()


async def bench_pacing(sim: SimProcess, limit: int, seconds: float) -> dict[str, Any]:
    client = await connect(sim, window=50, limit_tps=limit, response_timeout=30)
    try:
        await run_for(client, 50, 0.3)  # let the pacer settle on its schedule
        await asyncio.sleep(0.2)
        since = time.monotonic()
        await run_for(client, 50, seconds)
        until = time.monotonic()
        result: dict[str, Any] = sim.get(f"/pacing?since={since}&until={until}&window_ms=100")
        return result
    finally:
        await client.stop()


async def main(quick: bool) -> int:
    scale = 0.4 if quick else 1.0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (figures are noisy under load)")
    codec = bench_codec(3.0 * scale)
    print(f"codec: {codec:,.0f} submit_sm encode+decode pairs/s (160-char GSM; target 150,000)")
    sim = SimProcess()
    sim.start()
    ok = codec >= 150_000
    try:
        for window in (1, 10, 50):
            tps, smsc_tps = await bench_session(sim, window, 3.0 * scale)
            target = " (target 15,000)" if window == 50 else ""
            print(
                f"session: {tps:,.0f} submit_sm/s at window {window} ({smsc_tps:,.0f}/s counted at "
                f"the SMSC) over loopback, simulator in a separate process, receipts off{target}"
            )
            if window == 50:
                ok = ok and tps >= 15_000
        for limit in (50, 200, 1000):
            p = await bench_pacing(sim, limit, 4.0 * scale)
            share = 100 * p["tps"] / limit
            slice_limit = limit / 10
            print(
                f"pacing: limit {limit} TPS -> {p['tps']:.1f} TPS at the SMSC ({share:.1f}%), "
                f"max {p['max_in_window']} in any 100 ms window (limit/10 = {slice_limit:g}), "
                f"{p['count']} submits"
            )
            ok = ok and abs(share - 100) <= 2 and p["max_in_window"] <= slice_limit
    finally:
        sim.stop()
    print(f"smpp targets: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 40%%)")
    args = parser.parse_args()
    try:
        import uvloop

        sys.exit(uvloop.run(main(args.quick)))
    except ImportError:
        sys.exit(asyncio.run(main(args.quick)))
