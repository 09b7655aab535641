"""Many short waits with one and the same timeout, on one loop timer."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# uvloop rounds timers to the millisecond: a timer may run up to this much before its
# deadline, and should then take that deadline's keys rather than re-arm for nothing.
_SLACK_S = 0.001


class FifoTimers(Generic[K]):
    """`fire(key)` runs `delay` seconds after `add(key)`, for every key added.

    The send budget sets one of these per message, and almost every message is
    answered long before it. A loop timer per wait costs `call_later` and `cancel`
    (about 4 µs together, most of it allocation); here a wait is one deque append,
    and one loop timer at a time serves them all, because with a single delay
    deadlines come in the order keys are added. Nothing is cancelled: `fire` runs for
    a key whose wait ended early too, and must then do nothing.
    """

    def __init__(self, delay: float, fire: Callable[[K], None]) -> None:
        self.delay = delay
        self._fire = fire
        self._queue: deque[tuple[float, K]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: K) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        due = loop.time() + self.delay
        self._queue.append((due, key))
        if self._handle is None:
            self._handle = loop.call_at(due, self._run)

    def close(self) -> None:
        """Drop every pending key without firing it."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._queue.clear()

    def _run(self) -> None:
        self._handle = None
        loop = self._loop
        assert loop is not None
        queue = self._queue
        limit = loop.time() + _SLACK_S
        while queue and queue[0][0] <= limit:
            self._fire(queue.popleft()[1])
        if queue:
            self._handle = loop.call_at(queue[0][0], self._run)
