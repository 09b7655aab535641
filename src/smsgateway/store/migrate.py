"""Versioned schema migrations.

Files `migrations/NNNN_name.sql` are applied in number order, each in its own
transaction together with its row in `schema_version`, so a crash mid-migration
leaves the previous version intact. Applied versions are skipped, which makes
opening an up-to-date database a no-op. A database newer than this build is refused
rather than guessed at.

Statements are split with `sqlite3.complete_statement` line by line (see the note at
the top of 0001), because `executescript` would commit the surrounding transaction.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources

from .errors import StoreError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    root = resources.files("smsgateway.store").joinpath("migrations")
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        m = _NAME.match(entry.name)
        if not m:
            continue
        version = int(m.group(1))
        if version in found:
            raise StoreError(f"two migrations numbered {version}")
        found[version] = Migration(version, entry.name, entry.read_text("utf-8"))
    versions = sorted(found)
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(f"migration numbers must run 1..n without gaps, got {versions}")
    return [found[v] for v in versions]


def split_statements(sql: str) -> list[str]:
    statements: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    leftover = "\n".join(
        ln for ln in buf.splitlines() if ln.strip() and not ln.strip().startswith("--")
    )
    if leftover:
        raise StoreError(f"unterminated SQL statement: {leftover[:80]!r}")
    return statements


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def apply(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Bring the schema up to date; return the versions applied now."""
    if conn.isolation_level is not None:
        raise ValueError("migrations need a connection in autocommit mode")
    migrations = available() if migrations is None else migrations
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    applied: list[int] = []
    latest = migrations[-1].version if migrations else 0
    for mig in migrations:
        # Re-read the version inside each write transaction: another process opening
        # the same file at the same moment may have applied it first.
        conn.execute("BEGIN IMMEDIATE")
        try:
            have = current_version(conn)
            if have > latest:
                raise StoreError(
                    f"database schema version {have} is newer than this build ({latest})"
                )
            if mig.version <= have:
                conn.execute("ROLLBACK")
                continue
            for stmt in split_statements(mig.sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (mig.version, mig.name, int(time.time() * 1000)),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(mig.version)
    if not migrations:
        return applied
    have = current_version(conn)
    if have > latest:
        raise StoreError(f"database schema version {have} is newer than this build ({latest})")
    return applied
