"""Campaign counters: SMS sent / failed / total per (campaign, link).

A send may name a campaign; its parts are counted when the SMSC answers them (sent,
or failed when refused) and again when a receipt says a sent part failed after all
(moved from sent to failed). Counts are SMS, i.e. parts, as an SMSC bills them;
total = sent + failed.

The pipeline only adds to an in-memory dict; a task hands the accumulated deltas to
the store writer once a second (one unit, however many messages), so counting costs
a dict update per answered part. Readers flush first and so see every count made
before their request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import msgspec

from ..store.ops import CampaignDelta, CampaignRow, OpsStore
from .errors import InvalidRequest

log = logging.getLogger(__name__)

PAGE_DEFAULT = 1
LIMIT_DEFAULT = 50
LIMIT_MAX = 100


class Page(msgspec.Struct):
    page: int
    limit: int
    total: int
    totalPages: int  # the document's spelling


class CampaignCounter:
    def __init__(self, store: OpsStore, *, flush_interval_s: float = 1.0) -> None:
        self._store = store
        self._interval = flush_interval_s
        # (campaign, link_id) -> [sent, failed, total]
        self._deltas: dict[tuple[str, int], list[int]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, campaign: str, link_id: int, sent: int, failed: int, total: int) -> None:
        key = (campaign, link_id)
        d = self._deltas.get(key)
        if d is None:
            self._deltas[key] = [sent, failed, total]
        else:
            d[0] += sent
            d[1] += failed
            d[2] += total

    def _take(self) -> list[CampaignDelta]:
        if not self._deltas:
            return []
        deltas, self._deltas = self._deltas, {}
        return [(c, link, d[0], d[1], d[2]) for (c, link), d in deltas.items()]

    def flush_nowait(self) -> None:
        self._store.add_campaign_deltas_nowait(self._take())

    async def flush(self) -> None:
        await self._store.add_campaign_deltas(self._take())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.flush_nowait()
            except Exception:  # the store is closing; the final flush reports it
                log.warning("campaign counters not flushed", exc_info=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="campaign-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def page(self, page: int, limit: int) -> tuple[list[CampaignRow], Page]:
        await self.flush()
        rows, total = await self._store.campaign_page((page - 1) * limit, limit)
        return rows, Page(page, limit, total, math.ceil(total / limit))

    async def top(self, limit: int) -> list[tuple[str, int]]:
        await self.flush()
        return await self._store.top_campaigns(limit)


def parse_page(page: str | None, limit: str | None) -> tuple[int, int]:
    """`page` and `limit` query values: defaults 1 and 50; limit capped at 100."""
    p = _positive(page, "page", PAGE_DEFAULT)
    n = _positive(limit, "limit", LIMIT_DEFAULT)
    return p, min(n, LIMIT_MAX)


def _positive(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    text = raw.strip()
    # isascii: int() takes non-ASCII digits and "1_0"; a query value is plain digits.
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
        raise InvalidRequest(f"{name} must be a positive integer")
    return int(text)
