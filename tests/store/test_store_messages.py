"""Messages and parts in a real SQLite file: scoping, duplicates, submit progress,
receipts and roll-up, start-up recovery, the dispatcher's queue, query plans."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from smsgateway.core.ids import uuid7
from smsgateway.store import (
    DuplicateError,
    MessageRow,
    PartRow,
    PartUpdate,
    SqliteStore,
    decode_tlvs,
    encode_tlvs,
    now_ms,
)


def make_message(
    *,
    app_id: int = 1,
    route_id: int = 1,
    transaction_id: str | None = None,
    nparts: int = 1,
    state: str = "queued",
    not_before: int | None = None,
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
        body="hello",
        encoding="gsm7",
        mode="multipart" if nparts > 1 else "single",
        parts_total=nparts,
        status="whatever: the store rolls it up",
        error="",
        transaction_id=transaction_id,
        task_id=42,
        campaign="spring",
        created_at=ts,
        updated_at=ts,
        not_before=not_before,
    )
    parts = [
        PartRow(
            message_id=mid,
            seq=i,
            link_id=None,
            smsc_id=None,
            state=state,
            error=None,
            short_message=f"part {i}".encode(),
            data_coding=0,
            esm_class=0x40 if nparts > 1 else 0,
            tlvs=encode_tlvs([(0x0424, b"payload")]) if i == 1 else None,
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


def upd(
    msg: MessageRow,
    seq: int,
    state: str,
    *,
    smsc_id: str | None = None,
    link_id: int | None = 3,
    error: str | None = None,
) -> PartUpdate:
    return PartUpdate(msg.id, seq, link_id, smsc_id, state, error, now_ms())


async def test_insert_and_get_scoped_by_app(store: SqliteStore) -> None:
    msg, parts = make_message(app_id=1, nparts=2, transaction_id="tx-1")
    stored = await store.insert_message(msg, parts)
    assert stored.status == "queued"

    got = await store.get_message(1, msg.id)
    assert got is not None
    assert got.message == stored
    assert [p.seq for p in got.parts] == [1, 2]
    assert decode_tlvs(got.parts[0].tlvs) == [(0x0424, b"payload")]
    assert got.parts[0].short_message == b"part 1"
    assert got.message.dead_letter is False

    assert await store.get_message(2, msg.id) is None
    assert await store.get_message(1, uuid7()) is None
    by_tx = await store.get_message_by_transaction(1, "tx-1")
    assert by_tx is not None and by_tx.message.id == msg.id
    assert await store.get_message_by_transaction(2, "tx-1") is None


async def test_duplicate_transaction_id_is_per_app(store: SqliteStore) -> None:
    a, a_parts = make_message(app_id=1, transaction_id="same")
    await store.insert_message(a, a_parts)
    b, b_parts = make_message(app_id=1, transaction_id="same", nparts=3)
    with pytest.raises(DuplicateError) as info:
        await store.insert_message(b, b_parts)
    assert info.value.what == "transaction_id"
    assert await store.get_message(1, b.id) is None

    def orphan_parts(c: sqlite3.Connection) -> int:
        return int(
            c.execute("SELECT COUNT(*) FROM parts WHERE message_id = ?", (b.id,)).fetchone()[0]
        )

    assert await store.read(orphan_parts) == 0

    c, c_parts = make_message(app_id=2, transaction_id="same")
    await store.insert_message(c, c_parts)
    # No transaction_id: never a duplicate.
    for _ in range(2):
        m, p = make_message(app_id=1)
        await store.insert_message(m, p)
    assert await store.count_messages() == 4


async def test_insert_rejects_inconsistent_parts(store: SqliteStore) -> None:
    msg, parts = make_message(nparts=2)
    with pytest.raises(ValueError):
        await store.insert_message(msg, [])
    with pytest.raises(ValueError):
        await store.insert_message(msg, [parts[0], parts[0]])
    other, _ = make_message()
    with pytest.raises(ValueError):
        await store.insert_message(other, parts)


async def test_submit_progress_and_receipts_roll_up(store: SqliteStore) -> None:
    msg, parts = make_message(nparts=2)
    await store.insert_message(msg, parts)

    await store.mark_parts_submitted([upd(msg, 1, "sending"), upd(msg, 2, "sending")])
    got = await store.get_message(1, msg.id)
    assert got is not None and got.message.status == "queued"
    assert got.message.link_id == 3

    changed = await store.mark_parts_submitted(
        [upd(msg, 1, "submitted", smsc_id="1f"), upd(msg, 2, "submitted", smsc_id="20")]
    )
    assert changed == 2
    got = await store.get_message(1, msg.id)
    assert got is not None and got.message.status == "submitted"
    assert [p.smsc_id for p in got.parts] == ["1f", "20"]
    assert all(p.submitted_at is not None for p in got.parts)

    # Receipt ids come in another spelling; the caller passes the variants.
    match = await store.apply_receipt(3, ["31", "1f"], "delivered", None)
    assert match is not None
    assert (match.message_id, match.seq, match.app_id) == (msg.id, 1, 1)
    assert match.changed and match.part_state == "delivered"
    assert match.message_status == "submitted"  # part 2 still in flight

    # ENROUTE-like receipts match but change nothing.
    match = await store.apply_receipt(3, ["20"], "submitted", None)
    assert match is not None and not match.changed and match.message_status == "submitted"

    match = await store.apply_receipt(3, ["20"], "undeliverable", "stat:UNDELIV err:001")
    assert match is not None and match.message_status == "undeliverable"
    got = await store.get_message(1, msg.id)
    assert got is not None
    assert got.message.status == "undeliverable"
    assert got.message.error == "stat:UNDELIV err:001"
    assert [p.state for p in got.parts] == ["delivered", "undeliverable"]
    assert all(p.done_at is not None for p in got.parts)

    # Final is final: neither a late receipt nor a late resp moves a part again.
    match = await store.apply_receipt(3, ["1f"], "expired", None)
    assert match is not None and not match.changed and match.part_state == "delivered"
    assert await store.mark_parts_submitted([upd(msg, 1, "submitted", smsc_id="x")]) == 0
    got = await store.get_message(1, msg.id)
    assert got is not None and got.parts[0].smsc_id == "1f"


async def test_receipt_matching_by_link(store: SqliteStore) -> None:
    msg, parts = make_message()
    await store.insert_message(msg, parts)
    await store.mark_parts_submitted([upd(msg, 1, "submitted", smsc_id="abc", link_id=7)])
    assert await store.apply_receipt(8, ["abc"], "delivered", None) is None
    assert await store.apply_receipt(7, ["nope"], "delivered", None) is None
    match = await store.apply_receipt(None, ["abc"], "delivered", None)
    assert match is not None and match.message_status == "delivered"
    with pytest.raises(ValueError):
        await store.apply_receipt(7, ["abc"], "DELIVRD", None)


async def test_submit_refusal_is_final(store: SqliteStore) -> None:
    msg, parts = make_message()
    await store.insert_message(msg, parts)
    await store.mark_parts_submitted([upd(msg, 1, "rejected", error="ESME_RINVDSTADR")])
    got = await store.get_message(1, msg.id)
    assert got is not None
    assert got.message.status == "rejected" and got.message.error == "ESME_RINVDSTADR"
    assert got.parts[0].done_at is not None and got.parts[0].submitted_at is None


async def test_nowait_updates_land_in_order(store: SqliteStore) -> None:
    msg, parts = make_message()
    await store.insert_message(msg, parts)
    store.record_submit_nowait(msg.id, 1, [upd(msg, 1, "sending")])
    store.record_submit_nowait(msg.id, 1, [upd(msg, 1, "submitted", smsc_id="9")])
    match = await store.apply_receipt(3, ["9"], "delivered", None)
    assert match is not None and match.message_status == "delivered"


async def test_record_submit_stores_outcomes_and_answer_in_one_unit(
    store: SqliteStore,
) -> None:
    msg, parts = make_message(transaction_id="t-1")
    await store.insert_message(msg, parts)
    assert await store.get_answer(1, "t-1") is None  # not answered yet
    units = store.writer_units
    changed = await store.record_submit(
        msg.id, 1, [upd(msg, 1, "submitted", smsc_id="s-1")], b'{"answer": 1}'
    )
    assert changed == 1 and store.writer_units == units + 1
    got = await store.get_message(1, msg.id)
    assert got is not None
    assert (got.message.status, got.message.link_id) == ("submitted", 3)
    assert (got.parts[0].state, got.parts[0].smsc_id) == ("submitted", "s-1")
    assert await store.get_answer(1, "t-1") == b'{"answer": 1}'
    assert await store.get_answer(2, "t-1") is None  # another app's key

    # The single-part receipt path rolls the message up without a read-back.
    match = await store.apply_receipt(3, ["s-1"], "undeliverable", "err:001", None, "+200")
    assert match is not None and match.changed and match.message_status == "undeliverable"
    got = await store.get_message(1, msg.id)
    assert got is not None
    assert (got.message.status, got.message.error) == ("undeliverable", "err:001")


async def test_record_submit_refusal_and_partial_outcomes(store: SqliteStore) -> None:
    msg, parts = make_message(nparts=3, transaction_id="t-2")
    await store.insert_message(msg, parts)
    # Two of three parts: the status is read back from all parts (part 3 queued).
    await store.record_submit(
        msg.id,
        3,
        [upd(msg, 1, "submitted", smsc_id="a"), upd(msg, 2, "rejected", error="ESME_RSYSERR")],
    )
    got = await store.get_message(1, msg.id)
    assert got is not None and got.message.status == "queued"
    await store.record_submit(msg.id, 3, [upd(msg, 3, "submitted", smsc_id="c")], b"answer")
    got = await store.get_message(1, msg.id)
    assert got is not None
    assert (got.message.status, got.message.error) == ("submitted", "")
    assert await store.get_answer(1, "t-2") == b"answer"

    # Every part at once, one refused: rejected, with the refusal as the error.
    other, other_parts = make_message(nparts=2)
    await store.insert_message(other, other_parts)
    await store.record_submit(
        other.id,
        2,
        [
            upd(other, 1, "submitted", smsc_id="x"),
            upd(other, 2, "rejected", error="ESME_RINVDSTADR"),
        ],
    )
    got = await store.get_message(1, other.id)
    assert got is not None
    assert (got.message.status, got.message.error) == ("submitted", "")
    with pytest.raises(ValueError):
        store.record_submit(msg.id, 3, [upd(other, 1, "submitted")])


async def test_put_answer_for_a_queued_send(store: SqliteStore) -> None:
    msg, parts = make_message(transaction_id="t-3")
    await store.insert_message(msg, parts)
    await store.put_answer(msg.id, b"queued answer")
    assert await store.get_answer(1, "t-3") == b"queued answer"
    # A later outcome leaves the first answer alone.
    store.record_submit_nowait(msg.id, 1, [upd(msg, 1, "submitted", smsc_id="q")])
    await store.write(lambda conn: None)
    assert await store.get_answer(1, "t-3") == b"queued answer"
    got = await store.get_message(1, msg.id)
    assert got is not None and got.message.status == "submitted"


async def test_requeue_unacknowledged_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    a, a_parts = make_message(nparts=3)
    await store.insert_message(a, a_parts)
    await store.mark_parts_submitted(
        [
            upd(a, 1, "sending"),
            upd(a, 2, "sending"),
            upd(a, 3, "sending"),
        ]
    )
    await store.mark_parts_submitted([upd(a, 1, "submitted", smsc_id="s1")])
    await store.close()

    # "Crash": parts 2 and 3 never got a submit_sm_resp.
    store = await SqliteStore.open(path)
    try:
        assert await store.requeue_unacknowledged() == 2
        assert await store.requeue_unacknowledged() == 0
        got = await store.get_message(1, a.id)
        assert got is not None
        assert [p.state for p in got.parts] == ["submitted", "queued", "queued"]
        assert got.message.status == "queued"
        queued = await store.queued_parts([1], 10)
        assert [(q.message_id, q.seq) for q in queued] == [(a.id, 2), (a.id, 3)]
    finally:
        await store.close()


async def test_queued_parts_filters_and_pages(store: SqliteStore) -> None:
    r1 = [make_message(route_id=1, nparts=2) for _ in range(3)]
    r2 = [make_message(route_id=2) for _ in range(2)]
    later = make_message(route_id=1, not_before=now_ms() + 3_600_000)
    for m, p in [*r1, *r2, later]:
        await store.insert_message(m, p)
    await store.mark_parts_submitted([upd(r1[0][0], 1, "sending")])

    got = await store.queued_parts([1], 10)
    assert [(q.message_id, q.seq) for q in got] == [
        (r1[0][0].id, 2),
        (r1[1][0].id, 1),
        (r1[1][0].id, 2),
        (r1[2][0].id, 1),
        (r1[2][0].id, 2),
    ]
    assert got[0].parts_total == 2 and got[0].route_id == 1 and got[0].short_message == b"part 2"

    # `limit` counts messages: a page never splits one.
    page1 = await store.queued_parts([1], 2)
    assert {q.message_id for q in page1} == {r1[0][0].id, r1[1][0].id}
    page2 = await store.queued_parts([1], 2, after=page1[-1].message_id)
    assert [q.message_id for q in page2] == [r1[2][0].id, r1[2][0].id]

    both = await store.queued_parts([1, 2], 100)
    assert {q.route_id for q in both} == {1, 2}
    assert len(await store.queued_parts(None, 100)) == len(both)
    assert await store.queued_parts([], 100) == []
    # The scheduled message shows up once due.
    due = await store.queued_parts([1], 100, at=now_ms() + 7_200_000)
    assert later[0].id in {q.message_id for q in due}


def _plan(conn: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> str:
    return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


async def test_hot_queries_use_their_indexes(store: SqliteStore) -> None:
    def plans(conn: sqlite3.Connection) -> dict[str, str]:
        return {
            "queued": _plan(
                conn,
                "SELECT id FROM messages WHERE status = 'queued' AND route_id IN (?, ?)"
                " ORDER BY id LIMIT 10",
                (1, 2),
            ),
            "sending": _plan(conn, "SELECT 1 FROM parts WHERE state = 'sending'", ()),
            "receipt": _plan(
                conn, "SELECT 1 FROM parts WHERE smsc_id = ? AND link_id = ?", ("a", 1)
            ),
            "receipt_any_link": _plan(conn, "SELECT 1 FROM parts WHERE smsc_id = ?", ("a",)),
        }

    got = await store.read(plans)
    assert "ix_messages_queued" in got["queued"]
    assert "ix_parts_sending" in got["sending"]
    assert "ix_parts_smsc" in got["receipt"]
    assert "ix_parts_smsc" in got["receipt_any_link"]


async def test_struct_rows_are_typed(store: SqliteStore) -> None:
    msg, parts = make_message()
    await store.insert_message(msg, parts)
    got = await store.get_message(1, msg.id)
    assert got is not None
    # Round-trips through msgspec validation: types are what the annotations say.
    encoded = msgspec.msgpack.encode(got)
    assert msgspec.msgpack.decode(encoded, type=type(got)) == got


async def test_queued_messages_and_task_ids(store: SqliteStore) -> None:
    assert await store.max_task_id() == 0
    a = make_message(route_id=1, nparts=2)
    b = make_message(route_id=2)
    for m, p in (a, b):
        await store.insert_message(m, p)
    await store.mark_parts_submitted([upd(a[0], 1, "submitted", smsc_id="z")])
    got = await store.queued_messages()
    assert [g.message.id for g in got] == [a[0].id, b[0].id]
    assert [p.state for p in got[0].parts] == ["submitted", "queued"]
    assert [g.message.id for g in await store.queued_messages([2])] == [b[0].id]
    assert len(await store.queued_messages(limit=1)) == 1
    assert await store.queued_messages(after=b[0].id) == []
    assert await store.max_task_id() == 42
