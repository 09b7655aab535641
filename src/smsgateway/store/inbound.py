"""Store units for inbound SMS: the inbound row and the parts of concatenated SMS.

The units here are run by `core.inbound.InboundService` inside one writer unit
together with its hooks; they act only through the connection they are given.
"""

from __future__ import annotations

import sqlite3

from .models import InboundRow


def insert_inbound(conn: sqlite3.Connection, row: InboundRow) -> None:
    conn.execute(
        "INSERT INTO inbound (id, link_id, source, destination, text, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (row.id, row.link_id, row.source, row.destination, row.text, row.received_at),
    )


def add_part(
    conn: sqlite3.Connection,
    *,
    channel_id: int,
    source: str,
    destination: str,
    reference: int,
    total: int,
    seq: int,
    text: str,
    received_at: int,
    done_since: int,
) -> tuple[str, int] | None:
    """Keep one part; once every part of its set is in, remove the set and return
    (its text in order, when its first part arrived). Duplicates keep the first copy;
    a part of a set joined after `done_since` is a late duplicate and is dropped."""
    key = (channel_id, source, destination, reference, total)
    where = "channel_id = ? AND source = ? AND destination = ? AND reference = ? AND total = ?"
    if conn.execute(
        f"SELECT 1 FROM inbound_sets_done WHERE {where} AND done_at >= ?", (*key, done_since)
    ).fetchone():
        return None
    conn.execute(
        "INSERT OR IGNORE INTO inbound_parts (channel_id, source, destination, reference,"
        " total, seq, text, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, seq, text, received_at),
    )
    rows = conn.execute(
        f"SELECT seq, text, received_at FROM inbound_parts WHERE {where} ORDER BY seq", key
    ).fetchall()
    if len(rows) < total:
        return None
    conn.execute(f"DELETE FROM inbound_parts WHERE {where}", key)
    conn.execute(
        "INSERT OR REPLACE INTO inbound_sets_done (channel_id, source, destination, reference,"
        " total, done_at) VALUES (?, ?, ?, ?, ?, ?)",
        (*key, received_at),
    )
    return "".join(r[1] for r in rows), min(r[2] for r in rows)


def stale_sets(conn: sqlite3.Connection, before: int) -> list[tuple[int, str, str, int, int]]:
    """Sets whose newest part is older than `before` (ms)."""
    rows = conn.execute(
        "SELECT channel_id, source, destination, reference, total FROM inbound_parts"
        " GROUP BY channel_id, source, destination, reference, total"
        " HAVING MAX(received_at) < ?",
        (before,),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def take_set(
    conn: sqlite3.Connection, key: tuple[int, str, str, int, int]
) -> tuple[str, int] | None:
    """Remove a set, returning the text of the parts present and the first arrival."""
    where = "channel_id = ? AND source = ? AND destination = ? AND reference = ? AND total = ?"
    rows = conn.execute(
        f"SELECT text, received_at FROM inbound_parts WHERE {where} ORDER BY seq", key
    ).fetchall()
    if not rows:
        return None
    conn.execute(f"DELETE FROM inbound_parts WHERE {where}", key)
    return "".join(r[0] for r in rows), min(r[1] for r in rows)


def forget_done(conn: sqlite3.Connection, before: int) -> int:
    return conn.execute("DELETE FROM inbound_sets_done WHERE done_at < ?", (before,)).rowcount
