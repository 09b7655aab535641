"""The operations side: statistics, link control, license, filters, campaigns, limits.

`OpsService` is built once by the runtime next to the message pipeline. It plugs an
`OpsObserver` into `MessageService` (counting and filtering on the send path) and
answers what the dashboard, settings, SMPP-control and admin endpoints ask. Nothing
here knows HTTP; `api/ops.py` renders it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..settings import Settings
from ..store.errors import StoreError
from ..store.models import ReceiptMatch
from ..store.ops import FilterRow, OpsStore
from ..store.sqlite import SqliteStore, now_ms
from .campaigns import CampaignCounter
from .channels import PartOutcome, SendJob, SmppLink, SmppPool
from .errors import Internal, InvalidRequest, NotFound, store_errors
from .filters import Filter, FilterError, FilterSet, compile_filter
from .license import LicenseManager, load_public_key
from .messages import MessageService
from .ratelimit import AppLimiter, GlobalRateLimit, LoginGuard
from .routing import Router
from .stats import FAILED_RECEIPT_STATES, PipelineObserver, Traffic, minute_label, percent

log = logging.getLogger(__name__)

REASON_MAX = 256
_TICK_S = 10.0


class LinkNotFound(NotFound):
    default_message = "link not found"


class FilterNotFound(NotFound):
    default_message = "filter not found"


def validate_settings(settings: Settings) -> None:
    """The ops sections' checks (called from Settings.validate); ValueError names the key."""
    r = settings.ratelimit
    for name in ("global_rps", "global_burst", "app_rps", "app_burst", "login_per_minute"):
        if getattr(r, name) < 0:
            raise ValueError(f"ratelimit.{name} must not be negative")
    for app_id, own in r.apps.items():
        if own.rps < 0 or own.burst < 0:
            raise ValueError(f"ratelimit.apps.{app_id}: rps and burst must not be negative")
    if not 1 <= settings.dashboard.top_campaigns <= 100:
        raise ValueError("dashboard.top_campaigns must be within 1..100")
    if settings.license.public_key.strip():
        load_public_key(settings.license.public_key)
    seen: set[str] = set()
    for f in settings.filters:
        if f.name in seen:
            raise ValueError(f"filters: name {f.name!r} used twice")
        seen.add(f.name)
        try:
            compile_filter(
                f.name, f.mode, f.rule, active=f.active, description=f.description, source=""
            )
        except FilterError as exc:
            raise ValueError(f"filters: {exc.message}") from None


def go_duration(seconds: float) -> str:
    """Seconds in Go's time.Duration notation ("24h0m0s", "5s"), as document 001 shows."""
    total = int(seconds)
    if total < 60:
        return f"{seconds:g}s"
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s" if h else f"{m}m{s}s"


def _tps(value: float) -> int | float:
    return int(value) if value == int(value) else round(value, 2)


class OpsObserver(PipelineObserver):
    """Counts for the dashboard and campaigns, and the filters, on the send path."""

    def __init__(self, traffic: Traffic, campaigns: CampaignCounter, filters: FilterSet) -> None:
        self.traffic = traffic
        self.campaigns = campaigns
        self.filters = filters

    def check(self, app_id: int, esme: int, source: str, destination: str, text: str) -> None:
        self.filters.check(app_id, esme, source, destination, text)

    def accepted(self) -> None:
        self.traffic.add_accepted()

    def outcomes(self, job: SendJob, outcomes: list[PartOutcome]) -> None:
        refused = 0
        for o in outcomes:
            if o.error:
                refused += 1
        self.traffic.add_answered(len(outcomes) - refused, refused)
        campaign = job.campaign
        if campaign:
            add = self.campaigns.add
            for o in outcomes:
                if o.error:
                    add(campaign, o.link_id, 0, 1, 1)
                else:
                    add(campaign, o.link_id, 1, 0, 1)

    def receipt(self, link_id: int, match: ReceiptMatch) -> None:
        if match.part_state in FAILED_RECEIPT_STATES:
            self.traffic.add_failed()
            if match.campaign:
                # Counted as sent when the SMSC took it; the network says otherwise now.
                self.campaigns.add(match.campaign, link_id, -1, 1, 0)


