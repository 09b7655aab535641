"""What every channel shares: the job it is given, what it reports, its protocol.

A channel takes a stored message as a `SendJob` and delivers it its own way: an SMPP
link or pool sends SMPP parts (split for the link that sends them), a device sends the
whole text, a priority list tries its members in order. Each part's outcome goes to
the job's sink (`SendJob.on_outcomes`, else the one the channel was built with).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ...smpp.pdu import DataSm, DeliverSm
    from .link import SmppLink
    from .pool import SmppPool

DISABLED = "DISABLED"


def group_status(members: Iterable[Channel]) -> str:
    """A pool's or a list's status: its most advanced member's (BOUND first), else
    DISABLED when every member is switched off."""
    states = {m.status for m in members}
    for state in ("BOUND", "CONNECTING", "UNBINDING", "CLOSED"):
        if state in states:
            return state
    return DISABLED


# Attempt outcomes, as the attempts table stores them.
ACCEPTED = "accepted"
REFUSED = "refused"
TIMEOUT = "timeout"
DOWN = "down"


@dataclass(slots=True)
class PartSpec:
    seq: int
    short_message: bytes
    data_coding: int
    esm_class: int
    tlvs: dict[int, int | str | bytes | None]


@dataclass(slots=True)
class PartOutcome:
    """What the channel said of one part: its id there, or the refusal's reason."""

    seq: int
    link_id: int
    smsc_id: str | None
    error: str | None


@dataclass(slots=True)
class AttemptNote:
    """One try of one channel, to be stored as an attempts row."""

    channel_id: int
    kind: str
    started_at: int
    ended_at: int
    outcome: str  # accepted | refused | timeout | down
    error: str | None = None


@dataclass(slots=True, eq=False)
class Validity:
    """A message that expires unsent: shared by every try of it (list failover
    copies the job), so the expiry timer and the channels see the same flags."""

    until_ms: int
    # A channel handed the message on (an SMSC or a phone may have it): no expiry.
    handed: bool = False
    # Expired before any channel handed it on: channels drop the job.
    expired: bool = False


@dataclass(eq=False)
class SendJob:
    message_id: str
    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    registered_delivery: int
    parts: list[PartSpec]
    campaign: str = ""
    # The message's part count (`parts` may be fewer: those left to send after a
    # restart); 0 when unknown.
    parts_total: int = 0
    # The pool the job was routed to (None: sent to a link by name). When its link
    # goes down, the pool hands the job to a member that can send.
    pool: SmppPool | None = None
    # The link that accepted a part already: the rest must follow it, so the SMSC can
    # join them (another SMSC could not). None while no part has been accepted.
    pinned_link: int | None = None
    # While the pinned link is down: when the rest goes to another member instead
    # (loop time), so a link that never comes back strands nothing.
    pin_deadline: float | None = None
    outcomes: dict[int, PartOutcome] = field(default_factory=dict)
    # The whole text (a device sends it as it is; a link re-splits it if its split
    # method differs from the one `parts` were cut with), and who sent it.
    text: str = ""
    owner: str = ""
    # The split method `parts` were cut with; None: they fit any link as they are.
    split_as: str | None = None
    # Set by a link that re-cut `parts` for itself: the stored parts are replaced.
    resplit: bool = False
    max_parts: int = 255
    # Where outcomes go instead of the channel's own sink (a priority list watching
    # its member), and whether this try was given up (channels drop such a job).
    on_outcomes: OutcomeSink | None = None
    abandoned: bool = False
    # When the current try began (ms), and the tries before it not stored yet.
    started_ms: int = 0
    attempts: list[AttemptNote] = field(default_factory=list)
    # False once the current try is among `attempts` (a list that ran out of members).
    attempt_open: bool = True
    # Attempts rows the message has in the store already (None: unknown, as after a
    # restart): numbers the new ones without a read.
    attempts_stored: int | None = 0
    validity: Validity | None = None
    # Its text is sealed at rest (MessageService.send(sensitive=True)): parts a link
    # re-cuts are stored sealed too.
    sensitive: bool = False

    def remaining(self) -> list[PartSpec]:
        return [p for p in self.parts if p.seq not in self.outcomes]

    @property
    def complete(self) -> bool:
        """Every part has its outcome (an SMSC id or a refusal)."""
        return len(self.outcomes) == len(self.parts)

    @property
    def accepted_any(self) -> bool:
        return any(o.smsc_id for o in self.outcomes.values())


# Told each batch of new outcomes; `job.complete` says when the last one came.
OutcomeSink = Callable[[SendJob, list[PartOutcome]], None]
# The deliver_sm_resp status, or an awaitable of it (see EsmeClient.on_deliver).
DeliverHandler = Callable[["SmppLink", "DeliverSm | DataSm"], "int | Awaitable[int]"]


class Channel(Protocol):
    """Where a message can be sent: the routing target an `esme` / channel id names.

    Ids from the config (links, pools, lists) are below 1_000_000; a device
    channel's id is 1_000_000 + device id. A channel reports each part's outcome to
    `job.on_outcomes` when set, else to the sink it was built with, as
    `PartOutcome(seq, link_id=<channel id>, smsc_id=<its id for the part>, error)`.
    It skips jobs that are `abandoned` or whose `validity.expired` is set, and sets
    `validity.handed` when it hands the message on.
    """

    id: int
    name: str
    kind: str  # "link" | "pool" | "list" | "device"

    @property
    def status(self) -> str: ...  # CONNECTING | BOUND | UNBINDING | CLOSED | DISABLED

    @property
    def bound(self) -> bool: ...  # can take work now

    def allows(self, address: str | None) -> bool: ...

    def enqueue(self, job: SendJob) -> None: ...


def refuse_all(job: SendJob, channel_id: int, error: str) -> list[PartOutcome]:
    """Outcomes refusing every part still open (what a channel says when it cannot
    send the message at all)."""
    new = [PartOutcome(p.seq, channel_id, None, error) for p in job.remaining()]
    for o in new:
        job.outcomes[o.seq] = o
    return new
