"""Test kit for the whole gateway over real sockets: a Runtime on ephemeral ports, the
simulator as its SMSC, a real SQLite file, and an HTTP client talking to it as a user
would. Shared by tests/e2e, tests/ops and tests/grpc (fixtures in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from smsgateway.runtime import Runtime
from smsgateway.settings import (
    AuthSettings,
    LinkSettings,
    MessageSettings,
    PoolSettings,
    ServerSettings,
    Settings,
    SmppSettings,
    StorageSettings,
)
from smsgateway.settings_ops import (
    DashboardSettings,
    FilterSettings,
    LicenseSettings,
    RateLimitSettings,
)
from smsgateway.smscsim.simulator import SmscSimulator

ADMIN_KEY = "test-admin-key"
PASSWORD = "correct-horse-9"


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` (sync or async) until truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


async def metric(http: httpx.AsyncClient, series: str) -> float:
    """One series' value on /metrics (0 if absent). The counters are process-global and
    pytest runs every test in one process, so tests compare before and after."""
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def make_settings(
    data_dir: Path,
    links: list[LinkSettings],
    pools: list[PoolSettings] | None = None,
    *,
    admin_key: str = ADMIN_KEY,
    send_budget_s: float = 2.0,
    ratelimit: RateLimitSettings | None = None,
    dashboard: DashboardSettings | None = None,
    license: LicenseSettings | None = None,
    filters: list[FilterSettings] | None = None,
    **server: Any,
) -> Settings:
    settings = Settings(
        server=ServerSettings(host="127.0.0.1", rest_port=0, grpc_port=0, **server),
        storage=StorageSettings(path=str(data_dir / "gw.db")),
        auth=AuthSettings(admin_api_key=admin_key, argon2_time_cost=1, argon2_memory_cost=8),
        smpp=SmppSettings(links=links, pools=pools or []),
        messages=MessageSettings(send_budget_s=send_budget_s),
        ratelimit=ratelimit or RateLimitSettings(),
        dashboard=dashboard or DashboardSettings(),
        license=license or LicenseSettings(),
        filters=filters or [],
    )
    settings.validate()
    return settings


def link_to(sim: SmscSimulator, link_id: int = 1, **kw: Any) -> LinkSettings:
    kw.setdefault("limit_tps", 0)
    kw.setdefault("response_timeout", 2.0)
    return LinkSettings(
        id=link_id,
        name=f"link-{link_id}",
        host="127.0.0.1",
        port=sim.smpp_port,
        system_id=f"gw{link_id}",
        password="pw",
        **kw,
    )


def dead_link(link_id: int = 1, **kw: Any) -> LinkSettings:
    """A link whose SMSC is not there: routing works, nothing binds."""
    kw.setdefault("limit_tps", 0)
    return LinkSettings(id=link_id, name=f"link-{link_id}", host="127.0.0.1", port=1, **kw)


def admin(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"X-Admin-Key": key}


@dataclass
class Gateway:
    runtime: Runtime
    http: httpx.AsyncClient

    async def register(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        r = await self.http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": password},
            headers=admin(self.runtime.settings.auth.admin_api_key or ADMIN_KEY),
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def login(self, email: str, app_id: int, password: str = PASSWORD) -> dict[str, str]:
        r = await self.http.post(
            "/api/v1/auth/login", json={"email": email, "password": password, "app_id": app_id}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}", "X-App-ID": str(app_id)}

    async def user(self, email: str) -> dict[str, str]:
        """Register and log in: the headers a JWT-protected call needs."""
        reg = await self.register(email)
        return await self.login(email, reg["app_id"])

    async def send(self, headers: dict[str, str], **kw: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "esme": 1,
            "source": "+123456789",
            "destination": "+447700900123",
            "message": "hello",
        }
        body.update(kw)
        return await self.http.post("/api/v1/sms/send", json=body, headers=headers)

    async def stop(self) -> None:
        """Stop the gateway (idempotent: the fixture stops whatever is left)."""
        if not self.http.is_closed:
            await self.http.aclose()
            await self.runtime.stop()

    @property
    def ops(self) -> Any:
        assert self.runtime.ops is not None
        return self.runtime.ops

    async def bound(self, link_id: int = 1) -> None:
        assert self.runtime.router is not None
        link = self.runtime.router.links[link_id]
        await eventually(lambda: link.bound)


async def wait_bound(gw: Gateway, link_id: int = 1) -> None:
    await gw.bound(link_id)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 and its key, as PEM files
    (cert.pem, key.pem) in `directory`: TLS for REST, gRPC and the phone's HTTPS."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
