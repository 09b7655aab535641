"""One linked phone as a delivery channel.

The phone pulls: `enqueue` keeps the job and tells the phone over SSE; the phone asks
for pending work (`take`), sends each text whole, and reports states (`report`). A
message is one part (seq 1) whose "SMSC id" is the message id itself. The first state
the phone reports for a message is its outcome (the phone has it); Delivered and
Failed afterwards are the message's later news (`MessageService.channel_report`).

What is still pending lives in the message store (status queued, route = this
channel's id): after a restart the message service enqueues it here again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ...store.devices import DeviceStore
from ..channels import OutcomeSink, PartOutcome, SendJob
from .events import EventHub
from .pacing import SendWindow

log = logging.getLogger(__name__)

CHANNEL_ID_BASE = 1_000_000
SEQ = 1  # a phone sends the whole text: one part

# A non-SMPP channel's later news of a message: (channel id, message id, state, error).
Reporter = Callable[[int, str, str, str | None], None]

# The app's states (ProcessingState), as it spells them.
PENDING = "Pending"
PROCESSED = "Processed"
SENT = "Sent"
DELIVERED = "Delivered"
FAILED = "Failed"
# Cancellation is the app's server's feature, never asked for here; a phone that says
# so all the same has not sent the message.
CANCELLING = "Cancelling"
CANCELLED = "Cancelled"
APP_STATES = frozenset({PENDING, PROCESSED, SENT, DELIVERED, FAILED, CANCELLING, CANCELLED})
_FINAL = {DELIVERED: "delivered", FAILED: "failed", CANCELLED: "failed"}
_REPORTED_KEPT = 4096


@dataclass(slots=True)
class Pending:
    """A message waiting for the phone to take it and say so."""

    job: SendJob
    text: str
    created_ms: int
    valid_until_ms: int | None
    handed: bool = False


@dataclass(slots=True, frozen=True)
class StateReport:
    """One message's state as the phone reports it (recipient states folded in)."""

    message_id: str
    state: str
    error: str | None


def channel_id_for(device_id: int) -> int:
    return CHANNEL_ID_BASE + device_id


def _created_ms(message_id: str) -> int | None:
    """A UUIDv7's first 48 bits are its creation time in Unix milliseconds."""
    digits = message_id.replace("-", "")[:12]
    try:
        return int(digits, 16)
    except ValueError:
        return None


def job_validity_ms(job: SendJob) -> int | None:
    return job.validity.until_ms if job.validity is not None else None


def dropped(job: SendJob) -> bool:
    """The message service gave this try up (validity over, or a list moved on)."""
    return job.abandoned or (job.validity is not None and job.validity.expired)


