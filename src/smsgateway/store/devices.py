"""Store access for Android devices: link codes, devices, what each phone reported.

Built on the SqliteStore's public `write` / `read` / `submit_nowait`; every value is a
`?` parameter. Hashes and encrypted blobs come in ready-made: this module never sees
a code, token or key in the clear.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from .sqlite import SqliteStore


class LinkRow(msgspec.Struct, frozen=True):
    id: int
    code_hash: str
    page_hash: str
    code_enc: bytes
    project_id: int
    created_at: int
    expires_at: int
    used_at: int | None


class DeviceRow(msgspec.Struct, frozen=True):
    id: int
    public_id: str
    project_id: int
    name: str
    token_hash: str
    push_token: str | None
    sim_cards: str
    signing_key_enc: bytes
    created_at: int
    last_seen_at: int
    revoked_at: int | None


class DeviceMessageRow(msgspec.Struct, frozen=True):
    message_id: str
    device_id: int
    state: str
    error: str | None
    handed_at: int | None
    updated_at: int


_DEVICE_COLS = ", ".join(DeviceRow.__struct_fields__)
# A device's channel (route) id: 1_000_000 + device id (core.devices.channel).
CHANNEL_ID_BASE = 1_000_000
_LINK_COLS = ", ".join(LinkRow.__struct_fields__)
_DM_COLS = ", ".join(DeviceMessageRow.__struct_fields__)


def _device(row: Sequence[Any]) -> DeviceRow:
    return DeviceRow(*row)


class DeviceStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- link codes ----------------------------------------------------------------

    async def add_link(self, link: LinkRow) -> bool:
        """Store a new link code; False (nothing stored) when a live link has the same
        code, so the caller draws another."""
        cols = [f for f in LinkRow.__struct_fields__ if f != "id"]
        values = tuple(getattr(link, f) for f in cols)

        def unit(conn: sqlite3.Connection) -> bool:
            clash = conn.execute(
                "SELECT 1 FROM device_links WHERE code_hash = ? AND used_at IS NULL"
                " AND expires_at > ?",
                (link.code_hash, link.created_at),
            ).fetchone()
            if clash:
                return False
            marks = ", ".join("?" * len(cols))
            conn.execute(f"INSERT INTO device_links ({', '.join(cols)}) VALUES ({marks})", values)
            return True

        return await self.store.write(unit)

    async def link_by_page(self, page_hash: str) -> LinkRow | None:
        def q(conn: sqlite3.Connection) -> LinkRow | None:
            row = conn.execute(
                f"SELECT {_LINK_COLS} FROM device_links WHERE page_hash = ?", (page_hash,)
            ).fetchone()
            return LinkRow(*row) if row else None

        return await self.store.read(q)

    async def register(
        self,
        code_hash: str,
        now: int,
        make: Any,
    ) -> tuple[DeviceRow, int | None] | None:
        """Spend a one-time code and add its project's device in one unit.

        `make(project_id)` returns the new row's values (without id). The project's
        previous active device is retired in the same unit; returns the new device and
        the retired one's id, or None when the code is unknown, spent or expired.
        """

        def unit(conn: sqlite3.Connection) -> tuple[DeviceRow, int | None] | None:
            spent = conn.execute(
                "UPDATE device_links SET used_at = ? WHERE id = (SELECT id FROM device_links"
                " WHERE code_hash = ? AND used_at IS NULL AND expires_at > ? LIMIT 1)"
                " RETURNING project_id",
                (now, code_hash, now),
            ).fetchone()
            if spent is None:
                return None
            project_id = int(spent[0])
            old = conn.execute(
                "UPDATE devices SET revoked_at = ? WHERE project_id = ? AND revoked_at IS NULL"
                " RETURNING id",
                (now, project_id),
            ).fetchone()
            values: dict[str, Any] = make(project_id)
            cols = [f for f in DeviceRow.__struct_fields__ if f != "id"]
            cur = conn.execute(
                f"INSERT INTO devices ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" RETURNING {_DEVICE_COLS}",
                tuple(values[c] for c in cols),
            )
            return _device(cur.fetchone()), (int(old[0]) if old else None)

        return await self.store.write(unit)

    # -- devices -------------------------------------------------------------------

    async def by_token_hash(self, token_hash: str) -> DeviceRow | None:
        def q(conn: sqlite3.Connection) -> DeviceRow | None:
            row = conn.execute(
                f"SELECT {_DEVICE_COLS} FROM devices WHERE token_hash = ? AND revoked_at IS NULL",
                (token_hash,),
            ).fetchone()
            return _device(row) if row else None

        return await self.store.read(q)

    async def active(self) -> list[DeviceRow]:
        def q(conn: sqlite3.Connection) -> list[DeviceRow]:
            rows = conn.execute(
                f"SELECT {_DEVICE_COLS} FROM devices WHERE revoked_at IS NULL ORDER BY id"
            ).fetchall()
            return [_device(r) for r in rows]

        return await self.store.read(q)

    async def retired_with_queued(self) -> list[DeviceRow]:
        """Retired devices that queued messages still name (by channel id)."""

        def q(conn: sqlite3.Connection) -> list[DeviceRow]:
            rows = conn.execute(
                f"SELECT {_DEVICE_COLS} FROM devices d WHERE revoked_at IS NOT NULL"
                " AND EXISTS (SELECT 1 FROM messages m WHERE m.status = 'queued'"
                " AND m.route_id = ? + d.id) ORDER BY id",
                (CHANNEL_ID_BASE,),
            ).fetchall()
            return [_device(r) for r in rows]

        return await self.store.read(q)

    async def revoke(self, project_id: int, now: int) -> int | None:
        """Retire the project's active device; its id, or None if it had none."""

        def unit(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "UPDATE devices SET revoked_at = ? WHERE project_id = ? AND revoked_at IS NULL"
                " RETURNING id",
                (now, project_id),
            ).fetchone()
            return int(row[0]) if row else None

        return await self.store.write(unit)

    async def forget_project(self, project_id: int, now: int) -> int | None:
        """Retire the device and drop every link code of a deleted project."""

        def unit(conn: sqlite3.Connection) -> int | None:
            conn.execute("DELETE FROM device_links WHERE project_id = ?", (project_id,))
            row = conn.execute(
                "UPDATE devices SET revoked_at = ? WHERE project_id = ? AND revoked_at IS NULL"
                " RETURNING id",
                (now, project_id),
            ).fetchone()
            return int(row[0]) if row else None

        return await self.store.write(unit)

    async def update(self, device_id: int, push_token: str | None, sim_cards: str) -> None:
        await self.store.write(
            lambda conn: conn.execute(
                "UPDATE devices SET push_token = ?, sim_cards = ? WHERE id = ?",
                (push_token, sim_cards, device_id),
            )
        )

    def touch_nowait(self, device_id: int, now: int) -> None:
        self.store.submit_nowait(
            lambda conn: conn.execute(
                "UPDATE devices SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?",
                (now, device_id, now),
            )
        )

    # -- messages the phone was given ------------------------------------------------

    def assign_nowait(self, message_id: str, device_id: int, now: int) -> None:
        """Note that a message is this device's to send (kept if already noted)."""
        self.store.submit_nowait(
            lambda conn: conn.execute(
                f"INSERT INTO device_messages ({_DM_COLS}) VALUES (?, ?, 'Pending', NULL, NULL, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                (message_id, device_id, now),
            )
        )

    def message_state_nowait(
        self,
        message_id: str,
        device_id: int,
        state: str,
        error: str | None,
        now: int,
        *,
        handed: bool = False,
    ) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO device_messages ({_DM_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO UPDATE SET state = excluded.state,"
                " error = excluded.error, updated_at = excluded.updated_at,"
                " handed_at = COALESCE(device_messages.handed_at, excluded.handed_at)",
                (message_id, device_id, state, error, now if handed else None, now),
            )

        self.store.submit_nowait(unit)

    async def messages(self, device_id: int, message_ids: Sequence[str]) -> list[DeviceMessageRow]:
        """The rows of these messages that belong to `device_id`."""
        if not message_ids:
            return []
        marks = ", ".join("?" * len(message_ids))

        def q(conn: sqlite3.Connection) -> list[DeviceMessageRow]:
            rows = conn.execute(
                f"SELECT {_DM_COLS} FROM device_messages WHERE device_id = ?"
                f" AND message_id IN ({marks})",
                (device_id, *message_ids),
            ).fetchall()
            return [DeviceMessageRow(*r) for r in rows]

        return await self.store.read(q)

    async def handed_since(self, device_id: int, since: int) -> list[int]:
        """When this device was handed messages since `since` (for its pacing window
        after a restart)."""

        def q(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT handed_at FROM device_messages WHERE device_id = ? AND handed_at >= ?"
                " ORDER BY handed_at",
                (device_id, since),
            ).fetchall()
            return [int(r[0]) for r in rows]

        return await self.store.read(q)
