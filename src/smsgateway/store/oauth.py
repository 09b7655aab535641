"""Store access for OAuth clients (issue 11): a thin wrapper over `SqliteStore`'s
public units, like store/ops.py. Every value is a `?` parameter."""

from __future__ import annotations

import sqlite3

import msgspec

from .errors import DuplicateError
from .sqlite import SqliteStore, now_ms

_COLUMNS = "client_id, name, secret_hash, scopes, created_at, created_by"


class OAuthClientRow(msgspec.Struct, frozen=True):
    client_id: str
    name: str
    secret_hash: str
    scopes: tuple[str, ...]
    created_at: int
    created_by: str


def _row(r: tuple[str, str, str, str, int, str]) -> OAuthClientRow:
    return OAuthClientRow(r[0], r[1], r[2], tuple(r[3].split()), r[4], r[5])


class OAuthStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def create_client(
        self, client_id: str, name: str, secret_hash: str, scopes: list[str], actor: str
    ) -> OAuthClientRow:
        row = OAuthClientRow(client_id, name, secret_hash, tuple(scopes), now_ms(), actor)

        def unit(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO oauth_clients ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (client_id, name, secret_hash, " ".join(scopes), row.created_at, actor),
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateError(f"oauth client {client_id} exists") from exc
            conn.execute(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (row.created_at, actor, "oauth_client.create", f"oauth_client:{client_id}", name),
            )

        await self.store.write(unit)
        return row

    async def get_client(self, client_id: str) -> OAuthClientRow | None:
        def q(conn: sqlite3.Connection) -> OAuthClientRow | None:
            r = conn.execute(
                f"SELECT {_COLUMNS} FROM oauth_clients WHERE client_id = ?", (client_id,)
            ).fetchone()
            return _row(r) if r else None

        return await self.store.read(q)

    async def list_clients(self) -> list[OAuthClientRow]:
        def q(conn: sqlite3.Connection) -> list[OAuthClientRow]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM oauth_clients ORDER BY created_at, client_id"
            ).fetchall()
            return [_row(r) for r in rows]

        return await self.store.read(q)

    async def delete_client(self, client_id: str, actor: str) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            gone = conn.execute(
                "DELETE FROM oauth_clients WHERE client_id = ?", (client_id,)
            ).rowcount
            if gone:
                conn.execute(
                    "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, '')",
                    (now_ms(), actor, "oauth_client.delete", f"oauth_client:{client_id}"),
                )
            return bool(gone)

        return await self.store.write(unit)
