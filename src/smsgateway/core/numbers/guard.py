"""Attempt limits on 002's path keys: failed authentications per client address.

Keys are 256-bit random, so guessing one is hopeless anyway; the limit keeps a client
that hammers with bad keys from costing a store read per request. An address whose
allowance is spent is refused before its key is looked at; only failed checks spend
(so many good requests in parallel never refuse each other; parallel bad ones may
overshoot the allowance by their number in flight).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import NotFound, RateLimited, Unauthorized
from ..ratelimit import TokenBucket

T = TypeVar("T")


class TooManyKeyAttempts(RateLimited):
    default_message = "too many invalid api_key attempts, try again later"


class KeyGuard:
    def __init__(
        self,
        per_minute: int,
        *,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = per_minute > 0
        self._rate = per_minute / 60.0
        self._burst = max(1, per_minute)
        self._max = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, address: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            while len(self._buckets) >= self._max:
                self._buckets.popitem(last=False)
            bucket = self._buckets[address] = TokenBucket(self._rate, self._burst, now)
        else:
            self._buckets.move_to_end(address)
        return bucket

    async def guard(self, address: str | None, check: Callable[[], Awaitable[T]]) -> T:
        """Run the credential check `check` under the address's allowance."""
        if not self.enabled or not address:
            return await check()
        bucket = self._bucket(address, self._clock())
        if bucket.take(self._clock()):
            raise TooManyKeyAttempts()
        # Only a failure spends: good keys in parallel must not refuse each other.
        bucket.give_back()
        try:
            return await check()
        except (Unauthorized, NotFound):
            bucket.take(self._clock())
            raise
