"""Store access for the operations side: campaign counters and stored filters.

A thin wrapper over `SqliteStore`'s public units (`write`, `submit_nowait`, `read`)
rather than more methods on the store class, so this can change without touching the
file the message pipeline lives in. Every value is a `?` parameter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import msgspec

from .sqlite import SqliteStore, now_ms


class CampaignRow(msgspec.Struct, frozen=True):
    campaign: str
    link_id: int
    sent: int
    failed: int
    total: int
    updated_at: int


class FilterRow(msgspec.Struct, frozen=True):
    name: str
    active: bool
    mode: str
    description: str
    rule: str
    updated_at: int
    updated_by: str


# (campaign, link_id, sent delta, failed delta, total delta)
CampaignDelta = tuple[str, int, int, int, int]

_UPSERT_DELTA = (
    "INSERT INTO campaign_stats (campaign, link_id, sent, failed, total, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (campaign, link_id) DO UPDATE SET"
    " sent = sent + excluded.sent, failed = failed + excluded.failed,"
    " total = total + excluded.total, updated_at = excluded.updated_at"
)


class OpsStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- campaigns ------------------------------------------------------------------

    @staticmethod
    def _delta_unit(deltas: Sequence[CampaignDelta]) -> Callable[[sqlite3.Connection], None]:
        ts = now_ms()
        rows = [(*d, ts) for d in deltas]

        def unit(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT_DELTA, rows)

        return unit

    def add_campaign_deltas_nowait(self, deltas: Sequence[CampaignDelta]) -> None:
        if deltas:
            self.store.submit_nowait(self._delta_unit(deltas))

    async def add_campaign_deltas(self, deltas: Sequence[CampaignDelta]) -> None:
        if deltas:
            await self.store.write(self._delta_unit(deltas))

    async def campaign_page(self, offset: int, limit: int) -> tuple[list[CampaignRow], int]:
        """One page of (campaign, link) rows in a stable order, and the row count."""

        def q(conn: sqlite3.Connection) -> tuple[list[CampaignRow], int]:
            conn.execute("BEGIN")  # one snapshot for the page and its count
            total = int(conn.execute("SELECT COUNT(*) FROM campaign_stats").fetchone()[0])
            rows = conn.execute(
                "SELECT campaign, link_id, sent, failed, total, updated_at FROM campaign_stats"
                " ORDER BY campaign, link_id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            conn.execute("COMMIT")
            return [CampaignRow(*r) for r in rows], total

        return await self.store.read(q)

    async def top_campaigns(self, limit: int) -> list[tuple[str, int]]:
        """Campaigns with the most SMS over all links, most first."""

        def q(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = conn.execute(
                "SELECT campaign, SUM(total) AS n FROM campaign_stats GROUP BY campaign"
                " ORDER BY n DESC, campaign LIMIT ?",
                (limit,),
            ).fetchall()
            return [(r[0], int(r[1])) for r in rows]

        return await self.store.read(q)

    # -- filters --------------------------------------------------------------------

    async def list_filters(self) -> list[FilterRow]:
        def q(conn: sqlite3.Connection) -> list[FilterRow]:
            rows = conn.execute(
                "SELECT name, active, mode, description, rule, updated_at, updated_by"
                " FROM filters ORDER BY name"
            ).fetchall()
            return [FilterRow(r[0], bool(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]

        return await self.store.read(q)

    async def upsert_filter(self, row: FilterRow) -> None:
        values = (
            row.name,
            int(row.active),
            row.mode,
            row.description,
            row.rule,
            row.updated_at,
            row.updated_by,
        )
        actor = row.updated_by

        def unit(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO filters (name, active, mode, description, rule, updated_at,"
                " updated_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " active = excluded.active, mode = excluded.mode,"
                " description = excluded.description, rule = excluded.rule,"
                " updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                values,
            )
            _audit(conn, actor, "filter.put", f"filter:{row.name}", row.rule)

        await self.store.write(unit)

    async def delete_filter(self, name: str, actor: str) -> bool:
        def unit(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM filters WHERE name = ?", (name,))
            if cur.rowcount:
                _audit(conn, actor, "filter.delete", f"filter:{name}", "")
            return cur.rowcount > 0

        return await self.store.write(unit)


def _audit(conn: sqlite3.Connection, actor: str, action: str, target: str, detail: str) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (now_ms(), actor, action, target, detail),
    )
