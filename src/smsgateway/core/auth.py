"""Users, apps and tokens.

Passwords are argon2id hashes (argon2-cffi), hashed and verified in a worker thread
because each costs ~0.1 s of CPU; a semaphore keeps a login burst from taking every
thread of the default executor. Login answers unknown email, wrong password and a
foreign app_id with the same `InvalidCredentials` after the same amount of work: an
unknown email is verified against a dummy hash.

Tokens are HS256 JWTs signed with the app's secret (decrypted from the store with
the master key, then kept in memory), claims `uid`, `email`, `app_id`, `iat`, `exp`.
Only HS256 is accepted, `exp` is required, and the token's `app_id` must equal the
X-App-ID header. Verified tokens are cached (token, app id) -> Principal until they
expire, in a bounded LRU: verifying costs ~30 us, a cache hit ~1 us. Deleting a
user or toggling admin drops that user's cached entries on this node; other nodes
sharing the database keep theirs until the token expires (bounded by the TTL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..store.errors import DuplicateError
from ..store.models import AppRow, DeleteResult, UserRow, UserWithApp
from .errors import (
    AppIdRequired,
    AuthorizationRequired,
    DuplicateUser,
    Internal,
    InvalidAppId,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    UnknownApp,
    UserIsAdmin,
    UserNotFound,
    store_errors,
)
from .secrets import Secrets, SecretsError, generate_app_secret

log = logging.getLogger(__name__)

PASSWORD_MIN = 8
PASSWORD_MAX = 256
APP_NAME_MAX = 100
DEFAULT_APP_NAME = "default"
# HS256 keys shorter than the hash output weaken every token of the app; PyJWT
# warns below 32 bytes, we refuse.
APP_SECRET_MIN_BYTES = 32
APP_SECRET_MAX_BYTES = 256
TOKEN_MAX_CHARS = 4096
_APP_ID_MAX_DIGITS = 18
# SQLite (and PostgreSQL BIGINT) ids are signed 64-bit; larger ints cannot name a row.
_MAX_ID = 2**63 - 1

_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


class AuthStore(Protocol):
    """What AuthService needs from a store (SQLite now, PostgreSQL later)."""

    async def create_user_with_app(
        self,
        email: str,
        password_hash: str,
        is_admin: bool,
        app_name: str,
        secret_enc: bytes,
        *,
        at: int | None = None,
    ) -> tuple[int, int]: ...

    async def get_user_by_email(self, email: str) -> UserRow | None: ...

    async def get_user(self, user_id: int) -> UserRow | None: ...

    async def get_app(self, app_id: int) -> AppRow | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    async def delete_user(
        self, user_id: int, *, unless_admin: bool = False, actor: str | None = None
    ) -> DeleteResult: ...

    async def toggle_admin(self, user_id: int, *, actor: str | None = None) -> bool | None: ...

    async def list_users_with_apps(self) -> list[UserWithApp]: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: int
    email: str
    app_id: int
    is_admin: bool


@dataclass(frozen=True, slots=True)
class Registration:
    user_id: int
    app_id: int
    app_secret: str


@dataclass(frozen=True, slots=True)
class _App:
    user_id: int
    secret: str


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    exp: float


def normalize_email(email: str) -> str:
    return email.strip().lower()


def valid_email(email: str) -> bool:
    """A real, if simple, syntax check: dot-atom local part, dotted DNS domain."""
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        return False
    local = email.rsplit("@", 1)[0]
    return len(local) <= 64


class AuthService:
    def __init__(
        self,
        store: AuthStore,
        secrets: Secrets,
        token_ttl_s: int = 3600,
        *,
        hasher: PasswordHasher | None = None,
        time_cost: int | None = None,
        memory_cost: int | None = None,
        cache_size: int = 10_000,
        max_concurrent_hashes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`hasher` defaults to argon2-cffi's production parameters (RFC 9106 low
        memory profile); `time_cost` / `memory_cost` (KiB) override those two, for
        settings. Tests pass a cheap `hasher`. `clock` is for issuing tokens (tests
        issue expired ones)."""
        if token_ttl_s <= 0:
            raise ValueError("token_ttl_s must be positive")
        if hasher is not None and (time_cost or memory_cost):
            raise ValueError("pass either hasher or time_cost/memory_cost")
        if hasher is None:
            base = PasswordHasher()
            hasher = PasswordHasher(
                time_cost=time_cost or base.time_cost,
                memory_cost=memory_cost or base.memory_cost,
                parallelism=base.parallelism,
                hash_len=base.hash_len,
                salt_len=base.salt_len,
            )
        self._store = store
        self._secrets = secrets
        self._ttl = token_ttl_s
        self._hasher = hasher
        self._cache_size = cache_size
        self._clock = clock
        self._hash_slots = asyncio.Semaphore(max_concurrent_hashes or os.cpu_count() or 2)
        self._tokens: OrderedDict[tuple[str, int], _Cached] = OrderedDict()
        self._tokens_by_user: dict[int, set[tuple[str, int]]] = {}
        self._apps: dict[int, _App] = {}
        # Made once, with the same parameters as real hashes, so verifying an
        # unknown email costs what verifying a real one costs.
        self._dummy_hash = self._hasher.hash(generate_app_secret())

    # -- passwords --------------------------------------------------------------

    async def _hash(self, password: str) -> str:
        async with self._hash_slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._hash_slots:
            return await asyncio.to_thread(self._verify_sync, password_hash, password)

    # -- apps -------------------------------------------------------------------

    async def _app(self, app_id: int) -> _App | None:
        cached = self._apps.get(app_id)
        if cached is not None:
            return cached
        with store_errors():
            row = await self._store.get_app(app_id)
        if row is None:
            return None
        try:
            secret = self._secrets.decrypt_secret(row.secret_enc)
        except SecretsError as exc:
            # Operator problem (wrong master key), not the client's: log it loudly,
            # answer 500 without detail.
            log.error("app %s: %s", app_id, exc)
            raise Internal() from exc
        entry = _App(row.user_id, secret)
        self._apps[app_id] = entry
        return entry

    # -- public API -------------------------------------------------------------

    async def register(
        self,
        email: str,
        password: str,
        app_name: str | None = None,
        is_admin: bool = False,
        app_secret: str | None = None,
    ) -> Registration:
        """Create a user with a first app. `app_secret` None: a random one is made."""
        email = normalize_email(email)
        if not valid_email(email):
            raise InvalidRequest("invalid email address")
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
            raise InvalidRequest(
                f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
            )
        name = (app_name or "").strip() or DEFAULT_APP_NAME
        if len(name) > APP_NAME_MAX:
            raise InvalidRequest(f"app_name must be at most {APP_NAME_MAX} characters long")
        if app_secret is None:
            secret = generate_app_secret()
        else:
            secret = app_secret
            if not APP_SECRET_MIN_BYTES <= len(secret.encode("utf-8")) <= APP_SECRET_MAX_BYTES:
                raise InvalidRequest(
                    f"app_secret must be {APP_SECRET_MIN_BYTES} to {APP_SECRET_MAX_BYTES}"
                    " bytes long"
                )
        password_hash = await self._hash(password)
        secret_enc = self._secrets.encrypt_secret(secret)
        with store_errors():
            try:
                user_id, app_id = await self._store.create_user_with_app(
                    email, password_hash, is_admin, name, secret_enc
                )
            except DuplicateError as exc:
                raise DuplicateUser() from exc
        self._apps[app_id] = _App(user_id, secret)
        return Registration(user_id, app_id, secret)

    async def login(self, email: str, password: str, app_id: int) -> str:
        """A token for (user, app); every failure is the same InvalidCredentials."""
        user = await self.authenticate(email, password)
        app = await self._app(app_id) if 0 < app_id <= _MAX_ID else None
        if app is None or app.user_id != user.id:
            raise InvalidCredentials()
        if self._hasher.check_needs_rehash(user.password_hash):
            await self._rehash(user.id, password)
        now = int(self._clock())
        claims: dict[str, Any] = {
            "uid": user.id,
            "email": user.email,
            "app_id": app_id,
            "iat": now,
            "exp": now + self._ttl,
        }
        return jwt.encode(claims, app.secret, algorithm="HS256")

    async def authenticate(self, email: str, password: str) -> UserRow:
        """The user whose email and password these are (the console's sign-in); every
        failure is the same InvalidCredentials, at the same argon2 cost."""
        email = normalize_email(email)
        if len(password) > PASSWORD_MAX:
            # Refused before hashing (which would cost more for a huge input); the
            # limit is public, so this says nothing about the account.
            raise InvalidCredentials()
        user = None
        if valid_email(email):
            with store_errors():
                user = await self._store.get_user_by_email(email)
        if user is None:
            await self._verify(self._dummy_hash, password)
            raise InvalidCredentials()
        if not await self._verify(user.password_hash, password):
            raise InvalidCredentials()
        return user

    async def _rehash(self, user_id: int, password: str) -> None:
        # Parameters were raised since this hash was made; upgrade it while we
        # hold the plaintext. A failure here must not fail the login.
        try:
            new_hash = await self._hash(password)
            await self._store.set_password_hash(user_id, new_hash)
        except Exception:
            log.warning("password rehash failed for user %s", user_id, exc_info=True)

    async def verify_token(self, authorization: str | None, app_id_header: str | None) -> Principal:
        """Check `Authorization: Bearer <jwt>` against `X-App-ID`.

        Checks run in the order of document 001's table, so each failure carries
        its exact message: header missing, X-App-ID missing, X-App-ID not numeric
        (400), unknown app, then any token problem ("invalid or expired token").
        """
        if authorization is None or not authorization.strip():
            raise AuthorizationRequired()
        if app_id_header is None or not app_id_header.strip():
            raise AppIdRequired()
        raw_app = app_id_header.strip()
        # isascii: int() would accept "١٢" or "1_0"; the header is plain digits.
        if not (raw_app.isascii() and raw_app.isdigit()) or len(raw_app) > _APP_ID_MAX_DIGITS:
            raise InvalidAppId()
        app_id = int(raw_app)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        bearer = scheme.lower() == "bearer" and 0 < len(token) <= TOKEN_MAX_CHARS
        key = (token, app_id)
        if bearer:
            hit = self._tokens.get(key)
            if hit is not None:
                if hit.exp > time.time():
                    self._tokens.move_to_end(key)
                    return hit.principal
                self._forget(key)
        app = await self._app(app_id)
        if app is None:
            raise UnknownApp()
        if not bearer:
            raise InvalidToken()
        try:
            claims = jwt.decode(
                token,
                app.secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat", "uid", "app_id"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        uid = claims.get("uid")
        # type() not isinstance(): True is an int, and must not pass as user 1.
        if type(uid) is not int or type(claims.get("app_id")) is not int:
            raise InvalidToken()
        if claims["app_id"] != app_id or app.user_id != uid:
            raise InvalidToken()
        with store_errors():
            user = await self._store.get_user(uid)
        if user is None:
            raise InvalidToken()
        principal = Principal(user.id, user.email, app_id, user.is_admin)
        self._remember(key, principal, float(claims["exp"]))
        return principal

    async def verify_request(
        self, authorization: str | None, app_id_header: str | None
    ) -> Principal:
        """Same as `verify_token` (the name the REST face calls)."""
        return await self.verify_token(authorization, app_id_header)

    def _remember(self, key: tuple[str, int], principal: Principal, exp: float) -> None:
        self._tokens[key] = _Cached(principal, exp)
        self._tokens.move_to_end(key)
        self._tokens_by_user.setdefault(principal.user_id, set()).add(key)
        while len(self._tokens) > self._cache_size:
            old_key, old = self._tokens.popitem(last=False)
            self._unindex(old_key, old.principal.user_id)

    def _forget(self, key: tuple[str, int]) -> None:
        old = self._tokens.pop(key, None)
        if old is not None:
            self._unindex(key, old.principal.user_id)

    def _unindex(self, key: tuple[str, int], user_id: int) -> None:
        keys = self._tokens_by_user.get(user_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._tokens_by_user[user_id]

    def invalidate_user(self, user_id: int) -> None:
        """Drop cached tokens and app secrets of a user (after delete or toggle)."""
        for key in self._tokens_by_user.pop(user_id, set()):
            self._tokens.pop(key, None)
        for app_id in [a for a, entry in self._apps.items() if entry.user_id == user_id]:
            del self._apps[app_id]

    @staticmethod
    def _check_id(user_id: int) -> None:
        if not 0 < user_id <= _MAX_ID:
            raise InvalidRequest("user_id must be a positive integer")

    async def is_admin(self, user_id: int) -> bool:
        self._check_id(user_id)
        with store_errors():
            user = await self._store.get_user(user_id)
        if user is None:
            raise UserNotFound()
        return user.is_admin

    async def delete_user(self, user_id: int, actor: str | None = None) -> bool:
        """Delete a non-admin user. Admin: UserIsAdmin (400); unknown: UserNotFound."""
        self._check_id(user_id)
        with store_errors():
            result = await self._store.delete_user(user_id, unless_admin=True, actor=actor)
        if result is DeleteResult.NOT_FOUND:
            raise UserNotFound()
        if result is DeleteResult.IS_ADMIN:
            raise UserIsAdmin()
        self.invalidate_user(user_id)
        return True

    async def toggle_admin(self, user_id: int, actor: str | None = None) -> bool:
        """Flip the admin flag; the new value."""
        self._check_id(user_id)
        with store_errors():
            flag = await self._store.toggle_admin(user_id, actor=actor)
        if flag is None:
            raise UserNotFound()
        self.invalidate_user(user_id)
        return flag

    async def list_users(self) -> list[UserWithApp]:
        with store_errors():
            return await self._store.list_users_with_apps()


def password_hasher(time_cost: int, memory_cost: int) -> PasswordHasher | None:
    """argon2 parameters from settings: None (the library's defaults) unless the settings
    lower them, which only tests do. The server and the CLI both call this, so a user
    made from the shell is never rehashed at first login."""
    if not time_cost and not memory_cost:
        return None
    return PasswordHasher(time_cost=time_cost or 3, memory_cost=memory_cost or 65536, parallelism=1)
