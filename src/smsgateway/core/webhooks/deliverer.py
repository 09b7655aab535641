"""The webhook deliverer: reads the outbox, POSTs each event signed, retries.

- The outbox is the queue: events are read from the store (at start-up too), so an
  event stored before a crash is delivered after the restart.
- Each event is POSTed with its stored body, `X-Timestamp` and `X-Signature`. A 2xx
  marks it delivered in the store; a timeout, a connection error or any other status
  schedules a retry after base * 2^(attempt-1) seconds (capped), with jitter, until
  `webhook_retry_s` after the event was stored; then it is marked failed. Redirects
  are not followed (they could point anywhere).
- Every attempt is logged and stored (webhook_attempts).
- Receivers are isolated: at most `webhook_concurrency` attempts in flight per user,
  each bounded by `webhook_timeout_s`; the scan skips users whose slots are full, so
  a slow or dead receiver never holds back anyone else's events.
- One process delivers an event at a time (in-flight set); a receiver that answered
  2xx is never sent the event again unless an operator asks (redeliver), except
  when the process dies between the 2xx and its commit: `event_id` lets a receiver
  drop that duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable

import httpx
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ...settings_numbers import NumbersSettings
from ...store.numbers import DELIVERED, FAILED, PENDING, NumbersStore, OutboxItem
from ..metrics import METRICS, FastCounter
from ..secrets import Secrets, SecretsError
from .signing import signature_header
from .urls import UrlPolicy, WebhookUrlRefused, resolve_target

log = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = FastCounter(
    "smsgateway_webhook_attempts", "Webhook delivery attempts by outcome", ["outcome"]
)
METRICS.registry.register(WEBHOOK_ATTEMPTS)

_SCAN_LIMIT = 200
_MAX_IDLE_S = 1.0


def backoff_s(attempt: int, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Delay before attempt `attempt + 1`: exponential, capped, "equal jitter" (half
    fixed, half random), so retries of many events spread out."""
    delay: float = min(cap, base * 2.0 ** min(attempt - 1, 30))
    return delay / 2 + rng() * delay / 2


