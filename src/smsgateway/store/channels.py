"""Store access for channels: attempts rows, owned reads, scheduled and expiring
messages, and reports from non-SMPP channels (migration 0004).

Attempts are written inside the units that record a message's outcomes (see
`attempts_unit`), so they cost no commit of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..core.status import FINAL_STATES
from .models import MessageRow, MessageWithParts, PartRow, ReceiptMatch
from .sqlite import SqliteStore, _message, _rollup_message

_MSG_COLS = ", ".join(MessageRow.__struct_fields__)
_PART_COLS = ", ".join(PartRow.__struct_fields__)
_PART_PARAMS = ", ".join("?" * len(PartRow.__struct_fields__))
_FINAL_SQL = ", ".join(f"'{s}'" for s in sorted(FINAL_STATES))  # constants, not input

# One try of a channel: (channel_id, kind, started_at, ended_at, outcome, error).
AttemptValues = tuple[int, str, int, int, str, str | None]

_INSERT_NUMBERED = (
    "INSERT INTO attempts (message_id, attempt, channel_id, channel_kind, started_at,"
    " ended_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (message_id, attempt, channel_id, channel_kind, started_at,"
    " ended_at, outcome, error) VALUES (?, COALESCE((SELECT MAX(attempt) FROM attempts"
    " WHERE message_id = ?), 0) + 1, ?, ?, ?, ?, ?, ?)"
)


class AttemptRow(msgspec.Struct, frozen=True):
    message_id: str
    attempt: int
    channel_id: int
    channel_kind: str
    started_at: int
    ended_at: int
    outcome: str
    error: str | None


def insert_attempts(
    conn: sqlite3.Connection,
    message_id: str,
    attempts: Sequence[AttemptValues],
    stored: int | None = None,
) -> None:
    """Append attempts rows, numbered on from the `stored` rows the message has
    (None: unknown, as after a restart; then read from the table)."""
    for i, (channel_id, kind, started, ended, outcome, error) in enumerate(attempts):
        if stored is None:
            conn.execute(
                _INSERT_ATTEMPT,
                (message_id, message_id, channel_id, kind, started, ended, outcome, error),
            )
        else:
            conn.execute(
                _INSERT_NUMBERED,
                (message_id, stored + i + 1, channel_id, kind, started, ended, outcome, error),
            )


def replace_parts(
    conn: sqlite3.Connection, message_id: str, parts: Sequence[PartRow], encoding: str
) -> None:
    """A channel cut the text again for itself: its parts replace the stored ones."""
    conn.execute("DELETE FROM parts WHERE message_id = ?", (message_id,))
    conn.executemany(
        f"INSERT INTO parts ({_PART_COLS}) VALUES ({_PART_PARAMS})",
        [msgspec.structs.astuple(p) for p in parts],
    )
    conn.execute(
        "UPDATE messages SET parts_total = ?, mode = ?, encoding = ? WHERE id = ?",
        (len(parts), "multipart" if len(parts) > 1 else "single", encoding, message_id),
    )


class ChannelStore:
    """Typed access to what migration 0004 added, on the SqliteStore's writer/readers."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def get_owned(self, owner: str, message_id: str) -> MessageWithParts | None:
        """The message and its parts, only if `owner` owns it."""

        def q(conn: sqlite3.Connection) -> MessageWithParts | None:
            row = conn.execute(
                f"SELECT {_MSG_COLS} FROM messages WHERE id = ? AND owner = ?",
                (message_id, owner),
            ).fetchone()
            if row is None:
                return None
            parts = conn.execute(
                f"SELECT {_PART_COLS} FROM parts WHERE message_id = ? ORDER BY seq",
                (message_id,),
            ).fetchall()
            return MessageWithParts(_message(row), [PartRow(*p) for p in parts])

        return await self.store.read(q)

    async def by_idem_key(
        self, owner: str, key: str
    ) -> tuple[MessageWithParts, bytes | None] | None:
        """The message an owner sent with this idempotency key, and its stored answer."""

        def q(conn: sqlite3.Connection) -> tuple[MessageWithParts, bytes | None] | None:
            row = conn.execute(
                f"SELECT {_MSG_COLS}, answer FROM messages WHERE owner = ? AND idem_key = ?",
                (owner, key),
            ).fetchone()
            if row is None:
                return None
            msg = _message(row[:-1])
            parts = conn.execute(
                f"SELECT {_PART_COLS} FROM parts WHERE message_id = ? ORDER BY seq", (msg.id,)
            ).fetchall()
            return MessageWithParts(msg, [PartRow(*p) for p in parts]), row[-1]

        return await self.store.read(q)

    async def attempts(self, message_id: str) -> list[AttemptRow]:
        """Every try of a channel for the message, first first."""

        def q(conn: sqlite3.Connection) -> list[AttemptRow]:
            rows = conn.execute(
                "SELECT message_id, attempt, channel_id, channel_kind, started_at, ended_at,"
                " outcome, error FROM attempts WHERE message_id = ? ORDER BY attempt",
                (message_id,),
            ).fetchall()
            return [AttemptRow(*r) for r in rows]

        return await self.store.read(q)

    async def waiting_messages(self, after_ms: int) -> list[MessageWithParts]:
        """Queued messages not due before `after_ms` (scheduled sends), oldest first."""

        def q(conn: sqlite3.Connection) -> list[MessageWithParts]:
            conn.execute("BEGIN")
            msgs = [
                _message(r)
                for r in conn.execute(
                    f"SELECT {_MSG_COLS} FROM messages WHERE status = 'queued'"
                    " AND dead_letter = 0 AND not_before > ? ORDER BY id",
                    (after_ms,),
                ).fetchall()
            ]
            out = []
            for m in msgs:
                parts = conn.execute(
                    f"SELECT {_PART_COLS} FROM parts WHERE message_id = ? ORDER BY seq", (m.id,)
                ).fetchall()
                out.append(MessageWithParts(m, [PartRow(*p) for p in parts]))
            conn.execute("COMMIT")
            return out

        return await self.store.read(q)

    def expire(self, message_id: str, at: int) -> asyncio.Future[bool]:
        """Mark a message's open parts expired (it stayed unsent past its validity);
        True if it changed."""

        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE parts SET state = 'expired', error = 'validity expired', done_at = ?,"
                f" updated_at = ? WHERE message_id = ? AND state NOT IN ({_FINAL_SQL})",
                (at, at, message_id),
            )
            if not cur.rowcount:
                return False
            _rollup_message(conn, message_id, at, None)
            return True

        return self.store.submit(unit)

    def report(
        self, channel_id: int, message_id: str, state: str, error: str | None, at: int
    ) -> asyncio.Future[ReceiptMatch | None]:
        """A channel's later news of a message it sent (a device's state report): its
        open parts on that channel take `state`. None if nothing matched."""

        def unit(conn: sqlite3.Connection) -> ReceiptMatch | None:
            row = conn.execute(
                "SELECT app_id, campaign FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                return None
            cur = conn.execute(
                "UPDATE parts SET state = ?, error = ?, done_at = ?, updated_at = ?"
                " WHERE message_id = ? AND link_id = ?"
                f" AND state NOT IN ({_FINAL_SQL})",
                (state, error, at, at, message_id, channel_id),
            )
            if not cur.rowcount:
                return None
            status = _rollup_message(conn, message_id, at, None)
            return ReceiptMatch(message_id, 1, row[0], state, status, True, row[1])

        return self.store.submit(unit)


def attempts_writer(
    message_id: str,
    attempts: Sequence[AttemptValues],
    parts: Sequence[PartRow] | None = None,
    encoding: str = "",
    stored: int | None = None,
) -> Callable[[sqlite3.Connection], Any]:
    """A `before` hook for `SqliteStore.record_submit`: re-cut parts first (if any),
    then the attempts, in the unit that records the outcomes."""

    def before(conn: sqlite3.Connection) -> None:
        if parts is not None:
            replace_parts(conn, message_id, parts, encoding)
        insert_attempts(conn, message_id, attempts, stored)

    return before
