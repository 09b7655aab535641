"""Store access for the operator console: sessions and the admin message search.

Built on `SqliteStore`'s public units (`write`, `read`), like store/ops.py. Every
value is a `?` parameter; the column lists come from the row structs, so a column
another area adds to `messages` (the owner, say) shows up here without an edit.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from .channels import AttemptRow
from .models import MessageRow, PartRow
from .sqlite import SqliteStore

_MSG_FIELDS = MessageRow.__struct_fields__
_MSG_COLS = ", ".join(_MSG_FIELDS)
_PART_COLS = ", ".join(PartRow.__struct_fields__)
_ATTEMPT_COLS = ", ".join(AttemptRow.__struct_fields__)


class SessionRow(msgspec.Struct, frozen=True):
    id_hash: str
    actor: str
    created_at: int
    expires_at: int
    last_seen_at: int


class MessageQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What the admin search filters on; empty / None fields do not filter."""

    message_id: str = ""
    transaction_id: str = ""
    destinations: tuple[str, ...] = ()  # any of these spellings of one number
    owner: str = ""  # app:<id>, oauth:<client>, project:<id>, numbers:<id>
    status: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 50


class MessageDetail(msgspec.Struct, frozen=True):
    message: MessageRow
    parts: list[PartRow]
    attempts: list[AttemptRow]


def uuid7_floor(ms: int) -> str:
    """The smallest UUIDv7 text made at Unix millisecond `ms` (or later)."""
    ms = min(max(ms, 0), (1 << 48) - 1)
    stamp = f"{ms:012x}"
    return f"{stamp[:8]}-{stamp[8:]}"


class ConsoleStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- sessions -------------------------------------------------------------------

    async def create_session(self, row: SessionRow) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO console_sessions (id_hash, actor, created_at, expires_at,"
                " last_seen_at) VALUES (?, ?, ?, ?, ?)",
                (row.id_hash, row.actor, row.created_at, row.expires_at, row.last_seen_at),
            )
            _audit(conn, row.created_at, f"console:{row.actor}", "console.login", "console", "")

        await self.store.write(unit)

    async def get_session(self, id_hash: str) -> SessionRow | None:
        def q(conn: sqlite3.Connection) -> SessionRow | None:
            r = conn.execute(
                "SELECT id_hash, actor, created_at, expires_at, last_seen_at"
                " FROM console_sessions WHERE id_hash = ?",
                (id_hash,),
            ).fetchone()
            return SessionRow(*r) if r else None

        return await self.store.read(q)

    async def delete_session(self, id_hash: str, at: int) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            r = conn.execute(
                "SELECT actor FROM console_sessions WHERE id_hash = ?", (id_hash,)
            ).fetchone()
            if r is None:
                return False
            conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))
            _audit(conn, at, f"console:{r[0]}", "console.logout", "console", "")
            return True

        return await self.store.write(unit)

    async def purge_sessions(self, now: int) -> int:
        def unit(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM console_sessions WHERE expires_at <= ?", (now,)
            ).rowcount

        return await self.store.write(unit)

    # -- messages -------------------------------------------------------------------

    async def search_messages(self, query: MessageQuery) -> list[MessageRow]:
        where: list[str] = []
        params: list[Any] = []
        if query.message_id:
            where.append("id = ?")
            params.append(query.message_id)
        if query.transaction_id:
            where.append("transaction_id = ?")
            params.append(query.transaction_id)
        if query.destinations:
            where.append(f"destination IN ({', '.join('?' * len(query.destinations))})")
            params.extend(query.destinations)
        if query.owner:
            where.append("owner = ?")
            params.append(query.owner)
        if query.status:
            where.append("status = ?")
            params.append(query.status)
        # Ids are UUIDv7 (core/ids.py): their text starts with the creation time in
        # hex, so a time bound is also an id bound the primary key can seek to.
        if query.since_ms is not None:
            where.append("id >= ? AND created_at >= ?")
            params += [uuid7_floor(query.since_ms), query.since_ms]
        if query.until_ms is not None:
            where.append("id < ? AND created_at < ?")
            params += [uuid7_floor(query.until_ms), query.until_ms]
        sql = f"SELECT {_MSG_COLS} FROM messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(query.limit)

        def q(conn: sqlite3.Connection) -> list[MessageRow]:
            return [_message(r) for r in conn.execute(sql, params).fetchall()]

        return await self.store.read(q)

    async def message_detail(self, message_id: str) -> MessageDetail | None:
        def q(conn: sqlite3.Connection) -> MessageDetail | None:
            conn.execute("BEGIN")  # message, parts and attempts from one snapshot
            r = conn.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if r is None:
                return None
            parts = [
                PartRow(*p)
                for p in conn.execute(
                    f"SELECT {_PART_COLS} FROM parts WHERE message_id = ? ORDER BY seq",
                    (message_id,),
                ).fetchall()
            ]
            return MessageDetail(_message(r), parts, _attempts(conn, message_id))

        return await self.store.read(q)


def _message(row: tuple[Any, ...]) -> MessageRow:
    values = dict(zip(_MSG_FIELDS, row, strict=True))
    if "dead_letter" in values:
        values["dead_letter"] = bool(values["dead_letter"])
    return MessageRow(**values)


def _attempts(conn: sqlite3.Connection, message_id: str) -> list[AttemptRow]:
    rows = conn.execute(
        f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE message_id = ? ORDER BY attempt",
        (message_id,),
    ).fetchall()
    return [AttemptRow(*r) for r in rows]


def _audit(
    conn: sqlite3.Connection, at: int, actor: str, action: str, target: str, detail: str
) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (at, actor, action, target, detail),
    )
