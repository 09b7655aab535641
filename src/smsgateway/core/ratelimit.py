"""Rate limits: token buckets for the global (L1) and per-app (L2) levels and logins.

Everything runs on the event loop thread, so a bucket is plain arithmetic on
`time.monotonic()`: no lock, no task, no timer. A bucket holds up to `burst` tokens
and gains `rate` per second; a request takes one.

Answer headers (all levels): `X-RateLimit-Limit` is the sustained rate (requests per
second), `X-RateLimit-Remaining` the whole tokens left, `X-RateLimit-Reset` the
seconds until the bucket is full again; a refusal adds `Retry-After` (seconds until
one token is back, at least 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from ..settings_ops import RateLimitSettings
from .errors import InvalidCredentials, RateLimited

# Where the L2 check leaves its headers for the REST wrapper to copy onto the answer.
QUOTA_SCOPE_KEY = "smsgateway.quota"


class RateLimitExceeded(RateLimited):
    default_message = "rate limit exceeded"


class TooManyLogins(RateLimited):
    default_message = "too many login attempts, try again later"


class TokenBucket:
    __slots__ = ("burst", "limit_text", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = float(rate)
        # A burst below one token would refuse everything.
        self.burst = float(max(burst, 1))
        self.tokens = self.burst
        self.stamp = now
        self.limit_text = str(int(rate)) if rate == int(rate) else f"{rate:g}"

    def _refill(self, now: float) -> float:
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.tokens = tokens
        self.stamp = now
        return tokens

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is back."""
        tokens = self._refill(now)
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        return (1.0 - tokens) / self.rate

    def give_back(self) -> None:
        self.tokens = min(self.burst, self.tokens + 1.0)

    def full_at(self, now: float) -> float:
        """Seconds from `now` until the bucket is full (idle buckets can be forgotten)."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        return 0.0 if tokens >= self.burst else (self.burst - tokens) / self.rate

    def headers(self, now: float, wait: float = 0.0) -> dict[str, str]:
        """The answer's headers, right after a `take(now)` (tokens are current)."""
        tokens = self.tokens
        out = {
            "X-RateLimit-Limit": self.limit_text,
            "X-RateLimit-Remaining": str(int(tokens)),
            "X-RateLimit-Reset": str(math.ceil((self.burst - tokens) / self.rate)),
        }
        if wait:
            out["Retry-After"] = str(max(1, math.ceil(wait)))
        return out


def _bucket_or_none(rate: float, burst: int, now: float) -> TokenBucket | None:
    if rate <= 0:
        return None
    return TokenBucket(rate, burst or math.ceil(rate), now)


