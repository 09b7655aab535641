"""A priority list: members (links, pools, lists) tried in order, with failover.

The list moves to its next member when the member refuses the message (an error in
the submit_sm_resp, before any part was accepted), is down or disabled when its turn
comes, or has not answered within `attempt_timeout_s`. Each try is noted on the job
(`SendJob.attempts`) and stored with the message's outcome. When every member has
been tried the message is refused with the last member's error.

Each try gets its own copy of the job, so a member that answers after the list moved
on (a timeout) cannot touch the next try: its late answer is dropped (and logged, as
the SMSC may deliver it: a possible duplicate). Once a member accepted a part, the
rest of the message stays with it, as a pool keeps a long message on one link.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..deadlines import FifoTimers
from ..metrics import METRICS
from .base import (
    DOWN,
    REFUSED,
    TIMEOUT,
    AttemptNote,
    Channel,
    OutcomeSink,
    PartOutcome,
    SendJob,
    group_status,
    refuse_all,
)
from .link import SmppLink

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Route:
    """One message's way through the list."""

    origin: SendJob
    # Where the list's final word goes: an outer list watching this one, or None
    # for the sink the list was built with (the message service).
    upstream: OutcomeSink | None
    index: int = -1
    current: SendJob | None = None
    last_error: str = "no member could take it"


