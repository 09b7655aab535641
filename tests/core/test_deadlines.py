"""FifoTimers: every key fires once, `delay` after it was added, in order, on one timer."""

from __future__ import annotations

import asyncio

from gwkit import eventually
from smsgateway.core.deadlines import FifoTimers


async def test_each_key_fires_once_after_its_delay_in_order() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[str, float]] = []
    timers: FifoTimers[str] = FifoTimers(0.05, lambda key: fired.append((key, loop.time())))
    added = {}
    for key in ("a", "b"):
        added[key] = loop.time()
        timers.add(key)
    await asyncio.sleep(0.03)
    added["c"] = loop.time()
    timers.add("c")
    # A loaded machine may run this loop late, so what has fired by a given moment is
    # not fixed; what is: a key fires only once due (checked below), and until then it
    # waits in the queue.
    assert len(timers) == 3 - len(fired)
    await eventually(lambda: len(fired) == 3)
    assert [k for k, _ in fired] == ["a", "b", "c"]
    assert len(timers) == 0
    # Idle, then used again: the timer is set afresh.
    added["d"] = loop.time()
    timers.add("d")
    await eventually(lambda: len(fired) == 4)
    assert [k for k, _ in fired] == ["a", "b", "c", "d"]  # each once
    for key, at in fired:
        # Never early (beyond the loop's millisecond rounding): c, added later, does
        # not go with a and b.
        assert at >= added[key] + 0.05 - 0.0011, key


async def test_close_drops_pending_keys() -> None:
    fired: list[int] = []
    timers: FifoTimers[int] = FifoTimers(0.02, fired.append)
    timers.add(1)
    timers.close()
    await asyncio.sleep(0.05)
    assert fired == [] and len(timers) == 0
