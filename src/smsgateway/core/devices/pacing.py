"""Per-device pacing: at most `count` messages handed to a phone per sliding `period`.

Android itself stops an app that sends more than 30 SMS in 30 minutes (the default of
`sms_outgoing_check_max_count`) and asks the user, who is not there; the gateway keeps
under the limit so the phone never hits it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class SendWindow:
    def __init__(self, count: int, period_s: float) -> None:
        self.count = count
        self.period_ms = int(period_s * 1000)
        self._sent: deque[int] = deque()

    def seed(self, times_ms: Iterable[int]) -> None:
        """Hand-outs from before a restart still count."""
        self._sent.extend(sorted(times_ms))

    def _forget(self, now_ms: int) -> None:
        while self._sent and self._sent[0] <= now_ms - self.period_ms:
            self._sent.popleft()

    def room(self, now_ms: int) -> int:
        self._forget(now_ms)
        return max(0, self.count - len(self._sent))

    def take(self, now_ms: int) -> None:
        self._sent.append(now_ms)

    def free_at(self, now_ms: int) -> int | None:
        """When the next slot opens (ms), or None when one is open now."""
        if self.room(now_ms) > 0:
            return None
        return self._sent[0] + self.period_ms
