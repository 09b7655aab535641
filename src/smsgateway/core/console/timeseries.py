"""The overview's time series: requests, messages and errors per second (last five
minutes) and per minute (last 24 hours), in ring buffers.

`Sampler.sample()` is called once a second with the current values of three
monotonically growing counters (the Prometheus counters of core/metrics.py); it
stores the differences. Nothing on the send path changes for this: the counters it
reads are the ones /metrics already exposes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import msgspec

SECONDS = 300
MINUTES = 24 * 60


class Point(msgspec.Struct, array_like=True, frozen=True):
    """One slot: its start (Unix s), requests, messages, errors in it."""

    t: int
    requests: float
    messages: float
    errors: float


Counters = tuple[float, float, float]


class Sampler:
    def __init__(
        self, read: Callable[[], Counters], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._read = read
        self._clock = clock
        self._last: Counters | None = None
        self.seconds: deque[Point] = deque(maxlen=SECONDS)
        self.minutes: deque[Point] = deque(maxlen=MINUTES)
        self._minute: list[float] | None = None  # [start, requests, messages, errors]

    def sample(self) -> Point | None:
        """Read the counters; the point for the second just ended (None at the first
        call, which only sets the base)."""
        now = int(self._clock())
        values = self._read()
        last, self._last = self._last, values
        if last is None:
            return None
        # A counter never goes down; a negative step would mean a registry reset.
        d = tuple(max(0.0, v - p) for v, p in zip(values, last, strict=True))
        point = Point(now - 1, d[0], d[1], d[2])
        self.seconds.append(point)
        self._add_minute(point)
        return point

    def _add_minute(self, point: Point) -> None:
        start = point.t - point.t % 60
        current = self._minute
        if current is not None and current[0] != start:
            self.minutes.append(Point(int(current[0]), current[1], current[2], current[3]))
            current = None
        if current is None:
            current = self._minute = [float(start), 0.0, 0.0, 0.0]
        current[1] += point.requests
        current[2] += point.messages
        current[3] += point.errors

    def per_minute(self) -> list[Point]:
        """The completed minutes and the current one, oldest first."""
        points = list(self.minutes)
        if self._minute is not None:
            m = self._minute
            points.append(Point(int(m[0]), m[1], m[2], m[3]))
        return points

    def per_second(self) -> list[Point]:
        return list(self.seconds)
