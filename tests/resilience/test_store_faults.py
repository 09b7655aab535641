"""The database cannot take writes: it is full, or another process holds its lock.

Real conditions on the real store, no mocks: the gateway's own SQLite file is capped
with `PRAGMA max_page_count` on its writer connection (SQLite then fails writes with
SQLITE_FULL, exactly as on a full disk), the data directory sits on a tiny tmpfs that
really fills up (where the test may mount one), or a second connection holds the
write lock. Sends must fail with 503 {"error": "storage unavailable"} (never a 500
traceback), nothing of a refused send may be written, and service must come back by
itself once the condition clears. Everything accepted still reaches the SMSC.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from resil_kit import (
    SimFactory,
    complete,
    destination,
    parts_of,
    received,
    reconcile,
    send_body,
    start,
    statuses,
)

from gwkit import Gateway, eventually
from smsgateway.api.grpc.gen import sms_pb2, sms_pb2_grpc

UNAVAILABLE = (503, {"error": "storage unavailable"})
MAX_PAGES = 1_073_741_823  # SQLite's default max_page_count


async def send_until_refused(
    gw: Gateway, headers: dict[str, str], first: int, limit: int = 400
) -> tuple[dict[int, dict[str, Any]], list[int]]:
    """Send one at a time until the store refuses a few; every answer is 200 or 503."""
    accepted: dict[int, dict[str, Any]] = {}
    refused: list[int] = []
    for i in range(first, first + limit):
        r = await gw.http.post("/api/v1/sms/send", json=send_body(i), headers=headers)
        if r.status_code == 200:
            accepted[i] = r.json()
        else:
            assert (r.status_code, r.json()) == UNAVAILABLE, r.text
            refused.append(i)
            if len(refused) >= 5:
                break
    return accepted, refused


def check_db(db: Path, accepted: list[int], refused: list[int]) -> None:
    """Every accepted message is stored whole; nothing of a refused one is."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = dict(
            conn.execute(
                "SELECT m.destination, COUNT(p.seq) FROM messages m"
                " LEFT JOIN parts p ON p.message_id = m.id GROUP BY m.id"
            ).fetchall()
        )
        orphans = conn.execute(
            "SELECT COUNT(*) FROM parts WHERE message_id NOT IN (SELECT id FROM messages)"
        ).fetchone()[0]
    assert orphans == 0
    for i in accepted:
        assert rows.get(destination(i)) == parts_of(i), i
    for i in refused:
        assert destination(i) not in rows, i


