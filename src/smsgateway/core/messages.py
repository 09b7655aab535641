"""The message pipeline: accept (store), route, send, track receipts, answer info.

Every face calls `MessageService.submit/send/info/check_link`; nothing here knows
HTTP or protobuf. Accepted means stored: a send answers only after the message row
and its parts are committed, then (by its wait mode) up to the send budget for the
SMSC's answers, until a channel took or refused it, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..settings import MessageSettings
from ..smpp import text as smpp_text
from ..smpp.constants import ESM_CLASS_TYPE_MASK
from ..smpp.pdu import DataSm, DeliverSm
from ..smpp.receipt import id_variants, parse_receipt
from ..store.channels import AttemptRow, AttemptValues, ChannelStore, attempts_writer
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
from .channels import (
    ACCEPTED,
    REFUSED,
    Channel,
    PartOutcome,
    PartSpec,
    SendJob,
    SmppLink,
    SmppPool,
    split_text,
    whole_text_part,
)
from .channels.encode import TooManyParts
from .deadlines import FifoTimers
from .errors import InvalidRequest, MessageNotFound
from .ids import uuid7
from .inbound import InboundService
from .metrics import METRICS
from .routing import Router, UnknownEsme
from .schedule import Schedule
from .sealed import Sealer, is_sensitive_body
from .secrets import Secrets, SecretsError
from .stats import PipelineObserver
from .status import PartState, is_final, receipt_state, rollup
from .validation import Address, check_text, parse_destination, parse_source

if TYPE_CHECKING:
    import sqlite3

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
_EXPIRED = PartState.EXPIRED.value
_ATTEMPTS: dict[tuple[int, str], Any] = {}
# What a non-SMPP channel may report later of a message it sent (channel_report).
_REPORT_STATES = frozenset({"delivered", "failed", "undeliverable", "expired"})

WaitMode = Literal["budget", "accepted", "stored"]
_WAIT_MODES = ("budget", "accepted", "stored")


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
    # Store the answer with the outcomes: a repeat of its key must get it.
    keep: bool


@dataclass(slots=True)
class _Accept:
    """One send, checked: what `_accept` stores and routes."""

    owner: str
    app_id: int
    channel_id: int
    text: str
    source_text: str
    source: Address
    destination_text: str
    destination: Address
    transaction_id: str = ""
    idem_key: str = ""
    campaign: str = ""
    wait: str = "budget"
    not_before: int | None = None
    validity_until: int | None = None
    source_ton: int | None = None  # given by the caller (else chosen from the address)
    sensitive: bool = False  # its text is sealed at rest and wiped once final


def _app_of(owner: str) -> int:
    """The app id of an `app:<id>` owner (native sends), else 0."""
    if owner.startswith("app:"):
        with contextlib.suppress(ValueError):
            return int(owner[4:])
    return 0


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
        secrets: Secrets | None = None,
    ) -> None:
        self.store = store
        # Seals sensitive texts at rest (core/sealed.py); None: sensitive sends refused.
        self._sealer = Sealer(secrets) if secrets is not None else None
        self.channel_store = ChannelStore(store)
        self.router = router
        self.settings = settings
        self._clock = clock
        self._task_ids = itertools.count(1)
        # A key's answer is served from here from the moment the send starts until
        # the answer is committed on its message row (not just until the send
        # returns: a retry racing the commit would otherwise see a half answer).
        # Keys: ("tx", app id, transaction_id) and ("key", owner, idempotency_key).
        self._inflight_tx: dict[tuple[str, int | str, str], asyncio.Future[SendResult]] = {}
        self._waiting: dict[str, _Waiting] = {}
        self._budgets = FifoTimers(settings.send_budget_s, self._budget_over)
        self._accept_waits = FifoTimers(settings.accept_wait_s, self._budget_over)
        # Scheduled sends (not_before) and validity ends, on one timer each.
        self.schedule = Schedule(router, self.channel_store, on_expired=self._expired, clock=clock)
        self._background: set[asyncio.Task[None]] = set()
        self._early: dict[tuple[int, str], _EarlyReceipt] = {}
        self._early_sweep_at = _EARLY_SWEEP_MIN
        self._started = False
        self.counters = Counters()
        # Filters and dashboard counts plug in here (core/ops.py); the default is inert.
        self.observer = PipelineObserver()
        router.on_channel_added(self._channel_added)
        # Inbound SMS (MO) go through the one inbound service; the runtime adds its hooks.
        self.inbound = InboundService(store, clock=clock)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def start(self) -> None:
        """Seed counters and send again what a crash left unacknowledged."""
        self._task_ids = itertools.count(await self.store.max_task_id() + 1)
        resent = await self.store.requeue_unacknowledged()
        self.counters.resent_parts += resent
        if resent:
            METRICS.parts_resent.labels("restart").inc(resent)
        await self._load_queued(await self.store.queued_messages())
        for item in await self.channel_store.waiting_messages(self._now_ms()):
            job = self._job_from_rows(item)
            if job.parts:
                self.schedule.watch(job, item.message.validity_until)
                self.schedule.send_at(item.message.not_before or 0, item.message.route_id, job)
        self._started = True

    def stop(self) -> None:
        """Drop the timers (scheduled work stays stored and is loaded at the next start)."""
        self.schedule.close()

    async def _load_queued(
        self, queued: list[MessageWithParts], only: Channel | None = None
    ) -> None:
        now = self._now_ms()
        for item in queued:
            channel = only or self.router.get(item.message.route_id)
            if channel is None:
                continue  # a run-time channel (device) not there yet: loaded when added
            job = self._job_from_rows(item)
            if not job.parts:
                continue
            # Parts a link accepted before the crash: the rest go there too (and, the
            # message being under way, no longer expire).
            pinned = next((p.link_id for p in item.parts if p.smsc_id and p.link_id), None)
            if pinned is not None:
                self._enqueue_pinned(channel, job, pinned)
                continue
            until = item.message.validity_until
            if until is not None and until <= now:
                self.schedule.expire_stored(job.message_id, now)
                continue
            self.schedule.watch(job, until)
            channel.enqueue(job)
        if queued:
            log.info("requeued stored messages", extra={"count": len(queued)})

    def _enqueue_pinned(self, channel: Channel, job: SendJob, link_id: int) -> None:
        """The rest of a message whose first parts `link_id` accepted: to that link
        (through its pool, which may move it on if the link stays down)."""
        job.split_as = None  # the rest keeps the shape the first parts had
        if isinstance(channel, SmppPool):
            channel.enqueue_pinned(job, link_id)
            return
        pool = self.router.pool_of(channel, link_id)
        if pool is not None:
            pool.enqueue_pinned(job, link_id)
            return
        link = self.router.links.get(link_id)
        (link if link is not None else channel).enqueue(job)

    def _channel_added(self, channel: Channel) -> None:
        if self._started:
            # Ids are time-ordered: what was stored before this moment is what a
            # previous incarnation of the channel left; later sends reach it live.
            self._spawn(self._load_channel(channel, uuid7()))

    async def _load_channel(self, channel: Channel, before_id: str) -> None:
        """A run-time channel came (back): what is stored for it goes to it now."""
        queued = await self.store.queued_messages([channel.id])
        if self.router.get(channel.id) is channel:  # not replaced meanwhile
            await self._load_queued([q for q in queued if q.message.id < before_id], channel)

    # -- submit ----------------------------------------------------------------------

    async def submit(self, app_id: int, req: SendRequest, client_ip: str | None) -> SendResult:
        """A native send (000/001): `esme` names a link, pool or list."""
        channel = self.router.resolve(req.esme, client_ip)
        source = parse_source(req.source)
        dest = parse_destination(req.destination)
        check_text(req.message)
        if len(req.transaction_id) > 128:
            raise InvalidRequest("transaction_id must be at most 128 characters")
        if len(req.campaign) > 128:
            raise InvalidRequest("campaign must be at most 128 characters")
        self.observer.check(app_id, req.esme, req.source, req.destination, req.message)
        accept = _Accept(
            owner=f"app:{app_id}",
            app_id=app_id,
            channel_id=req.esme,
            text=req.message,
            source_text=req.source,
            source=source,
            destination_text=req.destination,
            destination=dest,
            transaction_id=req.transaction_id,
            campaign=req.campaign,
        )
        if req.transaction_id:
            return await self._once(("tx", app_id, req.transaction_id), accept, channel)
        return await self._accept(accept, channel)

    async def send(
        self,
        *,
        owner: str,
        channel_id: int,
        source: str,
        destination: str,
        text: str,
        idempotency_key: str = "",
        wait: WaitMode = "budget",
        not_before_ms: int | None = None,
        validity_ms: int | None = None,
        campaign: str = "",
        source_ton: int | None = None,
        sensitive: bool = False,
    ) -> SendResult:
        """Send through any channel (link, pool, list, device) for any owner.

        `wait`: "budget" answers as native sends do (the SMSC's answer within
        send_budget_s, else `queued`); "accepted" once a channel took the message or
        every member of a list refused it (at most accept_wait_s); "stored" as soon
        as it is committed and queued. `idempotency_key` is unique per owner: a
        repeat gets the first send's answer and sends nothing (a concurrent repeat
        waits for the first). `not_before_ms` (Unix ms) schedules it: it is stored
        and answered at once, and goes out at that time, across restarts.
        `validity_ms` (a duration from now, in ms): still unsent by then, it
        expires (state `expired`). `source_ton` None: from the address
        (alphanumeric: TON 5); else that TON (NPI 0 for TON 5). `sensitive` (OTP
        codes): the text is stored sealed under the master key and wiped once the
        message is final; channels still get it in clear, in memory.
        """
        channel = self.router.get(channel_id)
        if channel is None:
            raise UnknownEsme()
        self.router.check_enabled(channel)
        if wait not in _WAIT_MODES:
            raise InvalidRequest(f"wait must be one of {', '.join(_WAIT_MODES)}")
        # Room for `oauth:<issuer URL>#<subject>` owners.
        if not isinstance(owner, str) or not owner or len(owner) > 512:
            raise InvalidRequest("owner must be 1 to 512 characters")
        src = parse_source(source)
        if source_ton is not None:
            if not 0 <= source_ton <= 6:
                raise InvalidRequest("source_ton must be within 0..6")
            src = Address(src.value, source_ton, 0 if source_ton == 5 else src.npi)
        dest = parse_destination(destination)
        check_text(text)
        if len(idempotency_key) > 128:
            raise InvalidRequest("idempotency_key must be at most 128 characters")
        if len(campaign) > 128:
            raise InvalidRequest("campaign must be at most 128 characters")
        now = self._now_ms()
        if validity_ms is not None and validity_ms <= 0:
            raise InvalidRequest("validity_ms must be positive")
        if sensitive and self._sealer is None:
            raise RuntimeError("sensitive sends need the master key (MessageService secrets)")
        app_id = _app_of(owner)
        self.observer.check(app_id, channel_id, source, destination, text)
        accept = _Accept(
            owner=owner,
            app_id=app_id,
            channel_id=channel_id,
            text=text,
            source_text=source,
            source=src,
            destination_text=destination,
            destination=dest,
            idem_key=idempotency_key,
            campaign=campaign,
            wait=wait,
            not_before=not_before_ms if not_before_ms is not None and not_before_ms > now else None,
            validity_until=None if validity_ms is None else now + validity_ms,
            source_ton=source_ton,
            sensitive=sensitive,
        )
        if idempotency_key:
            return await self._once(("key", owner, idempotency_key), accept, channel)
        return await self._accept(accept, channel)

    async def _once(
        self, key: tuple[str, int | str, str], accept: _Accept, channel: Channel
    ) -> SendResult:
        """Send at most once per key: a concurrent repeat waits for the first."""
        running = self._inflight_tx.get(key)
        if running is not None:
            return await asyncio.shield(running)
        # No read first: the unique index finds a repeat at insert time, and the
        # common case (a new key) costs no lookup.
        fut: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._inflight_tx[key] = fut
        try:
            result = await self._accept(accept, channel)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            fut.set_result(result)
        finally:
            # The answer is committed by now (see _accept), so the store serves
            # later repeats.
            del self._inflight_tx[key]
        return result

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

    async def _previous_keyed(self, owner: str, key: str) -> SendResult | None:
        found = await self.channel_store.by_idem_key(owner, key)
        if found is None:
            return None
        row, answer = found
        if answer is not None:
            return _result_decoder.decode(answer)
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

    def _parts_for(self, channel_id: int, text: str) -> tuple[list[PartSpec], str | None]:
        """The parts a message gets at accept (cut for the first link it will try),
        and the split method they were cut with (None: sent as a whole text)."""
        link_cfg = self.router.smpp_settings_for(channel_id)
        if link_cfg is None:
            return whole_text_part(), None
        try:
            parts = split_text(text, link_cfg.split_method, max_parts=self.settings.max_parts)
        except TooManyParts as exc:
            raise InvalidRequest(
                f"message needs {exc.parts} parts; at most {self.settings.max_parts} allowed"
            ) from exc
        return parts, link_cfg.split_method

    async def _accept(self, a: _Accept, channel: Channel) -> SendResult:
        parts, split_as = self._parts_for(a.channel_id, a.text)
        now = self._now_ms()
        message_id = uuid7()
        task_id = next(self._task_ids)
        if split_as is None:
            encoding = smpp_text.choose_encoding(a.text).value
        else:
            encoding = "ucs2" if parts[0].data_coding == 8 else "gsm7"
        seal = self._sealer if a.sensitive else None
        msg_row = MessageRow(
            id=message_id,
            app_id=a.app_id,
            route_id=a.channel_id,
            link_id=None,
            source=a.source_text,
            destination=a.destination_text,
            body=a.text if seal is None else seal.seal_body(message_id, a.text),
            encoding=encoding,
            mode="multipart" if len(parts) > 1 else "single",
            parts_total=len(parts),
            status=_QUEUED,
            error="",
            transaction_id=a.transaction_id or None,
            task_id=task_id,
            campaign=a.campaign or None,
            created_at=now,
            updated_at=now,
            not_before=a.not_before,
            validity_until=a.validity_until,
            owner=a.owner,
            idem_key=a.idem_key or None,
            source_ton=a.source_ton,
        )
        part_rows = _part_rows(message_id, parts, now, seal)
        result = SendResult(
            success=True,
            error="",
            esme=a.channel_id,
            transaction_id=a.transaction_id,
            message_id=message_id,
            status=_QUEUED,
            sms_ids=[],
            task_id=task_id,
        )
        keyed = bool(a.transaction_id or a.idem_key)
        # Answered at once (stored, or scheduled): a repeat gets this same answer.
        at_once = a.wait == "stored" or a.not_before is not None
        try:
            await self.store.insert_message(
                msg_row, part_rows, _result_encoder.encode(result) if keyed and at_once else None
            )
        except DuplicateError:
            # Another node or an earlier run took this key first.
            previous = await (
                self._previous_keyed(a.owner, a.idem_key)
                if a.idem_key
                else self._previous_answer(a.app_id, a.transaction_id)
            )
            if previous is not None:
                return previous
            raise
        self.counters.accepted += 1
        METRICS.messages_accepted.inc()
        self.observer.accepted()
        job = SendJob(
            message_id=message_id,
            source=a.source.value,
            source_ton=a.source.ton,
            source_npi=a.source.npi,
            destination=a.destination.value,
            dest_ton=a.destination.ton,
            dest_npi=a.destination.npi,
            registered_delivery=1 if self.settings.registered_delivery else 0,
            parts=parts,
            campaign=a.campaign,
            parts_total=len(parts),
            text=a.text,
            owner=a.owner,
            split_as=split_as,
            max_parts=self.settings.max_parts,
            started_ms=now,
            sensitive=a.sensitive,
        )
        self.schedule.watch(job, a.validity_until)
        if a.not_before is not None:
            self.schedule.send_at(a.not_before, a.channel_id, job)
            return result
        if at_once:
            channel.enqueue(job)
            return result
        # Wait for the channel's answers (within the send budget, or until accepted)
        # without a task: the outcomes' writer unit (which also stores this answer)
        # settles `stored`, or the timer does.
        loop = asyncio.get_running_loop()
        waiting = _Waiting(result, loop.create_future(), keyed)
        self._waiting[message_id] = waiting
        if a.wait == "budget":
            self._budgets.add(message_id)
        else:
            self._accept_waits.add(message_id)
        channel.enqueue(job)
        try:
            committed = await waiting.stored
        finally:
            self._waiting.pop(message_id, None)
        if not committed and keyed:
            # Stored and queued: it goes out when the link can take it. A retry of
            # this key must get this same "queued" answer.
            await self.store.put_answer(message_id, _result_encoder.encode(result))
        return result

    def _budget_over(self, message_id: str) -> None:
        waiting = self._waiting.pop(message_id, None)
        if waiting is not None and not waiting.stored.done():
            waiting.stored.set_result(False)

    def _expired(self, message_id: str) -> None:
        """Its validity ended unsent: a sender still waiting hears so."""
        waiting = self._waiting.pop(message_id, None)
        if waiting is not None and not waiting.stored.done():
            waiting.result.success = False
            waiting.result.status = _EXPIRED
            waiting.result.error = "validity expired"
            waiting.stored.set_result(True)

    # -- reads for tenants and the admin --------------------------------------------

    async def get_owned(self, owner: str, message_id: str) -> MessageWithParts | None:
        """The message with its parts, only if `owner` owns it (else None)."""
        if not isinstance(message_id, str) or not message_id or len(message_id) > 64:
            return None
        return await self.channel_store.get_owned(owner, message_id)

    async def attempts(self, message_id: str) -> list[AttemptRow]:
        """Every try of a channel for the message (admin views), first first."""
        return await self.channel_store.attempts(message_id)

    def channel_report(
        self, channel_id: int, message_id: str, state: str, error: str | None
    ) -> None:
        """A non-SMPP channel's later news of a message it sent (a device's state
        report): delivered | failed | undeliverable | expired. Stored through the
        writer like a receipt; the message's parts on that channel take the state."""
        if state not in _REPORT_STATES:
            raise InvalidRequest(f"state must be one of {', '.join(sorted(_REPORT_STATES))}")
        self.counters.receipts += 1
        counter = _RECEIPTS.get(state)
        if counter is None:
            counter = _RECEIPTS[state] = METRICS.receipts.labels(state=state)
        counter.inc()
        done = self.channel_store.report(channel_id, message_id, state, error, self._now_ms())
        done.add_done_callback(lambda fut: self._reported(fut, channel_id))

    def _reported(self, fut: asyncio.Future[ReceiptMatch | None], channel_id: int) -> None:
        if fut.cancelled():
            return
        error = fut.exception()
        if error is not None:
            log.error("channel report not stored", exc_info=error)
            return
        match = fut.result()
        if match is not None:
            self.observer.receipt(channel_id, match)

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
        before = self._attempts_unit(job, outcomes, now) if job.complete else None
        waiting = self._waiting.pop(job.message_id, None) if job.complete else None
        if waiting is None:
            self.store.record_submit_nowait(job.message_id, job.parts_total, updates, before)
        else:
            result = waiting.result
            _fill_result(result, [job.outcomes[p.seq] for p in job.parts])
            answer = _result_encoder.encode(result) if waiting.keep else None
            stored = self.store.record_submit(
                job.message_id, job.parts_total, updates, answer, before
            )
            stored.add_done_callback(
                lambda fut: self._submit_recorded(fut, waiting.stored, job, updates, before)
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
        before: Callable[[sqlite3.Connection], Any] | None,
    ) -> None:
        error = fut.exception() if not fut.cancelled() else None
        if error is not None:
            # The sender hears of the failure; the SMSC ids must still be kept (a
            # receipt needs them), so they go again as a held, retried write.
            self.store.record_submit_nowait(job.message_id, job.parts_total, updates, before)
        if stored.done():
            return
        if error is not None:
            stored.set_exception(error)
        else:
            stored.set_result(True)

    def _attempts_unit(
        self, job: SendJob, outcomes: list[PartOutcome], now: int
    ) -> Callable[[sqlite3.Connection], Any]:
        """The rows that commit with a message's last outcomes: its attempts (the
        tries before this one and this one), and its parts if a link re-cut them."""
        rows: list[AttemptValues] = [
            (n.channel_id, n.kind, n.started_at, n.ended_at, n.outcome, n.error)
            for n in job.attempts
        ]
        if job.attempt_open:
            link_id = outcomes[-1].link_id
            kind = "link" if link_id in self.router.links else self.router.kind_of(link_id)
            error = next((o.error for o in job.outcomes.values() if o.error), None)
            outcome = REFUSED if error else ACCEPTED
            rows.append((link_id, kind, job.started_ms or now, now, outcome, error))
        for row in rows:
            key = (row[0], row[4])
            counter = _ATTEMPTS.get(key)
            if counter is None:
                counter = _ATTEMPTS[key] = METRICS.channel_attempts.labels(str(row[0]), row[4])
            counter.inc()
        parts = None
        encoding = ""
        if job.resplit:
            seal = self._sealer if job.sensitive else None
            parts = _part_rows(job.message_id, job.parts, now, seal)
            encoding = "ucs2" if job.parts[0].data_coding == 8 else "gsm7"
        return attempts_writer(job.message_id, rows, parts, encoding, job.attempts_stored)

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
        # Decoding, joining concatenated parts and the hooks (OTP extraction, webhook
        # outbox) live in core/inbound.py; answered once the part is committed.
        self.counters.inbound += 1
        await self.inbound.receive_smpp(link.id, link.cfg.default_encoding, pdu)
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
        if msg.source_ton is not None:
            ton = msg.source_ton
            source = Address(source.value, ton, 0 if ton == 5 else source.npi)
        dest = parse_destination(msg.destination)
        text, payloads = msg.body, {p.seq: p.short_message for p in item.parts}
        sensitive = is_sensitive_body(msg.body)
        if sensitive:
            text, payloads = self._open_sealed(item)
        parts = [
            PartSpec(p.seq, payloads[p.seq], p.data_coding, p.esm_class, dict(decode_tlvs(p.tlvs)))
            for p in item.parts
            if p.state in ("queued", "sending")
        ]
        link_cfg = self.router.smpp_settings_for(msg.route_id)
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
            text=text,
            owner=msg.owner,
            split_as=link_cfg.split_method if link_cfg is not None else None,
            max_parts=self.settings.max_parts,
            started_ms=self._now_ms(),
            attempts_stored=None,  # tries before the restart may be stored
            sensitive=sensitive,
        )

    def _open_sealed(self, item: MessageWithParts) -> tuple[str, dict[int, bytes]]:
        """A sensitive message's stored text and part payloads, in clear. One that
        cannot be opened (no or another master key) gets no parts: it stays stored
        and is not sent, rather than sent garbled."""
        msg = item.message
        try:
            if self._sealer is None:
                raise SecretsError("no master key given to the message service")
            text = self._sealer.open_body(msg.id, msg.body)
            payloads = {
                p.seq: self._sealer.open_part(msg.id, p.seq, p.short_message)
                for p in item.parts
                if p.state in ("queued", "sending")
            }
        except (SecretsError, ValueError) as exc:
            log.error(
                "sealed message not requeued", extra={"message_id": msg.id, "error": str(exc)}
            )
            return "", {p.seq: b"" for p in item.parts}
        return text, {**{p.seq: b"" for p in item.parts}, **payloads}


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


def _part_rows(
    message_id: str, parts: list[PartSpec], now: int, seal: Sealer | None = None
) -> list[PartRow]:
    return [
        PartRow(
            message_id=message_id,
            seq=p.seq,
            link_id=None,
            smsc_id=None,
            state=_QUEUED,
            error=None,
            short_message=(
                p.short_message
                if seal is None
                else seal.seal_part(message_id, p.seq, p.short_message)
            ),
            data_coding=p.data_coding,
            esm_class=p.esm_class,
            tlvs=encode_tlvs([(t, v) for t, v in p.tlvs.items() if isinstance(v, bytes)]),
            submitted_at=None,
            done_at=None,
            updated_at=now,
        )
        for p in parts
    ]


def _shown_state(state: str) -> str:
    return "queued" if state == "sending" else state
