"""Traffic statistics for the dashboard, fed by the message pipeline.

The pipeline calls a `PipelineObserver` at four points (a send is checked, a message
is accepted, the SMSC answers parts, a receipt settles a part). The base class does
nothing, so `MessageService` works alone; the runtime plugs in the operations
observer (`core.ops.OpsObserver`).

`Traffic` keeps one slot per second for the last hour in plain lists indexed by
`second % 3600`, each slot stamped with its second so a stale one is recognised and
reset on first use: a count costs a clock read and two list operations, and nothing
ever has to sweep. Views (per-minute series, current rate) are computed when asked.

Definitions, as the dashboard shows them:
- accepted: messages stored by a send (what `rps` counts);
- answered parts: parts the SMSC accepted or refused at submit;
- failed parts: parts refused at submit, plus parts a receipt settled as
  undeliverable, expired, rejected or failed (`errors`); the error rate is failed
  parts per answered part, in percent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store.models import ReceiptMatch
from .channels import PartOutcome, SendJob
from .status import PartState

SPAN_S = 3600
# Part states a receipt can end in that count as failures.
FAILED_RECEIPT_STATES: frozenset[str] = frozenset(
    {PartState.UNDELIVERABLE, PartState.EXPIRED, PartState.REJECTED, PartState.FAILED}
)


class PipelineObserver:
    """What the message pipeline reports; every method must be cheap and never await."""

    def check(self, app_id: int, esme: int, source: str, destination: str, text: str) -> None:
        """Before a message is stored; raise a GatewayError to refuse it."""

    def accepted(self) -> None:
        """A message was stored."""

    def outcomes(self, job: SendJob, outcomes: list[PartOutcome]) -> None:
        """The SMSC answered these parts (an error means refused)."""

    def receipt(self, link_id: int, match: ReceiptMatch) -> None:
        """A receipt changed a part's state (`match.changed` is true)."""


@dataclass(frozen=True, slots=True)
class MinutePoint:
    minute: int  # Unix time of the minute's first second
    accepted: int
    answered: int
    failed: int


class Traffic:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started = int(clock())
        self._stamp = [-1] * SPAN_S
        self._accepted = [0] * SPAN_S
        self._answered = [0] * SPAN_S
        self._failed = [0] * SPAN_S

    def _slot(self) -> int:
        second = int(self._clock())
        i = second % SPAN_S
        if self._stamp[i] != second:
            self._stamp[i] = second
            self._accepted[i] = 0
            self._answered[i] = 0
            self._failed[i] = 0
        return i

    def add_accepted(self, n: int = 1) -> None:
        self._accepted[self._slot()] += n

    def add_answered(self, ok: int, refused: int) -> None:
        i = self._slot()
        self._answered[i] += ok + refused
        self._failed[i] += refused

    def add_failed(self, n: int = 1) -> None:
        self._failed[self._slot()] += n

    # -- views ---------------------------------------------------------------------

    def _second(self, second: int) -> tuple[int, int, int]:
        i = second % SPAN_S
        if self._stamp[i] != second:
            return 0, 0, 0
        return self._accepted[i], self._answered[i], self._failed[i]

    def current_rps(self, window_s: int = 5) -> float:
        """Messages accepted per second over the last `window_s` complete seconds."""
        now = int(self._clock())
        first = max(now - window_s, self.started)
        seconds = now - first
        if seconds <= 0:
            return 0.0
        total = sum(self._second(s)[0] for s in range(first, now))
        return round(total / seconds, 3)

    def minutes(self, count: int = 60) -> list[MinutePoint]:
        """The last `count` minutes (the current one included), oldest first; none
        from before this object existed."""
        now = int(self._clock())
        this_minute = now - now % 60
        first = max(this_minute - (count - 1) * 60, self.started - self.started % 60)
        points = []
        for minute in range(first, this_minute + 1, 60):
            accepted = answered = failed = 0
            for second in range(minute, min(minute + 60, now + 1)):
                a, d, f = self._second(second)
                accepted += a
                answered += d
                failed += f
            points.append(MinutePoint(minute, accepted, answered, failed))
        return points


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 3) if whole else 0.0


def minute_label(minute: int) -> str:
    """ "HH:MM" in UTC: servers in several zones then agree on one axis."""
    t = time.gmtime(minute)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}"
