"""A reference phone: speaks the private-server protocol as the "SMS Gateway for
Android" app does, so tests and the demo need no handset.

What the app does, and so what this does: sign in with a one-time code (`POST /device`,
`Authorization: Code`), keep the answer's token as `Bearer`, read `GET /settings` and
`GET /webhooks`, hold `GET /events` open (reconnecting with a back-off when it drops)
and on every event pull `GET /message`; for each new message report its states one
`PATCH /message` at a time (Processed, Sent, then Delivered or Failed), each with the
recipient's state and the history of states; a message it already knows has its
state reported again instead of being sent twice. A 401 on any call means the token
is gone: the app forgets its registration and a new code is needed. Received SMS go
to each `sms:received` webhook, signed with the settings' signing key.

Nothing here imports the gateway: it only knows the wire protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)


def app_date(ms: int | None = None) -> str:
    """yyyy-MM-dd'T'HH:mm:ss.SSSXXX, as the app writes dates."""
    ms = int(time.time() * 1000) if ms is None else ms
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


class Unauthorized(Exception):
    """The server refused the token or the code (HTTP 401)."""


@dataclass
class SimConfig:
    server: str  # the app's "API URL": the base the paths are appended to
    code: str
    name: str = "devicesim/reference"
    # Numbers whose messages end Failed instead of Delivered.
    fail_numbers: set[str] = field(default_factory=set)
    fail_error: str = "RESULT_ERROR_GENERIC_FAILURE"
    # Between Sent and the delivery report.
    deliver_delay_s: float = 0.05
    # Reconnect back-off for the event stream.
    retry_s: float = 0.2
    # False: accept any certificate; a path: trust that CA file (a self-signed cert).
    verify_tls: bool | str = True


@dataclass
class Received:
    id: str
    text: str
    phone_numbers: list[str]
    valid_until: str | None
    created_at: str
    raw: dict[str, Any]
    states: dict[str, str] = field(default_factory=dict)


class DeviceSim:
    def __init__(
        self, config: SimConfig, on_received: Callable[[Received], None] | None = None
    ) -> None:
        self.config = config
        # Told of each new message as the phone takes it (the demo prints it).
        self.on_received = on_received
        self.server = config.server.rstrip("/")
        verify: bool | ssl.SSLContext = config.verify_tls is not False
        if isinstance(config.verify_tls, str):
            verify = ssl.create_default_context(cafile=config.verify_tls)
        self.http = httpx.AsyncClient(timeout=10, verify=verify)
        self.device_id: str | None = None
        self.token: str | None = None
        self.login: str | None = None
        self.signing_key: str | None = None
        self.webhooks: list[dict[str, Any]] = []
        self.settings: dict[str, Any] = {}
        self.messages: dict[str, Received] = {}
        self.events_seen: list[str] = []
        self.keepalives = 0
        self.unauthorized = False
        self.online = False
        self.stream_open = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        self._pull_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------

    async def register(self) -> dict[str, Any]:
        r = await self.http.post(
            f"{self.server}/device",
            headers={"Authorization": f"Code {self.config.code}"},
            json={"name": self.config.name, "pushToken": None, "simCards": []},
        )
        if r.status_code == 401:
            self.unauthorized = True
            raise Unauthorized(r.text)
        r.raise_for_status()
        if r.status_code != 201:
            raise RuntimeError(f"register answered {r.status_code}, the app expects 201")
        body: dict[str, Any] = r.json()
        self.device_id, self.token, self.login = body["id"], body["token"], body["login"]
        self.unauthorized = False
        await self.sync_settings()
        return body

    async def sync_settings(self) -> None:
        settings = await self._get("/settings")
        self.settings = settings
        self.signing_key = (settings.get("webhooks") or {}).get("signing_key") or self.signing_key
        self.webhooks = await self._get("/webhooks")

    async def start(self) -> None:
        """Register (unless already), then go online."""
        if self.token is None:
            await self.register()
        await self.go_online()

    async def go_online(self) -> None:
        if self._runner is None or self._runner.done():
            self.online = True
            self._runner = asyncio.create_task(self._run(), name="devicesim-events")

    async def go_offline(self) -> None:
        """Lose the network: the event stream closes, nothing is pulled or reported."""
        self.online = False
        self.stream_open.clear()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    async def stop(self) -> None:
        await self.go_offline()
        for task in list(self._work):
            task.cancel()
        await asyncio.gather(*self._work, return_exceptions=True)
        await self.http.aclose()

    # -- the event stream ----------------------------------------------------------

    async def _run(self) -> None:
        while self.online and not self.unauthorized:
            try:
                await self._stream()
            except Unauthorized:
                log.warning("device token refused: a new code is needed")
                self.unauthorized = True
                self.online = False
                return
            except (httpx.HTTPError, OSError) as exc:
                log.info("event stream dropped: %s", exc)
            self.stream_open.clear()
            await asyncio.sleep(self.config.retry_s)

    async def _stream(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(10, read=None)
        async with self.http.stream(
            "GET", f"{self.server}/events", headers=headers, timeout=timeout
        ) as r:
            if r.status_code == 401:
                raise Unauthorized()
            r.raise_for_status()
            self.stream_open.set()
            event: str | None = None
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.keepalives += 1
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line == "":
                    if event is not None:
                        self.events_seen.append(event)
                        self._spawn(self._on_event(event))
                    event = None

    async def _on_event(self, event: str) -> None:
        if event in ("MessageEnqueued", ""):
            await self.pull()
        elif event in ("WebhooksUpdated", "SettingsUpdated"):
            await self.sync_settings()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    # -- messages ------------------------------------------------------------------

    async def pull(self) -> list[dict[str, Any]]:
        """GET /message, and send (or re-report) each message."""
        async with self._pull_lock:
            try:
                batch: list[dict[str, Any]] = await self._get("/message")
            except Unauthorized:
                self.unauthorized = True
                return []
            for raw in batch:
                known = self.messages.get(raw["id"])
                if known is not None:
                    # The server did not hear our last report: say it again.
                    last = list(known.states)[-1] if known.states else "Pending"
                    self._spawn(self._patch(known, last))
                    continue
                text = (raw.get("textMessage") or {}).get("text") or raw.get("message") or ""
                item = Received(
                    id=raw["id"],
                    text=text,
                    phone_numbers=list(raw["phoneNumbers"]),
                    valid_until=raw.get("validUntil"),
                    created_at=raw["createdAt"],
                    raw=raw,
                )
                self.messages[item.id] = item
                if self.on_received is not None:
                    self.on_received(item)
                self._spawn(self._send(item))
            return batch

    async def _send(self, item: Received) -> None:
        try:
            await self._patch(item, "Processed")
            if not self.online:
                return
            failed = any(n in self.config.fail_numbers for n in item.phone_numbers)
            await self._patch(item, "Sent")
            await asyncio.sleep(self.config.deliver_delay_s)
            await self._patch(item, "Failed" if failed else "Delivered")
        except (Unauthorized, httpx.HTTPError) as exc:
            log.info("state report failed: %s", exc)

    async def _patch(self, item: Received, state: str) -> None:
        item.states.setdefault(state, app_date())
        error = self.config.fail_error if state == "Failed" else None
        recipient: dict[str, Any] = {"phoneNumber": item.phone_numbers[0], "state": state}
        if error is not None:
            recipient["error"] = error
        body = [
            {
                "id": item.id,
                "state": state,
                "recipients": [recipient],
                "states": dict(item.states),
            }
        ]
        r = await self.http.patch(
            f"{self.server}/message", json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        if r.status_code == 401:
            self.unauthorized = True
            raise Unauthorized()
        r.raise_for_status()

    # -- received SMS ------------------------------------------------------------

    async def receive_sms(
        self, sender: str, text: str, *, timestamp: int | None = None, key: str | None = None
    ) -> list[int]:
        """An SMS arrives on the phone: POST it to every sms:received webhook, signed
        as the app signs (hex HMAC-SHA256 of body + X-Timestamp). Returns statuses."""
        body = json.dumps(
            {
                "id": secrets.token_urlsafe(15),
                "webhookId": "",
                "event": "sms:received",
                "deviceId": self.device_id,
                "payload": {
                    "messageId": hashlib.sha256(f"{sender}{text}".encode()).hexdigest()[:16],
                    "message": text,
                    "phoneNumber": sender,
                    "simNumber": 1,
                    "receivedAt": app_date(),
                },
            },
            separators=(",", ":"),
        ).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signing = (key if key is not None else self.signing_key) or ""
        signature = hmac.new(signing.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
        statuses = []
        for hook in self.webhooks:
            if hook.get("event") != "sms:received":
                continue
            r = await self.http.post(
                hook["url"],
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Signature": signature,
                    "X-Timestamp": ts,
                },
            )
            statuses.append(r.status_code)
        return statuses

    # -- plumbing ----------------------------------------------------------------

    async def _get(self, path: str) -> Any:
        r = await self.http.get(
            f"{self.server}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        if r.status_code == 401:
            self.unauthorized = True
            raise Unauthorized()
        r.raise_for_status()
        return r.json()

    def state(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "online": self.online,
            "stream_open": self.stream_open.is_set(),
            "unauthorized": self.unauthorized,
            "events": len(self.events_seen),
            "keepalives": self.keepalives,
            "messages": [
                {"id": m.id, "text": m.text, "to": m.phone_numbers, "states": list(m.states)}
                for m in self.messages.values()
            ],
        }
