"""Schema migrations: applied once, in order, idempotent on reopen; newer refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smsgateway.store import SqliteStore, StoreError, migrate


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_applied_once_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    known = migrate.available()
    assert [m.version for m in known] == list(range(1, len(known) + 1))

    for _ in range(3):
        store = await SqliteStore.open(path)
        await store.close()

    conn = _connect(path)
    try:
        rows = conn.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
        assert rows == [(m.version, m.name) for m in known]
        assert migrate.apply(conn) == []
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {
            "users",
            "apps",
            "messages",
            "parts",
            "link_state",
            "audit",
            "idempotency",
            "inbound",
            "schema_version",
        } <= tables
    finally:
        conn.close()


def test_fresh_apply_reports_versions(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "x.db")
    try:
        assert migrate.apply(conn) == [m.version for m in migrate.available()]
        assert migrate.apply(conn) == []
    finally:
        conn.close()


def test_failed_migration_leaves_previous_version(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "x.db")
    try:
        good = migrate.available()
        bad = migrate.Migration(
            len(good) + 1, "9999_bad.sql", "CREATE TABLE ok_t (a INTEGER);\nNOT SQL AT ALL;\n"
        )
        with pytest.raises(sqlite3.Error):
            migrate.apply(conn, [*good, bad])
        assert migrate.current_version(conn) == len(good)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "ok_t" not in names
    finally:
        conn.close()


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    await store.close()
    conn = _connect(path)
    conn.execute("INSERT INTO schema_version VALUES (999, '0999_future.sql', 0)")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await SqliteStore.open(path)


def test_statement_splitter() -> None:
    sql = (
        "-- comment; with a semicolon\n"
        "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  UPDATE a SET x = 'y';\n"
        "END;\n"
        "-- trailing comment\n"
    )
    stmts = migrate.split_statements(sql)
    assert len(stmts) == 2
    assert stmts[1].startswith("CREATE TRIGGER") and stmts[1].endswith("END;")
    with pytest.raises(StoreError):
        migrate.split_statements("CREATE TABLE b (x INTEGER)\n")