class DeviceChannel:
    kind = "device"

    def __init__(
        self,
        device_id: int,
        name: str,
        project_id: int,
        *,
        store: DeviceStore,
        hub: EventHub,
        window: SendWindow,
        on_outcomes: OutcomeSink,
        report: Reporter,
        online: Callable[[int], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device_id = device_id
        self.id = channel_id_for(device_id)
        self.name = name or f"device-{device_id}"
        self.project_id = project_id
        self.owner = f"project:{project_id}"
        self.retired = False
        self._store = store
        self._hub = hub
        self._window = window
        self._on_outcomes = on_outcomes
        self._report = report
        self._online = online
        self._clock = clock
        self._pending: dict[str, Pending] = {}
        # The last state of messages the phone reported lately: repeats and the next
        # step need no store read (the store holds them all, for after a restart).
        self._reported: dict[str, str] = {}
        self._wake_timer: asyncio.TimerHandle | None = None

    # -- Channel protocol ---------------------------------------------------------

    @property
    def status(self) -> str:
        if self.retired:
            return "CLOSED"
        return "BOUND" if self._online(self.device_id) else "CONNECTING"

    @property
    def bound(self) -> bool:
        # A linked phone takes work even while offline: it waits here for the phone
        # (until its validity ends), which is what a phone channel promises.
        return not self.retired

    def allows(self, address: str | None) -> bool:
        return True

    def enqueue(self, job: SendJob) -> None:
        now = self._now_ms()
        if dropped(job):
            return
        if job.owner != self.owner:
            # A phone sends for its own project only: another tenant naming this
            # channel's id (a native `esme`, say) is refused, and the phone sees nothing.
            self._give_up(Pending(job, job.text, now, None), "DEVICE_NOT_YOURS")
            return
        if self.retired:
            self._give_up(Pending(job, job.text, now, None), "DEVICE_UNLINKED")
            return
        created = _created_ms(job.message_id) or now
        self._pending[job.message_id] = Pending(job, job.text, created, job_validity_ms(job))
        self._store.assign_nowait(job.message_id, self.device_id, now)
        self._hub.notify(self.device_id)

    # -- the phone's side -----------------------------------------------------------

    def seed_handed(self, times_ms: list[int]) -> None:
        """Hand-outs before a restart still count against the pacing window."""
        self._window.seed(times_ms)

    @property
    def queue_depth(self) -> int:
        self.drop_given_up()
        return len(self._pending)

    def take(self, *, newest_first: bool = False) -> list[Pending]:
        """What the phone should send now: everything it was given and has not yet
        reported (it may have missed the answer), plus new work within the pacing
        window. Jobs the message service gave up on (validity over) are dropped."""
        now = self._now_ms()
        self.drop_given_up()
        # Message ids are UUIDv7: within one millisecond they still sort by creation.
        items = sorted(
            self._pending.values(),
            key=lambda p: (p.created_ms, p.job.message_id),
            reverse=newest_first,
        )
        out = [p for p in items if p.handed]
        room = self._window.room(now)
        for item in items:
            if item.handed:
                continue
            if room <= 0:
                self._wake_when_free(now)
                break
            item.handed = True
            if item.job.validity is not None:
                item.job.validity.handed = True  # the phone has it: no expiry from here on
            room -= 1
            self._window.take(now)
            self._store.message_state_nowait(
                item.job.message_id, self.device_id, PENDING, None, now, handed=True
            )
            out.append(item)
        return out

    def known(self, message_id: str) -> bool:
        return message_id in self._pending or message_id in self._reported

    def report(self, reports: list[StateReport], stored: dict[str, str]) -> None:
        """Apply the phone's state reports. `stored` holds the last stored state of
        each reported message of this device that is no longer pending here (after a
        restart, or already reported); messages that are neither are not this
        device's and are ignored, as the app's own server does."""
        now = self._now_ms()
        for rep in reports:
            item = self._pending.pop(rep.message_id, None)
            previous = self._reported.get(rep.message_id) or stored.get(rep.message_id)
            if item is None and previous is None:
                continue
            # A pending job means the message is not submitted in the store yet, even
            # when the phone's state is old news (a crash lost the outcome's write).
            fresh = item is not None and SEQ not in item.job.outcomes
            if item is not None and fresh:
                item.job.outcomes[SEQ] = outcome = PartOutcome(SEQ, self.id, rep.message_id, None)
                self._sink(item.job)(item.job, [outcome])
            if previous == rep.state and not fresh:
                continue
            if len(self._reported) >= _REPORTED_KEPT:
                self._reported.pop(next(iter(self._reported)))
            self._reported[rep.message_id] = rep.state
            self._store.message_state_nowait(
                rep.message_id, self.device_id, rep.state, rep.error, now
            )
            final = _FINAL.get(rep.state)
            if final is not None and (fresh or previous not in _FINAL):
                error = rep.error or ("cancelled" if rep.state == CANCELLED else None)
                self._report(self.id, rep.message_id, final, error)

    # -- lifecycle ------------------------------------------------------------------

    def drop_given_up(self) -> int:
        """Forget jobs the message service gave up on (their validity ended before
        the phone took them: the service stores them as expired)."""
        gone = [mid for mid, p in self._pending.items() if not p.handed and dropped(p.job)]
        for message_id in gone:
            del self._pending[message_id]
        return len(gone)

    def retire(self) -> None:
        """The phone was unlinked: its streams end, and what it has not reported is
        refused (DEVICE_UNLINKED), so a priority list moves on and nothing waits for a
        phone that is gone. A message the phone took but never reported may have been
        sent all the same; no later report can say so any more."""
        self.retired = True
        if self._wake_timer is not None:
            self._wake_timer.cancel()
        pending, self._pending = list(self._pending.values()), {}
        for item in pending:
            self._give_up(item, "DEVICE_UNLINKED")
        self._hub.close(self.device_id)

    def _give_up(self, item: Pending, reason: str) -> None:
        job = item.job
        if SEQ not in job.outcomes and not dropped(job):
            job.outcomes[SEQ] = outcome = PartOutcome(SEQ, self.id, None, reason)
            self._sink(job)(job, [outcome])

    def _sink(self, job: SendJob) -> OutcomeSink:
        return job.on_outcomes or self._on_outcomes

    def _wake_when_free(self, now_ms: int) -> None:
        """Pacing held work back: tell the phone again when a slot opens."""
        at = self._window.free_at(now_ms)
        if at is None or self._wake_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._wake_timer = loop.call_later(max(0.0, (at - now_ms) / 1000), self._wake)

    def _wake(self) -> None:
        self._wake_timer = None
        if self._pending and not self.retired:
            self._hub.notify(self.device_id)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
