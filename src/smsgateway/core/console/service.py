"""The operator console's core: sessions, the time series, live topics, page data.

Built once by the runtime over the services that already exist (ops, auth, the
store). Once a second the ticker samples the metrics counters and publishes the
topics somebody listens to; pages read the same views for their first render, so a
snapshot and a live event have one shape. Nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import psutil  # type: ignore[import-untyped]

from ...settings_console import ConsoleSettings
from ...store.console import ConsoleStore
from ...store.sqlite import SqliteStore
from ..admin import AdminKey
from ..auth import AuthService
from ..channels import SmppLink
from ..errors import store_errors
from ..metrics import Metrics
from ..ops import OpsService
from ..ratelimit import LoginGuard
from ..stats import FAILED_RECEIPT_STATES
from .live import Hub
from .messages import AdminMessages
from .sessions import SessionService
from .timeseries import Counters, Point, Sampler

log = logging.getLogger(__name__)

_PURGE_EVERY_S = 60


def counters_reader(metrics: Metrics) -> Callable[[], Counters]:
    """(requests, messages, errors) so far. Errors: parts the SMSC refused, parts a
    receipt settled as failed, and HTTP answers 5xx."""

    def read() -> Counters:
        requests = metrics.requests.total()
        server_errors = metrics.requests.total(lambda k: k[1].startswith("5"))
        refused = metrics.parts_submitted.total(lambda k: k[0] != "ok")
        failed = metrics.receipts.total(lambda k: k[0] in FAILED_RECEIPT_STATES)
        return requests, metrics.messages_accepted.total(), refused + failed + server_errors

    return read


def _point(p: Point) -> list[float]:
    return [p.t, p.requests, p.messages, p.errors]


class _LinkActivity:
    """When each link last submitted and last received, seen from its counters."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[int, int]] = {}
        self.last_submit: dict[int, float] = {}
        self.last_receive: dict[int, float] = {}
        self.base: dict[int, int] = {}

    def observe(self, links: dict[int, SmppLink], now: float) -> None:
        for link_id, link in links.items():
            counts = (link.client.submitted, link.client.received)
            before = self.seen.get(link_id)
            self.base.setdefault(link_id, counts[0])
            if before is not None:
                if counts[0] != before[0]:
                    self.last_submit[link_id] = now
                if counts[1] != before[1]:
                    self.last_receive[link_id] = now
            self.seen[link_id] = counts


