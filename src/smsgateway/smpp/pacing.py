"""Pacing a link to its contracted rate: `limit_tps` messages per second, spread evenly.

Why not a plain token bucket: an SMSC that allows 100 TPS usually counts over
short slices, and a bucket that may hold a second's worth of tokens sends them
all at once after any idle moment, which is exactly what gets a link throttled.
So the pacer combines two rules:

- a virtual schedule (GCRA): token n is due at `tat`, and `tat` advances by one
  interval per token, where the interval fits a window's worth of tokens
  (ceil(rate / 10)) into 101 ms rather than 100. The schedule may lag the clock
  by 5 ms, which absorbs timer lateness (event-loop timers are millisecond
  grained, and a loaded machine wakes us later still) without banking more;
- a sliding-window guard: never more than ceil(rate / 10) tokens within any
  100.5 ms, remembered as the times of the last tokens handed out.

The schedule keeps the long-run rate 1% under limit_tps. The guard makes the
short-run promise hard: no 100 ms window holds more than ceil(limit_tps / 10)
tokens. The gaps between the two are deliberate: the schedule's 1 ms lets a
late wake-up be made up without the guard pushing every later token back (which
would bleed rate), and the guard's 0.5 ms is room for jitter between our write
and the SMSC's clock, since pacing is judged where the SMSC counts.

`call_when_ready(callback)` exists so a sender can write its PDU in the very
timer callback that grants the token: a task hop between the two would let the
event loop's scheduling jitter into the spacing the SMSC sees.

`back_off()` is the hook for ESME_RTHROTTLED / ESME_RMSGQFUL: it pauses every
acquirer for a while and halves the rate (once per pause), which then recovers
by half again each second without throttling, up to the configured limit. An
unlimited pacer (`limit_tps <= 0`) only pauses.

Time comes from `time.monotonic` (injectable for tests); waiting uses the
running event loop's timers, with one timer for all waiters and no task.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Pacer"]

WINDOW = 0.1  # the slice an SMSC is assumed to count over, seconds
GUARD_MARGIN = 0.0005  # the guard counts over WINDOW + this (jitter to the SMSC)
SCHEDULE_MARGIN = 0.001  # the schedule spreads a window's tokens over WINDOW + this
TOLERANCE = 0.005  # how far the schedule may lag the clock (timer lateness)
RECOVER_INTERVAL = 1.0
RECOVER_FACTOR = 1.5
MIN_RATE_SHARE = 1 / 64  # back-off never goes below this share of the limit


class Pacer:
    """Hands out send permissions at `limit_tps`, evenly (see the module docstring)."""

    def __init__(
        self,
        limit_tps: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        window: float = WINDOW,
    ) -> None:
        self._clock = clock
        self._window = window
        self._guard_span = window + GUARD_MARGIN
        self._schedule_span = window + SCHEDULE_MARGIN
        self._limit = 0.0
        self._rate = 0.0
        self._interval = 0.0
        self._tolerance = 0.0
        self._early = 0.0
        self._burst = 0
        self._recent: deque[float] = deque()
        self._tat = 0.0
        self._paused_until = 0.0
        self._halved_until = 0.0
        self._recover_at = 0.0
        self._waiters: deque[asyncio.Future[None] | Callable[[], bool]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self.back_offs = 0
        # True while acquire() cannot wait (unlimited and not paused): lets a hot
        # caller skip the coroutine call entirely.
        self.free = True
        self.set_rate(limit_tps)

    # --- configuration -----------------------------------------------------------

    @property
    def limit_tps(self) -> float:
        """The configured limit; 0 means unlimited."""
        return self._limit

    @property
    def rate(self) -> float:
        """The rate in force now: the limit, or less while recovering from a back-off."""
        return self._rate

    @property
    def paused(self) -> bool:
        return self._paused_until > self._clock()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def set_rate(self, limit_tps: float) -> None:
        """Change the limit at run time (a link edited by an operator, say)."""
        limit = float(limit_tps) if limit_tps and limit_tps > 0 else 0.0
        self._limit = limit
        self._apply_rate(limit)
        self._halved_until = 0.0
        self._rearm()

    def _apply_rate(self, rate: float) -> None:
        self._rate = rate
        if rate <= 0:
            self._interval = 0.0
            self._burst = 0
            self._recent = deque()
            self.free = not self._paused_until
            return
        self.free = False
        # The schedule fits one window's tokens into window + margin, like the guard.
        self._interval = (self._schedule_span / self._window) / rate
        self._tolerance = TOLERANCE
        self._early = min(self._interval / 4, 0.0002)
        burst = max(1, math.ceil(rate * self._window - 1e-9))
        if burst != self._burst:
            self._burst = burst
            self._recent = deque(self._recent, maxlen=burst)

    # --- throttling ----------------------------------------------------------------

    def back_off(self, pause: float = 1.0) -> None:
        """The peer said "too fast": pause everyone, and slow down if limited."""
        now = self._clock()
        self.back_offs += 1
        self._paused_until = max(self._paused_until, now + max(0.0, pause))
        self.free = False
        if self._limit > 0 and now >= self._halved_until:
            self._apply_rate(max(self._limit * MIN_RATE_SHARE, self._rate / 2))
            self._halved_until = now + max(pause, 0.001)
        self._recover_at = self._paused_until + RECOVER_INTERVAL
        self._rearm()

    def _recover(self, now: float) -> None:
        if self._rate < self._limit and now >= self._recover_at:
            self._apply_rate(min(self._limit, self._rate * RECOVER_FACTOR))
            self._recover_at = now + RECOVER_INTERVAL

    # --- acquiring -----------------------------------------------------------------

    def _ready_at(self, now: float) -> float:
        """Earliest time the next token may go; <= now means now."""
        t = self._paused_until
        if self._interval:
            due = self._tat - self._early
            if due > t:
                t = due
            recent = self._recent
            if len(recent) >= self._burst:
                guard = recent[0] + self._guard_span
                if guard > t:
                    t = guard
        return t

    def _take(self, now: float) -> tuple[float, float | None]:
        """Consume a token; returns what `_give_back` needs to undo it."""
        tat = self._tat
        evicted = None
        if self._interval:
            if self._rate < self._limit:
                self._recover(now)
            floor = now - self._tolerance
            self._tat = (tat if tat > floor else floor) + self._interval
            recent = self._recent
            if recent.maxlen is not None and len(recent) == recent.maxlen:
                evicted = recent[0]
            recent.append(now)
        return tat, evicted

    def _give_back(self, taken: tuple[float, float | None]) -> None:
        if self._interval:
            self._tat = taken[0]
            if self._recent:
                self._recent.pop()
            if taken[1] is not None:
                self._recent.appendleft(taken[1])

    def _unpause(self, now: float) -> None:
        if self._paused_until and self._paused_until <= now:
            self._paused_until = 0.0
            self.free = not self._interval

    def try_acquire(self) -> bool:
        """Take a token if one is free right now, without waiting."""
        if self.free:
            return True
        now = self._clock()
        if self._waiters or self._ready_at(now) > now:
            return False
        self._unpause(now)
        self._take(now)
        return True

    async def acquire(self) -> None:
        """Wait for permission to send one message."""
        if self.free:
            return  # unlimited: the hot path costs one attribute test
        now = self._clock()
        if not self._waiters and self._ready_at(now) <= now:
            self._unpause(now)
            self._take(now)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._timer is None:
            self._arm(now)
        try:
            await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def call_when_ready(self, callback: Callable[[], bool]) -> None:
        """Call `callback` as soon as a token is free (at once if one is).

        It runs from the event loop's timer, in FIFO order with `acquire()`
        waiters, and returns whether it used the token (False gives it back, e.g.
        when its request was cancelled meanwhile). It may queue the next callback
        from inside itself.
        """
        if self.free:
            callback()
            return
        now = self._clock()
        if not self._waiters and self._ready_at(now) <= now:
            self._unpause(now)
            self._grant(callback, now)
            return
        self._waiters.append(callback)
        if self._timer is None:
            self._arm(now)

    def _grant(self, callback: Callable[[], bool], now: float) -> None:
        # Taken before the call, so a callback that queues the next request sees
        # the token gone; given back if the callback did not use it.
        taken = self._take(now)
        if not callback():
            self._give_back(taken)

    def _arm(self, now: float) -> None:
        # One timer for everyone: a callback may have armed one meanwhile.
        if self._timer is not None:
            self._timer.cancel()
        delay = self._ready_at(now) - now
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay if delay > 0 else 0.0, self._release)

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiters:
            # Without a running loop there is nobody waiting yet: acquire() arms it.
            with contextlib.suppress(RuntimeError):
                self._arm(self._clock())

    def _release(self) -> None:
        self._timer = None
        waiters = self._waiters
        now = self._clock()
        self._unpause(now)
        while waiters:
            if self._ready_at(now) > now:
                break
            waiter = waiters.popleft()
            if isinstance(waiter, asyncio.Future):
                if waiter.done():
                    continue
                self._take(now)
                waiter.set_result(None)
            else:
                self._grant(waiter, now)
        if waiters:
            self._arm(now)
