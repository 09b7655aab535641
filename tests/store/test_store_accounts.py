"""Users and apps, link state with audit, idempotency keys and inbound messages,
against a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from smsgateway.core.ids import uuid7
from smsgateway.store import (
    DeleteResult,
    DuplicateError,
    InboundRow,
    MessageRow,
    PartRow,
    SqliteStore,
    StoreError,
    now_ms,
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "gw.db")
    yield s
    await s.close()


async def test_users_and_apps(store: SqliteStore) -> None:
    uid, app_id = await store.create_user_with_app("Ann@Example.COM", "h1", False, "a", b"s")
    assert (uid, app_id) == (1, 1)
    user = await store.get_user_by_email("ann@example.com")
    assert user is not None and user.email == "ann@example.com" and user.is_admin is False
    assert await store.get_user_by_email("ANN@example.com ") == user
    assert await store.get_user(uid) == user

    with pytest.raises(DuplicateError):
        await store.create_user_with_app("ann@EXAMPLE.com", "h2", False, "b", b"s")
    # The failed unit left no app behind.
    assert await store.count_apps() == 1 and await store.count_users() == 1

    app2 = await store.create_app(uid, "second", b"s2")
    app = await store.get_app(app2)
    assert app is not None and (app.user_id, app.name, app.secret_enc) == (uid, "second", b"s2")
    assert [a.id for a in await store.list_apps(uid)] == [app_id, app2]
    with pytest.raises(StoreError):
        await store.create_app(999, "orphan", b"s")

    uid2, app3 = await store.create_user_with_app("bob@example.com", "h", True, "b", b"s")
    rows = await store.list_users_with_apps()
    assert [(r.user_id, r.app_id) for r in rows] == [(uid, app_id), (uid, app2), (uid2, app3)]
    assert rows[2].is_admin is True

    await store.set_password_hash(uid, "h9")
    assert (await store.get_user(uid)) is not None
    assert (await store.get_user(uid)).password_hash == "h9"  # type: ignore[union-attr]


async def test_delete_and_admin_flags(store: SqliteStore) -> None:
    uid, app_id = await store.create_user_with_app("a@example.com", "h", False, "a", b"s")
    assert await store.toggle_admin(uid, actor="admin-key") is True
    assert await store.delete_user(uid, unless_admin=True) is DeleteResult.IS_ADMIN
    assert await store.set_admin(uid, False) is True
    assert await store.toggle_admin(999) is None
    assert await store.set_admin(999, True) is False

    # Messages outlive their user: history and statistics stay.
    ts = now_ms()
    mid = uuid7()
    await store.insert_message(
        MessageRow(
            mid,
            app_id,
            1,
            None,
            "a",
            "b",
            "t",
            "gsm7",
            "single",
            1,
            "queued",
            "",
            None,
            0,
            None,
            ts,
            ts,
        ),
        [PartRow(mid, 1, None, None, "queued", None, b"t", 0, 0, None, None, None, ts)],
    )
    assert await store.delete_user(uid, unless_admin=True, actor="admin-key") is (
        DeleteResult.DELETED
    )
    assert await store.get_user(uid) is None
    assert await store.get_app(app_id) is None  # cascaded
    assert await store.get_message(app_id, mid) is not None
    assert await store.delete_user(uid) is DeleteResult.NOT_FOUND

    # Ids are never reused, so old tokens or log lines cannot name a newcomer.
    uid2, app2 = await store.create_user_with_app("b@example.com", "h", False, "b", b"s")
    assert uid2 > uid and app2 > app_id

    actions = [a.action for a in await store.list_audit()]
    assert actions == ["user.delete", "user.set_admin"]


async def test_link_state_survives_restart_with_audit(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    assert await store.get_link_states() == {}
    await store.set_link_state(4, False, "maintenance", "alice")
    row = await store.set_link_state(5, True, "", "bob")
    assert row.enabled is True
    await store.close()

    store = await SqliteStore.open(path)
    try:
        states = await store.get_link_states()
        assert set(states) == {4, 5}
        assert states[4].enabled is False and states[4].reason == "maintenance"
        assert states[4].updated_by == "alice"
        await store.set_link_state(4, True, "back", "alice")
        assert (await store.get_link_states())[4].enabled is True
        audit = await store.list_audit()
        assert [(a.action, a.target, a.actor) for a in audit] == [
            ("link.enable", "link:4", "alice"),
            ("link.enable", "link:5", "bob"),
            ("link.disable", "link:4", "alice"),
        ]
        assert audit[2].detail == "maintenance"
    finally:
        await store.close()


async def test_idempotency_lifecycle(store: SqliteStore) -> None:
    t0 = 1_000_000
    assert await store.idem_begin("app:1", "k", "h1", 60_000, at=t0) is None
    held = await store.idem_begin("app:1", "k", "h1", 60_000, at=t0 + 1)
    assert held is not None and held.in_progress and held.response is None
    assert held.request_hash == "h1" and held.expires_at == t0 + 60_000

    await store.idem_finish("app:1", "k", b'{"ok":true}')
    done = await store.idem_begin("app:1", "k", "h2", 60_000, at=t0 + 2)
    assert done is not None and not done.in_progress and done.response == b'{"ok":true}'
    # Abort only releases keys still in progress; a finished answer stays.
    await store.idem_abort("app:1", "k")
    assert await store.idem_begin("app:1", "k", "h1", 60_000, at=t0 + 3) is not None

    # Other scope, same key: independent.
    assert await store.idem_begin("app:2", "k", "h1", 60_000, at=t0) is None
    await store.idem_abort("app:2", "k")
    assert await store.idem_begin("app:2", "k", "h1", 60_000, at=t0) is None

    # Plain answer cache (transaction_id replies): put, get, expiry.
    assert await store.idem_get("tx:1", "t", at=t0) is None
    store.idem_put_nowait("tx:1", "t", b"first", ttl_ms=1000)
    await store.idem_put("tx:1", "u", b"second")
    assert await store.idem_get("tx:1", "t") == b"first"
    assert await store.idem_get("tx:1", "u") == b"second"
    assert await store.idem_get("tx:1", "t", at=now_ms() + 2000) is None
    assert await store.idem_get("app:1", "k", at=t0 + 5) == b'{"ok":true}'
    assert await store.idem_get("app:2", "k", at=t0) is None  # in progress: no answer yet

    # Expired: treated as absent, and purged.
    assert await store.idem_begin("app:1", "k", "h3", 60_000, at=t0 + 60_000) is None
    assert await store.idem_purge_expired(at=now_ms() + 10**9) == 4


async def test_inbound(store: SqliteStore) -> None:
    ts = now_ms()
    rows = [InboundRow(uuid7(), 1, "+300", "+100", f"hi {i}", ts + i) for i in range(3)]
    for row in rows:
        await store.insert_inbound(*msgspec.structs.astuple(row))
    assert await store.list_inbound(limit=2) == [rows[2], rows[1]]
