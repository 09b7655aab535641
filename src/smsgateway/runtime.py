"""The composition root: builds every service from settings and runs them.

The CLI and the tests start the same `Runtime`; tests pass port 0 and read the bound
ports back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Generator, Iterable
from pathlib import Path

import uvicorn

from .api.fastpath import FastRoutes
from .api.grpc.server import GrpcServer
from .api.httpserver import guarded_protocol
from .api.rest import build_app
from .api.services import Services
from .core.admin import AdminKey
from .core.auth import AuthService, password_hasher
from .core.channels import PartOutcome, SendJob, SmppLink
from .core.console import ConsoleService
from .core.devices import DeviceChannel, DeviceService
from .core.devices.metrics import DeviceCollector
from .core.messages import MessageService
from .core.metrics import METRICS, LiveCollector
from .core.numbers import ChannelMatcher, NumbersService, OtpHook
from .core.oneshot import OneShotService
from .core.ops import OpsService
from .core.otp.wiring import OtpServices, build_otp
from .core.ratelimit import GlobalRateLimit
from .core.routing import Router
from .core.secrets import Secrets
from .core.tokens import SigningKey, TokenService, default_issuer
from .core.webhooks import WebhookDeliverer
from .gctune import tune_for_server
from .settings import Settings
from .smpp.pdu import DataSm, DeliverSm
from .store.numbers import NumbersStore
from .store.oauth import OAuthStore
from .store.sqlite import SqliteStore

log = logging.getLogger(__name__)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # with proto 0 every answer after the first waits ~40 ms on Nagle + delayed ACK
    # (uvloop sets it regardless, the plain asyncio loop does not).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.storage.path).parent
        self.store: SqliteStore | None = None
        self.router: Router | None = None
        self.messages: MessageService | None = None
        self.auth: AuthService | None = None
        self.ops: OpsService | None = None
        self.devices: DeviceService | None = None
        self.otp: OtpServices | None = None
        self.console: ConsoleService | None = None
        self.numbers: NumbersService | None = None
        self.webhooks: WebhookDeliverer | None = None
        self._background: list[asyncio.Task[None]] = []
        self.tokens: TokenService | None = None
        self.oneshot: OneShotService | None = None
        self._server: _QuietServer | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._collector: LiveCollector | None = None
        self._device_collector: DeviceCollector | None = None
        self._grpc: GrpcServer | None = None
        self.fast_routes: FastRoutes | None = None
        self.rest_port = 0
        self.grpc_port = 0

    async def start(self) -> None:
        s = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = await SqliteStore.open(s.storage.path)
        secrets = Secrets.load(self.data_dir)
        signing_key = SigningKey.load(self.data_dir)  # before any link binds: fail early
        self.auth = AuthService(
            self.store,
            secrets,
            token_ttl_s=s.auth.token_ttl_s,
            hasher=password_hasher(s.auth.argon2_time_cost, s.auth.argon2_memory_cost),
        )
        states = {
            link_id: (row.enabled, row.reason)
            for link_id, row in (await self.store.get_link_states()).items()
        }
        self.router = Router(
            s,
            on_outcomes=self._on_outcomes,
            on_deliver=self._on_deliver,
            link_states=states,
        )
        self.messages = MessageService(self.store, self.router, s.messages, secrets=secrets)
        self.ops = OpsService(
            s,
            self.store,
            self.router,
            self.messages,
            data_dir=self.data_dir,
            ports=lambda: (self.rest_port, self.grpc_port),
        )
        self.devices = DeviceService(
            self.store,
            secrets,
            s.devices,
            on_outcomes=self._on_outcomes,
            report=self._channel_report,
            inbound=self._device_inbound,
            add_channel=self._add_channel,
        )
        # Before the links start: license holds and paces apply to their first bind.
        await self.ops.start(METRICS.registry)
        # Device channels exist before the message service requeues their messages.
        await self.devices.start()
        await self.messages.start()
        await self._start_numbers(secrets)  # its inbound hook is in before any MO arrives
        await self.router.start()
        self.tokens = TokenService(
            s.oauth,
            OAuthStore(self.store),
            secrets,
            signing_key,
            issuer=self._issuer,
        )
        await self.tokens.start()
        self.otp = build_otp(
            self.store, secrets, self.messages, self.router, lambda: self.devices, s.otp
        )
        store = self.store
        self._collector = LiveCollector(
            self._link_rows, lambda: (store.writer_batches, store.writer_units), self._pool_rows
        )
        METRICS.registry.register(self._collector)
        self._device_collector = DeviceCollector(self.devices.metric_rows)
        METRICS.registry.register(self._device_collector)
        admin_key = AdminKey(s.auth.admin_api_key, open_registration=s.auth.open_registration)
        self.console = ConsoleService(
            s.console,
            store=self.store,
            ops=self.ops,
            auth=self.auth,
            admin_key=admin_key,
            metrics=METRICS,
            data_dir=self.data_dir,
        )
        await self.console.start()
        self.oneshot = oneshot = OneShotService(
            self.tokens, self.messages, self.router, self.otp.idempotency
        )
        # Expired Idempotency-Key rows (every face's: one table) are deleted hourly.
        self._background.append(
            asyncio.create_task(self.otp.idempotency.run_sweeper(), name="idem-sweep")
        )
        services = Services(
            settings=s,
            auth=self.auth,
            messages=self.messages,
            admin_key=admin_key,
            metrics=METRICS,
            ops=self.ops,
            otp=self.otp,
            devices=self.devices,
            console=self.console,
            numbers=self.numbers,
            webhooks=self.webhooks,
            tokens=self.tokens,
            oneshot=oneshot,
        )
        rest = build_app(services)
        app = self.ops.wrap(rest)
        # The HTTP protocol serves the hot routes itself (api/fastpath.py); the global
        # L1 limit, when on, wraps the app and gates those routes the same way.
        self.fast_routes = rest.fast
        if isinstance(app, GlobalRateLimit) and rest.fast is not None:
            self.fast_routes = rest.fast.behind(app.check)
        grpc_server = GrpcServer(services)  # reads TLS files now: fail before binding
        sock = _listen(s.server.host, s.server.rest_port)
        self.rest_port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            # X-Forwarded-For is believed only from server.trusted_proxies (api/http.py);
            # uvicorn's own proxy handling would trust 127.0.0.1 behind our back.
            proxy_headers=False,
            timeout_keep_alive=s.server.keep_alive_s,  # type: ignore[arg-type]
            # Slowloris and idle-connection floods must not starve real clients: every
            # request head has a deadline (GuardedHttpToolsProtocol) and every body one
            # too (api/http.py read_body). No limit_concurrency: uvicorn counts idle
            # connections against it and answers real requests 503 once idle sockets
            # fill it, which hands the flood exactly what it wants.
            http=guarded_protocol(s.server.head_timeout_s, self.fast_routes),
            ssl_certfile=s.server.tls_cert or None,
            ssl_keyfile=s.server.tls_key or None,
        )
        self._server = _QuietServer(config)
        self._server_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._server_task.done():
                await self._server_task
                raise RuntimeError("REST server failed to start")
            await asyncio.sleep(0.01)
        self.grpc_port = await grpc_server.start()
        self._grpc = grpc_server
        tune_for_server()
        log.info(
            "gateway started", extra={"rest_port": self.rest_port, "grpc_port": self.grpc_port}
        )

    def _issuer(self) -> str:
        """The own tokens' `iss`: the setting, else this server's URL (known once bound)."""
        s = self.settings
        return s.oauth.issuer or default_issuer(
            s.server.host, self.rest_port, bool(s.server.tls_cert and s.server.tls_key)
        )

    async def _start_numbers(self, secrets: Secrets) -> None:
        """Virtual numbers (002): the service, the OTP hook on inbound SMS, the webhook
        deliverer (it reads the outbox left by a previous run), and their sweepers."""
        assert self.store is not None and self.messages is not None
        s = self.settings
        store = NumbersStore(self.store)
        self.webhooks = WebhookDeliverer(store, secrets, s.numbers)
        channels = ChannelMatcher(
            lambda: {link.id for link in s.smpp.links},
            lambda: {pool.id: set(pool.links) for pool in s.smpp.pools},
        )
        self.numbers = NumbersService(store, secrets, s.numbers, channels)
        inbound = self.messages.inbound
        inbound.part_timeout_s = s.numbers.inbound_part_timeout_s
        inbound.add_hook(OtpHook(channels, self.webhooks.wake))
        await self.webhooks.start()
        self._background += [
            asyncio.create_task(inbound.run_sweeper(), name="inbound-parts"),
            asyncio.create_task(self.numbers.run_expiry(), name="numbers-expiry"),
        ]

    def _on_outcomes(self, job: SendJob, outcomes: list[PartOutcome]) -> None:
        assert self.messages is not None
        self.messages.record_outcomes(job, outcomes)

    def _add_channel(self, channel: DeviceChannel) -> None:
        assert self.router is not None
        self.router.add_channel(channel)

    def _channel_report(
        self, channel_id: int, message_id: str, state: str, error: str | None
    ) -> None:
        assert self.messages is not None
        self.messages.channel_report(channel_id, message_id, state, error)

    async def _device_inbound(
        self, channel_id: int, source: str, destination: str, text: str, received_at_ms: int
    ) -> str:
        """An SMS a phone received: through the inbound service, so its hooks (OTP
        extraction, webhooks) see it as they see SMPP MO."""
        assert self.messages is not None
        return await self.messages.inbound.receive(
            channel_id=channel_id,
            source=source,
            destination=destination,
            text=text,
            received_at_ms=received_at_ms,
        )

    def _on_deliver(self, link: SmppLink, pdu: DeliverSm | DataSm) -> int | Awaitable[int]:
        assert self.messages is not None
        return self.messages.on_deliver(link, pdu)

    def _pool_rows(self) -> Iterable[tuple[int, int]]:
        if self.router is None:
            return []
        return [(pool.id, pool.pending_count) for pool in self.router.pools.values()]

    def _link_rows(self) -> Iterable[tuple[int, str, str, int, float]]:
        if self.router is None:
            return []
        return [
            (link.id, link.name, link.status, link.pending_count, link.client.measured_tps())
            for link in self.router.links.values()
        ]

    async def stop(self) -> None:
        """Stop taking requests, let answers finish, unbind links, flush the store."""
        if self.devices is not None:
            await self.devices.stop()  # ends the phones' SSE streams: the server can stop
        if self.console is not None:
            await self.console.stop()  # ends live streams, which never finish alone
        if self._grpc is not None:
            await self._grpc.stop()
            self._grpc = None
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server_task, timeout=10)
        if self.messages is not None:
            self.messages.stop()
        if self.router is not None:
            await self.router.stop()
        if self.ops is not None:
            await self.ops.stop()  # after the links: their last answers are counted
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background = []
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.tokens is not None:
            await self.tokens.stop()
        if self._collector is not None:
            METRICS.registry.unregister(self._collector)
            self._collector = None
        if self._device_collector is not None:
            METRICS.registry.unregister(self._device_collector)
            self._device_collector = None
        if self.store is not None:
            await self.store.close()
