"""The message pipeline: accept (store), route, send, track receipts, answer info.

Every face calls `MessageService.submit/info/check_link`; nothing here knows HTTP or
protobuf. Accepted means stored: `submit` answers only after the message row and its
parts are committed, then waits up to the send budget for the SMSC's answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..settings import MessageSettings
from ..smpp import text as smpp_text
from ..smpp.constants import ESM_CLASS_TYPE_MASK, ESM_CLASS_UDHI
from ..smpp.pdu import DataSm, DeliverSm, encode_tlv_value
from ..smpp.receipt import id_variants, parse_receipt
from ..store.errors import DuplicateError
from ..store.models import (
    MessageRow,
    MessageWithParts,
    PartRow,
    PartUpdate,
    ReceiptMatch,
    encode_tlvs,
)
from ..store.sqlite import SqliteStore
from .channels import PartOutcome, PartSpec, SendJob, SmppLink, SmppPool
from .deadlines import FifoTimers
from .errors import InvalidRequest, MessageNotFound
from .ids import uuid7
from .metrics import METRICS
from .routing import Router
from .stats import PipelineObserver
from .status import PartState, is_final, receipt_state, rollup
from .validation import Address, check_text, parse_destination, parse_source

log = logging.getLogger(__name__)

# Bound once: labels() takes a lock and a lookup on every call.
_PARTS_OK = METRICS.parts_submitted.labels(result="ok")
_PARTS_REFUSED = METRICS.parts_submitted.labels(result="refused")
_RECEIPTS: dict[str, Any] = {}
_EARLY_SWEEP_MIN = 10_000  # held-receipt map size that triggers a sweep of expired ones
# Plain strings: an enum member's .value is a descriptor call, several per message.
_QUEUED = PartState.QUEUED.value
_SUBMITTED = PartState.SUBMITTED.value
_REJECTED = PartState.REJECTED.value


class SendRequest(msgspec.Struct, frozen=True):
    esme: int
    source: str
    destination: str
    message: str
    transaction_id: str = ""
    campaign: str = ""


class SendResult(msgspec.Struct):
    success: bool
    error: str
    esme: int
    transaction_id: str
    message_id: str
    status: str
    sms_ids: list[str]
    task_id: int


class MessageInfo(msgspec.Struct):
    message_id: str
    mode: str
    parts: dict[str, str]
    delivered_count: int
    sent_at: int
    updated_at: int
    transaction_id: str
    task_id: int
    status: str
    error: str


class LinkCheck(msgspec.Struct):
    persist: bool
    system_id: str
    error: str


_result_encoder = msgspec.json.Encoder()
_result_decoder = msgspec.json.Decoder(SendResult)


@dataclass(slots=True)
class _Waiting:
    """A sender waiting, within the send budget, for its message's outcomes."""

    result: SendResult
    # True once the outcomes and this answer are committed; False: budget over.
    stored: asyncio.Future[bool]


@dataclass(slots=True, eq=False)
class _EarlyReceipt:
    """A receipt whose part may not be recorded yet, under every spelling of its id."""

    variants: tuple[str, ...]
    state: str
    error: str | None
    at: int
    expires: float
    handset: str | None = None


