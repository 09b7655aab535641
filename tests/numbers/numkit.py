"""Helpers for the numbers tests: settings with a `[numbers]` section, admin calls, and
a real webhook receiver (a small asyncio HTTP/1.1 server on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gwkit import ADMIN_KEY, admin, link_to, make_settings
from smsgateway.core.numbers.countries import country_id
from smsgateway.core.webhooks.signing import verify
from smsgateway.settings import Settings
from smsgateway.settings_numbers import NumbersSettings
from smsgateway.smscsim.simulator import SmscSimulator

SYSTEM_KEY = "system-key-for-tests-0123456789"
# Short retries so "down, then up" settles in seconds.
FAST = {
    "webhook_backoff_base_s": 0.2,
    "webhook_backoff_max_s": 0.5,
    "webhook_timeout_s": 2.0,
    "allow_http_webhooks": True,
    "allow_private_webhooks": True,
}


def numbers_settings(tmp_path: Path, sim: SmscSimulator | None = None, **numbers: Any) -> Settings:
    links = [link_to(sim)] if sim is not None else []
    settings = make_settings(tmp_path, links)
    settings.numbers = NumbersSettings(**numbers)
    settings.validate()
    return settings


async def create_user(http: httpx.AsyncClient, email: str, **kw: Any) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/admin/number-users", json={"email": email, **kw}, headers=admin(ADMIN_KEY)
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def import_numbers(http: httpx.AsyncClient, numbers: list[str], **kw: Any) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/admin/numbers",
        json={"numbers": [{"phone_number": n, **kw} for n in numbers]},
        headers=admin(ADMIN_KEY),
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def de_numbers(count: int, start: int = 0) -> list[str]:
    """Valid German mobile numbers (+49 151 ...)."""
    return [f"+4915100{start + i:06d}" for i in range(count)]


DE = country_id("DE")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver: answers `status` (or hangs, or is not listening at all)."""

    secret: str = ""
    status: int = 200
    hang: bool = False
    port: int = 0
    received: list[Delivery] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _conns: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Not listening any more: connections are refused."""
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    def delivered(self) -> list[Delivery]:
        return [d for d in self.received if 200 <= d.answered < 300]

    def signed_ok(self, d: Delivery) -> bool:
        return verify(
            self.secret, d.headers.get("x-timestamp", ""), d.body, d.headers.get("x-signature", "")
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.hang:
                    self.received.append(Delivery(headers, body, 0))
                    await reader.read()  # never answers; ends when the client goes
                    break
                status = self.status
                self.received.append(Delivery(headers, body, status))
                head_out = f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n"
                writer.write(head_out.encode() + b"\r\nok")
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()