class GlobalRateLimit:
    """L1: one bucket in front of the whole app, as a plain ASGI callable.

    Not Starlette's BaseHTTPMiddleware: that wraps every request in extra tasks and
    streams, which costs more than the check itself.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        settings: RateLimitSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._clock = clock
        self.bucket = _bucket_or_none(settings.global_rps, settings.global_burst, clock())
        self._exempt = frozenset(settings.global_exempt)
        self.refused = 0

    def check(self, path: str) -> list[tuple[bytes, bytes]] | None:
        """Take a token for a request to `path`: None when it may go on, else the
        headers of its 429 (lower-case raw pairs). For the ASGI way (`__call__`) and
        for routes the HTTP protocol serves itself alike."""
        refused = self._take(path)
        if refused is None:
            return None
        return [(k.lower().encode(), v.encode()) for k, v in refused.items()]

    def enforce(self, path: str, scope: MutableMapping[str, Any]) -> None:
        """`check` for faces that answer with an error (gRPC): raise when refused,
        leaving the quota headers in `scope` as the per-app limit does."""
        refused = self._take(path)
        if refused is not None:
            scope[QUOTA_SCOPE_KEY] = refused
            raise RateLimitExceeded()

    def _take(self, path: str) -> dict[str, str] | None:
        bucket = self.bucket
        if bucket is None or path in self._exempt:
            return None
        now = self._clock()
        wait = bucket.take(now)
        if not wait:
            return None
        self.refused += 1
        return bucket.headers(now, wait)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            refused = self.check(scope["path"])
            if refused is not None:
                await _send_429(send, refused)
                return
        await self.app(scope, receive, send)


LIMIT_EXCEEDED = b'{"error":"rate limit exceeded"}'


async def _send_429(send: Any, headers: list[tuple[bytes, bytes]]) -> None:
    body = LIMIT_EXCEEDED
    raw = [*headers, (b"content-type", b"application/json")]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 429, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class AppLimiter:
    """L2: one bucket per app, created on the app's first request."""

    def __init__(
        self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._rps = settings.app_rps
        self._burst = settings.app_burst
        self._overrides = dict(settings.apps)
        self._buckets: dict[int, TokenBucket | None] = {}
        self.refused = 0

    @property
    def enabled(self) -> bool:
        return self._rps > 0 or any(o.rps > 0 for o in self._overrides.values())

    def _bucket(self, app_id: int, now: float) -> TokenBucket | None:
        own = self._overrides.get(app_id)
        if own is not None:
            bucket = _bucket_or_none(own.rps, own.burst, now)
        else:
            bucket = _bucket_or_none(self._rps, self._burst, now)
        # Apps are bounded by the apps table (the JWT check ran first), so is this dict.
        self._buckets[app_id] = bucket
        return bucket

    def check(self, app_id: int, scope: MutableMapping[str, Any]) -> None:
        """Take a token for `app_id`; leave the quota headers in `scope`; raise if out."""
        now = self._clock()
        try:
            bucket = self._buckets[app_id]
        except KeyError:
            bucket = self._bucket(app_id, now)
        if bucket is None:
            return
        wait = bucket.take(now)
        scope[QUOTA_SCOPE_KEY] = bucket.headers(now, wait)
        if wait:
            self.refused += 1
            raise RateLimitExceeded()


class _KeyedBuckets:
    """Buckets by key (email, address) with a bounded number of keys.

    An attacker who varies the key must not grow memory without end: past
    `max_keys`, buckets that have refilled completely (idle, so they hold no
    information) are forgotten first, then the oldest.
    """

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def get(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket

    def _prune(self, now: float) -> None:
        # Down to 90%, so a flood of new keys pays this O(n) pass once per 10% of them.
        target = self.max_keys * 9 // 10
        self._buckets = {k: b for k, b in self._buckets.items() if b.full_at(now) > 0}
        excess = len(self._buckets) - target
        if excess > 0:
            for key in list(self._buckets)[:excess]:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class LoginGuard:
    """Failed logins per email and per client address.

    An attempt takes a token from both buckets before the password is checked (so a
    thousand parallel guesses cannot all slip through), and gets it back unless the
    answer was "invalid email or password": only failures use up the allowance.
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.enabled = per_minute > 0
        rate = per_minute / 60.0
        self._emails = _KeyedBuckets(rate, burst or per_minute, max_keys)
        self._addresses = _KeyedBuckets(rate, burst or per_minute, max_keys)
        self.refused = 0

    @classmethod
    def off(cls) -> LoginGuard:
        return cls(0, 0)

    @contextmanager
    def attempt(
        self,
        email: str,
        address: str | None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> Iterator[None]:
        """Guard one login; `scope` (the ASGI scope) receives Retry-After on refusal."""
        if not self.enabled:
            yield
            return
        now = self._clock()
        taken: list[TokenBucket] = []
        wait = 0.0
        keys = [(self._emails, email.strip().lower())]
        if address:
            keys.append((self._addresses, address))
        for buckets, key in keys:
            bucket = buckets.get(key, now)
            w = bucket.take(now)
            if w:
                wait = max(wait, w)
            else:
                taken.append(bucket)
        if wait:
            for bucket in taken:
                bucket.give_back()
            self.refused += 1
            if scope is not None:
                scope[QUOTA_SCOPE_KEY] = {"Retry-After": str(max(1, math.ceil(wait)))}
            raise TooManyLogins()
        try:
            yield
        except InvalidCredentials:
            raise
        except BaseException:
            for bucket in taken:
                bucket.give_back()
            raise
        else:
            for bucket in taken:
                bucket.give_back()
