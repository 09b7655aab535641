"""OTP verifications and custom messages of a project, and what its status and
stats say. Every SMS goes through the one pipeline (`Sender.send`, MessageService)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ...settings_otp import OtpSettings
from ...store.models import MessageWithParts
from ...store.otp import DAY_MS, Checked, DayCounts, Opened, OtpStore, VerificationRow
from ..errors import (
    DeviceNotLinked,
    GatewayError,
    InvalidRequest,
    MessageNotFound,
    OtpAlreadyVerified,
    OtpExpired,
    OtpMaxAttempts,
    RetryLater,
    Unavailable,
    VerificationNotFound,
)
from ..ids import uuid7
from ..validation import check_text
from .codes import Codes
from .limits import ProjectLimits
from .phone import parse_e164
from .ports import Channels, DeviceInfoView, Devices, Sender
from .projects import DEVICE, Project
from .templates import check_template, render

MAX_TEXT_CHARS = 1600
_OTP_INPUT = re.compile(r"[0-9]{1,12}")
_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


@dataclass(frozen=True, slots=True)
class OtpSent:
    verification_id: str
    status: str
    expires_at_ms: int
    channel: str
    resent: bool
    message_id: str | None


@dataclass(frozen=True, slots=True)
class OtpChecked:
    verified: bool
    status: str
    attempts_left: int


@dataclass(frozen=True, slots=True)
class MessageItem:
    """One message to send: where, what, and when (None: now)."""

    to: object
    text: object
    send_at: object = None


@dataclass(frozen=True, slots=True)
class MessageAccepted:
    index: int
    to: str
    message_id: str | None
    status: str
    send_at_ms: int | None = None
    error: GatewayError | None = None


@dataclass(frozen=True, slots=True)
class Blocker:
    code: str
    message: str


@dataclass(slots=True)
class ProjectStatus:
    project: Project
    channel: str
    channel_id: int | None
    device: DeviceInfoView | None
    link_status: str | None
    link_name: str | None
    ready: bool
    blockers: list[Blocker] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Stats:
    totals: DayCounts
    days: list[DayCounts]


def parse_send_at(value: object, now_ms: int, max_days: int) -> int | None:
    """`sendAt` (ISO 8601 with an offset) as ms; None for absent or already due."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidRequest("sendAt must be an ISO 8601 date-time with an offset")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("sendAt must be an ISO 8601 date-time with an offset") from None
    if when.tzinfo is None:
        raise InvalidRequest("sendAt must carry an offset (Z or +hh:mm)")
    at = int(when.timestamp() * 1000)
    if at > now_ms + max_days * DAY_MS:
        raise InvalidRequest(f"sendAt must be within {max_days} days")
    return at if at > now_ms else None