class LinkControl:
    """Enable/disable links durably, and hold them to the license's limits.

    License enforcement: at most `max_connections` enabled links may bind (those
    running keep their place, then id order); the rest are held (not started, shown
    CLOSED with the reason). The running links' paces are scaled so their sum stays within
    `max_tps`: each keeps its share of the configured limits (an unlimited link asks
    for all of `max_tps`). Without an active license the settings' limits apply.
    """

    def __init__(self, router: Router, store: SqliteStore, license: LicenseManager) -> None:
        self.router = router
        self.store = store
        self.license = license
        self._lock = asyncio.Lock()
        self.effective: dict[int, float] = {
            link.id: float(link.cfg.limit_tps) for link in router.links.values()
        }

    def _plan(self, enabled: dict[int, bool]) -> dict[int, tuple[str, float]]:
        """link id -> (held reason or "", pace) for the given enabled flags.

        Links running now keep their connections; the rest queue in id order. So a
        link enabled while the license's count is used up is held (refused), and
        never displaces one that runs.
        """
        links = sorted(
            self.router.links.values(),
            key=lambda link: (not (link.enabled and not link.held), link.id),
        )
        limits = self.license.limits()
        if limits is None:
            return {link.id: ("", float(link.cfg.limit_tps)) for link in links}
        max_conn, max_tps = limits
        running: list[SmppLink] = []
        plan: dict[int, tuple[str, float]] = {}
        for link in links:
            if enabled.get(link.id, link.enabled) and len(running) >= max_conn:
                plan[link.id] = (f"license allows {max_conn} connections", 0.0)
            else:
                if enabled.get(link.id, link.enabled):
                    running.append(link)
                plan[link.id] = ("", float(link.cfg.limit_tps))
        weights = {
            link.id: float(link.cfg.limit_tps) if link.cfg.limit_tps > 0 else float(max_tps)
            for link in running
        }
        total = sum(weights.values())
        for link in running:
            share = weights[link.id]
            if total > max_tps:
                # Floored to 1/100 TPS so rounding never lifts the sum over max_tps.
                share = max(0.01, math.floor(share * max_tps / total * 100) / 100)
            plan[link.id] = ("", share)
        return plan

    async def _apply(self, plan: dict[int, tuple[str, float]]) -> None:
        links = self.router.links
        # Holds first, releases after: never more binds than allowed, even briefly.
        for link_id, (held, _) in plan.items():
            if held:
                await links[link_id].set_held(held)
        for link_id, (held, pace) in plan.items():
            link = links[link_id]
            if pace != self.effective.get(link_id) or pace != link.client.config.limit_tps:
                link.client.set_rate(pace)
                self.effective[link_id] = pace
            if not held:
                await link.set_held("")

    async def reconcile(self) -> None:
        async with self._lock:
            await self._apply(self._plan({}))

    def get(self, link_id: int) -> SmppLink:
        link = self.router.links.get(link_id)
        if link is None:
            raise LinkNotFound()
        return link

    async def toggle(self, link_id: int, enabled: bool, reason: str, actor: str) -> SmppLink:
        """Persist (with an audit row) first, then act: a crash in between leaves the
        stored state, which the next start applies."""
        if len(reason) > REASON_MAX:
            raise InvalidRequest(f"reason must be at most {REASON_MAX} characters")
        link = self.get(link_id)
        async with self._lock:
            with store_errors():
                await self.store.set_link_state(link_id, enabled, reason, actor)
            plan = self._plan({link_id: enabled})
            held, _ = plan[link_id]
            if held:
                # Over the license's connection count: held before it may bind.
                await link.set_held(held)
            await link.set_enabled(enabled, reason)
            await self._apply(plan)
        log.info(
            "link toggled",
            extra={"link_id": link_id, "enabled": enabled, "reason": reason, "actor": actor},
        )
        return link

    # -- views ---------------------------------------------------------------------

    def pace(self, link: SmppLink) -> float:
        return self.effective.get(link.id, float(link.cfg.limit_tps))

    def link_rows(self) -> list[dict[str, Any]]:
        rows = []
        for link in sorted(self.router.links.values(), key=lambda x: x.id):
            reason = link.reason if not link.enabled else link.held
            rows.append(
                {
                    "id": link.id,
                    "name": link.name,
                    "status": link.status,
                    "current_tps": round(link.client.measured_tps(), 2),
                    "limit_tps": _tps(self.pace(link)),
                    "enabled": link.enabled,
                    "reason": reason,
                    "last_bind_error": link.client.last_bind_error or "",
                }
            )
        return rows

    def pool_rows(self) -> list[dict[str, Any]]:
        rows = []
        for pool in sorted(self.router.pools.values(), key=lambda p: p.id):
            rows.append(
                {
                    "id": pool.id,
                    "name": pool.name,
                    "links": [m.name for m in pool.members],
                    "total_tps": _tps(self.pool_tps(pool)),
                }
            )
        return rows

    def pool_tps(self, pool: SmppPool) -> float:
        return sum(self.pace(m) for m in pool.members if m.enabled and not m.held)

    def active_connections(self) -> int:
        return sum(1 for link in self.router.links.values() if link.bound)


