"""Inbound SMS: one place where every received message is stored and handed on.

SMPP MO (deliver_sm / data_sm, through `MessageService._store_inbound`) and SMS that
linked phones report (the device channel) call `InboundService.receive`. Parts of a
concatenated SMS are kept in the store until the set is complete (`receive_part`),
so each part can be acknowledged at once and a restart loses none.

Hooks (`add_hook`) run inside the same writer unit as the inbound insert: what a hook
writes (the numbers service's otp_received outbox row) commits with the SMS or not at
all. A hook may return a callback, run on the event loop after the commit (metrics,
waking the webhook deliverer): the writer may run a unit twice, so nothing but the
connection may be touched inside it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Protocol

from ..smpp import text as smpp_text
from ..smpp.constants import ESM_CLASS_UDHI
from ..smpp.pdu import DataSm, DeliverSm
from ..store import inbound as units
from ..store.models import InboundRow
from ..store.sqlite import SqliteStore
from .ids import uuid7
from .metrics import METRICS, FastCounter

log = logging.getLogger(__name__)

_MESSAGE_PAYLOAD = 0x0424
DUPLICATE_WINDOW_S = 120.0
_DEVICE_BASE = 1_000_000  # channel ids of linked phones start here (COORD.md)

INBOUND_MESSAGES = FastCounter(
    "smsgateway_inbound_messages",
    "Inbound SMS stored (whole messages; parts of concatenated SMS count once joined)",
    ["kind"],
)
INBOUND_PARTS = FastCounter(
    "smsgateway_inbound_parts", "Parts of concatenated inbound SMS received"
)
METRICS.registry.register(INBOUND_MESSAGES)
METRICS.registry.register(INBOUND_PARTS)
_SMPP = INBOUND_MESSAGES.labels("smpp")
_DEVICE = INBOUND_MESSAGES.labels("device")


class InboundHook(Protocol):
    """Runs in the writer thread inside the inbound row's unit; returns an optional
    callback for the event loop after the commit."""

    def __call__(self, conn: sqlite3.Connection, row: InboundRow) -> Callable[[], None] | None: ...


class InboundService:
    def __init__(
        self,
        store: SqliteStore,
        *,
        clock: Callable[[], float] = time.time,
        part_timeout_s: float = 600.0,
    ) -> None:
        self.store = store
        self._clock = clock
        self.part_timeout_s = part_timeout_s
        self._hooks: list[InboundHook] = []

    def add_hook(self, hook: InboundHook) -> None:
        self._hooks.append(hook)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _duplicate_window_ms(self) -> int:
        # An SMSC sends a part again within seconds or minutes when our resp was lost;
        # a longer window would risk dropping a new message that reuses the reference.
        return int(min(self.part_timeout_s, DUPLICATE_WINDOW_S) * 1000)

    def _store_row(self, conn: sqlite3.Connection, row: InboundRow) -> list[Callable[[], None]]:
        units.insert_inbound(conn, row)
        after: list[Callable[[], None]] = []
        for hook in self._hooks:
            callback = hook(conn, row)
            if callback is not None:
                after.append(callback)
        return after

    @staticmethod
    def _after(callbacks: list[Callable[[], None]]) -> None:
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a metric or a wake-up must never un-store an SMS
                log.exception("inbound after-commit callback failed")

    async def receive(
        self,
        *,
        channel_id: int,
        source: str,
        destination: str,
        text: str,
        received_at_ms: int,
    ) -> str:
        """Store one whole inbound SMS and run the hooks in its unit; its id, committed."""
        row = InboundRow(uuid7(), channel_id, source, destination, text, received_at_ms)
        callbacks = await self.store.write(lambda conn: self._store_row(conn, row))
        (_SMPP if channel_id < _DEVICE_BASE else _DEVICE).inc()
        self._after(callbacks)
        return row.id

    async def receive_part(
        self,
        *,
        channel_id: int,
        source: str,
        destination: str,
        concat: smpp_text.Concat | None,
        text: str,
        received_at_ms: int,
    ) -> str | None:
        """One part of a (possibly) concatenated SMS; the inbound id once the set is
        complete (at once for a message without concatenation info), else None."""
        if concat is None or concat.total <= 1:
            return await self.receive(
                channel_id=channel_id,
                source=source,
                destination=destination,
                text=text,
                received_at_ms=received_at_ms,
            )
        INBOUND_PARTS.inc()
        inbound_id = uuid7()

        def unit(conn: sqlite3.Connection) -> tuple[str | None, list[Callable[[], None]]]:
            joined = units.add_part(
                conn,
                channel_id=channel_id,
                source=source,
                destination=destination,
                reference=concat.reference,
                total=concat.total,
                seq=concat.seq,
                text=text,
                received_at=received_at_ms,
                done_since=received_at_ms - self._duplicate_window_ms(),
            )
            if joined is None:
                return None, []
            row = InboundRow(inbound_id, channel_id, source, destination, joined[0], joined[1])
            return row.id, self._store_row(conn, row)

        stored, callbacks = await self.store.write(unit)
        if stored is not None:
            (_SMPP if channel_id < _DEVICE_BASE else _DEVICE).inc()
            self._after(callbacks)
        return stored

    async def receive_smpp(
        self, link_id: int, default_encoding: str, pdu: DeliverSm | DataSm
    ) -> str | None:
        """A deliver_sm / data_sm that is not a receipt: decoded (GSM 03.38, UCS-2, the
        link's meaning of data_coding 0), joined with its siblings, stored."""
        raw = pdu.short_message if isinstance(pdu, DeliverSm) else b""
        payload = pdu.tlvs.get(_MESSAGE_PAYLOAD)
        if not raw and isinstance(payload, bytes):
            raw = payload
        decoded = smpp_text.decode_short_message(
            raw,
            pdu.data_coding,
            udhi=bool(pdu.esm_class & ESM_CLASS_UDHI),
            default_coding=default_encoding,
        )
        concat = decoded.concat or smpp_text.concat_from_tlvs(pdu.tlvs)
        return await self.receive_part(
            channel_id=link_id,
            source=pdu.source_addr,
            destination=pdu.destination_addr,
            concat=concat,
            text=decoded.text,
            received_at_ms=self._now_ms(),
        )

    async def sweep_parts(self) -> int:
        """Store what arrived of sets that waited too long for their missing parts
        (showing a gap beats losing the text); how many were stored."""
        before = self._now_ms() - int(self.part_timeout_s * 1000)
        forget = self._now_ms() - self._duplicate_window_ms()
        await self.store.write(lambda conn: units.forget_done(conn, forget))
        stale = await self.store.read(lambda conn: units.stale_sets(conn, before))
        stored = 0
        for key in stale:
            inbound_id = uuid7()

            def unit(
                conn: sqlite3.Connection,
                key: tuple[int, str, str, int, int] = key,
                inbound_id: str = inbound_id,
            ) -> list[Callable[[], None]] | None:
                taken = units.take_set(conn, key)
                if taken is None:
                    return None
                row = InboundRow(inbound_id, key[0], key[1], key[2], taken[0], taken[1])
                return self._store_row(conn, row)

            callbacks = await self.store.write(unit)
            if callbacks is not None:
                stored += 1
                log.warning(
                    "inbound SMS stored with parts missing",
                    extra={"channel_id": key[0], "reference": key[3], "total": key[4]},
                )
                self._after(callbacks)
        return stored

    async def run_sweeper(self, every_s: float = 30.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sweep_parts()
            except Exception:
                log.exception("inbound part sweep failed")