async def test_full_database_answers_503_writes_nothing_and_recovers(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=2.0)
    store = gw.runtime.store
    assert store is not None
    before, _ = await send_until_refused(gw, headers, 0, limit=6)
    # The writer's own connection may not grow the file any more: SQLITE_FULL.
    pages = await store.write(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    await store.write(lambda c: c.execute(f"PRAGMA max_page_count = {pages}").fetchone())
    during, refused = await send_until_refused(gw, headers, 100)
    assert refused, "the capped database never refused a write"
    check_db(tmp_path / "gw.db", [*before, *during], refused)

    await store.write(lambda c: c.execute(f"PRAGMA max_page_count = {MAX_PAGES}").fetchone())
    after, none = await send_until_refused(gw, headers, 1000, limit=10)
    assert not none and len(after) == 10
    accepted = before | during | after
    check_db(tmp_path / "gw.db", list(accepted), refused)
    await eventually(lambda: complete([sim], accepted), timeout=20)
    rec = reconcile([sim], accepted)
    assert not rec.lost and sim.submits == rec.parts + rec.duplicates
    got = received([sim])
    assert not [i for i in refused if destination(i) in got]  # refused: never sent
    # Sent after recovery: settled as usual.
    ids = [b["message_id"] for b in after.values()]

    async def delivered() -> bool:
        return await statuses(gw.http, headers, ids) == {"delivered": len(ids)}

    await eventually(delivered, timeout=10)
    print(f"\nfull database: {rec.line()}; refused with 503: {len(refused)}")


async def test_locked_database_answers_503_and_recovers(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=2.0)
    store = gw.runtime.store
    assert store is not None
    before, _ = await send_until_refused(gw, headers, 0, limit=4)
    # Wait 0.3 s for the lock rather than the default 5 s: same path, faster test.
    await store.write(lambda c: c.execute("PRAGMA busy_timeout = 300").fetchone())
    locker = sqlite3.connect(tmp_path / "gw.db", isolation_level=None, timeout=5)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        locked, refused = await send_until_refused(gw, headers, 100, limit=5)
        assert locked == {} and len(refused) == 5
        # Every other write is refused the same way: registering a user is a 503 too.
        r = await gw.http.post(
            "/api/v1/auth/register",
            json={"email": "locked@example.com", "password": "correct-horse-9"},
            headers={"X-Admin-Key": gw.runtime.settings.auth.admin_api_key},
        )
        assert (r.status_code, r.json()) == UNAVAILABLE
        # The gRPC face says the same: UNAVAILABLE, "storage unavailable".
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.runtime.grpc_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused_rpc:
                await sms_pb2_grpc.SmsServiceStub(channel).SendMessage(
                    sms_pb2.SendMessageRequest(**send_body(200)),
                    metadata=[(k.lower(), v) for k, v in headers.items()],
                )
        assert refused_rpc.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refused_rpc.value.details() == "storage unavailable"
        refused.append(200)
        # Reads still work under WAL: info of an earlier message answers.
        mid = before[0]["message_id"]
        r = await gw.http.post("/api/v1/sms/info", json={"message_id": mid}, headers=headers)
        assert r.status_code == 200
    finally:
        locker.rollback()
        locker.close()
    after, none = await send_until_refused(gw, headers, 1000, limit=6)
    assert not none
    accepted = before | after
    check_db(tmp_path / "gw.db", list(accepted), refused)
    await eventually(lambda: complete([sim], accepted), timeout=20)
    ids = [b["message_id"] for b in accepted.values()]

    async def delivered() -> bool:
        return await statuses(gw.http, headers, ids) == {"delivered": len(ids)}

    await eventually(delivered, timeout=10)


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of the file system `directory` is on."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        while True:
            try:
                f.write(chunk)
                f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        # Whatever the buffer still holds does not fit either.
        with contextlib.suppress(OSError):
            f.close()
    return filler


async def test_disk_really_full_answers_503_and_recovers(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    with tiny_tmpfs(tmp_path / "disk", "4m") as disk:
        sim, gw, headers = await start(disk, make_sim, make_gateway, budget=2.0)
        try:
            before, _ = await send_until_refused(gw, headers, 0, limit=6)
            filler = fill(disk)
            during, refused = await send_until_refused(gw, headers, 100)
            assert refused, "the full disk never refused a write"
            filler.unlink()
            after, none = await send_until_refused(gw, headers, 1000, limit=10)
            assert not none
            accepted = before | during | after
            check_db(disk / "gw.db", list(accepted), refused)
            await eventually(lambda: complete([sim], accepted), timeout=20)
            ids = [b["message_id"] for b in after.values()]

            async def delivered() -> bool:
                return await statuses(gw.http, headers, ids) == {"delivered": len(ids)}

            await eventually(delivered, timeout=10)
            print(f"\nfull disk: {reconcile([sim], accepted).line()}; refused: {len(refused)}")
        finally:
            await gw.stop()


async def test_outcome_write_refused_by_a_locked_database_is_not_lost(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """The messages are stored, then the database locks while their submit_sm_resps
    are on the way: the writes of their SMSC ids fail. Once the lock clears, their
    receipts (which the SMSC retries while the gateway answers ESME_RX_T_APPN) must
    still settle them."""
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=0.05)
    store = gw.runtime.store
    assert store is not None
    await store.write(lambda c: c.execute("PRAGMA busy_timeout = 200").fetchone())
    sim.configure(resp_delay_ms=400, dlr_delay_ms=800, receipt_retry_ms=300)
    accepted, _ = await send_until_refused(gw, headers, 0, limit=3)
    assert len(accepted) == 3 and {b["status"] for b in accepted.values()} == {"queued"}
    locker = sqlite3.connect(tmp_path / "gw.db", isolation_level=None, timeout=5)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        # The resps came while locked, and each receipt was refused at least once.
        await eventually(lambda: sim.receipts_retried >= 5, timeout=10)
    finally:
        locker.rollback()
        locker.close()
    await eventually(lambda: complete([sim], accepted), timeout=10)
    assert sim.submits == 5  # each part once
    ids = [b["message_id"] for b in accepted.values()]

    async def delivered() -> bool:
        return await statuses(gw.http, headers, ids) == {"delivered": 3}

    await eventually(delivered, timeout=3)
