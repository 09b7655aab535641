"""Where the verifier finds an issuer's public keys: the gateway's own key, or an
external issuer's JWKS found through its discovery document.

A `RemoteKeys` fetches asynchronously (httpx) and caches by `kid`:
- a token with an unknown `kid` makes it fetch again, at most once per cooldown, so
  a rotated key is picked up without a restart and a flood of made-up kids costs one
  fetch per cooldown;
- keys older than `max_age` are refreshed in the background while still used;
- a failed fetch keeps the keys it had, and one fetch at a time runs per issuer
  (concurrent requests wait for the same one, each under its own timeout), so an
  unreachable issuer delays only its own tokens, never the event loop or another
  issuer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from ...settings_oauth import is_loopback_host
from .keys import SigningKey

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 512 * 1024
MAX_KEYS = 50


class KeySource(Protocol):
    @property
    def issuer(self) -> str: ...

    @property
    def available(self) -> bool: ...  # has it any keys at all

    async def key_for(self, kid: str | None, alg: str) -> PyJWK | None: ...


def _bind(jwk: Mapping[str, Any], alg: str) -> PyJWK | None:
    """The JWK as a key for `alg`, or None when it is not a signing key for it."""
    if jwk.get("use", "sig") != "sig":
        return None
    declared = jwk.get("alg")
    if declared is not None and declared != alg:
        return None
    try:
        return PyJWK(dict(jwk), algorithm=alg)
    except (PyJWKError, ValueError, TypeError, KeyError):
        return None


class _KeyRing:
    """JWKs by kid, with the PyJWK for each (kid, alg) built once."""

    def __init__(self, jwks: list[Mapping[str, Any]] | None = None) -> None:
        self._jwks: dict[str | None, Mapping[str, Any]] = {}
        self._bound: dict[tuple[str | None, str], PyJWK | None] = {}
        for jwk in jwks or []:
            kid = jwk.get("kid")
            self._jwks[kid if isinstance(kid, str) else None] = jwk

    def __len__(self) -> int:
        return len(self._jwks)

    def has(self, kid: str | None) -> bool:
        return self._pick(kid) is not None

    def _pick(self, kid: str | None) -> Mapping[str, Any] | None:
        if kid is not None:
            return self._jwks.get(kid)
        # No kid in the token: only unambiguous with a single key.
        return next(iter(self._jwks.values())) if len(self._jwks) == 1 else None

    def get(self, kid: str | None, alg: str) -> PyJWK | None:
        jwk = self._pick(kid)
        if jwk is None:
            return None
        slot = (kid, alg)
        if slot not in self._bound:
            self._bound[slot] = _bind(jwk, alg)
        return self._bound[slot]


class OwnKeys:
    """The gateway's own signing key, seen the way an external issuer's keys are."""

    def __init__(self, issuer: Callable[[], str], key: SigningKey) -> None:
        self._issuer = issuer
        self._ring = _KeyRing([key.public_jwk()])

    @property
    def issuer(self) -> str:
        return self._issuer()

    @property
    def available(self) -> bool:
        return True

    async def key_for(self, kid: str | None, alg: str) -> PyJWK | None:
        return self._ring.get(kid, alg)


class FetchError(Exception):
    pass


class RemoteKeys:
    def __init__(
        self,
        issuer: str,
        client: httpx.AsyncClient,
        *,
        cooldown_s: float,
        max_age_s: float,
        timeout_s: float,
        allow_http: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._client = client
        self._cooldown = cooldown_s
        self._max_age = max_age_s
        self._timeout = timeout_s
        self._allow_http = allow_http
        self._clock = clock
        self._ring = _KeyRing()
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch started
        self._inflight: asyncio.Task[None] | None = None
        self.fetches = 0
        self.failures = 0
        self.last_error = ""

    @property
    def available(self) -> bool:
        return len(self._ring) > 0

    async def key_for(self, kid: str | None, alg: str) -> PyJWK | None:
        now = self._clock()
        if self._ring.has(kid):
            if self._fetched_at is not None and now - self._fetched_at > self._max_age:
                self.refresh_soon()
            return self._ring.get(kid, alg)
        running = self._inflight is not None and not self._inflight.done()
        cooling = self._attempted_at is not None and now - self._attempted_at < self._cooldown
        if cooling and not running:
            return None
        # A fetch under way (the start-up one, say) may bring the key: wait for it.
        await self.refresh()
        return self._ring.get(kid, alg)

    def refresh_soon(self) -> asyncio.Task[None]:
        """Start a fetch unless one is running; the task never raises."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch(), name=f"jwks {self.issuer}")
        return self._inflight

    async def refresh(self) -> None:
        task = self.refresh_soon()
        # shield: a caller that gives up (its request ends) must not cancel the fetch
        # other requests wait for; the fetch has its own timeout.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self._timeout + 1)

    async def close(self) -> None:
        if self._inflight is not None and not self._inflight.done():
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._inflight

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            async with asyncio.timeout(self._timeout):
                discovery = await self._get_json(self.issuer.rstrip("/") + DISCOVERY_PATH)
                if discovery.get("issuer") != self.issuer:
                    raise FetchError(
                        f"discovery names issuer {discovery.get('issuer')!r}, not {self.issuer!r}"
                    )
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise FetchError("discovery has no jwks_uri")
                self._check_url(jwks_uri)
                jwks = await self._get_json(jwks_uri)
            keys = jwks.get("keys")
            if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
                raise FetchError("JWKS has no keys list")
            if not keys:
                raise FetchError("JWKS is empty")
        except (FetchError, httpx.HTTPError, TimeoutError, ValueError) as exc:
            self.failures += 1
            self.last_error = str(exc) or type(exc).__name__
            log.warning(
                "issuer keys not fetched; keeping %d known keys",
                len(self._ring),
                extra={"issuer": self.issuer, "error": self.last_error},
            )
            return
        self._ring = _KeyRing(keys[:MAX_KEYS])
        self._fetched_at = self._clock()
        self.last_error = ""
        log.info("issuer keys fetched", extra={"issuer": self.issuer, "keys": len(self._ring)})

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and (self._allow_http or is_loopback_host(parts.hostname or "")):
            return
        raise FetchError(f"refusing to fetch {url!r}: not https")

    async def _get_json(self, url: str) -> dict[str, Any]:
        self._check_url(url)
        async with self._client.stream("GET", url, headers={"Accept": "application/json"}) as r:
            if r.status_code != 200:
                raise FetchError(f"GET {url}: HTTP {r.status_code}")
            body = bytearray()
            async for chunk in r.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise FetchError(f"GET {url}: document over {MAX_DOCUMENT_BYTES} bytes")
        try:
            doc = json.loads(bytes(body))
        except ValueError as exc:
            raise FetchError(f"GET {url}: not JSON") from exc
        if not isinstance(doc, dict):
            raise FetchError(f"GET {url}: not a JSON object")
        return doc
