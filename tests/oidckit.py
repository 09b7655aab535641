"""A real, independent OpenID Connect provider for the token tests: npm `oidc-provider`
(tests/interop/oidc/provider.mjs) under Node.js on a loopback port, issuing RFC 9068
JWT access tokens for client_credentials clients. `rotate()` restarts it on the same
port with a new signing key, as an IdP rotating its key does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

OIDC_DIR = Path(__file__).resolve().parent / "interop" / "oidc"
AUDIENCE = "urn:smsgateway:sms-api"
SEND = "client.sms.send"


def ensure_node() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are required for the OIDC tests (apt-get install nodejs)")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OIDC_DIR,
            check=True,
            timeout=600,
        )
    return node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OidcProvider:
    """Clients: `main` (scopes client.sms.send and other.read), `noscope` (other.read
    only), `brief` (client.sms.send, tokens valid 1 s)."""

    def __init__(self, workdir: Path, alg: str = "ES256") -> None:
        self.workdir = workdir
        self.alg = alg  # ES256 (P-256) or RS256 (2048-bit RSA) signing keys
        self.port = _free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.kid = ""
        self.starts = 0
        self.clients = {
            name: {
                "client_id": f"{name}-client",
                "client_secret": secrets.token_urlsafe(24),
                "scope": scope,
                "ttl": ttl,
            }
            for name, scope, ttl in (
                ("main", f"{SEND} other.read", 300),
                ("noscope", "other.read", 300),
                ("brief", SEND, 1),
            )
        }

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_key(self) -> None:
        self.kid = f"key-{secrets.token_hex(4)}"
        if self.alg == "RS256":
            rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key))
        else:
            jwk = json.loads(
                jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()))
            )
        # PyJWT writes key_ops ["sign"]; the provider also verifies with its keys.
        jwk.pop("key_ops", None)
        jwk |= {"kid": self.kid, "alg": self.alg, "use": "sig"}
        (self.workdir / "jwks.json").write_text(json.dumps({"keys": [jwk]}))

    async def start(self) -> None:
        node = await asyncio.to_thread(ensure_node)
        if not self.kid:
            self._write_key()
        (self.workdir / "clients.json").write_text(json.dumps(list(self.clients.values())))
        self.proc = await asyncio.create_subprocess_exec(
            node,
            str(OIDC_DIR / "provider.mjs"),
            str(self.port),
            str(self.workdir / "jwks.json"),
            str(self.workdir / "clients.json"),
            cwd=OIDC_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        assert line.decode().strip() == f"ready {self.issuer}", line
        self.starts += 1

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def rotate(self) -> None:
        """Restart with a new signing key (and a new kid); the old key is gone."""
        await self.stop()
        self._write_key()
        await self.start()

    async def token_response(
        self, client: str = "main", *, scope: str | None = SEND, resource: str | None = None
    ) -> httpx.Response:
        c = self.clients[client]
        form: dict[str, Any] = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        if resource is not None:
            form["resource"] = resource
        async with httpx.AsyncClient(trust_env=False) as http:
            return await http.post(
                f"{self.issuer}/token",
                data=form,
                auth=(c["client_id"], c["client_secret"]),
            )

    async def token(self, client: str = "main", **kw: Any) -> str:
        r = await self.token_response(client, **kw)
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token