@dataclass
class Counters:
    accepted: int = 0
    submitted_parts: int = 0
    refused_parts: int = 0
    resent_parts: int = 0
    receipts: int = 0
    unmatched_receipts: int = 0
    inbound: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class MessageService:
    def __init__(
        self,
        store: SqliteStore,
        router: Router,
        settings: MessageSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.router = router
        self.settings = settings
        self._clock = clock
        self._task_ids = itertools.count(1)
        # A transaction_id's answer is served from here from the moment the send starts
        # until the answer is committed on its message row (not just until the
        # send returns: a retry racing the commit would otherwise see a half answer).
        self._inflight_tx: dict[tuple[int, str], asyncio.Future[SendResult]] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._budgets = FifoTimers(settings.send_budget_s, self._budget_over)
        self._background: set[asyncio.Task[None]] = set()
        self._early: dict[tuple[int, str], _EarlyReceipt] = {}
        self._early_sweep_at = _EARLY_SWEEP_MIN
        self._concat_ref = itertools.count(int(time.time()) & 0xFF)
        self.counters = Counters()
        # Filters and dashboard counts plug in here (core/ops.py); the default is inert.
        self.observer = PipelineObserver()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def start(self) -> None:
        """Seed counters and send again what a crash left unacknowledged."""
        self._task_ids = itertools.count(await self.store.max_task_id() + 1)
        resent = await self.store.requeue_unacknowledged()
        self.counters.resent_parts += resent
        if resent:
            METRICS.parts_resent.labels("restart").inc(resent)
        await self._load_queued()

    async def _load_queued(self) -> None:
        queued = await self.store.queued_messages()
        for item in queued:
            channel = self.router.get(item.message.route_id)
            if channel is None:
                continue
            job = self._job_from_rows(item)
            if not job.parts:
                continue
            # Parts a pool member accepted before the crash: the rest go there too.
            pinned = next((p.link_id for p in item.parts if p.smsc_id and p.link_id), None)
            if isinstance(channel, SmppPool) and pinned is not None:
                channel.enqueue_pinned(job, pinned)
            else:
                channel.enqueue(job)
        if queued:
            log.info("requeued stored messages", extra={"count": len(queued)})

    # -- submit ----------------------------------------------------------------------

    async def submit(self, app_id: int, req: SendRequest, client_ip: str | None) -> SendResult:
        channel = self.router.resolve(req.esme, client_ip)
        source = parse_source(req.source)
        dest = parse_destination(req.destination)
        check_text(req.message)
        if len(req.transaction_id) > 128:
            raise InvalidRequest("transaction_id must be at most 128 characters")
        if len(req.campaign) > 128:
            raise InvalidRequest("campaign must be at most 128 characters")
        self.observer.check(app_id, req.esme, req.source, req.destination, req.message)
        if req.transaction_id:
            key = (app_id, req.transaction_id)
            running = self._inflight_tx.get(key)
            if running is not None:
                return await asyncio.shield(running)
            # No read first: the unique (app_id, transaction_id) index finds a repeat
            # at insert time, and the common case (a new id) costs no lookup.
            fut: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
            self._inflight_tx[key] = fut
            try:
                result = await self._submit_new(app_id, req, channel, source, dest)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            else:
                fut.set_result(result)
            finally:
                # The answer is committed by now (see _submit_new), so the store
                # serves later repeats.
                del self._inflight_tx[key]
            return result
        return await self._submit_new(app_id, req, channel, source, dest)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _previous_answer(self, app_id: int, transaction_id: str) -> SendResult | None:
        stored = await self.store.get_answer(app_id, transaction_id)
        if stored is None:
            # Databases from before migration 0003 kept answers in `idempotency`.
            stored = await self.store.idem_get(f"tx:{app_id}", transaction_id)
        if stored is not None:
            return _result_decoder.decode(stored)
        row: MessageWithParts | None = await self.store.get_message_by_transaction(
            app_id, transaction_id
        )
        if row is None:
            return None
        return self._result_from_row(row)

    def _result_from_row(self, row: MessageWithParts) -> SendResult:
        msg = row.message
        ids = [p.smsc_id for p in row.parts if p.smsc_id]
        errors = [p.error for p in row.parts if p.error]
        return SendResult(
            success=not errors,
            error=errors[0] if errors else "",
            esme=msg.route_id,
            transaction_id=msg.transaction_id or "",
            message_id=msg.id,
            status=msg.status,
            sms_ids=ids,
            task_id=msg.task_id,
        )

    def _split(
        self, message: str, channel_cfg_method: str, default_encoding: str
    ) -> list[PartSpec]:
        ref = next(self._concat_ref) & (0xFFFF if channel_cfg_method != "udh8" else 0xFF)
        try:
            segments = smpp_text.split(
                message,
                method=channel_cfg_method,
                reference=ref,
                max_parts=self.settings.max_parts,
            )
        except smpp_text.TooManyParts as exc:
            raise InvalidRequest(
                f"message needs {exc.parts} parts; at most {self.settings.max_parts} allowed"
            ) from exc
        return [
            PartSpec(
                seq=seg.index,
                short_message=seg.short_message,
                data_coding=seg.data_coding,
                esm_class=seg.esm_class_bits,
                tlvs={tag: encode_tlv_value(tag, value) for tag, value in seg.tlvs.items()},
            )
            for seg in segments
        ]

    async def _submit_new(
        self,
        app_id: int,
        req: SendRequest,
        channel: SmppLink | SmppPool,
        source: Address,
        dest: Address,
    ) -> SendResult:
        link_cfg = self.router.link_settings_for(req.esme)
        parts = self._split(req.message, link_cfg.split_method, link_cfg.default_encoding)
        now = self._now_ms()
        message_id = uuid7()
        task_id = next(self._task_ids)
        encoding = "ucs2" if parts[0].data_coding == 8 else "gsm7"
        msg_row = MessageRow(
            id=message_id,
            app_id=app_id,
            route_id=req.esme,
            link_id=None,
            source=req.source,
            destination=req.destination,
            body=req.message,
            encoding=encoding,
            mode="multipart" if len(parts) > 1 else "single",
            parts_total=len(parts),
            status=_QUEUED,
            error="",
            transaction_id=req.transaction_id or None,
            task_id=task_id,
            campaign=req.campaign or None,
            created_at=now,
            updated_at=now,
        )
        part_rows = [
            PartRow(
                message_id=message_id,
                seq=p.seq,
                link_id=None,
                smsc_id=None,
                state=_QUEUED,
                error=None,
                short_message=p.short_message,
                data_coding=p.data_coding,
                esm_class=p.esm_class,
                tlvs=encode_tlvs([(t, v) for t, v in p.tlvs.items() if isinstance(v, bytes)]),
                submitted_at=None,
                done_at=None,
                updated_at=now,
            )
            for p in parts
        ]
        try:
            await self.store.insert_message(msg_row, part_rows)
        except DuplicateError:
            # Another node or an earlier run took this transaction_id first.
            previous = await self._previous_answer(app_id, req.transaction_id)
            if previous is not None:
                return previous
            raise
        self.counters.accepted += 1
        METRICS.messages_accepted.inc()
        self.observer.accepted()
        job = SendJob(
            message_id=message_id,
            source=source.value,
            source_ton=source.ton,
            source_npi=source.npi,
            destination=dest.value,
            dest_ton=dest.ton,
            dest_npi=dest.npi,
            registered_delivery=1 if self.settings.registered_delivery else 0,
            parts=parts,
            campaign=req.campaign,
            parts_total=len(parts),
        )
        result = SendResult(
            success=True,
            error="",
            esme=req.esme,
            transaction_id=req.transaction_id,
            message_id=message_id,
            status=_QUEUED,
            sms_ids=[],
            task_id=task_id,
        )
        # Wait for the SMSC's answers within the send budget, without a task: the
        # outcomes' writer unit (which also stores this answer) settles `stored`, or
        # the budget timer does.
        loop = asyncio.get_running_loop()
        waiting = _Waiting(result, loop.create_future())
        self._waiting[message_id] = waiting
        self._budgets.add(message_id)
        channel.enqueue(job)
        try:
            committed = await waiting.stored
        finally:
            self._waiting.pop(message_id, None)
        if not committed and req.transaction_id:
            # Stored and queued: it goes out when the link can take it. A retry of
            # this transaction_id must get this same "queued" answer.
            await self.store.put_answer(message_id, _result_encoder.encode(result))
        return result

    def _budget_over(self, message_id: str) -> None:
        waiting = self._waiting.pop(message_id, None)
        if waiting is not None and not waiting.stored.done():
            waiting.stored.set_result(False)

    # -- outcomes and receipts -------------------------------------------------------

    def record_outcomes(self, job: SendJob, outcomes: list[PartOutcome]) -> None:
        """Called by channels as submit_sm_resps arrive; one writer unit per call.

        When these outcomes complete a message whose sender is still waiting, the
        unit also stores the sender's answer and settles the wait at its COMMIT: an
        /sms/info or a transaction_id retry right after the answer sees what it says.
        """
        now = self._now_ms()
        updates = []
        for o in outcomes:
            if o.error:
                self.counters.refused_parts += 1
                _PARTS_REFUSED.inc()
                updates.append(
                    PartUpdate(job.message_id, o.seq, o.link_id, None, "rejected", o.error, now)
                )
            else:
                self.counters.submitted_parts += 1
                _PARTS_OK.inc()
                updates.append(
                    PartUpdate(job.message_id, o.seq, o.link_id, o.smsc_id, "submitted", None, now)
                )
        waiting = self._waiting.pop(job.message_id, None) if job.complete else None
        if waiting is None:
            self.store.record_submit_nowait(job.message_id, job.parts_total, updates)
        else:
            result = waiting.result
            _fill_result(result, [job.outcomes[p.seq] for p in job.parts])
            answer = _result_encoder.encode(result) if result.transaction_id else None
            stored = self.store.record_submit(job.message_id, job.parts_total, updates, answer)
            stored.add_done_callback(
                lambda fut: self._submit_recorded(fut, waiting.stored, job, updates)
            )
        self.observer.outcomes(job, outcomes)
        for o in outcomes:
            if o.smsc_id:
                self._match_early(o.link_id, o.smsc_id)

    def _submit_recorded(
        self,
        fut: asyncio.Future[int],
        stored: asyncio.Future[bool],
        job: SendJob,
        updates: list[PartUpdate],
    ) -> None:
        error = fut.exception() if not fut.cancelled() else None
        if error is not None:
            # The sender hears of the failure; the SMSC ids must still be kept (a
            # receipt needs them), so they go again as a held, retried write.
            self.store.record_submit_nowait(job.message_id, job.parts_total, updates)
        if stored.done():
            return
        if error is not None:
            stored.set_exception(error)
        else:
            stored.set_result(True)

    def _match_early(self, link_id: int, smsc_id: str) -> None:
        if not self._early:
            return
        for variant in id_variants(smsc_id):
            early = self._early.get((link_id, variant))
            if early is not None:
                self._unhold(link_id, early)
                # Queued behind this outcome's unit, so it finds the part.
                self._spawn(self._apply_early(link_id, smsc_id, early))
                return

    async def _apply_early(self, link_id: int, smsc_id: str, early: _EarlyReceipt) -> None:
        await self._apply_receipt(
            link_id, smsc_id, early.state, early.error, early.at, early.handset
        )

    def on_deliver(self, link: SmppLink, pdu: DeliverSm | DataSm) -> int | Awaitable[int]:
        """deliver_sm / data_sm from a link: a receipt, or an inbound (MO) message.

        Returns the deliver_sm_resp status, or an awaitable of it that settles once
        the receipt or message is stored: an SMSC that hears nothing sends it again.
        A receipt is answered from the writer's callback, with no task of its own.
        """
        is_receipt = bool(pdu.esm_class & ESM_CLASS_TYPE_MASK & 0x24)
        short = pdu.short_message if isinstance(pdu, DeliverSm) else b""
        receipt = None
        if is_receipt or 0x001E in pdu.tlvs:
            receipt = parse_receipt(short, pdu.tlvs)
        if receipt is None:
            return self._store_inbound(link, pdu)
        self.counters.receipts += 1
        state = receipt_state(receipt.state)
        counter = _RECEIPTS.get(state)
        if counter is None:
            counter = _RECEIPTS[state] = METRICS.receipts.labels(state=state)
        counter.inc()
        at = self._now_ms()
        # "err:000" is the SMSC saying "no error"; only a real code is worth showing.
        error = receipt.error if receipt.error and receipt.error.strip("0") else None
        # Held before it is looked up, not after: an outcome recorded while the lookup
        # is in the writer's queue (its unit behind this one) still finds it here.
        hold = self._hold_early(link.id, receipt.message_id, state, error, at, pdu.source_addr)
        answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        applied = self.store.apply_receipt_soon(
            link.id, hold.variants, state, error, at, pdu.source_addr or None
        )
        applied.add_done_callback(lambda fut: self._receipt_applied(fut, answered, link.id, hold))
        return answered

    def _receipt_applied(
        self,
        applied: asyncio.Future[ReceiptMatch | None],
        answered: asyncio.Future[int],
        link_id: int,
        hold: _EarlyReceipt,
    ) -> None:
        if applied.cancelled() or applied.exception() is not None:
            # Not stored: unanswered (or answered with an error), the SMSC sends it again.
            self._unhold(link_id, hold)
            if not answered.done():
                if applied.cancelled():
                    answered.cancel()
                else:
                    answered.set_exception(applied.exception())  # type: ignore[arg-type]
            return
        if self._receipt_matched(link_id, hold.state, applied.result()):
            self._unhold(link_id, hold)
        else:
            # Stays held until its part's submit_sm_resp is recorded (or it expires).
            self.counters.unmatched_receipts += 1
        if not answered.done():
            answered.set_result(0)

    async def _apply_receipt(
        self,
        link_id: int,
        smsc_id: str,
        state: str,
        error: str | None,
        at: int,
        handset: str | None,
    ) -> bool:
        """True when the receipt found its part; False means hold it for a while."""
        match = await self.store.apply_receipt(
            link_id, id_variants(smsc_id), state, error, at, handset or None
        )
        return self._receipt_matched(link_id, state, match)

    def _receipt_matched(self, link_id: int, state: str, match: ReceiptMatch | None) -> bool:
        if match is None:
            return False
        if match.changed:
            self.observer.receipt(link_id, match)
            return True
        # A final receipt that only found a part already final may belong to a part
        # whose submit_sm_resp is still on its way (an SMSC that reuses ids after a
        # restart): hold it rather than spend it on the old part.
        return not is_final(state)

    def _hold_early(
        self,
        link_id: int,
        smsc_id: str,
        state: str,
        error: str | None,
        at: int,
        handset: str | None = None,
    ) -> _EarlyReceipt:
        now = time.monotonic()
        # Drop what waited too long: an id the SMSC never gave us is not ours. The
        # next sweep waits until the map has doubled, so a flood of receipts for ids
        # never given costs amortised O(1) each, not a full sweep per receipt.
        if len(self._early) > self._early_sweep_at:
            self._early = {k: v for k, v in self._early.items() if v.expires > now}
            self._early_sweep_at = max(_EARLY_SWEEP_MIN, 2 * len(self._early))
        variants = id_variants(smsc_id)
        hold = _EarlyReceipt(
            variants, state, error, at, now + self.settings.early_receipt_hold_s, handset
        )
        for variant in variants:
            self._early[(link_id, variant)] = hold
        return hold

    def _unhold(self, link_id: int, hold: _EarlyReceipt) -> None:
        # Every spelling goes: a leftover could later match an unrelated id that
        # happens to read the same (decimal "16", hex "10").
        early = self._early
        for variant in hold.variants:
            key = (link_id, variant)
            if early.get(key) is hold:
                del early[key]

    async def _store_inbound(self, link: SmppLink, pdu: DeliverSm | DataSm) -> int:
        short = pdu.short_message if isinstance(pdu, DeliverSm) else pdu.tlvs.get(0x0424, b"")
        raw = short if isinstance(short, bytes) else b""
        inbound = smpp_text.decode_short_message(
            raw,
            pdu.data_coding,
            udhi=bool(pdu.esm_class & ESM_CLASS_UDHI),
            default_coding=link.cfg.default_encoding,
        )
        self.counters.inbound += 1
        await self.store.insert_inbound(
            uuid7(), link.id, pdu.source_addr, pdu.destination_addr, inbound.text, self._now_ms()
        )
        return 0

    # -- info / check ----------------------------------------------------------------

    async def info(
        self, app_id: int, esme: int, message_id: str, client_ip: str | None = None
    ) -> MessageInfo:
        """A message's delivery state, for its own app only.

        Naming a link (`esme`, optional as in 000) obliges the caller to be allowed on
        it, as sending through it would.
        """
        if esme:
            self.router.resolve(esme, client_ip, require_enabled=False)
        if not isinstance(message_id, str) or not message_id or len(message_id) > 64:
            raise InvalidRequest("message_id is required")
        row: MessageWithParts | None = await self.store.get_message(app_id, message_id)
        if row is None:
            raise MessageNotFound()
        msg = row.message
        parts = {str(p.seq): _shown_state(p.state) for p in row.parts}
        errors = [p.error for p in row.parts if p.error]
        return MessageInfo(
            message_id=msg.id,
            mode=msg.mode,
            parts=parts,
            delivered_count=sum(1 for p in row.parts if p.state == "delivered"),
            sent_at=msg.created_at // 1000,
            updated_at=max([msg.updated_at, *(p.updated_at for p in row.parts)]) // 1000,
            transaction_id=msg.transaction_id or "",
            task_id=msg.task_id,
            status=rollup(p.state for p in row.parts),
            error=errors[0] if errors else "",
        )

    def check_link(self, esme: int, client_ip: str | None) -> LinkCheck:
        channel = self.router.resolve(esme, client_ip, require_enabled=False)
        system_id = self.router.remote_system_id(esme)
        persist = channel.bound
        error = "" if persist else f"link is {channel.status.lower()}"
        if not persist:
            error += _bind_error(channel)
        return LinkCheck(persist=persist, system_id=system_id, error=error)

    def _job_from_rows(self, item: MessageWithParts) -> SendJob:
        from ..store.models import decode_tlvs

        msg = item.message
        source = parse_source(msg.source)
        dest = parse_destination(msg.destination)
        parts = [
            PartSpec(p.seq, p.short_message, p.data_coding, p.esm_class, dict(decode_tlvs(p.tlvs)))
            for p in item.parts
            if p.state in ("queued", "sending")
        ]
        return SendJob(
            message_id=msg.id,
            source=source.value,
            source_ton=source.ton,
            source_npi=source.npi,
            destination=dest.value,
            dest_ton=dest.ton,
            dest_npi=dest.npi,
            registered_delivery=1 if self.settings.registered_delivery else 0,
            parts=parts,
            campaign=msg.campaign or "",
            parts_total=msg.parts_total,
        )


def _fill_result(result: SendResult, outcomes: list[PartOutcome]) -> None:
    """The answer once every part has its outcome: ids, or the first refusal."""
    result.sms_ids = [o.smsc_id for o in outcomes if o.smsc_id]
    refused = next((o for o in outcomes if o.error), None)
    if refused is not None:
        result.success = False
        result.error = refused.error or ""
        result.status = _REJECTED
    else:
        result.status = _SUBMITTED


def _bind_error(channel: object) -> str:
    """Why the link (or the first pool member that has one) last failed to bind."""
    links = [channel] if isinstance(channel, SmppLink) else getattr(channel, "members", [])
    for link in links:
        refused = getattr(getattr(link, "client", None), "last_bind_error", None)
        if refused:
            return f" (last bind error: {refused})"
    return ""


def _shown_state(state: str) -> str:
    return "queued" if state == "sending" else state