def _system(data_dir: Path) -> dict[str, float]:
    try:
        disk = psutil.disk_usage(str(data_dir)).percent
    except OSError:
        disk = 0.0
    return {
        # interval=None: the share since the previous call, without sleeping.
        "cpu": round(psutil.cpu_percent(interval=None), 1),
        "ram": round(psutil.virtual_memory().percent, 1),
        "disk": round(disk, 1),
    }


def short_name(name: str, width: int = 20) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


class OpsService:
    def __init__(
        self,
        settings: Settings,
        store: SqliteStore,
        router: Router,
        messages: MessageService,
        *,
        data_dir: Path,
        ports: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self.settings = settings
        self.store = store
        self.ops_store = OpsStore(store)
        self.router = router
        self.messages = messages
        self.data_dir = data_dir
        self._ports = ports
        lic = settings.license
        self.license = LicenseManager(
            lic.public_key, Path(lic.path) if lic.path else data_dir / "license.json"
        )
        self.links = LinkControl(router, store, self.license)
        self.traffic = Traffic()
        self.campaigns = CampaignCounter(self.ops_store)
        self.filters = FilterSet()
        self.observer = OpsObserver(self.traffic, self.campaigns, self.filters)
        r = settings.ratelimit
        self.app_limits = AppLimiter(r)
        self.login_guard = LoginGuard(r.login_per_minute, r.login_burst)
        self.global_limit: GlobalRateLimit | None = None
        self._tick: asyncio.Task[None] | None = None
        self._collector: OpsCollector | None = None
        self._registry: Any = None
        self.totals = {"messages": 0, "apps": 0}

    # -- life cycle ------------------------------------------------------------------

    async def start(self, registry: Any = None) -> None:
        """Before the links start: the license's holds and paces apply to the first bind."""
        for f in self.settings.filters:
            self.filters.put(
                compile_filter(
                    f.name,
                    f.mode,
                    f.rule,
                    active=f.active,
                    description=f.description,
                    source="settings",
                )
            )
        for row in await self.ops_store.list_filters():
            if self.filters.get(row.name) is not None:
                log.warning("stored filter %s is shadowed by the settings file", row.name)
                continue
            try:
                self.filters.put(_from_row(row))
            except FilterError as exc:
                log.error("stored filter %s ignored: %s", row.name, exc.message)
        self.license.load()
        if self.license.status == "invalid":
            log.error("license file %s does not verify: running unlicensed", self.license.path)
        await self.links.reconcile()
        self.messages.observer = self.observer
        self.campaigns.start()
        psutil.cpu_percent(interval=None)  # the first reading is meaningless: prime it
        await self._refresh_totals()
        self._tick = asyncio.create_task(self._ticker(), name="ops-tick")
        if registry is not None:
            self._collector = OpsCollector(self)
            registry.register(self._collector)
            self._registry = registry

    async def stop(self) -> None:
        """After the links stopped (their last answers are counted), before the store."""
        if self._tick is not None:
            self._tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick
            self._tick = None
        if self._collector is not None:
            self._registry.unregister(self._collector)
            self._collector = None
        try:
            await self.campaigns.stop()
        except StoreError:
            log.error("campaign counters lost at shutdown", exc_info=True)

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """The ASGI app behind the global (L1) limit; the app itself when L1 is off,
        so an unused limit costs nothing per request."""
        if self.settings.ratelimit.global_rps <= 0:
            return app
        self.global_limit = GlobalRateLimit(app, self.settings.ratelimit)
        return self.global_limit

    async def _ticker(self) -> None:
        status = self.license.status
        while True:
            await asyncio.sleep(_TICK_S)
            try:
                await self._refresh_totals()
                if self.license.status != status:
                    # Expiry takes effect while running: limits lift at midnight UTC.
                    status = self.license.status
                    log.warning("license is now %s", status)
                    await self.links.reconcile()
            except Exception:
                log.warning("ops tick failed", exc_info=True)

    async def _refresh_totals(self) -> None:
        self.totals["messages"] = await self.store.count_messages()
        self.totals["apps"] = await self.store.count_apps()

    # -- dashboard -------------------------------------------------------------------

    async def dashboard_metrics(self) -> dict[str, int]:
        with store_errors():
            await self._refresh_totals()
        return {
            "total_messages": self.totals["messages"],
            "total_companies": self.totals["apps"],
            "active_connections": self.links.active_connections(),
        }

    async def dashboard_stats(self) -> dict[str, Any]:
        try:
            top = await self.campaigns.top(self.settings.dashboard.top_campaigns)
        except StoreError as exc:
            raise Internal("failed to get top campaigns") from exc
        points = self.traffic.minutes(60)
        answered = sum(p.answered for p in points)
        failed = sum(p.failed for p in points)
        return {
            "rps": {
                "current": self.traffic.current_rps(),
                "data": [
                    {"time": minute_label(p.minute), "rps": round(p.accepted / 60, 3)}
                    for p in points
                ],
            },
            "errors": {
                "rate": percent(failed, answered),
                "data": [
                    {
                        "time": minute_label(p.minute),
                        "errors": p.failed,
                        "rate": percent(p.failed, p.answered),
                    }
                    for p in points
                ],
            },
            "topCampaignStats": [
                {"index": i, "name": name, "short_name": short_name(name), "messages": n}
                for i, (name, n) in enumerate(top, start=1)
            ],
            "system": _system(self.data_dir),
        }

    # -- settings views --------------------------------------------------------------

    def smpp_config(self) -> list[dict[str, Any]]:
        # Connection settings only: never the password.
        return [
            {
                "id": c.id,
                "name": c.name or f"link-{c.id}",
                "host": c.host,
                "port": c.port,
                "system_id": c.system_id,
                "system_type": c.system_type,
                "interface_version": c.interface_version,
                "response_timeout": c.response_timeout,
            }
            for c in sorted(self.settings.smpp.links, key=lambda c: c.id)
        ]

    def server_config(self) -> dict[str, Any]:
        """What this gateway really runs with, in document 001's shape. Sections this
        gateway does not have are present, disabled and empty; no secret appears."""
        s = self.settings
        rest_port, grpc_port = self._ports()
        tls = bool(getattr(s.server, "tls_cert", "") and getattr(s.server, "tls_key", ""))
        return {
            "env": s.server.env,
            "server_name": s.server.server_name,
            "endpoint": f"{s.server.host}:{rest_port or s.server.rest_port}",
            "tls": tls,
            "storage": {"db_path": str(Path(s.storage.path).resolve())},
            "aerospike": {
                "enabled": False,
                "hosts": "",
                "port": 0,
                "namespace": "",
                "sweep_time": "",
                "ttl": "",
            },
            "security": {
                "token_ttl": go_duration(s.auth.token_ttl_s),
                "open_registration": s.auth.open_registration,
                "admin_key_configured": bool(s.auth.admin_api_key),
            },
            "grpc": {
                "enabled": bool(grpc_port),
                "port": grpc_port or s.server.grpc_port,
                "tls": tls,
            },
            "smpp": {
                "rules_loaded": bool(s.smpp.links),
                "links": len(s.smpp.links),
                "pools": len(s.smpp.pools),
            },
            "filters": {
                f.name: {
                    "active": f.active,
                    "blacklist": f.blacklist,
                    "description": f.description,
                    "snippet": f.rule,
                }
                for f in self.filters.all()
            },
            "statistic_exporter": {"enabled": False, "target": "", "bucket": "", "tls": False},
            "monitoring": {
                "otel": False,
                "sampling": 0.0,
                "collector": "",
                "prometheus": "/metrics",
            },
            "ratelimit": {
                "global_rps": s.ratelimit.global_rps,
                "global_burst": s.ratelimit.global_burst,
                "app_rps": s.ratelimit.app_rps,
                "app_burst": s.ratelimit.app_burst,
                "login_per_minute": s.ratelimit.login_per_minute,
            },
            "license": {"status": self.license.status, "path": str(self.license.path)},
        }

    # -- filters ---------------------------------------------------------------------

    def filter_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f.name,
                "active": f.active,
                "mode": f.mode,
                "description": f.description,
                "rule": f.rule,
                "source": f.source,
                "blocked": f.blocked,
                "errors": f.errors,
            }
            for f in self.filters.all()
        ]

    async def put_filter(
        self, name: str, mode: str, rule: str, active: bool, description: str, actor: str
    ) -> Filter:
        existing = self.filters.get(name)
        if existing is not None and existing.source == "settings":
            raise FilterError(f"filter {name} comes from the settings file; change it there")
        f = compile_filter(name, mode, rule, active=active, description=description, source="api")
        with store_errors():
            await self.ops_store.upsert_filter(
                FilterRow(name, active, mode, description, rule, now_ms(), actor)
            )
        if existing is not None:
            f.blocked, f.errors = existing.blocked, existing.errors
        self.filters.put(f)
        return f

    async def delete_filter(self, name: str, actor: str) -> None:
        existing = self.filters.get(name)
        if existing is None:
            raise FilterNotFound()
        if existing.source == "settings":
            raise FilterError(f"filter {name} comes from the settings file; remove it there")
        with store_errors():
            await self.ops_store.delete_filter(name, actor)
        self.filters.remove(name)


