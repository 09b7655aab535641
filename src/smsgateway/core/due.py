"""Work due at wall-clock times (scheduled sends, validity ends) on one loop timer."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DueQueue(Generic[T]):
    """`fire(item)` runs once wall-clock time reaches the item's `at_ms`.

    A heap and a single `call_at` for the earliest item: no task or timer per item.
    Times are wall-clock ms (they come from the store and survive restarts); the loop
    timer is re-armed from the heap after every run.
    """

    def __init__(self, fire: Callable[[T], None], *, clock: Callable[[], float] = time.time):
        self._fire = fire
        self._clock = clock
        self._heap: list[tuple[int, int, T]] = []
        self._order = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: int | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, at_ms: int, item: T) -> None:
        heapq.heappush(self._heap, (at_ms, next(self._order), item))
        if self._armed_at is None or at_ms < self._armed_at:
            self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._armed_at = None
        self._heap.clear()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = self._armed_at = None
        if not self._heap:
            return
        at_ms = self._heap[0][0]
        delay = max(0.0, at_ms / 1000 - self._clock())
        self._armed_at = at_ms
        self._handle = asyncio.get_running_loop().call_later(delay, self._run)

    def _run(self) -> None:
        self._handle = self._armed_at = None
        now_ms = int(self._clock() * 1000)
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            _, _, item = heapq.heappop(heap)
            self._fire(item)
        self._arm()
