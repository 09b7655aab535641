"""Console sessions: sign-in with the admin key or an admin user's password.

The session id is 32 random bytes handed to the browser once (as a cookie); the
store keeps only its SHA-256, with the actor and an absolute expiry. Sign-in
attempts go through a LoginGuard (per account and per client address), so the
admin key and passwords cannot be guessed at speed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import msgspec

from ...store.console import ConsoleStore, SessionRow
from ..admin import AdminKey
from ..auth import AuthService
from ..errors import GatewayError, InvalidCredentials, store_errors
from ..ratelimit import LoginGuard

# The guard's "account" key for admin-key attempts: every guess at the key shares it.
_ADMIN_KEY_ACCOUNT = "\x00admin-key"


class ConsoleSession(msgspec.Struct, frozen=True):
    actor: str  # "admin-key" or "user:<id>"; audit rows say "console:<actor>"
    created_at_ms: int
    expires_at_ms: int
    key: str = ""  # the stored hash: names the session without being its secret


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class SessionService:
    def __init__(
        self,
        store: ConsoleStore,
        auth: AuthService,
        admin_key: AdminKey,
        guard: LoginGuard,
        *,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._auth = auth
        self._admin_key = admin_key
        self.guard = guard
        self.ttl_ms = ttl_s * 1000
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def login_admin_key(
        self, key: str, address: str | None, scope: MutableMapping[str, Any] | None = None
    ) -> tuple[str, ConsoleSession]:
        with self.guard.attempt(_ADMIN_KEY_ACCOUNT, address, scope):
            try:
                self._admin_key.check(key)
            except GatewayError as exc:
                raise InvalidCredentials("invalid admin key") from exc
        return await self._open("admin-key")

    async def login_password(
        self,
        email: str,
        password: str,
        address: str | None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> tuple[str, ConsoleSession]:
        with self.guard.attempt(email, address, scope):
            user = await self._auth.authenticate(email, password)
            if not user.is_admin:
                # Same answer as a wrong password: the console says nothing of who
                # has an account.
                raise InvalidCredentials()
        return await self._open(f"user:{user.id}")

    async def _open(self, actor: str) -> tuple[str, ConsoleSession]:
        session_id = secrets.token_urlsafe(32)
        now = self._now_ms()
        row = SessionRow(hash_session_id(session_id), actor, now, now + self.ttl_ms, now)
        with store_errors():
            await self._store.create_session(row)
        return session_id, ConsoleSession(actor, now, row.expires_at, row.id_hash)

    async def resolve(self, session_id: str | None) -> ConsoleSession | None:
        """The live session this id opens, or None (unknown, expired, malformed)."""
        if not session_id or len(session_id) > 128:
            return None
        wanted = hash_session_id(session_id)
        with store_errors():
            row = await self._store.get_session(wanted)
        if row is None or not hmac.compare_digest(row.id_hash, wanted):
            return None
        if row.expires_at <= self._now_ms():
            return None
        return ConsoleSession(row.actor, row.created_at, row.expires_at, row.id_hash)

    async def logout(self, session_id: str | None) -> str:
        """End the session; its key ("" when there was none)."""
        if not session_id or len(session_id) > 128:
            return ""
        key = hash_session_id(session_id)
        with store_errors():
            found = await self._store.delete_session(key, self._now_ms())
        return key if found else ""

    async def purge_expired(self) -> int:
        with store_errors():
            return await self._store.purge_sessions(self._now_ms())