def _from_row(row: FilterRow) -> Filter:
    return compile_filter(
        row.name,
        row.mode,
        row.rule,
        active=row.active,
        description=row.description,
        source="api",
    )


class OpsCollector(Collector):
    """The dashboard's figures on /metrics, read at scrape time."""

    def __init__(self, ops: OpsService) -> None:
        self._ops = ops

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        ops = self._ops
        points = ops.traffic.minutes(60)
        answered = sum(p.answered for p in points)
        failed = sum(p.failed for p in points)
        yield GaugeMetricFamily(
            "smsgateway_rps_current",
            "Messages accepted per second (last 5 s)",
            value=ops.traffic.current_rps(),
        )
        yield GaugeMetricFamily(
            "smsgateway_error_rate_percent",
            "Failed parts per answered part over the last hour, percent",
            value=percent(failed, answered),
        )
        yield GaugeMetricFamily(
            "smsgateway_messages_stored",
            "Messages in the store (refreshed every 10 s)",
            value=ops.totals["messages"],
        )
        yield GaugeMetricFamily(
            "smsgateway_apps", "Apps (companies) registered", value=ops.totals["apps"]
        )
        yield GaugeMetricFamily(
            "smsgateway_active_connections",
            "SMPP links bound now",
            value=ops.links.active_connections(),
        )
        limit = GaugeMetricFamily(
            "smsgateway_link_limit_tps", "Pace in force per link (0 = unpaced)", labels=["link"]
        )
        for link in ops.router.links.values():
            limit.add_metric([str(link.id)], ops.links.pace(link))
        yield limit
        pools = GaugeMetricFamily(
            "smsgateway_pool_total_tps", "Sum of the running members' paces", labels=["pool"]
        )
        for pool in ops.router.pools.values():
            pools.add_metric([str(pool.id)], ops.links.pool_tps(pool))
        yield pools
        lic = GaugeMetricFamily(
            "smsgateway_license_status", "1 for the license's status", labels=["status"]
        )
        for status in ("active", "expired", "invalid", "none"):
            lic.add_metric([status], 1.0 if ops.license.status == status else 0.0)
        yield lic
        blocked = CounterMetricFamily(
            "smsgateway_filter_blocked", "Sends blocked, by filter", labels=["filter"]
        )
        for f in ops.filters.all():
            blocked.add_metric([f.name], f.blocked)
        yield blocked
        refused = CounterMetricFamily(
            "smsgateway_ratelimit_refused", "Requests refused by a rate limit", labels=["level"]
        )
        refused.add_metric(
            ["global"], ops.global_limit.refused if ops.global_limit is not None else 0
        )
        refused.add_metric(["app"], ops.app_limits.refused)
        refused.add_metric(["login"], ops.login_guard.refused)
        yield refused
