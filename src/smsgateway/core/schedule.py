"""Scheduled sends (`not_before`) and validity ends for the message pipeline.

Both are wall-clock times kept on the message row, so they survive a restart: the
service hands this class the jobs it loads at start-up as well as new ones. One loop
timer each (DueQueue), no task or timer per message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..store.channels import ChannelStore
from .channels import SendJob, Validity
from .due import DueQueue
from .metrics import METRICS
from .routing import Router


class Schedule:
    def __init__(
        self,
        router: Router,
        store: ChannelStore,
        *,
        on_expired: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._router = router
        self._store = store
        self._on_expired = on_expired
        self._clock = clock
        self._due: DueQueue[tuple[int, SendJob]] = DueQueue(self._send_due, clock=clock)
        self._expiry: DueQueue[SendJob] = DueQueue(self._expire, clock=clock)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def send_at(self, at_ms: int, channel_id: int, job: SendJob) -> None:
        """Give the job to the channel `channel_id` names at `at_ms`."""
        self._due.add(at_ms, (channel_id, job))

    def watch(self, job: SendJob, until_ms: int | None) -> None:
        """Expire the message at `until_ms` unless a channel handed it on by then."""
        if until_ms is not None:
            job.validity = Validity(until_ms)
            self._expiry.add(until_ms, job)

    def expire_stored(self, message_id: str, at_ms: int | None = None) -> None:
        """Mark a stored message expired now (its validity ended while it waited)."""
        done = self._store.expire(message_id, self._now_ms() if at_ms is None else at_ms)
        done.add_done_callback(lambda fut: self._expired(fut, message_id))

    def close(self) -> None:
        """Drop the timers; what they held stays stored for the next start."""
        self._due.close()
        self._expiry.close()

    def _send_due(self, item: tuple[int, SendJob]) -> None:
        channel_id, job = item
        if job.validity is not None and job.validity.expired:
            return
        channel = self._router.get(channel_id)
        if channel is None:
            return  # stays stored: sent when the channel is added (or at next start)
        job.started_ms = self._now_ms()
        channel.enqueue(job)

    def _expire(self, job: SendJob) -> None:
        """Validity over: a message no channel handed on yet is not sent any more."""
        validity = job.validity
        if validity is None or validity.handed or validity.expired or job.outcomes:
            return
        validity.expired = True
        job.abandoned = True
        self.expire_stored(job.message_id)

    def _expired(self, fut: asyncio.Future[bool], message_id: str) -> None:
        if fut.cancelled() or fut.exception() is not None or not fut.result():
            return
        METRICS.messages_expired.inc()
        self._on_expired(message_id)
