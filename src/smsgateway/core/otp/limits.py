"""Per-project request limits and the per-destination guard against SMS pumping.

Token buckets (core/ratelimit.py) on the event loop; refusals raise RetryLater with
the seconds until a token is back (Retry-After). Keys are bounded: past `max_keys`,
buckets that have refilled (idle, so they remember nothing) are dropped first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from ...settings_otp import OtpSettings
from ..errors import RetryLater
from ..ratelimit import TokenBucket


class _Buckets:
    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[Hashable, TokenBucket] = {}

    def take(self, key: Hashable, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def give_back(self, key: Hashable) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back()

    def _prune(self, now: float) -> None:
        target = self.max_keys * 9 // 10
        self._buckets = {k: b for k, b in self._buckets.items() if b.full_at(now) > 0}
        for key in list(self._buckets)[: max(0, len(self._buckets) - target)]:
            del self._buckets[key]


class ProjectLimits:
    def __init__(
        self,
        settings: OtpSettings,
        *,
        max_keys: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._projects = (
            _Buckets(settings.project_rps, settings.project_burst or 1, max_keys)
            if settings.project_rps > 0
            else None
        )
        self._destinations = (
            _Buckets(settings.destination_per_hour / 3600.0, settings.destination_burst, max_keys)
            if settings.destination_per_hour > 0
            else None
        )

    def request(self, project_id: int) -> None:
        """One request of a project."""
        if self._projects is None:
            return
        wait = self._projects.take(project_id, self._clock())
        if wait:
            raise RetryLater("too many requests for this project", retry_after_s=wait)

    def destinations(self, project_id: int, numbers: list[str]) -> list[float]:
        """Take one send for each number; the seconds to wait for each refused one
        (0.0: allowed). Duplicates in `numbers` each take their own token."""
        if self._destinations is None:
            return [0.0] * len(numbers)
        now = self._clock()
        return [self._destinations.take((project_id, n), now) for n in numbers]

    def destination(self, project_id: int, number: str) -> None:
        wait = self.destinations(project_id, [number])[0]
        if wait:
            raise RetryLater(
                "too many messages to this number; try again later", retry_after_s=wait
            )

    def give_back(self, project_id: int, number: str) -> None:
        """A send that did not happen (refused later) does not use up the number."""
        if self._destinations is not None:
            self._destinations.give_back((project_id, number))