class PriorityList:
    kind = "list"

    def __init__(
        self,
        list_id: int,
        name: str,
        members: Sequence[Channel],
        attempt_timeout_s: float,
        *,
        on_outcomes: OutcomeSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.id = list_id
        self.name = name or f"list-{list_id}"
        self.members = list(members)
        self.attempt_timeout_s = attempt_timeout_s
        self._sink = on_outcomes
        self._clock = clock
        self._routes: dict[SendJob, _Route] = {}
        self._timers: FifoTimers[SendJob] = FifoTimers(attempt_timeout_s, self._timed_out)
        # Until the members had their chance to bind (start-up), jobs wait here
        # rather than find every member down.
        self._held: list[SendJob] | None = []

    # -- state -------------------------------------------------------------------

    @property
    def status(self) -> str:
        return group_status(self.members)

    @property
    def bound(self) -> bool:
        return any(m.bound for m in self.members)

    def allows(self, address: str | None) -> bool:
        return all(m.allows(address) for m in self.members)

    @property
    def in_flight(self) -> int:
        return len(self._routes)

    @property
    def ready(self) -> bool:
        """Trying members (start-up is over)."""
        return self._held is None

    def release(self) -> None:
        """Start trying members (after start-up); what waited goes now."""
        held, self._held = self._held, None
        for job in held or ():
            self.enqueue(job)

    async def start(self, grace_s: float) -> None:
        """Let members bind for up to `grace_s` (or until all are bound), then release."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while loop.time() < deadline and not all(m.bound for m in self.members):
            await asyncio.sleep(0.02)
        self.release()

    def stop(self) -> None:
        self._timers.close()

    # -- sending -----------------------------------------------------------------

    def enqueue(self, job: SendJob) -> None:
        if self._held is not None:
            self._held.append(job)
            return
        self._next(_Route(job, job.on_outcomes))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _next(self, route: _Route) -> None:
        """Give the message to the next member that is up; refuse it past the last."""
        origin = route.origin
        if origin.validity is not None and origin.validity.expired:
            return  # expired unsent: nothing more to try
        while route.index + 1 < len(self.members):
            route.index += 1
            member = self.members[route.index]
            now = self._now_ms()
            if not _can_take(member):
                route.last_error = f"{member.name} is {member.status.lower()}"
                if member.kind != "list":  # an inner list notes its own members
                    self._note(origin, member, now, DOWN, route.last_error)
                else:
                    for inner in _leaves(member):
                        self._note(origin, inner, now, DOWN, f"{inner.name} is down")
                continue
            attempt = dataclasses.replace(
                origin,
                outcomes={},
                pool=None,
                pinned_link=None,
                pin_deadline=None,
                on_outcomes=self._answered,
                abandoned=False,
                started_ms=now,
            )
            route.current = attempt
            self._routes[attempt] = route
            if member.kind != "list":  # an inner list times its own members out
                self._timers.add(attempt)
            member.enqueue(attempt)
            return
        self._give_up(route)

    def _give_up(self, route: _Route) -> None:
        job = route.current or route.origin
        job.attempt_open = False  # every try is among job.attempts already
        job.outcomes = {}
        self._forward(route, job, refuse_all(job, self.id, route.last_error))

    def _forward(self, route: _Route, job: SendJob, outcomes: list[PartOutcome]) -> None:
        """The list's word on the message: to the service, or to the outer list that
        gave it the job (which knows it by the job it handed over)."""
        if route.upstream is None:
            self._sink(job, outcomes)
            return
        origin = route.origin
        if job is not origin:
            origin.outcomes = job.outcomes
            origin.parts = job.parts
            origin.parts_total = job.parts_total
            origin.split_as = job.split_as
            origin.resplit = job.resplit
            origin.attempt_open = job.attempt_open
            origin.started_ms = job.started_ms
        route.upstream(origin, outcomes)

    def _note(
        self,
        job: SendJob,
        member: Channel,
        started: int,
        outcome: str,
        error: str,
        channel_id: int | None = None,
    ) -> None:
        # A pool's refusal names the link that refused (the pool itself when down).
        kind = "link" if channel_id is not None and member.kind == "pool" else member.kind
        job.attempts.append(
            AttemptNote(
                member.id if channel_id is None else channel_id,
                kind,
                started,
                self._now_ms(),
                outcome,
                error,
            )
        )

    def _answered(self, attempt: SendJob, outcomes: list[PartOutcome]) -> None:
        route = self._routes.get(attempt)
        if route is None or attempt.abandoned:
            if any(o.smsc_id for o in outcomes):
                # The list moved on before this member answered, and it took the
                # part: the next member may deliver it too.
                METRICS.parts_resent.labels("failover").inc(sum(1 for o in outcomes if o.smsc_id))
                log.warning(
                    "late acceptance after failover: possible duplicate",
                    extra={"message_id": attempt.message_id, "list_id": self.id},
                )
            return
        member = self.members[route.index]
        refused = next((o for o in outcomes if o.error), None)
        if refused is not None and not attempt.accepted_any:
            del self._routes[attempt]
            attempt.abandoned = True  # other parts of it still in flight are dropped
            route.last_error = refused.error or "refused"
            if attempt.attempt_open and member.kind != "list":
                self._note(
                    attempt,
                    member,
                    attempt.started_ms,
                    REFUSED,
                    route.last_error,
                    refused.link_id,
                )
            self._next(route)
            return
        # Taken (whole, or its first parts: the rest stays with this member).
        if attempt.complete:
            del self._routes[attempt]
        self._forward(route, attempt, outcomes)

    def _timed_out(self, attempt: SendJob) -> None:
        route = self._routes.get(attempt)
        if route is None or attempt.outcomes:
            return  # answered, or a member took its first parts: the rest follows
        del self._routes[attempt]
        attempt.abandoned = True
        member = self.members[route.index]
        route.last_error = f"{member.name} did not answer within {self.attempt_timeout_s:g} s"
        self._note(attempt, member, attempt.started_ms, TIMEOUT, route.last_error)
        self._next(route)


def _can_take(member: Channel) -> bool:
    # A receiver-only bind is bound but sends nothing: down, for a list.
    return member.can_send if isinstance(member, SmppLink) else member.bound


def _leaves(channel: Channel) -> list[Channel]:
    """A list's non-list members, in order (for noting a whole inner list down)."""
    if isinstance(channel, PriorityList):
        return [leaf for m in channel.members for leaf in _leaves(m)]
    return [channel]
