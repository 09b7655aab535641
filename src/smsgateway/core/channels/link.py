"""An SMPP link: one bind to one SMSC, with its pending queue and sender.

A job whose link is down waits in the link's pending queue and goes out when the link
binds; a part whose submit_sm_resp never came (timeout, dropped connection) is sent
again: at-least-once toward the SMSC. A job whose parts were cut for another split
method (failover from a link that joins long messages differently) is cut again here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import math
from collections import deque
from typing import TYPE_CHECKING

from ...settings import LinkSettings
from ...smpp.errors import CommandError, ResponseTimeout, SessionClosed
from ...smpp.pdu import DataSm, DeliverSm, SubmitSm, SubmitSmResp
from ...smpp.session import ClientConfig, EsmeClient, LinkState
from ..metrics import METRICS
from .base import DISABLED, DeliverHandler, OutcomeSink, PartOutcome, PartSpec, SendJob, refuse_all
from .encode import TooManyParts, split_text

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .pool import SmppPool

log = logging.getLogger(__name__)


class SmppLink:
    """One SMPP bind to one SMSC, with its pending queue and sender."""

    kind = "link"

    def __init__(
        self,
        cfg: LinkSettings,
        *,
        on_outcomes: OutcomeSink,
        on_deliver: DeliverHandler,
        enabled: bool = True,
        reason: str = "",
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.name = cfg.name or f"link-{cfg.id}"
        self.enabled = enabled
        self.reason = reason
        # Why the license keeps this link from binding; "" = it may bind.
        self.held = ""
        self._on_outcomes = on_outcomes
        self._on_deliver = on_deliver
        self._pending: deque[SendJob] = deque()
        self._pools: list[SmppPool] = []
        self._active = 0
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._networks = [ipaddress.ip_network(c, strict=False) for c in cfg.allowed_ips]
        self.client = EsmeClient(
            ClientConfig(
                host=cfg.host,
                port=cfg.port,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
                interface_version=0x34 if cfg.interface_version == "3.4" else 0x33,
                bind_mode=cfg.bind_mode,
                window=cfg.window,
                limit_tps=cfg.limit_tps,
                enquire_link_interval=cfg.enquire_link_interval,
                response_timeout=cfg.response_timeout,
                throttle_pause=cfg.throttle_pause,
                max_retry_time=cfg.throttle_retry_s or math.inf,
            ),
            on_deliver=self._deliver,
            on_state_change=self._state_changed,
        )

    # -- state -----------------------------------------------------------------------

    @property
    def status(self) -> str:
        if not self.enabled:
            return DISABLED
        return str(self.client.state.value).upper()

    @property
    def bound(self) -> bool:
        return self.enabled and self.client.state == LinkState.BOUND

    @property
    def can_send(self) -> bool:
        return self.bound and self.cfg.bind_mode != "receiver"

    def load(self) -> float:
        """Work waiting here per unit of capacity: pools pick the least loaded link."""
        return (self._active + len(self._pending) + 1) / max(self.cfg.limit_tps, 1)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def allows(self, address: str | None) -> bool:
        if not self._networks:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def join_pool(self, pool: SmppPool) -> None:
        self._pools.append(pool)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._drainer = asyncio.create_task(self._drain(), name=f"drain-{self.name}")
        if self.enabled and not self.held:
            await self.client.start()

    async def stop(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        await self.client.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def set_enabled(self, enabled: bool, reason: str) -> None:
        was = self.enabled
        self.enabled = enabled
        self.reason = "" if enabled else reason
        if enabled and not was:
            if not self.held:
                await self.client.start()
            self._wake.set()
        elif not enabled and was:
            # Unbind cleanly; queued work moves to a pool sibling when there is one.
            await self.client.stop()
            for pool in self._pools:
                pool.rebalance()

    async def set_held(self, reason: str) -> None:
        """Keep the link unbound (license cap) or let it bind again; `enabled` stays."""
        was = self.held
        self.held = reason
        if self._drainer is None or not self.enabled or bool(was) == bool(reason):
            return  # not started yet, disabled anyway, or no change
        if reason:
            await self.client.stop()
            for pool in self._pools:
                pool.rebalance()
        else:
            await self.client.start()
            self._wake.set()

    def _state_changed(self, state: LinkState) -> None:
        log.info("link state", extra={"link_id": self.id, "state": str(state.value)})
        if state == LinkState.BOUND:
            self._wake.set()
        elif self._pending:
            # Down: what came through a pool goes to the members still up.
            for pool in self._pools:
                pool.rebalance()

    # -- sending ---------------------------------------------------------------------

    def enqueue(self, job: SendJob) -> None:
        if self.can_send and not self._pending:
            self._dispatch(job)
        else:
            self._pending.append(job)
            self._wake.set()

    def take_pending(self, pool: SmppPool | None = None) -> list[SendJob]:
        """Remove and return the queued jobs (only those routed via `pool`, if given)."""
        if pool is None:
            jobs = list(self._pending)
            self._pending.clear()
            return jobs
        jobs = [job for job in self._pending if job.pool is pool and job.pinned_link is None]
        if jobs:
            taken = set(jobs)
            self._pending = deque(job for job in self._pending if job not in taken)
        return jobs

    def wait_pinned(self, job: SendJob, *, front: bool = False) -> None:
        """Queue the rest of a message this link started, to wait for the link for
        up to its pool's `pin_timeout_s`; past that, another member sends it."""
        assert job.pool is not None
        if front:
            self._pending.appendleft(job)
        else:
            self._pending.append(job)
        loop = asyncio.get_running_loop()
        if job.pin_deadline is None:
            job.pin_deadline = loop.time() + job.pool.cfg.pin_timeout_s
            loop.call_at(job.pin_deadline, self._pin_expired, job)

    def _pin_expired(self, job: SendJob) -> None:
        deadline = job.pin_deadline
        if self.can_send or job.pinned_link != self.id or deadline is None:
            return  # sent or being sent, or moved meanwhile
        if asyncio.get_running_loop().time() < deadline:
            return  # a newer wait, with its own timer
        try:
            self._pending.remove(job)
        except ValueError:
            return  # in flight right now
        assert job.pool is not None
        job.pool.split(job, self.id, "its link stayed down")

    def _dispatch(self, job: SendJob) -> None:
        if job.abandoned:
            return  # a list moved on from this try
        validity = job.validity
        if validity is not None:
            if validity.expired:
                return
            validity.handed = True
        split_as = job.split_as
        if split_as is not None and split_as != self.cfg.split_method and not self._resplit(job):
            return
        self._active += 1
        parts = job.remaining()
        if len(parts) == 1:
            # Most messages are one part, and most submits go out at once: then no
            # task, only a callback on the answer's future.
            part = parts[0]
            try:
                answer = self.client.submit_soon(_submit_pdu(job, part))
            except SessionClosed:
                answer = None  # the task path meets it again and requeues the job
            if answer is not None:
                answer.add_done_callback(functools.partial(self._answered, job, part))
                return
        task = asyncio.create_task(self._send(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _resplit(self, job: SendJob) -> bool:
        """Cut the job's text for this link (it joins long messages another way than
        the parts were cut for). False: it cannot carry the text, refused here."""
        if job.outcomes:
            return True  # parts already went out: the rest keep their shape
        try:
            job.parts = split_text(job.text, self.cfg.split_method, max_parts=job.max_parts)
        except TooManyParts:
            self._report(job, refuse_all(job, self.id, "ESME_RINVMSGLEN"))
            return False
        job.parts_total = len(job.parts)
        job.split_as = self.cfg.split_method
        job.resplit = True
        return True

    def _report(self, job: SendJob, new: list[PartOutcome]) -> None:
        sink = job.on_outcomes
        (sink if sink is not None else self._on_outcomes)(job, new)

    def _answered(self, job: SendJob, part: PartSpec, answer: asyncio.Future[SubmitSmResp]) -> None:
        said: SubmitSmResp | BaseException
        if answer.cancelled():
            said = SessionClosed("submit cancelled")
        else:
            said = answer.exception() or answer.result()
        try:
            self._settle(job, [part], [said])
        finally:
            self._active -= 1
            self._wake.set()

    async def _drain(self) -> None:
        """Send pending work (own queue first, then the pools') whenever bound."""
        cap = max(self.cfg.window * 4, 16)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.can_send and self._active < cap:
                job = self._next_pending()
                if job is None:
                    break
                self._dispatch(job)

    def _next_pending(self) -> SendJob | None:
        if self._pending:
            return self._pending.popleft()
        for pool in self._pools:
            job = pool.pop_pending()
            if job is not None:
                return job
        return None

    async def _send(self, job: SendJob) -> None:
        try:
            parts = job.remaining()
            results: list[SubmitSmResp | BaseException]
            if len(parts) == 1:
                # Most messages are one part: no gather, no extra task per part.
                try:
                    results = [await self.client.submit(_submit_pdu(job, parts[0]))]
                except Exception as exc:
                    results = [exc]
            else:
                results = await asyncio.gather(
                    *(self.client.submit(_submit_pdu(job, part)) for part in parts),
                    return_exceptions=True,
                )
            self._settle(job, parts, results)
        finally:
            self._active -= 1
            self._wake.set()

    def _settle(
        self, job: SendJob, parts: list[PartSpec], results: list[SubmitSmResp | BaseException]
    ) -> None:
        """Record what the SMSC said of these parts (a resp, a refusal, or no answer);
        put the job back if any got no answer (on this link, in the pool, or waiting
        for this link if pinned)."""
        new: list[PartOutcome] = []
        retry = False
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, SubmitSmResp):
                outcome = PartOutcome(part.seq, self.id, result.message_id, None)
                job.outcomes[part.seq] = outcome
                new.append(outcome)
                job.pinned_link = self.id
            elif isinstance(result, CommandError):
                outcome = PartOutcome(part.seq, self.id, None, result.status_name)
                job.outcomes[part.seq] = outcome
                new.append(outcome)
            elif isinstance(result, SessionClosed | ResponseTimeout):
                retry = True  # no answer: the SMSC may or may not have it; resend
                if isinstance(result, ResponseTimeout) or result.written:
                    _count_resend(job, part, self.id, result)
            elif isinstance(result, BaseException):
                log.error("submit failed", exc_info=result)
                outcome = PartOutcome(part.seq, self.id, None, "ESME_RSYSERR")
                job.outcomes[part.seq] = outcome
                new.append(outcome)
        if new:
            job.pin_deadline = None  # the link took parts: any wait starts afresh
            self._report(job, new)
        if retry and job.abandoned:
            return  # a list gave this try up (no answer in time): not sent again here
        if retry and job.pool is not None and not self.can_send:
            if job.pinned_link is None:
                job.pool.enqueue(job)  # this link is down: another member sends it
            else:
                self.wait_pinned(job, front=True)
        elif retry:
            self._pending.appendleft(job)

    def _deliver(self, pdu: DeliverSm | DataSm) -> int | Awaitable[int]:
        return self._on_deliver(self, pdu)


def _submit_pdu(job: SendJob, part: PartSpec) -> SubmitSm:
    return SubmitSm(
        source_addr_ton=job.source_ton,
        source_addr_npi=job.source_npi,
        source_addr=job.source,
        dest_addr_ton=job.dest_ton,
        dest_addr_npi=job.dest_npi,
        destination_addr=job.destination,
        esm_class=part.esm_class,
        registered_delivery=job.registered_delivery,
        data_coding=part.data_coding,
        short_message=part.short_message,
        tlvs=dict(part.tlvs),
    )


def _count_resend(job: SendJob, part: PartSpec, link_id: int, why: Exception) -> None:
    """A part the SMSC may already have goes out again: a possible duplicate, so it is
    counted and logged (message and part), as at-least-once delivery promises."""
    reason = "timeout" if isinstance(why, ResponseTimeout) else "connection"
    METRICS.parts_resent.labels(reason).inc()
    log.warning(
        "part will be sent again: its submit got no answer",
        extra={"message_id": job.message_id, "seq": part.seq, "link_id": link_id, "why": str(why)},
    )
