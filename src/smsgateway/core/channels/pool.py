"""A pool: several SMPP links as one target; each message goes through one bound member."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

from ...settings import PoolSettings
from .base import SendJob, group_status
from .link import SmppLink

log = logging.getLogger(__name__)


class SmppPool:
    """Several links as one target: each message goes through one bound member."""

    kind = "pool"

    def __init__(self, cfg: PoolSettings, members: Iterable[SmppLink]) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.name = cfg.name or f"pool-{cfg.id}"
        self.members = list(members)
        self._pending: deque[SendJob] = deque()
        for link in self.members:
            link.join_pool(self)

    @property
    def status(self) -> str:
        return group_status(self.members)

    @property
    def bound(self) -> bool:
        return any(m.bound for m in self.members)

    def allows(self, address: str | None) -> bool:
        return all(m.allows(address) for m in self.members)

    def pick(self) -> SmppLink | None:
        ready = [m for m in self.members if m.can_send]
        if not ready:
            return None
        return min(ready, key=SmppLink.load)

    def enqueue(self, job: SendJob) -> None:
        job.pool = self
        link = self.pick()
        if link is not None:
            link.enqueue(job)
        else:
            self._pending.append(job)
            for member in self.members:
                member._wake.set()

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def pop_pending(self) -> SendJob | None:
        return self._pending.popleft() if self._pending else None

    def rebalance(self) -> None:
        """Move work off members that cannot send so the rest carry it: everything
        queued on a disabled or held member, and this pool's jobs on a member that is
        down. Jobs that named the link itself wait for it, and so do messages with a
        part the link already accepted (see `SendJob.pinned_link`), unless the link
        was switched off or stays down past `pin_timeout_s`: then the rest of such a
        message goes elsewhere, split."""
        for member in self.members:
            if member.can_send:
                continue
            off = not member.enabled or bool(member.held)
            for job in member.take_pending(None if off else self):
                if job.pinned_link is not None:
                    self.split(job, member.id, "its link was switched off")
                else:
                    self.enqueue(job)

    def split(self, job: SendJob, link_id: int, why: str) -> None:
        """Send the rest of a message that `link_id` started through any member."""
        log.warning(
            f"message split across links: {why}",
            extra={"message_id": job.message_id, "link_id": link_id},
        )
        job.pinned_link = job.pin_deadline = None
        self.enqueue(job)

    def enqueue_pinned(self, job: SendJob, link_id: int) -> None:
        """Back on the member that accepted the job's first parts (after a restart),
        or any member if that link has left the pool."""
        job.pool = self
        for member in self.members:
            if member.id == link_id:
                job.pinned_link = link_id
                if member.can_send:
                    member.enqueue(job)
                else:
                    member.wait_pinned(job)
                return
        self.enqueue(job)

    @property
    def total_tps(self) -> int:
        return sum(m.cfg.limit_tps for m in self.members if m.enabled)
