"""Server-sent events to devices: each open `GET /events` stream is a queue here.

One node holds a device's stream; telling the device means putting an event on the
queues of that node. A phone may briefly hold two streams (a reconnect before the old
one timed out): both get the event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

MESSAGE_ENQUEUED = "MessageEnqueued"
# Bounded: a stream that stopped reading must not grow a queue without end. The
# app pulls everything pending on any one event, so dropping extras loses nothing.
_QUEUE_SIZE = 8


class EventHub:
    def __init__(self) -> None:
        self._streams: dict[int, set[asyncio.Queue[str]]] = {}

    @contextmanager
    def subscribe(self, device_id: int) -> Iterator[asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(_QUEUE_SIZE)
        self._streams.setdefault(device_id, set()).add(queue)
        try:
            yield queue
        finally:
            streams = self._streams.get(device_id)
            if streams is not None:
                streams.discard(queue)
                if not streams:
                    del self._streams[device_id]

    def connected(self, device_id: int) -> bool:
        return bool(self._streams.get(device_id))

    def notify(self, device_id: int, event: str = MESSAGE_ENQUEUED) -> bool:
        """Tell every open stream of the device; False when none is open."""
        streams = self._streams.get(device_id)
        if not streams:
            return False
        for queue in streams:
            if not queue.full():
                queue.put_nowait(event)
        return True

    def close(self, device_id: int) -> None:
        """End the device's streams (it was retired): each gets an empty event."""
        for queue in list(self._streams.get(device_id, ())):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait("")