class WebhookDeliverer:
    def __init__(
        self,
        store: NumbersStore,
        secrets: Secrets,
        settings: NumbersSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.settings = settings
        self.policy = UrlPolicy(settings.allow_http_webhooks, settings.allow_private_webhooks)
        self._clock = clock
        self._rng = rng
        self._wake = asyncio.Event()
        self._inflight: set[str] = set()
        self._per_user: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.backlog = 0
        self._gauge = _BacklogGauge(self)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_s),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: we connect where we checked
            # No connection reuse: connections go to pinned addresses, and a kept one
            # must not serve another host name (TLS name) on the same address.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def start(self) -> None:
        self.backlog = await self.store.backlog()
        with contextlib.suppress(ValueError):  # another runtime in this process has one
            METRICS.registry.register(self._gauge)
        self._runner = asyncio.create_task(self._run(), name="webhook-deliverer")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._client.aclose()
        with contextlib.suppress(KeyError):
            METRICS.registry.unregister(self._gauge)

    def wake(self) -> None:
        """New events are in the outbox (called after their commit)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            idle = _MAX_IDLE_S
            # Cleared before the scan: a wake-up during it (a commit after the query)
            # makes the next wait return at once instead of being lost.
            self._wake.clear()
            try:
                idle = await self._dispatch_due()
            except Exception:
                log.exception("webhook scan failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=idle)

    async def _dispatch_due(self) -> float:
        """Start an attempt for every due event whose receiver has a free slot; how
        long to wait before looking again."""
        limit = self.settings.webhook_concurrency
        now = self._now_ms()
        full = [user for user, n in self._per_user.items() if n >= limit]
        due = await self.store.due_events(now, full, sorted(self._inflight), _SCAN_LIMIT)
        for item in due:
            if self._per_user.get(item.user_id, 0) >= limit or item.event_id in self._inflight:
                continue
            self._inflight.add(item.event_id)
            self._per_user[item.user_id] = self._per_user.get(item.user_id, 0) + 1
            task = asyncio.create_task(self._deliver(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.backlog = await self.store.backlog()
        if len(due) >= _SCAN_LIMIT:
            return 0.05
        full = [user for user, n in self._per_user.items() if n >= limit]
        nxt = await self.store.next_due_at(full, sorted(self._inflight))
        if nxt is None:
            return _MAX_IDLE_S
        return min(_MAX_IDLE_S, max(0.02, (nxt - self._now_ms()) / 1000))

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._attempt_and_record(item)
        except Exception:
            log.exception("webhook attempt failed to run", extra={"event_id": item.event_id})
        finally:
            self._inflight.discard(item.event_id)
            left = self._per_user.get(item.user_id, 1) - 1
            if left > 0:
                self._per_user[item.user_id] = left
            else:
                self._per_user.pop(item.user_id, None)
            self._wake.set()

    async def _attempt_and_record(self, item: OutboxItem) -> None:
        attempt = item.attempts + 1
        started = time.monotonic()
        outcome, status, error = await self._post(item)
        duration_ms = int((time.monotonic() - started) * 1000)
        now = self._now_ms()
        if outcome == "delivered":
            state, next_at = DELIVERED, now
        else:
            s = self.settings
            delay = backoff_s(attempt, s.webhook_backoff_base_s, s.webhook_backoff_max_s, self._rng)
            next_at = now + int(delay * 1000)
            deadline = item.window_start + int(s.webhook_retry_s * 1000)
            state = PENDING if next_at <= deadline else FAILED
        WEBHOOK_ATTEMPTS.labels(outcome).inc()
        log.info(
            "webhook attempt",
            extra={
                "event_id": item.event_id,
                "user_id": item.user_id,
                "attempt": attempt,
                "outcome": outcome,
                "status_code": status,
                "error": error,
                "duration_ms": duration_ms,
                "state": state,
            },
        )
        await self.store.record_attempt(
            item.event_id,
            attempt=attempt,
            at=now,
            outcome=outcome,
            status_code=status,
            error=error,
            duration_ms=duration_ms,
            state=state,
            next_attempt_at=next_at,
        )

    async def _post(self, item: OutboxItem) -> tuple[str, int | None, str]:
        """(outcome, HTTP status, error) of one attempt."""
        if item.webhook_secret_enc is None:
            return "no_url", None, "the number user no longer exists"
        if not item.webhook_url:
            return "no_url", None, "the number user has no webhook_url"
        try:
            target = await resolve_target(item.webhook_url, self.policy)
        except WebhookUrlRefused as exc:
            return "refused_url", None, str(exc)
        try:
            secret = self.secrets.decrypt_secret(item.webhook_secret_enc)
        except SecretsError as exc:
            return "refused_url", None, str(exc)
        timestamp = str(int(self._clock()))
        headers = {
            "Host": target.host,
            "Content-Type": "application/json",
            "User-Agent": "smsgateway-webhooks/1",
            "X-Timestamp": timestamp,
            "X-Signature": signature_header(secret, timestamp, item.body),
            "X-Event-Id": item.event_id,
        }
        extensions = {"sni_hostname": target.server_name} if target.server_name else {}
        try:
            async with asyncio.timeout(self.settings.webhook_timeout_s):
                async with self._client.stream(
                    "POST", target.url, content=item.body, headers=headers, extensions=extensions
                ) as response:
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return "timeout", None, f"no answer within {self.settings.webhook_timeout_s:g} s"
        except httpx.HTTPError as exc:
            return "connect_error", None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= status < 300:
            return "delivered", status, ""
        return "http_error", status, f"HTTP {status}"


class _BacklogGauge(Collector):
    def __init__(self, deliverer: WebhookDeliverer) -> None:
        self._deliverer = deliverer

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "smsgateway_webhook_outbox_backlog",
            "Webhook events waiting for delivery (pending in the outbox)",
            value=float(self._deliverer.backlog),
        )
