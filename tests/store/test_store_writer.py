"""The group-committing writer against a real SQLite file: batching, isolation of a
failing unit, real disk-full and lock failures, ordering and clean close."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from smsgateway.core.ids import uuid7
from smsgateway.store import (
    DuplicateError,
    MessageRow,
    PartRow,
    SqliteStore,
    StoreUnavailable,
    now_ms,
)


def make_message(
    *,
    app_id: int = 1,
    route_id: int = 1,
    transaction_id: str | None = None,
    nparts: int = 1,
    part_bytes: int = 10,
) -> tuple[MessageRow, list[PartRow]]:
    mid = uuid7()
    ts = now_ms()
    msg = MessageRow(
        id=mid,
        app_id=app_id,
        route_id=route_id,
        link_id=None,
        source="+100",
        destination="+200",
        body="x" * part_bytes * nparts,
        encoding="gsm7",
        mode="multipart" if nparts > 1 else "single",
        parts_total=nparts,
        status="queued",
        error="",
        transaction_id=transaction_id,
        task_id=7,
        campaign=None,
        created_at=ts,
        updated_at=ts,
    )
    parts = [
        PartRow(
            message_id=mid,
            seq=i,
            link_id=None,
            smsc_id=None,
            state="queued",
            error=None,
            short_message=bytes([65 + i % 26]) * part_bytes,
            data_coding=0,
            esm_class=0x40 if nparts > 1 else 0,
            tlvs=None,
            submitted_at=None,
            done_at=None,
            updated_at=ts,
        )
        for i in range(1, nparts + 1)
    ]
    return msg, parts


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "gw.db")
    yield s
    await s.close()


def side_connection(path: Path) -> sqlite3.Connection:
    # A connection the store knows nothing about: what it sees is on disk.
    return sqlite3.connect(path, isolation_level=None)


def message_ids(path: Path) -> set[str]:
    conn = side_connection(path)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM messages")}
    finally:
        conn.close()


class Gate:
    """Holds the writer thread inside a unit so the next units queue into one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        self.release.wait(10)


async def hold_writer(store: SqliteStore) -> tuple[Gate, asyncio.Future[None]]:
    gate = Gate()
    fut = asyncio.ensure_future(store.write(gate))
    await asyncio.to_thread(gate.entered.wait, 10)
    return gate, fut


