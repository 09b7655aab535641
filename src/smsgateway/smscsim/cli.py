"""`smsgateway smsc-sim`: run the simulator as its own process until SIGINT/SIGTERM.

Logs one line per kind of event (bind, unbind, config change, drop) and a traffic
summary every 10 s while traffic flows, never one line per message: at 15,000
submits a second, per-message logging would be the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..gctune import tune_for_server
from .simulator import SimulatorConfig, SmscSimulator

log = logging.getLogger("smsgateway.smscsim")

SUMMARY_EVERY = 10.0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the `smsc-sim` subcommand on the main command line's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "smsc-sim",
        help="run the built-in SMSC simulator",
        description="SMPP 3.4 SMSC simulator with receipts, MO, faults and an HTTP control API.",
    )
    p.add_argument("--host", default="127.0.0.1", help="SMPP listen address")
    p.add_argument("--port", type=int, default=2775, help="SMPP port (0 picks a free one)")
    p.add_argument("--http-port", type=int, default=2776, help="control API port (0 free, -1 none)")
    p.add_argument("--dlr-delay-ms", type=float, default=50.0, help="receipt delay")
    p.add_argument("--system-id", default=None, help="accept only this system_id")
    p.add_argument("--password", default=None, help="accept only this password")
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of submits refused")
    p.add_argument("--throttle-tps", type=float, default=0.0, help="ESME_RTHROTTLED above this")
    p.add_argument("--id-format", choices=("hex", "dec"), default="hex", help="message ids")
    p.add_argument("--resp-delay-ms", type=float, default=0.0, help="delay every submit_sm_resp")
    p.add_argument("--no-receipts", action="store_true", help="never send delivery receipts")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(handler=run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The simulator alone, without the gateway's command line around it."""
    parser = argparse.ArgumentParser(prog="smsc-sim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["smsc-sim", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result


def run(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level)
    if not 0.0 <= args.fail_rate <= 1.0:
        log.error("--fail-rate must be within 0..1")
        return 2
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        http_port=None if args.http_port < 0 else args.http_port,
        system_id=args.system_id,
        password=args.password,
        dlr_delay_ms=args.dlr_delay_ms,
        fail_rate=args.fail_rate,
        throttle_tps=args.throttle_tps,
        id_format=args.id_format,
        resp_delay_ms=args.resp_delay_ms,
        receipts=not args.no_receipts,
    )
    try:
        import uvloop

        uvloop.run(_serve(config))
    except ImportError:  # pragma: no cover - uvloop is optional
        asyncio.run(_serve(config))
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return 1
    return 0


def _setup_logging(level: str) -> None:
    try:
        from ..logs import configure
    except ImportError:  # pragma: no cover - the gateway's formatter is optional here
        logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    else:
        configure(level)


async def _serve(config: SimulatorConfig) -> None:
    sim = SmscSimulator(config)
    smpp_port, http_port = await sim.start()
    tune_for_server()
    log.info(
        "smsc-sim listening smpp=%s:%d http=%s",
        config.host,
        smpp_port,
        f"{config.http_host}:{http_port}" if http_port is not None else "off",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    last = (0, 0)
    last_at = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SUMMARY_EVERY)
        now = time.monotonic()
        current = (sim.submits, sim.receipts_sent)
        if current != last:
            rate = (current[0] - last[0]) / (now - last_at)
            log.info(
                "traffic: %d submits (%.0f/s), %d receipts sent, %d throttled, %d failed",
                current[0],
                rate,
                current[1],
                sim.throttled,
                sim.failed,
            )
        last, last_at = current, now
    log.info("smsc-sim stopping")
    await sim.stop()
