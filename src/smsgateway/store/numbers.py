"""Store access for virtual numbers: number users, operators, numbers and their
assignments, SMS received for them, and the webhook outbox (migration 0008).

Every write is one writer unit, so what belongs together commits together: an
assignment updates the number, the user's summary and the system's summary in one
unit; the inbound hook (`record_inbound_sms`) runs inside the inbound insert's unit.
Units act only through their connection (the writer may run a unit twice).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from .errors import DuplicateError
from .sqlite import SqliteStore

FREE = "free"
ASSIGNED = "assigned"
QUARANTINED = "quarantined"

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

_USER_COLUMNS = (
    "u.id, u.email, u.name, u.manager_id, u.active, u.approved, u.webhook_url,"
    " u.number_format, u.numbers_taken, u.otps_received, u.last_number_at, u.created_at,"
    " m.active"
)


class NumberUserRow(msgspec.Struct, frozen=True):
    id: int
    email: str
    name: str
    manager_id: int | None
    active: bool
    approved: bool
    webhook_url: str
    number_format: str
    numbers_taken: int
    otps_received: int
    last_number_at: int | None
    created_at: int
    # None: no manager (or the manager row is gone); else whether it is active.
    manager_active: bool | None


class OperatorRow(msgspec.Struct, frozen=True):
    id: int
    name: str
    country_id: int
    prefixes: list[str]


class NumberRow(msgspec.Struct, frozen=True):
    phone_number: str
    country_id: int
    operator_id: int | None
    channel: str
    state: str
    user_id: int | None
    assigned_at: int | None
    assigned_until: int | None
    quarantined_until: int | None
    times_assigned: int


class NewNumber(msgspec.Struct, frozen=True):
    phone_number: str
    country_id: int
    operator_id: int | None
    channel: str


class SmsRow(msgspec.Struct, frozen=True):
    id: str
    phone_number: str
    sender: str
    otp_code: str | None
    provider: str
    sms_text: str
    received_at: int
    event_id: str | None


class AssignedNumber(msgspec.Struct, frozen=True):
    """What the inbound hook needs about the number an SMS arrived for."""

    phone_number: str
    channel: str
    user_id: int
    webhook_url: str


class OutboxItem(msgspec.Struct, frozen=True):
    event_id: str
    user_id: int
    body: bytes
    attempts: int
    window_start: int
    webhook_url: str
    webhook_secret_enc: bytes | None  # None: the user is gone


class AttemptRow(msgspec.Struct, frozen=True):
    attempt: int
    at: int
    outcome: str
    status_code: int | None
    error: str
    duration_ms: int


class EventRow(msgspec.Struct, frozen=True):
    event_id: str
    user_id: int
    state: str
    attempts: int
    created_at: int
    next_attempt_at: int
    delivered_at: int | None
    last_error: str
    body: bytes


def _user(row: Sequence[Any]) -> NumberUserRow:
    return NumberUserRow(
        row[0],
        row[1],
        row[2],
        row[3],
        bool(row[4]),
        bool(row[5]),
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        None if row[12] is None else bool(row[12]),
    )


def _operator(row: Sequence[Any]) -> OperatorRow:
    return OperatorRow(row[0], row[1], row[2], [p for p in row[3].split(",") if p])


# -- units the inbound hook runs (inside the inbound insert's transaction) -------------


def assigned_number(conn: sqlite3.Connection, phone_number: str, now: int) -> AssignedNumber | None:
    row = conn.execute(
        "SELECT n.phone_number, n.channel, n.user_id, u.webhook_url FROM numbers n"
        " JOIN number_users u ON u.id = n.user_id"
        " WHERE n.phone_number = ? AND n.state = ? AND n.assigned_until > ?",
        (phone_number, ASSIGNED, now),
    ).fetchone()
    return None if row is None else AssignedNumber(*row)


def record_inbound_sms(
    conn: sqlite3.Connection,
    sms: SmsRow,
    user_id: int,
    event_body: bytes | None,
    now: int,
) -> None:
    """The SMS for its user, the summaries, and (with a body) its outbox event."""
    conn.execute(
        "INSERT OR IGNORE INTO number_sms (id, phone_number, user_id, sender, otp_code,"
        " provider, sms_text, received_at, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sms.id,
            sms.phone_number,
            user_id,
            sms.sender,
            sms.otp_code,
            sms.provider,
            sms.sms_text,
            sms.received_at,
            sms.event_id,
        ),
    )
    if sms.otp_code is not None:
        conn.execute(
            "UPDATE numbers SET otps_received = otps_received + 1 WHERE phone_number = ?",
            (sms.phone_number,),
        )
        conn.execute(
            "UPDATE number_users SET otps_received = otps_received + 1 WHERE id = ?",
            (user_id,),
        )
        conn.execute(
            "UPDATE numbers_summary SET otps_received = otps_received + 1, updated_at = ?"
            " WHERE id = 1",
            (now,),
        )
    if event_body is not None and sms.event_id is not None:
        conn.execute(
            "INSERT OR IGNORE INTO webhook_outbox (event_id, user_id, event, body, state,"
            " created_at, window_start, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (sms.event_id, user_id, "otp_received", event_body, PENDING, now, now, now),
        )


class NumbersStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- users -----------------------------------------------------------------------

    async def create_user(
        self,
        *,
        email: str,
        name: str,
        manager_id: int | None,
        webhook_url: str,
        number_format: str,
        key_hash: str,
        secret_enc: bytes,
        now: int,
    ) -> int | None:
        """The new user's id; None when the manager does not exist."""

        def unit(conn: sqlite3.Connection) -> int | None:
            if manager_id is not None and not _exists(conn, manager_id):
                return None
            if conn.execute("SELECT 1 FROM number_users WHERE email = ?", (email,)).fetchone():
                raise DuplicateError("a number user with this email exists")
            cur = conn.execute(
                "INSERT INTO number_users (email, name, manager_id, webhook_url, number_format,"
                " key_hash, webhook_secret_enc, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    email,
                    name,
                    manager_id,
                    webhook_url,
                    number_format,
                    key_hash,
                    secret_enc,
                    now,
                    now,
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self.store.write(unit)

    async def update_user(self, user_id: int, fields: dict[str, Any], now: int) -> str:
        """ "ok", "missing" (no such user) or "no_manager" (manager_id names nobody)."""
        allowed = {"active", "approved", "manager_id", "webhook_url", "number_format", "name"}
        assert set(fields) <= allowed

        def unit(conn: sqlite3.Connection) -> str:
            if not _exists(conn, user_id):
                return "missing"
            manager = fields.get("manager_id")
            if manager is not None and not _exists(conn, manager):
                return "no_manager"
            if fields:
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(
                    f"UPDATE number_users SET {sets}, updated_at = ? WHERE id = ?",
                    (*fields.values(), now, user_id),
                )
            return "ok"

        return await self.store.write(unit)

    async def set_credentials(
        self, user_id: int, *, key_hash: str | None, secret_enc: bytes | None, now: int
    ) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            if not _exists(conn, user_id):
                return False
            if key_hash is not None:
                conn.execute(
                    "UPDATE number_users SET key_hash = ?, updated_at = ? WHERE id = ?",
                    (key_hash, now, user_id),
                )
            if secret_enc is not None:
                conn.execute(
                    "UPDATE number_users SET webhook_secret_enc = ?, updated_at = ? WHERE id = ?",
                    (secret_enc, now, user_id),
                )
            return True

        return await self.store.write(unit)

    async def get_user(self, user_id: int) -> NumberUserRow | None:
        return await self._one_user("u.id = ?", (user_id,))

    async def user_by_key_hash(self, key_hash: str) -> NumberUserRow | None:
        return await self._one_user("u.key_hash = ?", (key_hash,))

    async def _one_user(self, where: str, params: tuple[Any, ...]) -> NumberUserRow | None:
        def q(conn: sqlite3.Connection) -> NumberUserRow | None:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM number_users u"
                f" LEFT JOIN number_users m ON m.id = u.manager_id WHERE {where}",
                params,
            ).fetchone()
            return None if row is None else _user(row)

        return await self.store.read(q)

    async def list_users(self) -> list[NumberUserRow]:
        def q(conn: sqlite3.Connection) -> list[NumberUserRow]:
            rows = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM number_users u"
                " LEFT JOIN number_users m ON m.id = u.manager_id ORDER BY u.id"
            ).fetchall()
            return [_user(r) for r in rows]

        return await self.store.read(q)

    # -- operators -------------------------------------------------------------------

    async def create_operator(
        self, name: str, country_id: int, prefixes: list[str], now: int
    ) -> int:
        def unit(conn: sqlite3.Connection) -> int:
            try:
                cur = conn.execute(
                    "INSERT INTO number_operators (name, country_id, prefixes, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, country_id, ",".join(prefixes), now),
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateError("an operator with this name exists in that country") from exc
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self.store.write(unit)

    async def list_operators(self) -> list[OperatorRow]:
        def q(conn: sqlite3.Connection) -> list[OperatorRow]:
            rows = conn.execute(
                "SELECT id, name, country_id, prefixes FROM number_operators ORDER BY id"
            ).fetchall()
            return [_operator(r) for r in rows]

        return await self.store.read(q)

    # -- numbers ---------------------------------------------------------------------

    async def import_numbers(self, numbers: Iterable[NewNumber], now: int) -> list[str]:
        """Insert the numbers not yet known; the ones that were already there."""
        items = list(numbers)

        def unit(conn: sqlite3.Connection) -> list[str]:
            existing: list[str] = []
            for n in items:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO numbers (phone_number, country_id, operator_id,"
                    " channel, state, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (n.phone_number, n.country_id, n.operator_id, n.channel, FREE, now),
                )
                if cur.rowcount == 0:
                    existing.append(n.phone_number)
            return existing

        return await self.store.write(unit)

    async def assign(
        self,
        user_id: int,
        country_id: int,
        operator_id: int | None,
        now: int,
        ttl_ms: int,
        quarantine_ms: int,
    ) -> str | None:
        """Take one free number for the user, atomically; None when there is none.

        One writer unit: no other assignment runs between the pick and the update,
        so two requests can never get the same number. Lapsed assignments go to
        quarantine first and quarantines that ended count as free.
        """

        def unit(conn: sqlite3.Connection) -> str | None:
            # Expiry first: lapsed assignments to quarantine, ended quarantines to free;
            # then "free" is one state, which the index serves.
            _expire(conn, now, quarantine_ms)
            op = operator_id
            if op is None:
                row = conn.execute(
                    "SELECT operator_id FROM numbers WHERE country_id = ? AND state = ?"
                    " GROUP BY operator_id ORDER BY COUNT(*) DESC, operator_id LIMIT 1",
                    (country_id, FREE),
                ).fetchone()
                if row is None:
                    return None
                op = row[0]
            row = conn.execute(
                "SELECT phone_number FROM numbers WHERE country_id = ? AND state = ?"
                " AND operator_id IS ? ORDER BY last_assigned_at, phone_number LIMIT 1",
                (country_id, FREE, op),
            ).fetchone()
            if row is None:
                return None
            phone: str = row[0]
            conn.execute(
                "UPDATE numbers SET state = ?, user_id = ?, assigned_at = ?, assigned_until = ?,"
                " quarantined_until = NULL, times_assigned = times_assigned + 1,"
                " last_assigned_at = ? WHERE phone_number = ?",
                (ASSIGNED, user_id, now, now + ttl_ms, now, phone),
            )
            conn.execute(
                "UPDATE number_users SET numbers_taken = numbers_taken + 1, last_number_at = ?"
                " WHERE id = ?",
                (now, user_id),
            )
            conn.execute(
                "UPDATE numbers_summary SET assignments = assignments + 1, updated_at = ?"
                " WHERE id = 1",
                (now,),
            )
            return phone

        return await self.store.write(unit)

    async def release(self, user_id: int, phone_number: str, now: int, quarantine_ms: int) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE numbers SET state = ?, quarantined_until = ?, assigned_until = ?"
                " WHERE phone_number = ? AND user_id = ? AND state = ? AND assigned_until > ?",
                (QUARANTINED, now + quarantine_ms, now, phone_number, user_id, ASSIGNED, now),
            )
            if cur.rowcount == 0:
                return False
            conn.execute(
                "UPDATE numbers_summary SET releases = releases + 1, updated_at = ? WHERE id = 1",
                (now,),
            )
            return True

        return await self.store.write(unit)

    async def expire(self, now: int, quarantine_ms: int) -> int:
        return await self.store.write(lambda conn: _expire(conn, now, quarantine_ms))

    async def my_numbers(self, user_id: int, now: int) -> list[NumberRow]:
        def q(conn: sqlite3.Connection) -> list[NumberRow]:
            rows = conn.execute(
                f"SELECT {_NUMBER_COLUMNS} FROM numbers WHERE user_id = ? AND state = ?"
                " AND assigned_until > ? ORDER BY assigned_at, phone_number",
                (user_id, ASSIGNED, now),
            ).fetchall()
            return [NumberRow(*r) for r in rows]

        return await self.store.read(q)

    async def list_numbers(
        self, state: str | None, country_id: int | None, after: str, limit: int
    ) -> list[NumberRow]:
        """Numbers in phone-number order after `after` (paging), optionally filtered."""

        def q(conn: sqlite3.Connection) -> list[NumberRow]:
            sql = f"SELECT {_NUMBER_COLUMNS} FROM numbers WHERE phone_number > ?"
            params: list[Any] = [after]
            if state is not None:
                sql += " AND state = ?"
                params.append(state)
            if country_id is not None:
                sql += " AND country_id = ?"
                params.append(country_id)
            rows = conn.execute(sql + " ORDER BY phone_number LIMIT ?", (*params, limit))
            return [NumberRow(*r) for r in rows.fetchall()]

        return await self.store.read(q)

    async def get_number(self, phone_number: str) -> NumberRow | None:
        def q(conn: sqlite3.Connection) -> NumberRow | None:
            row = conn.execute(
                f"SELECT {_NUMBER_COLUMNS} FROM numbers WHERE phone_number = ?", (phone_number,)
            ).fetchone()
            return None if row is None else NumberRow(*row)

        return await self.store.read(q)

    async def sms_for_user(
        self, user_id: int, phone_number: str | None, limit: int
    ) -> list[SmsRow]:
        def q(conn: sqlite3.Connection) -> list[SmsRow]:
            sql = (
                "SELECT id, phone_number, sender, otp_code, provider, sms_text, received_at,"
                " event_id FROM number_sms WHERE user_id = ?"
            )
            params: tuple[Any, ...] = (user_id,)
            if phone_number is not None:
                sql += " AND phone_number = ?"
                params += (phone_number,)
            rows = conn.execute(
                sql + " ORDER BY received_at DESC, id DESC LIMIT ?", (*params, limit)
            ).fetchall()
            return [SmsRow(*r) for r in rows]

        return await self.store.read(q)

    async def summary(self) -> dict[str, int]:
        def q(conn: sqlite3.Connection) -> dict[str, int]:
            row = conn.execute(
                "SELECT assignments, releases, otps_received FROM numbers_summary WHERE id = 1"
            ).fetchone()
            counts = dict(
                conn.execute("SELECT state, COUNT(*) FROM numbers GROUP BY state").fetchall()
            )
            return {
                "assignments": row[0],
                "releases": row[1],
                "otps_received": row[2],
                **{f"numbers_{state}": int(n) for state, n in counts.items()},
            }

        return await self.store.read(q)

    # -- outbox ----------------------------------------------------------------------

    async def due_events(
        self, now: int, skip_users: Sequence[int], skip_events: Sequence[str], limit: int
    ) -> list[OutboxItem]:
        def q(conn: sqlite3.Connection) -> list[OutboxItem]:
            sql = (
                "SELECT o.event_id, o.user_id, o.body, o.attempts, o.window_start,"
                " COALESCE(u.webhook_url, ''), u.webhook_secret_enc FROM webhook_outbox o"
                " LEFT JOIN number_users u ON u.id = o.user_id"
                " WHERE o.state = ? AND o.next_attempt_at <= ?"
            )
            params: list[Any] = [PENDING, now]
            if skip_users:
                sql += f" AND o.user_id NOT IN ({','.join('?' * len(skip_users))})"
                params += skip_users
            if skip_events:
                sql += f" AND o.event_id NOT IN ({','.join('?' * len(skip_events))})"
                params += skip_events
            rows = conn.execute(
                sql + " ORDER BY o.next_attempt_at, o.event_id LIMIT ?", (*params, limit)
            ).fetchall()
            return [OutboxItem(*r) for r in rows]

        return await self.store.read(q)

    async def next_due_at(
        self, skip_users: Sequence[int], skip_events: Sequence[str]
    ) -> int | None:
        """When the next event not in flight (and not of a busy receiver) falls due."""

        def q(conn: sqlite3.Connection) -> int | None:
            sql = "SELECT MIN(next_attempt_at) FROM webhook_outbox WHERE state = ?"
            params: list[Any] = [PENDING]
            if skip_users:
                sql += f" AND user_id NOT IN ({','.join('?' * len(skip_users))})"
                params += skip_users
            if skip_events:
                sql += f" AND event_id NOT IN ({','.join('?' * len(skip_events))})"
                params += skip_events
            row = conn.execute(sql, params).fetchone()
            return None if row is None else row[0]

        return await self.store.read(q)

    async def backlog(self) -> int:
        def q(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM webhook_outbox WHERE state = ?", (PENDING,)
            ).fetchone()
            return int(row[0])

        return await self.store.read(q)

    async def record_attempt(
        self,
        event_id: str,
        *,
        attempt: int,
        at: int,
        outcome: str,
        status_code: int | None,
        error: str,
        duration_ms: int,
        state: str,
        next_attempt_at: int,
    ) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO webhook_attempts (event_id, attempt, at, outcome, status_code,"
                " error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_id, attempt, at, outcome, status_code, error, duration_ms),
            )
            conn.execute(
                "UPDATE webhook_outbox SET attempts = ?, state = ?, next_attempt_at = ?,"
                " last_error = ?, delivered_at = ? WHERE event_id = ?",
                (
                    attempt,
                    state,
                    next_attempt_at,
                    error,
                    at if state == DELIVERED else None,
                    event_id,
                ),
            )

        await self.store.write(unit)

    async def redeliver(self, event_id: str, now: int) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE webhook_outbox SET state = ?, window_start = ?, next_attempt_at = ?,"
                " delivered_at = NULL WHERE event_id = ?",
                (PENDING, now, now, event_id),
            )
            return cur.rowcount > 0

        return await self.store.write(unit)

    async def get_event(self, event_id: str) -> tuple[EventRow, list[AttemptRow]] | None:
        def q(conn: sqlite3.Connection) -> tuple[EventRow, list[AttemptRow]] | None:
            row = conn.execute(
                "SELECT event_id, user_id, state, attempts, created_at, next_attempt_at,"
                " delivered_at, last_error, body FROM webhook_outbox WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                return None
            attempts = conn.execute(
                "SELECT attempt, at, outcome, status_code, error, duration_ms"
                " FROM webhook_attempts WHERE event_id = ? ORDER BY id",
                (event_id,),
            ).fetchall()
            return EventRow(*row), [AttemptRow(*a) for a in attempts]

        return await self.store.read(q)

    async def events_for_user(self, user_id: int, limit: int = 100) -> list[EventRow]:
        def q(conn: sqlite3.Connection) -> list[EventRow]:
            rows = conn.execute(
                "SELECT event_id, user_id, state, attempts, created_at, next_attempt_at,"
                " delivered_at, last_error, body FROM webhook_outbox WHERE user_id = ?"
                " ORDER BY created_at DESC, event_id DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
            return [EventRow(*r) for r in rows]

        return await self.store.read(q)


_NUMBER_COLUMNS = (
    "phone_number, country_id, operator_id, channel, state, user_id, assigned_at,"
    " assigned_until, quarantined_until, times_assigned"
)


def _exists(conn: sqlite3.Connection, user_id: int) -> bool:
    return (
        conn.execute("SELECT 1 FROM number_users WHERE id = ?", (user_id,)).fetchone() is not None
    )


def _expire(conn: sqlite3.Connection, now: int, quarantine_ms: int) -> int:
    """Lapsed assignments go to quarantine; ended quarantines go back to free."""
    moved = conn.execute(
        "UPDATE numbers SET state = ?, quarantined_until = assigned_until + ?"
        " WHERE state = ? AND assigned_until <= ?",
        (QUARANTINED, quarantine_ms, ASSIGNED, now),
    ).rowcount
    moved += conn.execute(
        "UPDATE numbers SET state = ?, user_id = NULL WHERE state = ? AND quarantined_until <= ?",
        (FREE, QUARANTINED, now),
    ).rowcount
    return moved
