"""The gateway as a real child process (`python -m smsgateway serve --config ...`), for
tests that kill it, restart it, or read what it logs. Shared by tests/e2e and
tests/resilience."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**overrides: str) -> dict[str, str]:
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
        self.starts = 0

    def start(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "smsgateway", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=out,
                env=self.env,
            )
        self.starts += 1

    def log_text(self, whole: bool = False) -> str:
        data = self.log.read_bytes()
        return data[0 if whole else self._log_offset :].decode("utf-8", "replace")

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        """Until /healthy answers; the base URL."""
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

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.port = 0

    def terminate(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.port = 0
        return self.proc.returncode

    async def wait_exit(self, timeout: float) -> int | None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.proc.poll()
