"""Live updates for console pages: topics, subscribers with bounded queues.

Every subscriber has its own queue of at most `queue_size` events. A publisher
never waits: when a subscriber's queue is full the subscriber is dropped (its queue
emptied and closed), so a slow client costs a bounded amount of memory and never
slows the others. Each event is encoded once, however many subscribers get it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec

from ..errors import Unavailable

_encoder = msgspec.json.Encoder()

# (topic, JSON bytes); None closes the stream.
Event = tuple[str, bytes]


class TooManyStreams(Unavailable):
    default_message = "too many live console streams; try again later"


class Subscriber:
    def __init__(self, topics: Iterable[str], queue_size: int, owner: str = "") -> None:
        self.topics = frozenset(topics)
        self.owner = owner  # the session it belongs to: signing out ends its streams
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(queue_size)
        self.dropped = False
        self.closed = False

    def offer(self, event: Event) -> bool:
        """Queue the event; False (and the subscriber is closed) when it is full."""
        if self.closed:
            return False
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self.close()
            return False
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next(self, timeout: float) -> Event | bool | None:
        """The next event; None when the stream is closed; False after `timeout`
        seconds without one (time for a heartbeat)."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return False


class Hub:
    def __init__(self, *, queue_size: int = 64, max_subscribers: int = 32) -> None:
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._subs: set[Subscriber] = set()
        self.dropped = 0

    def subscribe(self, topics: Iterable[str], owner: str = "") -> Subscriber:
        if len(self._subs) >= self.max_subscribers:
            raise TooManyStreams()
        sub = Subscriber(topics, self.queue_size, owner)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)
        sub.close()

    def wanted(self) -> set[str]:
        """Topics somebody listens to: only those are worth building."""
        topics: set[str] = set()
        for sub in self._subs:
            topics |= sub.topics
        return topics

    def publish(self, topic: str, data: object) -> None:
        event = (topic, _encoder.encode(data))
        for sub in list(self._subs):
            if topic in sub.topics and not sub.offer(event):
                self._subs.discard(sub)
                self.dropped += sub.dropped

    def close_owner(self, owner: str) -> int:
        """End every stream of one session; how many there were."""
        mine = [sub for sub in self._subs if sub.owner == owner]
        for sub in mine:
            self.unsubscribe(sub)
        return len(mine)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
        self._subs.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subs)
