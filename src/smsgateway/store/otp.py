"""Store access for OTP projects: projects, API keys, verifications, project messages.

Built on SqliteStore's public `write` / `read`: every write is one writer unit
(group-committed), so a check and the change it decides (an attempt counted, a resend
counted) can never interleave with another request's.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .sqlite import SqliteStore

DAY_MS = 86_400_000
# A message's final states that count as a failure in a project's stats.
_FAILED = ("rejected", "undeliverable", "expired", "failed")


class ProjectRow(msgspec.Struct, frozen=True):
    id: int
    name: str
    settings: str  # JSON, parsed by core/otp/projects.py
    created_at: int
    updated_at: int


class ApiKeyRow(msgspec.Struct, frozen=True):
    key_id: str
    project_id: int
    key_hash: str
    name: str
    created_at: int
    revoked_at: int | None


class VerificationRow(msgspec.Struct, frozen=True):
    id: str
    project_id: int
    destination: str
    code_hash: str
    seed: str
    code_length: int
    status: str  # pending | verified | failed | expired
    attempts_left: int
    sends: int
    is_test: bool
    message_id: str | None
    created_at: int
    expires_at: int
    verified_at: int | None
    updated_at: int


_PROJECT_COLS = ", ".join(ProjectRow.__struct_fields__)
_KEY_COLS = ", ".join(ApiKeyRow.__struct_fields__)
_VER_COLS = ", ".join(VerificationRow.__struct_fields__)
_VER_PARAMS = ", ".join("?" * len(VerificationRow.__struct_fields__))


class Opened(enum.Enum):
    NEW = "new"
    RESENT = "resent"
    MAX_SENDS = "max_sends"


class Checked(enum.Enum):
    VERIFIED = "verified"
    WRONG = "wrong"  # counted; attempts may now be 0 (status failed)
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    MAX_ATTEMPTS = "max_attempts"
    ALREADY_VERIFIED = "already_verified"


class DayCounts(msgspec.Struct):
    day: int  # days since the Unix epoch (UTC)
    otp_sent: int = 0
    otp_verified: int = 0
    otp_failed: int = 0
    otp_expired: int = 0
    custom_sent: int = 0
    custom_delivered: int = 0
    custom_failed: int = 0


def _ver(row: Sequence[Any]) -> VerificationRow:
    values = list(row)
    values[9] = bool(values[9])
    return VerificationRow(*values)


class OtpStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- projects ---------------------------------------------------------------------

    async def create_project(self, name: str, settings: str, at: int) -> ProjectRow:
        def unit(conn: sqlite3.Connection) -> ProjectRow:
            cur = conn.execute(
                "INSERT INTO projects (name, settings, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (name, settings, at, at),
            )
            assert cur.lastrowid is not None
            return ProjectRow(cur.lastrowid, name, settings, at, at)

        return await self.store.write(unit)

    async def get_project(self, project_id: int) -> ProjectRow | None:
        def q(conn: sqlite3.Connection) -> ProjectRow | None:
            row = conn.execute(
                f"SELECT {_PROJECT_COLS} FROM projects WHERE id = ?", (project_id,)
            ).fetchone()
            return ProjectRow(*row) if row else None

        return await self.store.read(q)

    async def list_projects(self) -> list[ProjectRow]:
        def q(conn: sqlite3.Connection) -> list[ProjectRow]:
            rows = conn.execute(f"SELECT {_PROJECT_COLS} FROM projects ORDER BY id").fetchall()
            return [ProjectRow(*r) for r in rows]

        return await self.store.read(q)

    async def update_project(
        self, project_id: int, name: str, settings: str, at: int
    ) -> ProjectRow | None:
        def unit(conn: sqlite3.Connection) -> ProjectRow | None:
            conn.execute(
                "UPDATE projects SET name = ?, settings = ?, updated_at = ? WHERE id = ?",
                (name, settings, at, project_id),
            )
            row = conn.execute(
                f"SELECT {_PROJECT_COLS} FROM projects WHERE id = ?", (project_id,)
            ).fetchone()
            return ProjectRow(*row) if row else None

        return await self.store.write(unit)

    async def delete_project(self, project_id: int) -> bool:
        """The project, its keys and verifications (cascade) and its message index.
        The messages themselves stay, as history."""

        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))
            if cur.rowcount == 0:
                return False
            conn.execute("DELETE FROM project_messages WHERE project_id = ?", (project_id,))
            return True

        return await self.store.write(unit)

    # -- API keys ---------------------------------------------------------------------

    async def add_key(self, row: ApiKeyRow) -> bool:
        """Store a new key; False when its project does not exist (any more)."""

        def unit(conn: sqlite3.Connection) -> bool:
            found = conn.execute("SELECT 1 FROM projects WHERE id = ?", (row.project_id,))
            if found.fetchone() is None:
                return False
            conn.execute(
                f"INSERT INTO project_api_keys ({_KEY_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
                (row.key_id, row.project_id, row.key_hash, row.name, row.created_at, None),
            )
            return True

        return await self.store.write(unit)

    async def list_keys(self, project_id: int) -> list[ApiKeyRow]:
        def q(conn: sqlite3.Connection) -> list[ApiKeyRow]:
            rows = conn.execute(
                f"SELECT {_KEY_COLS} FROM project_api_keys WHERE project_id = ?"
                " ORDER BY created_at, key_id",
                (project_id,),
            ).fetchall()
            return [ApiKeyRow(*r) for r in rows]

        return await self.store.read(q)

    async def revoke_key(self, project_id: int, key_id: str, at: int) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE project_api_keys SET revoked_at = ? WHERE project_id = ? AND key_id = ?"
                " AND revoked_at IS NULL",
                (at, project_id, key_id),
            )
            return cur.rowcount > 0

        return await self.store.write(unit)

    async def key_with_project(self, key_id: str) -> tuple[ApiKeyRow, ProjectRow] | None:
        """A live (unrevoked) key and its project, for authentication."""
        cols = ", ".join(f"k.{c}" for c in ApiKeyRow.__struct_fields__)
        pcols = ", ".join(f"p.{c}" for c in ProjectRow.__struct_fields__)

        def q(conn: sqlite3.Connection) -> tuple[ApiKeyRow, ProjectRow] | None:
            row = conn.execute(
                f"SELECT {cols}, {pcols} FROM project_api_keys k"
                " JOIN projects p ON p.id = k.project_id"
                " WHERE k.key_id = ? AND k.revoked_at IS NULL",
                (key_id,),
            ).fetchone()
            if row is None:
                return None
            n = len(ApiKeyRow.__struct_fields__)
            return ApiKeyRow(*row[:n]), ProjectRow(*row[n:])

        return await self.store.read(q)

    # -- verifications ----------------------------------------------------------------

    async def open_verification(
        self, new: VerificationRow, max_sends: int
    ) -> tuple[Opened, VerificationRow]:
        """The project's pending verification for the number, counted as one more send,
        or `new` inserted. Expired pending rows met on the way are closed. One unit, so
        two sends racing for one number cannot open two verifications."""
        at = new.created_at

        def unit(conn: sqlite3.Connection) -> tuple[Opened, VerificationRow]:
            conn.execute(
                "UPDATE otp_verifications SET status = 'expired', updated_at = ?"
                " WHERE project_id = ? AND destination = ? AND status = 'pending'"
                " AND expires_at <= ?",
                (at, new.project_id, new.destination, at),
            )
            row = conn.execute(
                f"SELECT {_VER_COLS} FROM otp_verifications WHERE project_id = ?"
                " AND destination = ? AND status = 'pending' ORDER BY created_at DESC LIMIT 1",
                (new.project_id, new.destination),
            ).fetchone()
            if row is not None:
                found = _ver(row)
                if found.sends >= max_sends:
                    return Opened.MAX_SENDS, found
                conn.execute(
                    "UPDATE otp_verifications SET sends = sends + 1, updated_at = ? WHERE id = ?",
                    (at, found.id),
                )
                return Opened.RESENT, msgspec.structs.replace(
                    found, sends=found.sends + 1, updated_at=at
                )
            values = list(msgspec.structs.astuple(new))
            values[9] = int(new.is_test)
            conn.execute(
                f"INSERT INTO otp_verifications ({_VER_COLS}) VALUES ({_VER_PARAMS})", values
            )
            return Opened.NEW, new

        return await self.store.write(unit)

    async def drop_verification(self, verification_id: str) -> None:
        """A new verification whose code could not be sent: as if never opened."""
        await self.store.write(
            lambda conn: conn.execute(
                "DELETE FROM otp_verifications WHERE id = ?", (verification_id,)
            )
        )

    async def uncount_send(self, verification_id: str) -> None:
        """A resend that could not be sent does not use up a send."""
        await self.store.write(
            lambda conn: conn.execute(
                "UPDATE otp_verifications SET sends = sends - 1 WHERE id = ? AND sends > 1",
                (verification_id,),
            )
        )

    async def get_verification(
        self, project_id: int, verification_id: str
    ) -> VerificationRow | None:
        def q(conn: sqlite3.Connection) -> VerificationRow | None:
            row = conn.execute(
                f"SELECT {_VER_COLS} FROM otp_verifications WHERE id = ? AND project_id = ?",
                (verification_id, project_id),
            ).fetchone()
            return _ver(row) if row else None

        return await self.store.read(q)

    async def check_code(
        self,
        project_id: int,
        verification_id: str,
        matches: Callable[[VerificationRow], bool],
        at: int,
    ) -> tuple[Checked, VerificationRow | None]:
        """Check a code and count the attempt in one unit: concurrent checks are
        serialised by the writer, so together they can never exceed the limit.

        `matches(row) -> bool` compares the candidate with the stored hash (constant
        time); it runs inside the unit, on the row as it is now.
        """

        def unit(conn: sqlite3.Connection) -> tuple[Checked, VerificationRow | None]:
            row = conn.execute(
                f"SELECT {_VER_COLS} FROM otp_verifications WHERE id = ? AND project_id = ?",
                (verification_id, project_id),
            ).fetchone()
            if row is None:
                return Checked.NOT_FOUND, None
            v = _ver(row)
            if v.status == "verified":
                return Checked.ALREADY_VERIFIED, v
            if v.status == "failed" or (v.status == "pending" and v.attempts_left <= 0):
                return Checked.MAX_ATTEMPTS, v
            if v.status == "expired" or v.expires_at <= at:
                if v.status != "expired":
                    conn.execute(
                        "UPDATE otp_verifications SET status = 'expired', updated_at = ?"
                        " WHERE id = ?",
                        (at, v.id),
                    )
                return Checked.EXPIRED, msgspec.structs.replace(v, status="expired")
            left = v.attempts_left - 1
            if matches(v):
                conn.execute(
                    "UPDATE otp_verifications SET status = 'verified', attempts_left = ?,"
                    " verified_at = ?, updated_at = ? WHERE id = ?",
                    (left, at, at, v.id),
                )
                return Checked.VERIFIED, msgspec.structs.replace(
                    v, status="verified", attempts_left=left, verified_at=at
                )
            status = "pending" if left > 0 else "failed"
            conn.execute(
                "UPDATE otp_verifications SET status = ?, attempts_left = ?, updated_at = ?"
                " WHERE id = ?",
                (status, left, at, v.id),
            )
            return Checked.WRONG, msgspec.structs.replace(v, status=status, attempts_left=left)

        return await self.store.write(unit)

    # -- project messages and stats ---------------------------------------------------

    async def record_messages(
        self, project_id: int, rows: Sequence[tuple[str, str, str | None]], at: int
    ) -> None:
        """Note messages a project sent: (message_id, kind 'otp'|'custom', verification)."""
        values = [(mid, project_id, kind, vid, at) for mid, kind, vid in rows]

        def unit(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO project_messages"
                " (message_id, project_id, kind, verification_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                values,
            )
            for mid, _, kind, vid, _ in values:
                if kind == "otp" and vid is not None:
                    conn.execute(
                        "UPDATE otp_verifications SET message_id = ? WHERE id = ?", (mid, vid)
                    )

        await self.store.write(unit)

    async def stats(self, project_id: int, since_ms: int, now_ms: int) -> list[DayCounts]:
        """Per-day counts (UTC days) from `since_ms`, oldest first; days without
        traffic are absent."""
        failed = ", ".join(f"'{s}'" for s in _FAILED)  # constants, not input

        def q(conn: sqlite3.Connection) -> list[DayCounts]:
            days: dict[int, DayCounts] = {}

            def day(d: int) -> DayCounts:
                found = days.get(d)
                if found is None:
                    found = days[d] = DayCounts(d)
                return found

            conn.execute("BEGIN")  # one snapshot for both tables
            for d, sent, verified, fail, expired in conn.execute(
                "SELECT created_at / ?, COUNT(*),"
                " SUM(CASE WHEN status = 'verified' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'expired' OR (status = 'pending' AND expires_at <= ?)"
                " THEN 1 ELSE 0 END)"
                " FROM otp_verifications WHERE project_id = ? AND is_test = 0"
                " AND created_at >= ? GROUP BY 1",
                (DAY_MS, now_ms, project_id, since_ms),
            ):
                c = day(int(d))
                c.otp_sent, c.otp_verified, c.otp_failed, c.otp_expired = (
                    sent,
                    verified,
                    fail,
                    expired,
                )
            for d, sent, delivered, fail in conn.execute(
                "SELECT pm.created_at / ?, COUNT(*),"
                " SUM(CASE WHEN m.status = 'delivered' THEN 1 ELSE 0 END),"
                f" SUM(CASE WHEN m.status IN ({failed}) THEN 1 ELSE 0 END)"
                " FROM project_messages pm JOIN messages m ON m.id = pm.message_id"
                " WHERE pm.project_id = ? AND pm.kind = 'custom' AND pm.created_at >= ?"
                " GROUP BY 1",
                (DAY_MS, project_id, since_ms),
            ):
                c = day(int(d))
                c.custom_sent, c.custom_delivered, c.custom_failed = sent, delivered, fail
            conn.execute("COMMIT")
            return [days[d] for d in sorted(days)]

        return await self.store.read(q)