class ConsoleService:
    def __init__(
        self,
        settings: ConsoleSettings,
        *,
        store: SqliteStore,
        ops: OpsService,
        auth: AuthService,
        admin_key: AdminKey,
        metrics: Metrics,
        data_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.ops = ops
        self.auth = auth
        self.store = store
        self.data_dir = data_dir
        self._clock = clock
        console_store = ConsoleStore(store)
        self.console_store = console_store
        self.sessions = SessionService(
            console_store,
            auth,
            admin_key,
            LoginGuard(settings.login_per_minute, settings.login_burst),
            ttl_s=settings.session_ttl_s,
            clock=clock,
        )
        self.messages = AdminMessages(console_store)
        self.hub = Hub(queue_size=settings.client_queue, max_subscribers=settings.max_streams)
        self.metrics = metrics
        # Attempts per (channel, outcome) before this console started: views count since.
        self._attempts_base = metrics.channel_attempts.values()
        self.sampler = Sampler(counters_reader(metrics), clock=clock)
        self._read_counters = counters_reader(metrics)
        self._started_counters = self._read_counters()
        self.activity = _LinkActivity()
        self._task: asyncio.Task[None] | None = None
        self._process = psutil.Process()
        # Topics published once a second while somebody listens; a feature's page
        # adds its own with `add_topic`. ("metrics" is built from the sample.)
        self._topics: dict[str, Callable[[], Any]] = {"links": self.links_view}

    def add_topic(self, name: str, build: Callable[[], Any]) -> None:
        """Publish `build()` as `name` every second to the pages that listen to it."""
        if name == "metrics" or name in self._topics:
            raise ValueError(f"console topic {name!r} exists")
        self._topics[name] = build

    # -- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        self.sampler.sample()  # the base; the first point comes a second later
        self.activity.observe(self.ops.router.links, self._clock())
        psutil.cpu_percent(interval=None)
        self._task = asyncio.create_task(self._ticker(), name="console-tick")

    async def stop(self) -> None:
        """Before the HTTP server stops: open streams end now, not at its timeout."""
        self.hub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _ticker(self) -> None:
        ticks = 0
        while True:
            now = self._clock()
            await asyncio.sleep(1.0 - now % 1.0 + 0.005)
            ticks += 1
            try:
                self.tick()
                if ticks % _PURGE_EVERY_S == 0:
                    await self.sessions.purge_expired()
            except Exception:
                log.warning("console tick failed", exc_info=True)

    def tick(self) -> None:
        point = self.sampler.sample()
        self.activity.observe(self.ops.router.links, self._clock())  # to the second
        wanted = self.hub.wanted()
        if "metrics" in wanted and point is not None:
            self.hub.publish("metrics", {"point": _point(point), **self.live_figures()})
        for name, build in self._topics.items():
            if name in wanted:
                self.hub.publish(name, build())

    # -- views -----------------------------------------------------------------------

    def live_figures(self) -> dict[str, Any]:
        """What the overview shows beside its charts; cheap enough for every second."""
        now = self._read_counters()
        base = self._started_counters
        links = self.ops.router.links.values()
        pools = self.ops.router.pools.values()
        return {
            "totals": {
                "requests": int(now[0] - base[0]),
                "messages": int(now[1] - base[1]),
                "errors": int(now[2] - base[2]),
                "stored": self.ops.totals["messages"],
                "apps": self.ops.totals["apps"],
            },
            "queues": {
                "links": {str(link.id): link.pending_count for link in links},
                "pools": {str(pool.id): pool.pending_count for pool in pools},
                "total": sum(x.pending_count for x in links) + sum(p.pending_count for p in pools),
            },
            "links_bound": self.ops.links.active_connections(),
            "links_total": len(self.ops.router.links),
            "system": self.system(),
            "license": msgspec.to_builtins(self.ops.license.view()),
        }

    def system(self) -> dict[str, float]:
        try:
            disk = psutil.disk_usage(str(self.data_dir)).percent
        except OSError:
            disk = 0.0
        return {
            "cpu": round(psutil.cpu_percent(interval=None), 1),
            "ram": round(psutil.virtual_memory().percent, 1),
            "disk": round(disk, 1),
            "rss_mb": round(self._process.memory_info().rss / 2**20, 1),
        }

    def overview(self) -> dict[str, Any]:
        return {
            "seconds": [_point(p) for p in self.sampler.per_second()],
            "minutes": [_point(p) for p in self.sampler.per_minute()],
            **self.live_figures(),
        }

    def links_view(self) -> dict[str, Any]:
        rows = []
        links = self.ops.router.links
        act = self.activity
        act.observe(links, self._clock())  # a snapshot right after traffic sees it too
        for row in self.ops.links.link_rows():
            link = links[row["id"]]
            client = link.client
            rows.append(
                {
                    **row,
                    "endpoint": f"{link.cfg.host}:{link.cfg.port}",
                    "bind_mode": link.cfg.bind_mode,
                    "system_id": link.cfg.system_id,
                    "window_used": client.in_flight,
                    "window": link.cfg.window,
                    "queue_depth": link.pending_count,
                    "last_submit_at": act.last_submit.get(link.id),
                    "last_receipt_at": act.last_receive.get(link.id),
                    "last_bind_error_at": client.last_bind_error_at,
                    "submitted": client.submitted,
                    "received": client.received,
                }
            )
        pools = []
        for pool_row in self.ops.links.pool_rows():
            pool = self.ops.router.pools[pool_row["id"]]
            counts = {
                m.id: m.client.submitted - act.base.get(m.id, m.client.submitted)
                for m in pool.members
            }
            total = sum(counts.values())
            pools.append(
                {
                    **pool_row,
                    "status": pool.status,
                    "queue_depth": pool.pending_count,
                    "members": [
                        {
                            "id": m.id,
                            "name": m.name,
                            "status": m.status,
                            "submitted": counts[m.id],
                            "share": round(100.0 * counts[m.id] / total, 1) if total else 0.0,
                        }
                        for m in pool.members
                    ],
                }
            )
        return {"links": rows, "pools": pools, "lists": self._lists_view()}

    def _lists_view(self) -> list[dict[str, Any]]:
        """Priority lists (failover): members in order, each with its attempts."""
        router = self.ops.router
        lists = dict(router.lists)
        if router.sms_api is not None:
            lists.setdefault(router.sms_api.id, router.sms_api)
        now = self.metrics.channel_attempts.values()
        base = self._attempts_base

        def attempts(channel_id: int) -> dict[str, int]:
            key = str(channel_id)
            return {
                outcome: int(now.get((key, outcome), 0) - base.get((key, outcome), 0))
                for outcome in ("accepted", "refused", "timeout", "down")
            }

        return [
            {
                "id": pl.id,
                "name": pl.name,
                "status": pl.status,
                "attempt_timeout_s": pl.attempt_timeout_s,
                "in_flight": pl.in_flight,
                "members": [
                    {
                        "id": m.id,
                        "name": m.name,
                        "kind": m.kind,
                        "status": m.status,
                        "attempts": attempts(m.id),
                    }
                    for m in pl.members
                ],
            }
            for pl in sorted(lists.values(), key=lambda x: x.id)
        ]

    async def logout(self, session_id: str | None) -> None:
        """Sign out: the session row goes, and so do its open live streams."""
        key = await self.sessions.logout(session_id)
        if key:
            self.hub.close_owner(key)

    async def toggle_link(self, link_id: int, enabled: bool, reason: str, actor: str) -> None:
        """The same core call as PUT /api/v1/smpp/{id}/toggle (audited there)."""
        await self.ops.links.toggle(link_id, enabled, reason, f"console:{actor}")
        if "links" in self.hub.wanted():
            self.hub.publish("links", self.links_view())

    async def users(self) -> list[dict[str, Any]]:
        rows = await self.auth.list_users()
        return [
            {
                "id": r.user_id,
                "email": r.email,
                "is_admin": r.is_admin,
                "created_at": r.created_at,
                "app_id": r.app_id,
                "app_name": r.app_name or "",
            }
            for r in rows
        ]

    async def campaigns(self) -> list[dict[str, Any]]:
        with store_errors():
            rows, _ = await self.ops.campaigns.page(1, 100)
        return [msgspec.to_builtins(r) for r in rows]

    def filters(self) -> list[dict[str, Any]]:
        return self.ops.filter_rows()

    async def audit(self, limit: int = 200) -> list[dict[str, Any]]:
        with store_errors():
            rows = await self.store.list_audit(limit)
        return [msgspec.to_builtins(r) for r in rows]