async def test_pragmas(store: SqliteStore) -> None:
    conn = side_connection(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()

    def pragmas(c: sqlite3.Connection) -> tuple[int, int, int]:
        return (
            c.execute("PRAGMA synchronous").fetchone()[0],
            c.execute("PRAGMA foreign_keys").fetchone()[0],
            c.execute("PRAGMA busy_timeout").fetchone()[0],
        )

    # synchronous NORMAL is 1 (OFF would be 0).
    assert await store.write(pragmas) == (1, 1, 5000)
    _, fk, busy = await store.read(pragmas)
    assert (fk, busy) == (1, 5000)


async def test_thousand_concurrent_inserts_group_commit(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    side = side_connection(path)
    seen_after_await: list[bool] = []

    async def one(i: int) -> str:
        msg, parts = make_message(transaction_id=f"tx-{i}", nparts=1 + i % 3)
        await store.insert_message(msg, parts)
        # Committed means visible to any other connection the moment we resume.
        row = side.execute(
            "SELECT (SELECT COUNT(*) FROM parts WHERE message_id = ?) FROM messages WHERE id = ?",
            (msg.id, msg.id),
        ).fetchone()
        seen_after_await.append(row is not None and row[0] == len(parts))
        return msg.id

    try:
        ids = await asyncio.gather(*(one(i) for i in range(1000)))
        assert all(seen_after_await) and len(seen_after_await) == 1000
        assert store.writer_units >= 1000
        # Many units per transaction, or there was no group commit at all.
        assert store.writer_batches < 500
    finally:
        side.close()
        await store.close()

    reopened = await SqliteStore.open(path)
    try:
        assert await reopened.count_messages() == 1000
        assert message_ids(path) == set(ids)
        got = await reopened.get_message(1, ids[5])
        assert got is not None and len(got.parts) == 1 + 5 % 3
    finally:
        await reopened.close()


async def test_units_of_one_loop_pass_reach_the_writer_together(store: SqliteStore) -> None:
    order: list[int] = []

    def unit(i: int) -> Callable[[sqlite3.Connection], int]:
        def run(conn: sqlite3.Connection) -> int:
            order.append(i)
            return i

        return run

    batches = store.writer_batches
    # Submitted in one pass, awaited and not: one hand-over, one transaction, in order.
    futs = [store._writer.submit(unit(i)) for i in range(5)]
    store.submit_nowait(unit(5))
    futs.append(store._writer.submit(unit(6)))
    assert [await f for f in futs] == [0, 1, 2, 3, 4, 6]
    assert order == [0, 1, 2, 3, 4, 5, 6]
    assert store.writer_batches == batches + 1


async def test_close_runs_units_not_yet_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    msg, parts = make_message()
    fut = asyncio.ensure_future(store.insert_message(msg, parts))
    await asyncio.sleep(0)  # the unit sits in this pass's outbox
    await store.close()
    await fut
    assert message_ids(path) == {msg.id}


async def test_fresh_connection_sees_result_right_after_await(store: SqliteStore) -> None:
    for i in range(20):
        msg, parts = make_message(transaction_id=f"t{i}")
        await store.insert_message(msg, parts)
        assert msg.id in message_ids(store.path)


async def test_failing_unit_does_not_sink_the_batch(store: SqliteStore) -> None:
    first, first_parts = make_message(transaction_id="dup")
    await store.insert_message(first, first_parts)

    gate, gate_fut = await hold_writer(store)
    ok1, ok1_parts = make_message(transaction_id="a")
    dup, dup_parts = make_message(transaction_id="dup")
    ok2, ok2_parts = make_message(transaction_id="b")

    def half_then_boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO audit (at, actor, action, target) VALUES (1, 'x', 'half', 't')")
        raise RuntimeError("boom")

    futs = [
        asyncio.ensure_future(store.insert_message(ok1, ok1_parts)),
        asyncio.ensure_future(store.write(half_then_boom)),
        asyncio.ensure_future(store.insert_message(dup, dup_parts)),
        asyncio.ensure_future(store.insert_message(ok2, ok2_parts)),
    ]
    await asyncio.sleep(0.05)
    batches_before = store.writer_batches
    gate.release.set()
    await gate_fut
    results = await asyncio.gather(*futs, return_exceptions=True)

    assert isinstance(results[1], RuntimeError)
    assert isinstance(results[2], DuplicateError) and results[2].what == "transaction_id"
    assert isinstance(results[0], MessageRow) and isinstance(results[3], MessageRow)
    # The gate's own batch; the failure made the four queued behind it replay one
    # transaction each (no savepoints on the hot path).
    assert store.writer_batches == batches_before + 1 + 4
    ids = message_ids(store.path)
    assert {first.id, ok1.id, ok2.id} <= ids and dup.id not in ids
    audit = await store.list_audit()
    assert [a.action for a in audit if a.action == "half"] == []


async def test_disk_full_fails_whole_units_and_recovers(store: SqliteStore) -> None:
    warm, warm_parts = make_message()
    await store.insert_message(warm, warm_parts)

    def cap(conn: sqlite3.Connection) -> int:
        # Room for a few messages only, so one batch sees both outcomes.
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0]) + 12
        # PRAGMA takes no parameters; `pages` is an int we just computed.
        return int(conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0])

    await store.write(cap)

    batch = [make_message(nparts=3, part_bytes=3000) for _ in range(30)]
    results = await asyncio.gather(
        *(store.insert_message(m, p) for m, p in batch), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed, "the page cap should have filled the database"
    assert len(failed) < len(results), "the first few messages fit under the cap"
    assert all(isinstance(r, StoreUnavailable) for r in failed)
    assert any("full" in str(r) for r in failed)

    # Nothing half-written: each message is there with all parts, or not at all,
    # and exactly when its caller was told it succeeded.
    conn = side_connection(store.path)
    try:
        for (msg, _), result in zip(batch, results, strict=True):
            n_msg = conn.execute("SELECT COUNT(*) FROM messages WHERE id = ?", (msg.id,))
            n_parts = conn.execute("SELECT COUNT(*) FROM parts WHERE message_id = ?", (msg.id,))
            stored = (n_msg.fetchone()[0], n_parts.fetchone()[0])
            if isinstance(result, BaseException):
                assert stored == (0, 0)
            else:
                assert stored == (1, 3)
    finally:
        conn.close()

    await store.write(lambda c: c.execute("PRAGMA max_page_count = 1073741823").fetchone())
    later, later_parts = make_message(nparts=3, part_bytes=3000)
    await store.insert_message(later, later_parts)
    assert later.id in message_ids(store.path)


async def test_commit_failure_fails_every_unit_and_writer_goes_on(store: SqliteStore) -> None:
    # A deferred foreign-key violation is checked at COMMIT: a real, deterministic
    # way to make COMMIT itself fail with the batch's work pending.
    gate, gate_fut = await hold_writer(store)
    innocent, innocent_parts = make_message()

    def orphan_part(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            "INSERT INTO parts (message_id, seq, state, short_message, data_coding,"
            " esm_class, updated_at) VALUES ('no-such-message', 1, 'queued', x'00', 0, 0, 0)"
        )

    futs = [
        asyncio.ensure_future(store.insert_message(innocent, innocent_parts)),
        asyncio.ensure_future(store.write(orphan_part)),
    ]
    await asyncio.sleep(0.05)
    gate.release.set()
    await gate_fut
    results = await asyncio.gather(*futs, return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert innocent.id not in message_ids(store.path)

    after, after_parts = make_message()
    await store.insert_message(after, after_parts)
    assert after.id in message_ids(store.path)


async def test_locked_database_is_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path, busy_timeout_ms=100)
    other = side_connection(path)
    try:
        other.execute("BEGIN IMMEDIATE")
        msg, parts = make_message()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.insert_message(msg, parts)
        other.execute("ROLLBACK")
        await store.insert_message(msg, parts)
        assert msg.id in message_ids(path)
    finally:
        other.close()
        await store.close()


async def test_nowait_is_fifo_with_awaited_writes(store: SqliteStore) -> None:
    def insert(i: int) -> Callable[[sqlite3.Connection], object]:
        return lambda c: c.execute(
            "INSERT INTO audit (at, actor, action, target) VALUES (?, 'n', 'seq', ?)",
            (i, str(i)),
        )

    for i in range(50):
        store.submit_nowait(insert(i))

    def count(c: sqlite3.Connection) -> int:
        return int(c.execute("SELECT COUNT(*) FROM audit WHERE action = 'seq'").fetchone()[0])

    assert await store.write(count) == 50
    rows = await store.list_audit(limit=100)
    assert [int(r.target) for r in reversed(rows)] == list(range(50))


async def test_nowait_failure_is_logged_not_raised(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    def bad(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO no_such_table VALUES (1)")

    store.submit_nowait(bad)
    await store.write(lambda c: None)
    assert any("not awaited" in r.getMessage() for r in caplog.records)


async def test_close_drains_queued_writes(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)

    def insert(i: int) -> Callable[[sqlite3.Connection], object]:
        return lambda c: c.execute(
            "INSERT INTO audit (at, actor, action, target) VALUES (0, 'x', 'drain', ?)",
            (str(i),),
        )

    for i in range(100):
        store.submit_nowait(insert(i))
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.write(lambda c: None)
    conn = side_connection(path)
    try:
        n = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'drain'").fetchone()[0]
    finally:
        conn.close()
    assert n == 100
    # Last connection out checkpointed: the WAL is gone or empty.
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


async def test_reads_fail_typed_after_close(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "gw.db")
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_user(1)
    with pytest.raises(StoreUnavailable):
        await store.count_messages()
