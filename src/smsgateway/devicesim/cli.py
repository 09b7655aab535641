"""`smsgateway device-sim --server URL --code CODE`: a reference phone as a process.

A small HTTP control surface (127.0.0.1 only) drives it:
  GET  /state                      what it holds (messages, states, stream)
  POST /offline, POST /online      lose / regain the network
  POST /inbound {"from", "text"}   an SMS arrives on the phone (sent to the webhook)
  POST /fail {"numbers": [...]}    messages to these numbers end Failed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

from .sim import DeviceSim, SimConfig, Unauthorized

log = logging.getLogger("smsgateway.devicesim")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "device-sim",
        help="run a reference Android device (the SMS Gateway for Android protocol)",
    )
    p.add_argument(
        "--server", required=True, help="the app's API URL, e.g. http://127.0.0.1:8080/mobile/v1"
    )
    p.add_argument("--code", required=True, help="the one-time code from the device link")
    p.add_argument("--name", default="devicesim/reference")
    p.add_argument("--fail-number", action="append", default=[], help="end Failed for this number")
    p.add_argument("--deliver-delay-ms", type=float, default=500.0)
    p.add_argument("--control-port", type=int, default=0, help="control API port (0: free one)")
    p.add_argument("--insecure", action="store_true", help="do not verify the server's TLS cert")
    p.add_argument("--ca-file", default="", help="trust this CA (a self-signed server cert)")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=run)
    return p


async def _control(sim: DeviceSim, port: int) -> tuple[asyncio.AbstractServer, int]:
    """A minimal HTTP/1.1 control server (one request per connection)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            line, *headers = head.decode("latin-1").split("\r\n")
            method, path, _ = line.split(" ", 2)
            length = 0
            for h in headers:
                name, _, value = h.partition(":")
                if name.strip().lower() == "content-length":
                    length = min(int(value.strip() or 0), 64 * 1024)
            raw = await reader.readexactly(length) if length else b""
            status, answer = await _dispatch(sim, method, path, raw)
        except Exception as exc:  # a control call must never stop the sim
            status, answer = 400, {"error": str(exc)}
        body = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(Exception):
            await writer.drain()
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, server.sockets[0].getsockname()[1]


async def _dispatch(sim: DeviceSim, method: str, path: str, raw: bytes) -> tuple[int, Any]:
    data: dict[str, Any] = json.loads(raw) if raw.strip() else {}
    if (method, path) == ("GET", "/state"):
        return 200, sim.state()
    if (method, path) == ("POST", "/offline"):
        await sim.go_offline()
        return 200, sim.state()
    if (method, path) == ("POST", "/online"):
        await sim.go_online()
        return 200, sim.state()
    if (method, path) == ("POST", "/inbound"):
        statuses = await sim.receive_sms(str(data["from"]), str(data["text"]))
        return 200, {"statuses": statuses}
    if (method, path) == ("POST", "/fail"):
        sim.config.fail_numbers = {str(n) for n in data.get("numbers", [])}
        return 200, {"fail_numbers": sorted(sim.config.fail_numbers)}
    return 404, {"error": "not found"}


async def _main(args: argparse.Namespace) -> int:
    sim = DeviceSim(
        SimConfig(
            server=args.server,
            code=args.code,
            name=args.name,
            fail_numbers=set(args.fail_number),
            deliver_delay_s=args.deliver_delay_ms / 1000,
            verify_tls=args.ca_file or not args.insecure,
        )
    )
    try:
        await sim.start()
    except Unauthorized:
        print("device-sim: the server refused the code (used, expired or wrong)", flush=True)
        await sim.stop()
        return 1
    server, port = await _control(sim, args.control_port)
    print(
        f"device-sim linked as {sim.device_id}; control API on http://127.0.0.1:{port}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await sim.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(_main(args))
