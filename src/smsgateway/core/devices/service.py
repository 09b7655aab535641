"""Linking phones to projects, authenticating them, and their channels.

Secrets: the one-time code and the device token are kept as keyed hashes (a db leak
hands out neither), looked up by hash and confirmed with a constant-time compare; the
webhook signing key is encrypted under the master key, since the gateway must compute
HMACs with it. Nothing here knows HTTP: the mobile face (api/mobile) translates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import segno

from ...settings_devices import DeviceSettings
from ...store.devices import DeviceRow, DeviceStore, LinkRow
from ...store.errors import StoreUnavailable
from ...store.sqlite import SqliteStore
from ..channels import OutcomeSink
from ..errors import (
    BadSignature,
    InvalidDeviceToken,
    InvalidLinkCode,
    InvalidRequest,
    LinkNotFound,
    TooManyCodeAttempts,
    Unavailable,
)
from ..secrets import Secrets, constant_time_equals
from .channel import APP_STATES, DeviceChannel, Pending, Reporter, StateReport
from .events import EventHub
from .pacing import SendWindow

log = logging.getLogger(__name__)

# (channel_id, source, destination, text, received_at_ms) -> inbound row id, committed.
InboundSink = Callable[[int, str, str, str, int], Awaitable[str]]
ChannelHook = Callable[[DeviceChannel], None]

_CODE_SCOPE = "device-link"
_CODE_DIGITS = 6
_WEBHOOK_PATH = "/inbox"


@dataclass(frozen=True, slots=True)
class DeviceLink:
    code: str
    server_url: str
    expires_at_ms: int
    qr_svg: str
    qr_url: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: int
    name: str
    online: bool
    last_seen_ms: int
    queue_depth: int


@dataclass(frozen=True, slots=True)
class LinkPage:
    """What the page behind the QR code shows (None fields: the link is spent)."""

    server_url: str
    code: str | None
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Registration:
    id: str
    token: str
    login: str
    password: str


@dataclass(slots=True)
class DeviceSession:
    """An authenticated phone: its row and its channel."""

    row: DeviceRow
    channel: DeviceChannel


@dataclass(frozen=True, slots=True)
class InboundSms:
    event_id: str
    event: str
    message_id: str
    text: str
    sender: str
    recipient: str
    received_at_ms: int


def _hash_token(s: Secrets, token: str) -> str:
    return s.hash_api_key("device-token:" + token)


def _hash_page(s: Secrets, token: str) -> str:
    return s.hash_api_key("device-link-page:" + token)


def parse_app_date(text: str) -> int:
    """yyyy-MM-dd'T'HH:mm:ss.SSSXXX (the app's format) to Unix ms."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class DeviceService:
    def __init__(
        self,
        store: SqliteStore,
        secrets_: Secrets,
        settings: DeviceSettings,
        *,
        on_outcomes: OutcomeSink,
        report: Reporter,
        inbound: InboundSink,
        add_channel: ChannelHook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.devices = DeviceStore(store)
        self.secrets = secrets_
        self.settings = settings
        self.hub = EventHub()
        self._on_outcomes = on_outcomes
        self._report = report
        self._inbound = inbound
        self._add_channel = add_channel
        self._clock = clock
        self._by_project: dict[int, DeviceSession] = {}
        self._by_device: dict[int, DeviceSession] = {}
        self._code_failures: dict[str, deque[float]] = {}
        self._seen_events: dict[str, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.closed = False

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Channels for the linked phones: before the message service requeues their
        stored messages into them."""
        since = self._now_ms() - int(self.settings.limit_period_s * 1000)
        for row in await self.devices.active():
            session = self._open(row)
            session.channel.seed_handed(await self.devices.handed_since(row.id, since))
        # Phones unlinked while messages for them were still stored (a crash between
        # the unlink and its refusals): their channels refuse those messages now.
        for row in await self.devices.retired_with_queued():
            channel = self._channel(row)
            channel.retire()
            self._add_channel(channel)
        self._sweeper = asyncio.create_task(self._sweep(), name="devices-sweep")

    async def stop(self) -> None:
        self.closed = True  # no new streams: the server is about to wait for them
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for session in list(self._by_device.values()):
            self.hub.close(session.row.id)

    async def _sweep(self) -> None:
        """Forget given-up jobs of phones that stay away (the message service stores
        them as expired; nothing else would look at that phone's queue)."""
        while True:
            await asyncio.sleep(5.0)
            for session in list(self._by_device.values()):
                session.channel.drop_given_up()

    def _open(self, row: DeviceRow) -> DeviceSession:
        channel = self._channel(row)
        session = DeviceSession(row, channel)
        self._by_project[row.project_id] = session
        self._by_device[row.id] = session
        self._add_channel(channel)
        return session

    def _channel(self, row: DeviceRow) -> DeviceChannel:
        return DeviceChannel(
            row.id,
            row.name,
            row.project_id,
            store=self.devices,
            hub=self.hub,
            window=SendWindow(self.settings.limit_count, self.settings.limit_period_s),
            on_outcomes=self._on_outcomes,
            report=self._report,
            online=self._online,
            clock=self._clock,
        )

    def _close(self, device_id: int) -> None:
        session = self._by_device.pop(device_id, None)
        if session is None:
            return
        if self._by_project.get(session.row.project_id) is session:
            del self._by_project[session.row.project_id]
        # The retired channel stays routable: what still names it (a scheduled send
        # coming due, a requeue) is refused at once instead of waiting for ever.
        session.channel.retire()

    def _online(self, device_id: int) -> bool:
        if self.hub.connected(device_id):
            return True
        session = self._by_device.get(device_id)
        if session is None:
            return False
        return self._now_ms() - session.row.last_seen_at < self.settings.online_window_s * 1000

    # -- the contract other areas call (COORD.md) --------------------------------------

    async def create_link(self, project_id: int, base_url: str) -> DeviceLink:
        """A single-use code for the app's "By code" sign-in, and a QR code that opens
        a page with it on the phone."""
        base = (self.settings.public_url or base_url).rstrip("/")
        now = self._now_ms()
        expires = now + self.settings.code_ttl_s * 1000
        page_token = secrets.token_urlsafe(32)
        while True:
            code = "".join(secrets.choice("0123456789") for _ in range(_CODE_DIGITS))
            stored = await self.devices.add_link(
                LinkRow(
                    id=0,
                    code_hash=self.secrets.keyed_hash_otp(_CODE_SCOPE, code),
                    page_hash=_hash_page(self.secrets, page_token),
                    code_enc=self.secrets.encrypt_secret(code),
                    project_id=project_id,
                    created_at=now,
                    expires_at=expires,
                    used_at=None,
                )
            )
            if stored:
                break
        qr_url = f"{base}/mobile/link/{page_token}"
        qr_svg = segno.make(qr_url, error="m").svg_inline(scale=4, border=2)
        return DeviceLink(code, f"{base}/mobile/v1", expires, qr_svg, qr_url)

    async def active_device(self, project_id: int) -> DeviceInfo | None:
        session = self._by_project.get(project_id)
        if session is None:
            return None
        row = session.row
        return DeviceInfo(
            id=row.id,
            name=row.name,
            online=self._online(row.id),
            last_seen_ms=row.last_seen_at,
            queue_depth=session.channel.queue_depth,
        )

    async def revoke(self, project_id: int) -> bool:
        device_id = await self.devices.revoke(project_id, self._now_ms())
        if device_id is not None:
            log.info("device revoked", extra={"device_id": device_id, "project_id": project_id})
            self._close(device_id)
        session = self._by_project.get(project_id)
        if session is not None:  # not in the store any more, whatever the memory said
            self._close(session.row.id)
        return device_id is not None

    def metric_rows(self) -> list[tuple[int, int, bool, int]]:
        """(channel id, project id, online, queue depth) of every linked phone."""
        return [
            (s.channel.id, s.row.project_id, self._online(s.row.id), s.channel.queue_depth)
            for s in self._by_device.values()
        ]

    def channel_id(self, project_id: int) -> int | None:
        session = self._by_project.get(project_id)
        return session.channel.id if session is not None else None

    def channel(self, project_id: int) -> DeviceChannel | None:
        session = self._by_project.get(project_id)
        return session.channel if session is not None else None

    async def forget_project(self, project_id: int) -> None:
        device_id = await self.devices.forget_project(project_id, self._now_ms())
        if device_id is not None:
            self._close(device_id)

    # -- the page behind the QR code ----------------------------------------------------

    async def link_page(self, page_token: str, base_url: str) -> LinkPage:
        if not page_token or len(page_token) > 128:
            raise LinkNotFound()
        row = await self.devices.link_by_page(_hash_page(self.secrets, page_token))
        if row is None:
            raise LinkNotFound()
        base = (self.settings.public_url or base_url).rstrip("/")
        live = row.used_at is None and row.expires_at > self._now_ms()
        code = self.secrets.decrypt_secret(row.code_enc) if live else None
        return LinkPage(f"{base}/mobile/v1", code, row.expires_at)

    # -- the app's requests -------------------------------------------------------------

    async def register(
        self,
        code: str,
        name: str,
        push_token: str | None,
        sim_cards: list[Any],
        client: str | None,
    ) -> Registration:
        """POST /device with `Authorization: Code <code>`: spend the code, link the
        phone to the code's project (retiring the project's previous phone)."""
        self._check_code_attempts(client)
        if not code.isdigit() or len(code) != _CODE_DIGITS:
            self._code_failed(client)
            raise InvalidLinkCode()
        token = secrets.token_urlsafe(32)
        public_id = secrets.token_urlsafe(16)[:21]
        signing_key = secrets.token_urlsafe(32)
        now = self._now_ms()

        def make(project_id: int) -> dict[str, Any]:
            return {
                "public_id": public_id,
                "project_id": project_id,
                "name": (name or "Android device")[:128],
                "token_hash": _hash_token(self.secrets, token),
                "push_token": push_token,
                "sim_cards": json.dumps(sim_cards),
                "signing_key_enc": self.secrets.encrypt_secret(signing_key),
                "created_at": now,
                "last_seen_at": now,
                "revoked_at": None,
            }

        result = await self.devices.register(
            self.secrets.keyed_hash_otp(_CODE_SCOPE, code), now, make
        )
        if result is None:
            self._code_failed(client)
            raise InvalidLinkCode()
        row, retired = result
        if retired is not None:
            self._close(retired)
        old = self._by_project.get(row.project_id)
        if old is not None:
            self._close(old.row.id)
        self._open(row)
        log.info(
            "device linked",
            extra={"device_id": row.id, "project_id": row.project_id, "retired": retired},
        )
        # No third-party API sits behind a device here: login names the device, and
        # there is no password to hand out.
        return Registration(id=public_id, token=token, login=public_id[:6].upper(), password="")

    def _check_code_attempts(self, client: str | None) -> None:
        window = self._code_failures.get(client or "")
        now = self._clock()
        if window is None:
            return
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) >= self.settings.code_attempts_per_min:
            raise TooManyCodeAttempts()

    def _code_failed(self, client: str | None) -> None:
        if len(self._code_failures) > 10_000:
            self._code_failures.clear()  # a flood of addresses: start over, stay bounded
        self._code_failures.setdefault(client or "", deque()).append(self._clock())

    async def authenticate(self, token: str | None) -> DeviceSession:
        """`Authorization: Bearer <token>`: the device, or 401 (the app then signs in
        again, which takes a new code)."""
        if not token or len(token) > 256:
            raise InvalidDeviceToken()
        token_hash = _hash_token(self.secrets, token)
        row = await self.devices.by_token_hash(token_hash)
        if row is None or not constant_time_equals(row.token_hash, token_hash):
            raise InvalidDeviceToken()
        session = self._by_device.get(row.id)
        if session is None:
            raise InvalidDeviceToken()  # retired meanwhile (another node, a race)
        now = self._now_ms()
        if now - session.row.last_seen_at >= 1000:
            session.row = _seen(session.row, now)
            self.devices.touch_nowait(row.id, now)
        return session

    async def update_device(
        self, session: DeviceSession, device_id: str, push_token: str | None, sim_cards: list[Any]
    ) -> None:
        if not constant_time_equals(device_id, session.row.public_id):
            raise InvalidRequest("id does not name this device")
        await self.devices.update(session.row.id, push_token, json.dumps(sim_cards))

    def pending(self, session: DeviceSession, *, newest_first: bool = False) -> list[Pending]:
        return session.channel.take(newest_first=newest_first)

    async def report(self, session: DeviceSession, reports: list[StateReport]) -> None:
        for rep in reports:
            if rep.state not in APP_STATES:
                raise InvalidRequest(f"unknown state {rep.state!r}")
        channel = session.channel
        unknown = [r.message_id for r in reports if not channel.known(r.message_id)]
        rows = await self.devices.messages(session.row.id, unknown)
        channel.report(reports, {r.message_id: r.state for r in rows})

    @contextlib.contextmanager
    def events(self, session: DeviceSession) -> Iterator[asyncio.Queue[str]]:
        if self.closed:
            raise Unavailable("gateway is stopping")
        try:
            with self.hub.subscribe(session.row.id) as queue:
                if session.channel.queue_depth:
                    queue.put_nowait("MessageEnqueued")  # work waited while it was away
                yield queue
        finally:
            # Closed by the phone (cancelled) as often as by us: seen until now.
            session.row = _seen(session.row, self._now_ms())
            with contextlib.suppress(StoreUnavailable):  # a stream outliving the store
                self.devices.touch_nowait(session.row.id, session.row.last_seen_at)

    def webhook_url(self, session: DeviceSession, base_url: str) -> str:
        base = (self.settings.public_url or base_url).rstrip("/")
        return f"{base}/mobile/v1{_WEBHOOK_PATH}/{session.row.public_id}"

    def signing_key(self, session: DeviceSession) -> str:
        return self.secrets.decrypt_secret(session.row.signing_key_enc)

    # -- inbound SMS (the app's sms:received webhook) ------------------------------------

    async def receive_webhook(
        self,
        public_id: str,
        body: bytes,
        signature: str | None,
        timestamp: str | None,
        parse: Callable[[bytes], InboundSms],
    ) -> str | None:
        """Check the signature (hex HMAC-SHA256 of body + X-Timestamp under the
        device's signing key) and the timestamp's freshness, then store the SMS.
        Returns the inbound id (None: an event this gateway ignores or already has)."""
        session = next(
            (
                s
                for s in self._by_device.values()
                if constant_time_equals(s.row.public_id, public_id)
            ),
            None,
        )
        if session is None or not signature or not timestamp:
            raise BadSignature()
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise BadSignature("X-Timestamp must be Unix seconds")
        now = self._clock()
        if abs(now - int(timestamp)) > self.settings.webhook_max_skew_s:
            raise BadSignature("stale or future X-Timestamp")
        key = self.signing_key(session).encode()
        expected = hmac.new(key, body + timestamp.encode(), hashlib.sha256).hexdigest()
        if not constant_time_equals(expected, signature.strip().lower()):
            raise BadSignature()
        sms = parse(body)
        if sms.event != "sms:received":
            return None
        # The app retries until it hears 2xx: one event id is stored once.
        horizon = now - 2 * self.settings.webhook_max_skew_s
        self._seen_events = {k: v for k, v in self._seen_events.items() if v > horizon}
        seen_key = f"{session.row.id}:{sms.event_id}"
        if sms.event_id and seen_key in self._seen_events:
            return None
        inbound_id = await self._inbound(
            session.channel.id, sms.sender, sms.recipient, sms.text, sms.received_at_ms
        )
        self._seen_events[seen_key] = now
        return inbound_id


def _seen(row: DeviceRow, now: int) -> DeviceRow:
    import msgspec

    return msgspec.structs.replace(row, last_seen_at=now)