class OtpService:
    def __init__(
        self,
        store: OtpStore,
        codes: Codes,
        sender: Sender,
        channels: Channels,
        devices: Callable[[], Devices | None],
        settings: OtpSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.codes = codes
        self.sender = sender
        self.channels = channels
        self._devices = devices
        self.settings = settings
        self.limits = ProjectLimits(settings)
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def devices(self) -> Devices | None:
        return self._devices()

    # -- channel ----------------------------------------------------------------------

    def channel_id(self, project: Project) -> int:
        """The Router id to send through, or DeviceNotLinked."""
        channel = project.settings.channel
        if channel == DEVICE:
            devices = self.devices
            found = devices.channel_id(project.id) if devices is not None else None
            if found is None:
                raise DeviceNotLinked()
            return found
        assert isinstance(channel, int)
        if self.channels.get(channel) is None:
            # Configured when the project was set, gone from the config since.
            raise Unavailable(f"the project's channel {channel} is not configured")
        return channel

    # -- OTP --------------------------------------------------------------------------

    async def send_otp(
        self, project: Project, to: object, template: object = None, code_length: object = None
    ) -> OtpSent:
        s = project.settings
        number = parse_e164(to)
        if template is None:
            tpl = s.template
        elif isinstance(template, str):
            check_template(template, project.name)
            tpl = template
        else:
            raise InvalidRequest("template must be a string")
        if code_length is None:
            length = s.code_length
        elif isinstance(code_length, int) and not isinstance(code_length, bool):
            if not 4 <= code_length <= 10:
                raise InvalidRequest("codeLength must be within 4..10")
            length = code_length
        else:
            raise InvalidRequest("codeLength must be an integer")
        test_code = s.test_numbers.get(number)
        channel_id = None
        if test_code is None:
            channel_id = self.channel_id(project)
            self.limits.destination(project.id, number)
        now = self._now_ms()
        vid = uuid7()
        seed = "" if test_code is not None else self.codes.new_seed()
        if test_code is not None:
            length = len(test_code)
        code = test_code if test_code is not None else self.codes.derive(vid, seed, length)
        new = VerificationRow(
            id=vid,
            project_id=project.id,
            destination=number,
            code_hash=self.codes.hash(project.id, vid, code),
            seed=seed,
            code_length=length,
            status="pending",
            attempts_left=s.max_checks,
            sends=1,
            is_test=test_code is not None,
            message_id=None,
            created_at=now,
            expires_at=now + s.ttl_s * 1000,
            verified_at=None,
            updated_at=now,
        )
        opened, row = await self.store.open_verification(new, s.max_sends)
        if opened is Opened.MAX_SENDS:
            if channel_id is not None:
                self.limits.give_back(project.id, number)
            raise RetryLater(
                "this verification was sent the most times allowed; wait until it expires",
                retry_after_s=max(1.0, (row.expires_at - now) / 1000),
            )
        resent = opened is Opened.RESENT
        if row.is_test or channel_id is None:
            return OtpSent(row.id, "pending", row.expires_at, "test", resent, None)
        if resent:
            code = self.codes.derive(row.id, row.seed, row.code_length)
        left_ms = row.expires_at - now
        text = render(
            tpl, code=code, project=project.name, minutes=max(1, math.ceil(left_ms / 60_000))
        )
        try:
            sent = await self.sender.send(
                owner=project.owner,
                channel_id=channel_id,
                source=s.sender,
                destination=number,
                text=text,
                idempotency_key=f"otp:{row.id}:{row.sends}",
                wait="stored",
                validity_ms=left_ms,
                sensitive=True,  # the text holds the code: sealed at rest, wiped when final
            )
        except BaseException:
            self.limits.give_back(project.id, number)
            if resent:
                await asyncio.shield(self.store.uncount_send(row.id))
            else:
                await asyncio.shield(self.store.drop_verification(row.id))
            raise
        await self.store.record_messages(project.id, [(sent.message_id, "otp", row.id)], now)
        return OtpSent(
            row.id, "pending", row.expires_at, project.channel_kind, resent, sent.message_id
        )

    async def verify_otp(
        self, project: Project, verification_id: object, otp: object
    ) -> OtpChecked:
        if not isinstance(verification_id, str) or not _ID.fullmatch(verification_id):
            raise InvalidRequest("verificationId is required")
        if not isinstance(otp, str) or not _OTP_INPUT.fullmatch(otp):
            raise InvalidRequest("otp must be a string of digits")
        candidate = self.codes.hash(project.id, verification_id, otp)
        checked, row = await self.store.check_code(
            project.id,
            verification_id,
            lambda v: self.codes.same(candidate, v.code_hash),
            self._now_ms(),
        )
        if checked is Checked.NOT_FOUND or row is None:
            raise VerificationNotFound()
        if checked is Checked.EXPIRED:
            raise OtpExpired()
        if checked is Checked.MAX_ATTEMPTS:
            raise OtpMaxAttempts()
        if checked is Checked.ALREADY_VERIFIED:
            raise OtpAlreadyVerified()
        return OtpChecked(checked is Checked.VERIFIED, row.status, row.attempts_left)

    # -- custom messages --------------------------------------------------------------

    def _item(self, item: MessageItem, now: int) -> tuple[str, str, int | None]:
        number = parse_e164(item.to)
        if not isinstance(item.text, str):
            raise InvalidRequest("text is required")
        check_text(item.text)
        if len(item.text) > MAX_TEXT_CHARS:
            raise InvalidRequest(f"text must be at most {MAX_TEXT_CHARS} characters")
        return number, item.text, parse_send_at(item.send_at, now, self.settings.max_schedule_days)

    async def send_message(self, project: Project, item: MessageItem) -> MessageAccepted:
        """One message; its errors are raised."""
        [accepted] = await self.send_messages(project, [item], per_item_errors=False)
        return accepted

    async def send_messages(
        self, project: Project, items: list[MessageItem], *, per_item_errors: bool = True
    ) -> list[MessageAccepted]:
        """Messages in order; with `per_item_errors` a bad or limited item gets its own
        error and the rest still go."""
        if not items:
            raise InvalidRequest("messages must not be empty")
        if len(items) > self.settings.max_bulk:
            raise InvalidRequest(f"at most {self.settings.max_bulk} messages per request")
        channel_id = self.channel_id(project)
        now = self._now_ms()
        out: list[MessageAccepted | None] = [None] * len(items)
        ready: list[tuple[int, str, str, int | None]] = []
        for i, item in enumerate(items):
            try:
                number, text, at = self._item(item, now)
            except GatewayError as exc:
                if not per_item_errors:
                    raise
                to = item.to if isinstance(item.to, str) else ""
                out[i] = MessageAccepted(i, to, None, "rejected", error=exc)
                continue
            ready.append((i, number, text, at))
        waits = self.limits.destinations(project.id, [r[1] for r in ready])
        going = []
        for (i, number, text, at), wait in zip(ready, waits, strict=True):
            if wait:
                limited = RetryLater("too many messages to this number", retry_after_s=wait)
                if not per_item_errors:
                    raise limited
                out[i] = MessageAccepted(i, number, None, "rejected", at, error=limited)
            else:
                going.append((i, number, text, at))
        sender = self.sender
        results = await asyncio.gather(
            *(
                sender.send(
                    owner=project.owner,
                    channel_id=channel_id,
                    source=project.settings.sender,
                    destination=number,
                    text=text,
                    wait="stored",
                    not_before_ms=at,
                )
                for _, number, text, at in going
            ),
            return_exceptions=True,
        )
        recorded: list[tuple[str, str, str | None]] = []
        for (i, number, _, at), result in zip(going, results, strict=True):
            if isinstance(result, BaseException):
                self.limits.give_back(project.id, number)
                if not per_item_errors or not isinstance(result, GatewayError):
                    raise result
                out[i] = MessageAccepted(i, number, None, "rejected", at, error=result)
                continue
            recorded.append((result.message_id, "custom", None))
            status = "scheduled" if at is not None and result.status == "queued" else result.status
            out[i] = MessageAccepted(i, number, result.message_id, status, at)
        if recorded:
            await self.store.record_messages(project.id, recorded, now)
        return [a for a in out if a is not None]

    async def get_message(self, project: Project, message_id: str) -> MessageWithParts:
        if not _ID.fullmatch(message_id):
            raise MessageNotFound()
        found = await self.sender.get_owned(project.owner, message_id)
        if found is None:
            raise MessageNotFound()
        return found

    # -- status and stats -------------------------------------------------------------

    async def status(self, project: Project) -> ProjectStatus:
        kind = project.channel_kind
        st = ProjectStatus(project, kind, None, None, None, None, False)
        if kind == DEVICE:
            devices = self.devices
            if devices is not None:
                st.device = await devices.active_device(project.id)
                st.channel_id = devices.channel_id(project.id)
            if st.device is None or st.channel_id is None:
                st.blockers.append(
                    Blocker("DEVICE_NOT_LINKED", "no device is linked: link one (device-link)")
                )
            elif not st.device.online:
                st.blockers.append(
                    Blocker(
                        "DEVICE_OFFLINE",
                        "the device is offline: messages wait in its queue until it returns"
                        " or they expire",
                    )
                )
            st.ready = st.device is not None and st.channel_id is not None
            return st
        assert isinstance(project.settings.channel, int)
        st.channel_id = project.settings.channel
        channel = self.channels.get(st.channel_id)
        if channel is None:
            st.blockers.append(
                Blocker("CHANNEL_UNKNOWN", f"channel {st.channel_id} is not configured")
            )
            return st
        st.link_status, st.link_name = channel.status, channel.name
        if not channel.bound:
            st.blockers.append(
                Blocker(
                    "CHANNEL_NOT_BOUND",
                    f"{channel.name} is {channel.status.lower()}: messages wait until it binds",
                )
            )
        st.ready = True
        return st

    async def stats(self, project: Project, days: int) -> Stats:
        now = self._now_ms()
        today = now // DAY_MS
        first_day = today - days + 1
        rows = await self.store.stats(project.id, 0, now)
        totals = DayCounts(-1)
        for r in rows:
            for f in DayCounts.__struct_fields__[1:]:
                setattr(totals, f, getattr(totals, f) + getattr(r, f))
        return Stats(totals, [r for r in rows if r.day >= first_day])


def shown_status(status: str, not_before_ms: int | None, now_ms: int) -> str:
    """A message's status as /v1 shows it: queued and not yet due is `scheduled`."""
    if status == "queued" and not_before_ms is not None and not_before_ms > now_ms:
        return "scheduled"
    return status


def iso(ms: int | None) -> str | None:
    """Milliseconds as ISO 8601 UTC with milliseconds (2026-12-04T19:00:00.000Z)."""
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def day_text(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
