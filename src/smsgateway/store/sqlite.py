"""The SQLite store: one database file in WAL mode.

Connections, and why:

- one **writer** connection, owned by the group-committing writer thread
  (`writer.py`); every write goes through it, in submission order;
- one **loop reader** connection used directly on the event loop for point lookups
  by primary or unique key (user by email, app by id, message by id, link states).
  Under WAL a reader never waits for the writer, and these queries cost tens of
  microseconds, less than a hop to a thread and back. Every statement runs in
  autocommit and its cursor is drained at once, so no read snapshot is held open
  (that would both show stale rows and block checkpoints). These methods are
  `async def` all the same, so a PostgreSQL store can offer the same interface;
- a small **reader pool** (`read()`), each thread with its own connection, for reads
  that scan (listings, counts over messages, the dispatcher's queued work).

Pragmas: `journal_mode=WAL` (persistent), `synchronous=NORMAL` (durable across
process crashes; a power loss may drop the last commits but never corrupts; never
OFF), `foreign_keys=ON`, a busy timeout on every connection, and readers are
`query_only`.

No SQL here is built from values: every value is a `?` parameter. The only
generated SQL text is the column lists (from struct field names) and `?` lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ..core.status import ALL_STATES, FINAL_STATES, PartState, rollup
from . import migrate
from .errors import DuplicateError, StoreError, StoreUnavailable, translate
from .models import (
    AppRow,
    AuditRow,
    DeleteResult,
    IdemRow,
    InboundRow,
    LinkStateRow,
    MessageRow,
    MessageWithParts,
    PartRow,
    PartUpdate,
    QueuedPart,
    ReceiptMatch,
    UserRow,
    UserWithApp,
)
from .sensitive import RETURNING_SEALED, wipe_if_final
from .writer import DEFAULT_MAX_BATCH, Writer

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 5000
IDEM_DEFAULT_TTL_MS = 7 * 24 * 3600 * 1000
_WAL_SIZE_LIMIT = 64 * 1024 * 1024

_MSG_COLS = ", ".join(MessageRow.__struct_fields__)
_MSG_PARAMS = ", ".join("?" * len(MessageRow.__struct_fields__))
_PART_COLS = ", ".join(PartRow.__struct_fields__)
_PART_PARAMS = ", ".join("?" * len(PartRow.__struct_fields__))
_FINAL_SQL = ", ".join(f"'{s}'" for s in sorted(FINAL_STATES))  # constants, not input


_NON_DIGITS = re.compile(r"[^0-9]")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _connect(path: Path, busy_timeout_ms: int, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=256,
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _user(row: tuple[Any, ...]) -> UserRow:
    return UserRow(row[0], row[1], row[2], bool(row[3]), row[4])


_DEAD_LETTER = MessageRow.__struct_fields__.index("dead_letter")


def _message(row: tuple[Any, ...]) -> MessageRow:
    # SQLite hands dead_letter back as 0/1, the struct says bool.
    values = list(row)
    values[_DEAD_LETTER] = bool(values[_DEAD_LETTER])
    return MessageRow(*values)


def _link_state(row: tuple[Any, ...]) -> LinkStateRow:
    return LinkStateRow(row[0], bool(row[1]), row[2], row[3], row[4])


def _idem(row: tuple[Any, ...]) -> IdemRow:
    return IdemRow(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6])


def _rollup_message(conn: sqlite3.Connection, message_id: str, at: int, link_id: int | None) -> str:
    """Recompute and store the message status from its parts (inside a unit)."""
    parts = conn.execute(
        "SELECT state, error FROM parts WHERE message_id = ? ORDER BY seq", (message_id,)
    ).fetchall()
    status = rollup(state for state, _ in parts)
    error = ""
    if status in FINAL_STATES and status != PartState.DELIVERED:
        error = next((err for state, err in parts if state == status and err), "")
    cur = conn.execute(
        "UPDATE messages SET status = ?, error = ?, updated_at = ?,"
        " link_id = COALESCE(?, link_id) WHERE id = ?" + RETURNING_SEALED,
        (status, error, at, link_id, message_id),
    )
    wipe_if_final(conn, cur, message_id, status)
    return status


def _digits(number: str) -> str:
    return _NON_DIGITS.sub("", number)


def _same_number(a: str, b: str) -> bool:
    """The same handset, written with or without its country code (TON varies)."""
    if a == b:
        return True
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return len(short) >= 7 and long.endswith(short)


class SqliteStore:
    """Typed, parameterised access to the gateway's SQLite database.

    Build it with `await SqliteStore.open(path)`; stop it with `await close()`.
    Writes return after their COMMIT; `*_nowait` writes return at once.
    """

    def __init__(
        self,
        path: Path,
        writer: Writer,
        writer_conn: sqlite3.Connection,
        loop_conn: sqlite3.Connection,
        *,
        busy_timeout_ms: int,
        read_threads: int,
    ) -> None:
        self.path = path
        self._writer = writer
        self._writer_conn = writer_conn
        self._loop_conn = loop_conn
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="store-read")
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        max_batch: int = DEFAULT_MAX_BATCH,
        read_threads: int = 2,
    ) -> SqliteStore:
        """Open (creating if needed) the database, apply migrations, start the writer."""
        path = Path(path)
        writer_conn = await asyncio.to_thread(cls._prepare, path, busy_timeout_ms)
        try:
            loop_conn = _connect(path, busy_timeout_ms, readonly=True)
        except BaseException:
            writer_conn.close()
            raise
        writer = Writer(writer_conn, max_batch=max_batch)
        return cls(
            path,
            writer,
            writer_conn,
            loop_conn,
            busy_timeout_ms=busy_timeout_ms,
            read_threads=read_threads,
        )

    @staticmethod
    def _prepare(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(path, busy_timeout_ms, readonly=False)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch to WAL (journal_mode is {mode})")
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")
            migrate.apply(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Drain queued writes, stop the writer, close every connection."""
        if self._closed:
            return
        self._closed = True
        await self._writer.close()
        await asyncio.to_thread(self._pool.shutdown, True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._loop_conn.close()

        def finish() -> None:
            with contextlib.suppress(sqlite3.Error):
                self._writer_conn.execute("PRAGMA optimize")
            # Last connection out checkpoints and removes the WAL file.
            self._writer_conn.close()

        await asyncio.to_thread(finish)

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def writer_batches(self) -> int:
        """Transactions committed (or attempted) by the writer: for metrics."""
        return self._writer.batches

    @property
    def writer_units(self) -> int:
        """Units run by the writer; units / batches is the group-commit factor."""
        return self._writer.units

    # -- generic access ---------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a unit of work on the writer; return its result after COMMIT."""
        return await self._writer.call(fn)

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`write` for callbacks: the future settles after the unit's COMMIT."""
        return self._writer.submit(fn)

    def submit_nowait(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue a unit nobody waits for (FIFO with awaited ones); errors are logged."""
        self._writer.submit_nowait(fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read in the reader pool, on that thread's own connection."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run_read, fn)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self._busy_timeout_ms, readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._reader()
            try:
                return fn(conn)
            finally:
                # A read may BEGIN for a consistent snapshot; never leave it open.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        try:
            cur = self._loop_conn.execute(sql, params)
            row: tuple[Any, ...] | None = cur.fetchone()
            cur.close()
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._loop_conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    # -- users and apps ---------------------------------------------------------

    async def create_user_with_app(
        self,
        email: str,
        password_hash: str,
        is_admin: bool,
        app_name: str,
        secret_enc: bytes,
        *,
        at: int | None = None,
    ) -> tuple[int, int]:
        """Insert a user and their first app together. Duplicate email: DuplicateError."""
        email = email.strip().lower()
        ts = now_ms() if at is None else at

        def unit(conn: sqlite3.Connection) -> tuple[int, int]:
            try:
                cur = conn.execute(
                    "INSERT INTO users (email, password_hash, is_admin, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (email, password_hash, int(is_admin), ts),
                )
            except sqlite3.IntegrityError as exc:
                if _is_unique_violation(exc):
                    raise DuplicateError("email") from exc
                raise
            user_id = cur.lastrowid
            assert user_id is not None
            cur = conn.execute(
                "INSERT INTO apps (user_id, name, secret_enc, created_at) VALUES (?, ?, ?, ?)",
                (user_id, app_name, secret_enc, ts),
            )
            app_id = cur.lastrowid
            assert app_id is not None
            return user_id, app_id

        return await self.write(unit)

    async def create_app(self, user_id: int, name: str, secret_enc: bytes) -> int:
        """Add an app to an existing user; unknown user: StoreError (foreign key)."""
        ts = now_ms()

        def unit(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO apps (user_id, name, secret_enc, created_at) VALUES (?, ?, ?, ?)",
                (user_id, name, secret_enc, ts),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self.write(unit)

    async def get_user_by_email(self, email: str) -> UserRow | None:
        row = self._one(
            "SELECT id, email, password_hash, is_admin, created_at FROM users WHERE email = ?",
            (email.strip().lower(),),
        )
        return _user(row) if row else None

    async def get_user(self, user_id: int) -> UserRow | None:
        row = self._one(
            "SELECT id, email, password_hash, is_admin, created_at FROM users WHERE id = ?",
            (user_id,),
        )
        return _user(row) if row else None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self.write(
            lambda conn: conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )
        )

    async def delete_user(
        self, user_id: int, *, unless_admin: bool = False, actor: str | None = None
    ) -> DeleteResult:
        """Delete a user and (cascade) their apps; messages stay for history.

        With `unless_admin` an admin is left alone (IS_ADMIN), checked in the same
        unit so a concurrent toggle cannot slip between check and delete. With
        `actor`, an audit row is written in the same unit.
        """

        def unit(conn: sqlite3.Connection) -> DeleteResult:
            row = conn.execute("SELECT is_admin FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                return DeleteResult.NOT_FOUND
            if unless_admin and row[0]:
                return DeleteResult.IS_ADMIN
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
            if actor is not None:
                _audit(conn, actor, "user.delete", f"user:{user_id}", "")
            return DeleteResult.DELETED

        return await self.write(unit)

    async def set_admin(self, user_id: int, flag: bool, *, actor: str | None = None) -> bool:
        """Set the admin flag; False if there is no such user."""

        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("UPDATE users SET is_admin = ? WHERE id = ?", (int(flag), user_id))
            if cur.rowcount and actor is not None:
                _audit(conn, actor, "user.set_admin", f"user:{user_id}", str(flag).lower())
            return cur.rowcount > 0

        return await self.write(unit)

    async def toggle_admin(self, user_id: int, *, actor: str | None = None) -> bool | None:
        """Flip the admin flag atomically; the new value, or None if no such user."""

        def unit(conn: sqlite3.Connection) -> bool | None:
            row = conn.execute(
                "UPDATE users SET is_admin = 1 - is_admin WHERE id = ? RETURNING is_admin",
                (user_id,),
            ).fetchone()
            if row is None:
                return None
            if actor is not None:
                _audit(conn, actor, "user.set_admin", f"user:{user_id}", str(bool(row[0])).lower())
            return bool(row[0])

        return await self.write(unit)

    async def list_users_with_apps(self) -> list[UserWithApp]:
        def q(conn: sqlite3.Connection) -> list[UserWithApp]:
            rows = conn.execute(
                "SELECT u.id, u.email, u.is_admin, u.created_at, a.id, a.name, a.secret_enc"
                " FROM users u LEFT JOIN apps a ON a.user_id = u.id ORDER BY u.id, a.id"
            ).fetchall()
            return [UserWithApp(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

        return await self.read(q)

    async def get_app(self, app_id: int) -> AppRow | None:
        row = self._one(
            "SELECT id, user_id, name, secret_enc, created_at FROM apps WHERE id = ?", (app_id,)
        )
        return AppRow(*row) if row else None

    async def list_apps(self, user_id: int) -> list[AppRow]:
        rows = self._all(
            "SELECT id, user_id, name, secret_enc, created_at FROM apps"
            " WHERE user_id = ? ORDER BY id",
            (user_id,),
        )
        return [AppRow(*r) for r in rows]

    async def count_apps(self) -> int:
        row = self._one("SELECT COUNT(*) FROM apps")
        return int(row[0]) if row else 0

    async def count_users(self) -> int:
        row = self._one("SELECT COUNT(*) FROM users")
        return int(row[0]) if row else 0

    # -- messages -----------------------------------------------------------------

    async def insert_message(
        self, msg: MessageRow, parts: Sequence[PartRow], answer: bytes | None = None
    ) -> MessageRow:
        """Store a message and all its parts in one unit; both or nothing.

        The stored status is the roll-up of the parts' states (so the two can never
        disagree); the stored row is returned. A second message with the same
        (app_id, transaction_id) raises DuplicateError("transaction_id"); one with the
        same (owner, idem_key) DuplicateError("idem_key"). `answer`, if given, is
        stored with it (the answer a repeat of its key gets).
        """
        if not parts:
            raise ValueError("a message needs at least one part")
        seqs = [p.seq for p in parts]
        if any(p.message_id != msg.id for p in parts) or len(set(seqs)) != len(seqs):
            raise ValueError("parts must belong to the message and have distinct seq")
        stored = msgspec.structs.replace(msg, status=rollup(p.state for p in parts))
        msg_values = msgspec.structs.astuple(stored)
        part_values = [msgspec.structs.astuple(p) for p in parts]

        def unit(conn: sqlite3.Connection) -> MessageRow:
            try:
                conn.execute(
                    f"INSERT INTO messages ({_MSG_COLS}) VALUES ({_MSG_PARAMS})", msg_values
                )
            except sqlite3.IntegrityError as exc:
                if _is_unique_violation(exc):
                    text = str(exc)
                    what = next(
                        (k for k in ("transaction_id", "idem_key") if k in text), "message id"
                    )
                    raise DuplicateError(what) from exc
                raise
            conn.executemany(
                f"INSERT INTO parts ({_PART_COLS}) VALUES ({_PART_PARAMS})", part_values
            )
            if answer is not None:
                conn.execute("UPDATE messages SET answer = ? WHERE id = ?", (answer, msg.id))
            return stored

        return await self.write(unit)

    def _parts(self, message_id: str) -> list[PartRow]:
        rows = self._all(
            f"SELECT {_PART_COLS} FROM parts WHERE message_id = ? ORDER BY seq", (message_id,)
        )
        return [PartRow(*r) for r in rows]

    async def get_message(self, app_id: int, message_id: str) -> MessageWithParts | None:
        """The message and its parts, only if it belongs to `app_id`."""
        row = self._one(
            f"SELECT {_MSG_COLS} FROM messages WHERE id = ? AND app_id = ?",
            (message_id, app_id),
        )
        if row is None:
            return None
        return MessageWithParts(_message(row), self._parts(message_id))

    async def get_message_by_transaction(
        self, app_id: int, transaction_id: str
    ) -> MessageWithParts | None:
        row = self._one(
            f"SELECT {_MSG_COLS} FROM messages WHERE app_id = ? AND transaction_id = ?",
            (app_id, transaction_id),
        )
        if row is None:
            return None
        msg = _message(row)
        return MessageWithParts(msg, self._parts(msg.id))

    def _parts_unit(
        self,
        updates: Sequence[PartUpdate],
        parts_total: int = 0,
        answer: bytes | None = None,
        before: Callable[[sqlite3.Connection], None] | None = None,
    ) -> Callable[[sqlite3.Connection], int]:
        for u in updates:
            if u.state not in ALL_STATES:
                raise ValueError(f"unknown part state {u.state!r}")
        rows = [
            (
                u.state,
                u.link_id,
                u.smsc_id,
                u.error,
                u.at,
                int(u.state == PartState.SUBMITTED),
                u.at,
                int(u.state in FINAL_STATES),
                u.at,
                u.message_id,
                u.seq,
            )
            for u in updates
        ]

        def unit(conn: sqlite3.Connection) -> int:
            if before is not None:
                before(conn)  # rows that ride in this unit (attempts, re-cut parts)
            touched: dict[str, tuple[int, int | None]] = {}
            changed = 0
            for u, values in zip(updates, rows, strict=True):
                # A final part never moves again: a late or repeated resp must not
                # undo a receipt that already arrived.
                cur = conn.execute(
                    "UPDATE parts SET state = ?, link_id = COALESCE(?, link_id),"
                    " smsc_id = COALESCE(?, smsc_id), error = ?, updated_at = ?,"
                    " submitted_at = CASE WHEN ? = 1 THEN ? ELSE submitted_at END,"
                    " done_at = CASE WHEN ? = 1 THEN ? ELSE done_at END"
                    " WHERE message_id = ? AND seq = ?"
                    f" AND state NOT IN ({_FINAL_SQL})",
                    values,
                )
                if cur.rowcount:
                    changed += 1
                    prev = touched.get(u.message_id)
                    link = u.link_id if u.link_id is not None else (prev[1] if prev else None)
                    touched[u.message_id] = (max(u.at, prev[0]) if prev else u.at, link)
            if parts_total and changed == parts_total == len(updates):
                # These updates moved every part of the one message: its status
                # follows from them without reading the parts back.
                message_id, (at, link_id) = next(iter(touched.items()))
                status, error = rollup(u.state for u in updates), ""
                if status in FINAL_STATES and status != PartState.DELIVERED:
                    error = next((u.error for u in updates if u.state == status and u.error), "")
                cur = conn.execute(
                    "UPDATE messages SET status = ?, error = ?, updated_at = ?,"
                    " link_id = COALESCE(?, link_id), answer = COALESCE(?, answer)"
                    " WHERE id = ?" + RETURNING_SEALED,
                    (status, error, at, link_id, answer, message_id),
                )
                wipe_if_final(conn, cur, message_id, status)
                return changed
            for message_id, (at, link_id) in touched.items():
                _rollup_message(conn, message_id, at, link_id)
            if answer is not None and updates:
                conn.execute(
                    "UPDATE messages SET answer = ? WHERE id = ?", (answer, updates[0].message_id)
                )
            return changed

        return unit

    async def mark_parts_submitted(self, updates: Sequence[PartUpdate]) -> int:
        """Record submit progress for parts; roll their messages up. Returns parts changed."""
        return await self.write(self._parts_unit(list(updates)))

    def record_submit(
        self,
        message_id: str,
        parts_total: int,
        updates: Sequence[PartUpdate],
        answer: bytes | None = None,
        before: Callable[[sqlite3.Connection], None] | None = None,
    ) -> asyncio.Future[int]:
        """One message's submit outcomes, and the answer its sender got, in one unit.

        `updates` are parts of `message_id` only; `parts_total` is the message's part
        count (when the updates cover every part, the status needs no read-back).
        `answer` (if given) is stored on the message for repeats of its
        transaction_id. `before` runs first in the same unit (rows that must commit
        with these outcomes). The future settles after COMMIT with the parts changed.
        """
        if any(u.message_id != message_id for u in updates):
            raise ValueError("updates must belong to the message")
        return self._writer.submit(self._parts_unit(list(updates), parts_total, answer, before))

    def record_submit_nowait(
        self,
        message_id: str,
        parts_total: int,
        updates: Sequence[PartUpdate],
        before: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """`record_submit` that nobody waits for (held and retried if refused)."""
        self.submit_nowait(self._parts_unit(list(updates), parts_total, None, before))

    async def put_answer(self, message_id: str, answer: bytes) -> None:
        """Store the answer a send got (see `record_submit`), once, before giving it."""
        await self.write(
            lambda conn: conn.execute(
                "UPDATE messages SET answer = ? WHERE id = ?", (answer, message_id)
            )
        )

    async def get_answer(self, app_id: int, transaction_id: str) -> bytes | None:
        """The stored answer of the send that used this transaction_id, if committed."""
        row = self._one(
            "SELECT answer FROM messages WHERE app_id = ? AND transaction_id = ?",
            (app_id, transaction_id),
        )
        return row[0] if row and row[0] is not None else None

    def apply_receipt_soon(
        self,
        link_id: int | None,
        smsc_ids: Sequence[str],
        state: str,
        error: str | None,
        at: int | None = None,
        handset: str | None = None,
    ) -> asyncio.Future[ReceiptMatch | None]:
        """Apply a delivery receipt to the part it names, then roll the message up.

        `smsc_ids` are the id's spellings to try in order (as received, hex, decimal);
        `link_id` None matches on any link. `state` is a part state (see
        `core.status.receipt_state`); `submitted` records nothing but still matches.
        `handset` is the receipt's source address: when given, only parts sent to that
        number match, because an SMSC that restarts may hand out the same ids again.
        Among the parts that carry the id, an open one wins over a final one; a match
        on a final part changes nothing. None when no part matches: the caller may
        hold the receipt until the submit_sm_resp is written. The future settles
        after COMMIT.
        """
        if state not in ALL_STATES:
            raise ValueError(f"unknown part state {state!r}")
        ids = [s for s in dict.fromkeys(smsc_ids) if s]
        ts = now_ms() if at is None else at
        want = _digits(handset) if handset else ""

        def unit(conn: sqlite3.Connection) -> ReceiptMatch | None:
            found = None
            for sid in ids:
                if link_id is None:
                    rows = conn.execute(
                        "SELECT p.message_id, p.seq, p.state, m.app_id, m.status, m.campaign,"
                        " m.destination, m.parts_total FROM parts p"
                        " JOIN messages m ON m.id = p.message_id"
                        " WHERE p.smsc_id = ? ORDER BY p.submitted_at DESC LIMIT 8",
                        (sid,),
                    ).fetchall()
                else:
                    rows = conn.execute(
                        "SELECT p.message_id, p.seq, p.state, m.app_id, m.status, m.campaign,"
                        " m.destination, m.parts_total FROM parts p"
                        " JOIN messages m ON m.id = p.message_id"
                        " WHERE p.smsc_id = ? AND p.link_id = ?"
                        " ORDER BY p.submitted_at DESC LIMIT 8",
                        (sid, link_id),
                    ).fetchall()
                if want:
                    rows = [r for r in rows if _same_number(_digits(r[6]), want)]
                if rows:
                    # The newest open part with this id, else the newest of all.
                    found = next((r for r in rows if r[2] not in FINAL_STATES), rows[0])
                    break
            if found is None:
                return None
            message_id, seq, part_state, app_id, status, campaign, _, parts_total = found
            if state not in FINAL_STATES or part_state in FINAL_STATES:
                return ReceiptMatch(message_id, seq, app_id, part_state, status, False, campaign)
            conn.execute(
                "UPDATE parts SET state = ?, error = ?, done_at = ?, updated_at = ?"
                " WHERE message_id = ? AND seq = ?",
                (state, error, ts, ts, message_id, seq),
            )
            if parts_total == 1:
                # The message is this part: its status is the receipt's, no read-back.
                status = state
                cur = conn.execute(
                    "UPDATE messages SET status = ?, error = ?, updated_at = ? WHERE id = ?"
                    + RETURNING_SEALED,
                    (state, (error or "") if state != PartState.DELIVERED else "", ts, message_id),
                )
                wipe_if_final(conn, cur, message_id, state)
            else:
                status = _rollup_message(conn, message_id, ts, None)
            return ReceiptMatch(message_id, seq, app_id, state, status, True, campaign)

        return self._writer.submit(unit)

    # Awaitable as it is (`await store.apply_receipt(...)` gives the match after COMMIT).
    apply_receipt = apply_receipt_soon

    async def requeue_unacknowledged(self, at: int | None = None) -> int:
        """At start-up: parts left `sending` (no submit_sm_resp seen) go back to
        `queued` to be sent again. Returns how many; the caller counts them as
        possible duplicates. Message statuses are unchanged (`sending` already
        rolls up as `queued`).
        """
        ts = now_ms() if at is None else at

        def unit(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE parts SET state = 'queued', updated_at = ? WHERE state = 'sending'",
                (ts,),
            )
            return cur.rowcount

        return await self.write(unit)

    async def queued_parts(
        self,
        route_ids: Sequence[int] | None,
        limit: int,
        *,
        after: str | None = None,
        at: int | None = None,
    ) -> list[QueuedPart]:
        """Queued parts of up to `limit` messages, oldest message first.

        `limit` counts messages, not parts, so a page never splits a message;
        pass the last message id seen as `after` for the next page. Messages not
        due yet (`not_before`, `next_attempt_at`) and dead letters are skipped.
        `route_ids` None means every route.
        """
        ts = now_ms() if at is None else at
        params: list[Any] = []
        where = ["status = 'queued'", "dead_letter = 0"]
        if route_ids is not None:
            if not route_ids:
                return []
            where.append(f"route_id IN ({_placeholders(len(route_ids))})")
            params.extend(route_ids)
        if after is not None:
            where.append("id > ?")
            params.append(after)
        where.append("(not_before IS NULL OR not_before <= ?)")
        where.append("(next_attempt_at IS NULL OR next_attempt_at <= ?)")
        params.extend((ts, ts, limit))
        sql = (
            "WITH picked AS (SELECT id FROM messages WHERE "
            + " AND ".join(where)
            + " ORDER BY id LIMIT ?)"
            " SELECT p.message_id, p.seq, m.parts_total, m.app_id, m.route_id, m.source,"
            " m.destination, p.short_message, p.data_coding, p.esm_class, p.tlvs,"
            " m.validity_until, m.created_at"
            " FROM picked JOIN messages m ON m.id = picked.id"
            " JOIN parts p ON p.message_id = m.id"
            " WHERE p.state = 'queued' ORDER BY m.id, p.seq"
        )

        def q(conn: sqlite3.Connection) -> list[QueuedPart]:
            return [QueuedPart(*r) for r in conn.execute(sql, params).fetchall()]

        return await self.read(q)

    async def queued_messages(
        self,
        route_ids: Sequence[int] | None = None,
        limit: int | None = None,
        *,
        after: str | None = None,
        at: int | None = None,
    ) -> list[MessageWithParts]:
        """Due queued messages with all their parts (callers pick the unfinished ones),
        oldest first; same filters and paging as `queued_parts`. For start-up."""
        ts = now_ms() if at is None else at
        params: list[Any] = []
        where = ["status = 'queued'", "dead_letter = 0"]
        if route_ids is not None:
            if not route_ids:
                return []
            where.append(f"route_id IN ({_placeholders(len(route_ids))})")
            params.extend(route_ids)
        if after is not None:
            where.append("id > ?")
            params.append(after)
        where.append("(not_before IS NULL OR not_before <= ?)")
        where.append("(next_attempt_at IS NULL OR next_attempt_at <= ?)")
        params.extend((ts, ts, -1 if limit is None else limit))
        msg_sql = (
            f"SELECT {_MSG_COLS} FROM messages WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
        )
        part_sql = (
            f"SELECT {', '.join('p.' + c for c in PartRow.__struct_fields__)} FROM parts p"
            f" JOIN (SELECT id FROM messages WHERE {' AND '.join(where)} ORDER BY id LIMIT ?) q"
            " ON q.id = p.message_id ORDER BY p.message_id, p.seq"
        )

        def q(conn: sqlite3.Connection) -> list[MessageWithParts]:
            # One snapshot for both queries, so parts match their messages.
            conn.execute("BEGIN")
            msgs = [_message(r) for r in conn.execute(msg_sql, params).fetchall()]
            by_id: dict[str, list[PartRow]] = {m.id: [] for m in msgs}
            for r in conn.execute(part_sql, params).fetchall():
                by_id[r[0]].append(PartRow(*r))
            conn.execute("COMMIT")
            return [MessageWithParts(m, by_id[m.id]) for m in msgs]

        return await self.read(q)

    async def max_task_id(self) -> int:
        """Largest task_id stored (0 if none): where to continue numbering."""
        row = self._one("SELECT COALESCE(MAX(task_id), 0) FROM messages")
        return int(row[0]) if row else 0

    async def count_messages(self) -> int:
        def q(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

        return await self.read(q)

    # -- link state and audit -------------------------------------------------

    async def get_link_states(self) -> dict[int, LinkStateRow]:
        rows = self._all("SELECT link_id, enabled, reason, updated_at, updated_by FROM link_state")
        return {r[0]: _link_state(r) for r in rows}

    async def set_link_state(
        self, link_id: int, enabled: bool, reason: str, actor: str, at: int | None = None
    ) -> LinkStateRow:
        """Enable/disable a link durably, with an audit row in the same unit."""
        ts = now_ms() if at is None else at
        row = LinkStateRow(link_id, enabled, reason, ts, actor)

        def unit(conn: sqlite3.Connection) -> LinkStateRow:
            conn.execute(
                "INSERT INTO link_state (link_id, enabled, reason, updated_at, updated_by)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (link_id) DO UPDATE SET"
                " enabled = excluded.enabled, reason = excluded.reason,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (link_id, int(enabled), reason, ts, actor),
            )
            action = "link.enable" if enabled else "link.disable"
            _audit(conn, actor, action, f"link:{link_id}", reason, ts)
            return row

        return await self.write(unit)

    async def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        await self.write(lambda conn: _audit(conn, actor, action, target, detail))

    async def list_audit(self, limit: int = 100) -> list[AuditRow]:
        def q(conn: sqlite3.Connection) -> list[AuditRow]:
            rows = conn.execute(
                "SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [AuditRow(*r) for r in rows]

        return await self.read(q)

    # -- idempotency ----------------------------------------------------------

    async def idem_begin(
        self, scope: str, key: str, request_hash: str, ttl_ms: int, at: int | None = None
    ) -> IdemRow | None:
        """Claim (scope, key) for a new request, or return the row already there.

        None: the key is now ours (in progress) and the caller must finish or
        abort it. A row: a live earlier request holds the key; compare its
        request_hash, then replay its response or report it still in progress.
        An expired row is replaced as if absent.
        """
        ts = now_ms() if at is None else at

        def unit(conn: sqlite3.Connection) -> IdemRow | None:
            row = conn.execute(
                "SELECT scope, key, request_hash, response, in_progress, created_at,"
                " expires_at FROM idempotency WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
            if row is not None:
                if row[6] > ts:
                    return _idem(row)
                conn.execute("DELETE FROM idempotency WHERE scope = ? AND key = ?", (scope, key))
            conn.execute(
                "INSERT INTO idempotency (scope, key, request_hash, response, in_progress,"
                " created_at, expires_at) VALUES (?, ?, ?, NULL, 1, ?, ?)",
                (scope, key, request_hash, ts, ts + ttl_ms),
            )
            return None

        return await self.write(unit)

    async def idem_finish(self, scope: str, key: str, response: bytes) -> None:
        await self.write(
            lambda conn: conn.execute(
                "UPDATE idempotency SET response = ?, in_progress = 0 WHERE scope = ? AND key = ?",
                (response, scope, key),
            )
        )

    async def idem_abort(self, scope: str, key: str) -> None:
        """Release a claimed key after a failure, so a retry can run afresh."""
        await self.write(
            lambda conn: conn.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND in_progress = 1",
                (scope, key),
            )
        )

    async def idem_get(self, scope: str, key: str, at: int | None = None) -> bytes | None:
        """The stored answer for (scope, key), if finished and not expired."""
        row = self._one(
            "SELECT response FROM idempotency WHERE scope = ? AND key = ?"
            " AND in_progress = 0 AND expires_at > ?",
            (scope, key, now_ms() if at is None else at),
        )
        return row[0] if row else None

    def _idem_put_unit(
        self, scope: str, key: str, response: bytes, ttl_ms: int, request_hash: str
    ) -> Callable[[sqlite3.Connection], None]:
        ts = now_ms()
        values = (scope, key, request_hash, response, ts, ts + ttl_ms)

        def unit(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO idempotency (scope, key, request_hash, response, in_progress,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)"
                " ON CONFLICT (scope, key) DO UPDATE SET response = excluded.response,"
                " in_progress = 0, expires_at = excluded.expires_at",
                values,
            )

        return unit

    async def idem_put(
        self,
        scope: str,
        key: str,
        response: bytes,
        ttl_ms: int = IDEM_DEFAULT_TTL_MS,
        request_hash: str = "",
    ) -> None:
        """Store a finished answer without a prior `idem_begin` (insert or replace)."""
        await self.write(self._idem_put_unit(scope, key, response, ttl_ms, request_hash))

    def idem_put_nowait(
        self,
        scope: str,
        key: str,
        response: bytes,
        ttl_ms: int = IDEM_DEFAULT_TTL_MS,
        request_hash: str = "",
    ) -> None:
        self.submit_nowait(self._idem_put_unit(scope, key, response, ttl_ms, request_hash))

    async def idem_purge_expired(self, at: int | None = None) -> int:
        ts = now_ms() if at is None else at
        return await self.write(
            lambda conn: (
                conn.execute("DELETE FROM idempotency WHERE expires_at <= ?", (ts,)).rowcount
            )
        )

    # -- inbound --------------------------------------------------------------

    async def insert_inbound(
        self,
        inbound_id: str,
        link_id: int | None,
        source: str,
        destination: str,
        text: str,
        received_at: int,
    ) -> None:
        values = (inbound_id, link_id, source, destination, text, received_at)
        await self.write(
            lambda conn: conn.execute(
                "INSERT INTO inbound (id, link_id, source, destination, text, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
        )

    async def list_inbound(self, limit: int = 100) -> list[InboundRow]:
        def q(conn: sqlite3.Connection) -> list[InboundRow]:
            rows = conn.execute(
                "SELECT id, link_id, source, destination, text, received_at FROM inbound"
                " ORDER BY received_at DESC, id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            return [InboundRow(*r) for r in rows]

        return await self.read(q)


def _audit(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str,
    detail: str,
    at: int | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now_ms() if at is None else at, actor, action, target, detail),
    )
