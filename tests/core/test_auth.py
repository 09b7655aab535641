"""Auth core against a real SQLite store: register/login/verify, the error messages
of document 001, token attacks, secrets at rest, the master key file, uuid7."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import jwt
import pytest
from argon2 import PasswordHasher, profiles

from smsgateway.core import errors
from smsgateway.core.auth import AuthService, Principal
from smsgateway.core.ids import uuid7, uuid7_ms
from smsgateway.core.secrets import (
    ENV_VAR,
    KEY_FILE_NAME,
    Secrets,
    SecretsError,
    constant_time_equals,
    generate_app_secret,
    load_master_key,
)
from smsgateway.store import SqliteStore

PASSWORD = "correct horse"


class CountingHasher(PasswordHasher):
    """Cheap parameters for speed; counts verifications to prove equal work."""

    def __init__(self) -> None:
        p = profiles.CHEAPEST
        super().__init__(
            time_cost=p.time_cost,
            memory_cost=p.memory_cost,
            parallelism=p.parallelism,
            hash_len=p.hash_len,
            salt_len=p.salt_len,
        )
        self.verifies = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifies += 1
        return super().verify(hash, password)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "gw.db")
    yield s
    await s.close()


@pytest.fixture
def secrets(tmp_path: Path) -> Secrets:
    return Secrets.load(tmp_path, env={})


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def auth(store: SqliteStore, secrets: Secrets, hasher: CountingHasher) -> AuthService:
    return AuthService(store, secrets, 3600, hasher=hasher)


async def test_register_login_verify_round_trip(auth: AuthService) -> None:
    reg = await auth.register("  Ann@Example.com ", PASSWORD, app_name="my-app")
    assert (reg.user_id, reg.app_id) == (1, 1)
    assert len(reg.app_secret) >= 43

    token = await auth.login("ann@example.com", PASSWORD, reg.app_id)
    claims = jwt.decode(token, reg.app_secret, algorithms=["HS256"])
    assert claims["uid"] == reg.user_id and claims["app_id"] == reg.app_id
    assert claims["email"] == "ann@example.com"
    assert claims["exp"] - claims["iat"] == 3600

    principal = await auth.verify_token(f"Bearer {token}", str(reg.app_id))
    assert principal == Principal(reg.user_id, "ann@example.com", reg.app_id, False)
    # Second time from the cache; scheme is case-insensitive.
    assert await auth.verify_token(f"bearer {token}", f" {reg.app_id} ") == principal


async def test_register_validation(auth: AuthService) -> None:
    for bad in ["", "no-at", "a@b", "a@@b.com", "a b@c.com", "a@-x.com", ".a@b.com", "a@b.c"]:
        with pytest.raises(errors.InvalidRequest, match="email"):
            await auth.register(bad, PASSWORD)
    with pytest.raises(errors.InvalidRequest, match="8 to 256"):
        await auth.register("a@example.com", "short")
    with pytest.raises(errors.InvalidRequest, match="8 to 256"):
        await auth.register("a@example.com", "x" * 257)
    with pytest.raises(errors.InvalidRequest, match="app_secret"):
        await auth.register("a@example.com", PASSWORD, app_secret="my-secret")
    reg = await auth.register("a@example.com", "x" * 8, app_secret="k" * 32)
    assert reg.app_secret == "k" * 32


async def test_duplicate_email(auth: AuthService) -> None:
    await auth.register("dup@example.com", PASSWORD)
    with pytest.raises(errors.DuplicateUser) as info:
        await auth.register("DUP@example.com", PASSWORD + "!")
    assert info.value.http_status == 400
    assert info.value.message == "user already exists"


async def test_wrong_password_and_unknown_email_look_the_same(
    auth: AuthService, hasher: CountingHasher
) -> None:
    reg = await auth.register("ann@example.com", PASSWORD)
    other = await auth.register("bob@example.com", PASSWORD)
    failures: list[errors.GatewayError] = []
    for email, password, app_id in [
        ("ann@example.com", "wrong password", reg.app_id),
        ("nobody@example.com", PASSWORD, reg.app_id),
        ("not an email", PASSWORD, reg.app_id),
        ("ann@example.com", PASSWORD, other.app_id),  # someone else's app
        ("ann@example.com", PASSWORD, 999),
        ("ann@example.com", PASSWORD, 2**70),
    ]:
        before = hasher.verifies
        with pytest.raises(errors.InvalidCredentials) as info:
            await auth.login(email, password, app_id)
        # Same work on every path: exactly one argon2 verification.
        assert hasher.verifies == before + 1
        failures.append(info.value)
    assert {(type(f), f.message, f.http_status) for f in failures} == {
        (errors.InvalidCredentials, "invalid email or password", 401)
    }


async def test_header_errors_carry_document_messages(auth: AuthService) -> None:
    reg = await auth.register("ann@example.com", PASSWORD)
    token = await auth.login("ann@example.com", PASSWORD, reg.app_id)
    cases: list[tuple[str | None, str | None, type[errors.GatewayError], str, int]] = [
        (None, "1", errors.AuthorizationRequired, "authorization header required", 401),
        ("  ", "1", errors.AuthorizationRequired, "authorization header required", 401),
        (f"Bearer {token}", None, errors.AppIdRequired, "X-App-ID header required", 401),
        (f"Bearer {token}", "", errors.AppIdRequired, "X-App-ID header required", 401),
        (f"Bearer {token}", "abc", errors.InvalidAppId, "invalid X-App-ID", 400),
        (f"Bearer {token}", "-1", errors.InvalidAppId, "invalid X-App-ID", 400),
        (f"Bearer {token}", "1_0", errors.InvalidAppId, "invalid X-App-ID", 400),
        (f"Bearer {token}", "\uff11", errors.InvalidAppId, "invalid X-App-ID", 400),
        (f"Bearer {token}", "999", errors.UnknownApp, "unknown app_id", 401),
        ("Bearer garbage", "999", errors.UnknownApp, "unknown app_id", 401),
        ("Bearer garbage", "1", errors.InvalidToken, "invalid or expired token", 401),
        (f"Basic {token}", "1", errors.InvalidToken, "invalid or expired token", 401),
        (token, "1", errors.InvalidToken, "invalid or expired token", 401),
        ("Bearer " + "a" * 5000, "1", errors.InvalidToken, "invalid or expired token", 401),
    ]
    for authz, app, kind, message, status in cases:
        with pytest.raises(kind) as info:
            await auth.verify_token(authz, app)
        assert info.value.message == message
        assert info.value.http_status == status
    # A cached good token does not make a non-Bearer header acceptable.
    await auth.verify_token(f"Bearer {token}", "1")
    with pytest.raises(errors.InvalidToken):
        await auth.verify_token(f"Basic {token}", "1")


async def test_token_for_another_app_is_refused(auth: AuthService) -> None:
    a = await auth.register("a@example.com", PASSWORD)
    b = await auth.register("b@example.com", PASSWORD)
    token_a = await auth.login("a@example.com", PASSWORD, a.app_id)
    with pytest.raises(errors.InvalidToken):
        await auth.verify_token(f"Bearer {token_a}", str(b.app_id))
    # Even re-signed with B's secret, a token naming app A is not valid for B.
    claims = jwt.decode(token_a, a.app_secret, algorithms=["HS256"])
    forged = jwt.encode(claims, b.app_secret, algorithm="HS256")
    with pytest.raises(errors.InvalidToken):
        await auth.verify_token(f"Bearer {forged}", str(b.app_id))
    # And a token for B naming B but B's user is someone else: uid must own the app.
    claims["app_id"] = b.app_id
    forged = jwt.encode(claims, b.app_secret, algorithm="HS256")
    with pytest.raises(errors.InvalidToken):
        await auth.verify_token(f"Bearer {forged}", str(b.app_id))


@pytest.mark.filterwarnings("ignore:The HMAC key")
async def test_alg_none_other_algs_and_tampering_refused(auth: AuthService) -> None:
    reg = await auth.register("a@example.com", PASSWORD)
    token = await auth.login("a@example.com", PASSWORD, reg.app_id)
    claims = jwt.decode(token, reg.app_secret, algorithms=["HS256"])
    app = str(reg.app_id)

    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    hs512 = jwt.encode(claims, reg.app_secret, algorithm="HS512")
    no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, reg.app_secret)
    bool_uid = jwt.encode({**claims, "uid": True}, reg.app_secret, algorithm="HS256")
    header, payload, sig = token.split(".")
    raised = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b'"uid":1', b'"uid":2')
    ).rstrip(b"=")
    tampered_payload = f"{header}.{raised.decode()}.{sig}"
    flipped_sig = f"{header}.{payload}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"

    for bad in [unsigned, hs512, no_exp, bool_uid, tampered_payload, flipped_sig]:
        with pytest.raises(errors.InvalidToken):
            await auth.verify_token(f"Bearer {bad}", app)
    assert (await auth.verify_token(f"Bearer {token}", app)).user_id == reg.user_id


async def test_expired_tokens_refused(store: SqliteStore, secrets: Secrets) -> None:
    hasher = CountingHasher()
    auth = AuthService(store, secrets, 3600, hasher=hasher)
    reg = await auth.register("a@example.com", PASSWORD)
    past = AuthService(store, secrets, 3600, hasher=hasher, clock=lambda: time.time() - 7200)
    old = await past.login("a@example.com", PASSWORD, reg.app_id)
    with pytest.raises(errors.InvalidToken):
        await auth.verify_token(f"Bearer {old}", str(reg.app_id))

    # A cached token stops working at its exp, too.
    short = AuthService(store, secrets, 2, hasher=hasher)
    token = await short.login("a@example.com", PASSWORD, reg.app_id)
    exp = jwt.decode(token, reg.app_secret, algorithms=["HS256"])["exp"]
    await auth.verify_token(f"Bearer {token}", str(reg.app_id))
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(errors.InvalidToken):
        await auth.verify_token(f"Bearer {token}", str(reg.app_id))


async def test_admin_delete_and_toggle(auth: AuthService) -> None:
    admin = await auth.register("root@example.com", PASSWORD, is_admin=True)
    user = await auth.register("u@example.com", PASSWORD)
    assert await auth.is_admin(admin.user_id) is True
    assert await auth.is_admin(user.user_id) is False

    with pytest.raises(errors.UserIsAdmin) as info:
        await auth.delete_user(admin.user_id)
    assert (info.value.http_status, info.value.message) == (400, "user is admin")
    with pytest.raises(errors.UserNotFound) as nf:
        await auth.delete_user(12345)
    assert nf.value.http_status == 404
    with pytest.raises(errors.UserNotFound):
        await auth.is_admin(12345)
    with pytest.raises(errors.InvalidRequest):
        await auth.is_admin(0)
    with pytest.raises(errors.InvalidRequest):
        await auth.delete_user(2**70)

    token = await auth.login("u@example.com", PASSWORD, user.app_id)
    authz, app = f"Bearer {token}", str(user.app_id)
    assert (await auth.verify_token(authz, app)).is_admin is False
    assert await auth.toggle_admin(user.user_id) is True
    # The cached principal was dropped: the flag shows at once.
    assert (await auth.verify_token(authz, app)).is_admin is True
    assert await auth.toggle_admin(user.user_id) is False

    assert await auth.delete_user(user.user_id, actor="admin-key") is True
    with pytest.raises(errors.Unauthorized):
        await auth.verify_token(authz, app)
    with pytest.raises(errors.InvalidCredentials):
        await auth.login("u@example.com", PASSWORD, user.app_id)
    users = await auth.list_users()
    assert [u.email for u in users] == ["root@example.com"]


async def test_token_cache_is_bounded(store: SqliteStore, secrets: Secrets) -> None:
    auth = AuthService(store, secrets, 3600, hasher=CountingHasher(), cache_size=3)
    reg = await auth.register("a@example.com", PASSWORD)
    tokens = []
    for i in range(6):
        # Distinct iat/exp make distinct tokens.
        clock_auth = AuthService(store, secrets, 3600 + i, hasher=CountingHasher(), clock=time.time)
        tokens.append(await clock_auth.login("a@example.com", PASSWORD, reg.app_id))
    for t in tokens:
        await auth.verify_token(f"Bearer {t}", str(reg.app_id))
    assert len(auth._tokens) == 3
    assert sum(len(v) for v in auth._tokens_by_user.values()) == 3


async def test_rehash_on_login_when_parameters_change(store: SqliteStore, secrets: Secrets) -> None:
    weak = AuthService(store, secrets, hasher=CountingHasher())
    reg = await weak.register("a@example.com", PASSWORD)
    before = await store.get_user(reg.user_id)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    auth = AuthService(store, secrets, hasher=stronger)
    await auth.login("a@example.com", PASSWORD, reg.app_id)
    after = await store.get_user(reg.user_id)
    assert before is not None and after is not None
    assert after.password_hash != before.password_hash
    assert not stronger.check_needs_rehash(after.password_hash)
    await auth.login("a@example.com", PASSWORD, reg.app_id)


async def test_secrets_not_stored_in_clear(tmp_path: Path, secrets: Secrets) -> None:
    path = tmp_path / "leak.db"
    store = await SqliteStore.open(path)
    auth = AuthService(store, secrets, hasher=CountingHasher())
    reg = await auth.register("a@example.com", PASSWORD)

    def on_disk() -> bytes:
        data = b""
        for suffix in ("", "-wal"):
            f = path.with_name(path.name + suffix)
            if f.exists():
                data += f.read_bytes()
        return data

    data = on_disk()
    assert b"a@example.com" in data  # we are looking at the right bytes
    assert reg.app_secret.encode() not in data
    assert PASSWORD.encode() not in data
    await store.close()
    data = on_disk()
    assert reg.app_secret.encode() not in data and PASSWORD.encode() not in data

    # What is stored decrypts back under the key, and not under another.
    store = await SqliteStore.open(path)
    try:
        app = await store.get_app(reg.app_id)
        assert app is not None
        assert app.secret_enc[:1] == b"\x01"
        assert secrets.decrypt_secret(app.secret_enc) == reg.app_secret
        with pytest.raises(SecretsError):
            Secrets(os.urandom(32)).decrypt_secret(app.secret_enc)
        user = await store.get_user(reg.user_id)
        assert user is not None and user.password_hash.startswith("$argon2id$")
    finally:
        await store.close()


def test_master_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_master_key(data_dir, env={})
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32
    assert load_master_key(data_dir, env={}) == key

    path.chmod(0o640)
    with pytest.raises(SecretsError, match="chmod 600"):
        load_master_key(data_dir, env={})
    path.chmod(0o604)
    with pytest.raises(SecretsError):
        load_master_key(data_dir, env={})


def test_master_key_from_environment(tmp_path: Path) -> None:
    raw = os.urandom(32)
    text = base64.urlsafe_b64encode(raw).decode()
    assert load_master_key(tmp_path, env={ENV_VAR: text}) == raw
    assert load_master_key(tmp_path, env={ENV_VAR: text.rstrip("=")}) == raw
    assert not (tmp_path / KEY_FILE_NAME).exists()
    with pytest.raises(SecretsError, match="32 bytes"):
        load_master_key(tmp_path, env={ENV_VAR: base64.urlsafe_b64encode(b"short").decode()})
    with pytest.raises(SecretsError, match="base64"):
        load_master_key(tmp_path, env={ENV_VAR: "not base64 at all!"})


def test_encryption_and_keyed_hashes() -> None:
    key = os.urandom(32)
    s = Secrets(key)
    a, b = s.encrypt_secret("hello"), s.encrypt_secret("hello")
    assert a != b  # random nonce
    assert s.decrypt_secret(a) == s.decrypt_secret(b) == "hello"
    with pytest.raises(SecretsError):
        s.decrypt_secret(b"\x02" + a[1:])
    with pytest.raises(SecretsError):
        s.decrypt_secret(a[:-1] + bytes([a[-1] ^ 1]))

    same = Secrets(key)
    other = Secrets(os.urandom(32))
    assert s.hash_api_key("k1") == same.hash_api_key("k1") != other.hash_api_key("k1")
    assert s.hash_api_key("k1") != s.hash_api_key("k2")
    assert s.verify_api_key("k1", s.hash_api_key("k1"))
    assert not s.verify_api_key("k2", s.hash_api_key("k1"))
    # OTP hashes are bound to their scope and use their own key.
    assert s.keyed_hash_otp("p1:+100", "123456") != s.keyed_hash_otp("p2:+100", "123456")
    assert s.keyed_hash_otp("x", "123456") != s.hash_api_key("x\x00123456")
    assert s.verify_otp("p1", "123456", s.keyed_hash_otp("p1", "123456"))
    assert constant_time_equals("abc", b"abc") and not constant_time_equals("abc", "abd")
    assert generate_app_secret() != generate_app_secret()


def test_uuid7_is_time_ordered_and_well_formed() -> None:
    before = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for value in ids[:100] + ids[-100:]:
        u = uuid.UUID(value)
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= uuid7_ms(value) <= after + 1


def test_error_catalogue_is_complete() -> None:
    for cls in errors.catalogue():
        err = cls()
        assert err.code and err.message and 400 <= err.http_status <= 599
        assert err.grpc_status.isupper()
    assert errors.IpNotAllowed().message == "IP not allowed"
    assert errors.IpNotAllowed.http_status == 403
    assert errors.RateLimited.http_status == 429
    assert errors.Unavailable.http_status == 503
    assert errors.InvalidRequest("x").message == "x"


async def test_wrong_master_key_is_an_internal_error(store: SqliteStore, secrets: Secrets) -> None:
    auth = AuthService(store, secrets, hasher=CountingHasher())
    reg = await auth.register("a@example.com", PASSWORD)
    token = await auth.login("a@example.com", PASSWORD, reg.app_id)
    wrong = AuthService(store, Secrets(os.urandom(32)), hasher=CountingHasher())
    with pytest.raises(errors.Internal) as info:
        await wrong.verify_token(f"Bearer {token}", str(reg.app_id))
    assert info.value.http_status == 500 and info.value.message == "internal error"


async def test_hasher_parameters_from_settings(store: SqliteStore, secrets: Secrets) -> None:
    auth = AuthService(store, secrets, time_cost=1, memory_cost=32)
    reg = await auth.register("a@example.com", PASSWORD)
    user = await store.get_user(reg.user_id)
    assert user is not None and "m=32,t=1," in user.password_hash
    token = await auth.login("a@example.com", PASSWORD, reg.app_id)
    principal = await auth.verify_request(f"Bearer {token}", str(reg.app_id))
    assert principal.user_id == reg.user_id
    with pytest.raises(ValueError):
        AuthService(store, secrets, hasher=CountingHasher(), time_cost=1)
