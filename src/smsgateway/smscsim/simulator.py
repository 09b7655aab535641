"""The built-in SMSC simulator: a believable SMSC for demos, fault tests and benchmarks.

Why it records what it does:
- the gateway's tests must prove behaviour at the far end (what really arrived,
  how often, how fast), so every submit is counted at arrival, per system_id, with
  its arrival time taken when the bytes were read;
- pacing is judged here, not at the sender: arrival timestamps go into a bounded
  ring, and `pacing()` computes the rate and the largest count in any sliding
  100 ms window (sliding, because fixed slices hide bursts that straddle them);
- faults are knobs on a live object (`configure()`, also over HTTP), so one test
  can flip throttling or failures on and off while traffic flows.

Hot-path cost per submit is a few dict and deque operations; the JSON views are
built only when asked for.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..smpp.constants import (
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_UDHI,
    CommandStatus,
    MessageState,
    Tlv,
    status_name,
)
from ..smpp.errors import SessionClosed
from ..smpp.gsm import decode_gsm, encode_gsm
from ..smpp.pdu import (
    DeliverSm,
    DeliverSmResp,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    TlvValue,
)
from ..smpp.smsc import BindRequest, Reply, SmscHandler, SmscServer, SmscSession

__all__ = [
    "RECEIPT_STATES",
    "RUNTIME_SETTINGS",
    "SimulatorConfig",
    "SmscSimulator",
    "pacing_summary",
]

log = logging.getLogger("smsgateway.smscsim")

RECEIPT_STATES: dict[str, MessageState] = {
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "ENROUTE": MessageState.ENROUTE,
}

RUNTIME_SETTINGS = frozenset(
    {
        "system_id",
        "password",
        "id_format",
        "receipts",
        "dlr_delay_ms",
        "fail_rate",
        "fail_status",
        "throttle_tps",
        "resp_delay_ms",
        "refuse_binds",
        "refuse_status",
        "drop_after",
        "undeliverable_prefix",
        "receipt_stats",
        "receipt_retry_ms",
    }
)
"""Settings that `configure()` (and POST /config) may change while running."""


@dataclass(slots=True)
class SimulatorConfig:
    """How the simulator behaves. Ports 0 pick free ones; `http_port=None` means no HTTP.

    `system_id` / `password` None accept anyone; when set, a mismatch is refused
    with ESME_RINVSYSID / ESME_RINVPASWD. `drop_after` N drops a connection on its
    Nth submit (unanswered); 0 never. `receipt_stats` maps destination prefixes to
    the receipt stat they get (longest prefix wins); `undeliverable_prefix` is a
    shortcut for one prefix -> UNDELIV.
    """

    host: str = "127.0.0.1"
    port: int = 0
    http_host: str = "127.0.0.1"
    http_port: int | None = 0
    system_id: str | None = None
    password: str | None = None
    smsc_system_id: str = "smscsim"
    id_format: str = "hex"
    receipts: bool = True
    dlr_delay_ms: float = 50.0
    fail_rate: float = 0.0
    fail_status: int = CommandStatus.ESME_RSUBMITFAIL
    throttle_tps: float = 0.0
    resp_delay_ms: float = 0.0
    refuse_binds: bool = False
    refuse_status: int = CommandStatus.ESME_RBINDFAIL
    drop_after: int = 0
    undeliverable_prefix: str = ""
    receipt_stats: dict[str, str] = field(default_factory=dict)
    receipt_retry_ms: float = 1000.0
    keep_messages: int = 1000
    keep_arrivals: int = 500_000
    deliver_window: int = 10
    enquire_link_interval: float | None = 30.0
    response_timeout: float = 5.0


def _check(name: str, value: Any) -> Any:
    """Validate one runtime setting; raises ValueError with a readable message."""
    if name in ("system_id", "password"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or null")
        return value
    if name == "id_format":
        if value not in ("hex", "dec"):
            raise ValueError("id_format must be 'hex' or 'dec'")
        return value
    if name in ("receipts", "refuse_binds"):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if name == "fail_rate":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError("fail_rate must be a number in 0..1")
        return float(value)
    if name in ("dlr_delay_ms", "throttle_tps", "resp_delay_ms", "receipt_retry_ms"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be a number >= 0")
        return float(value)
    if name in ("fail_status", "refuse_status", "drop_after"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0")
        return value
    if name == "undeliverable_prefix":
        if not isinstance(value, str):
            raise ValueError("undeliverable_prefix must be a string")
        return value
    if name == "receipt_stats":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and v in RECEIPT_STATES for k, v in value.items()
        ):
            raise ValueError(f"receipt_stats must map prefixes to one of {sorted(RECEIPT_STATES)}")
        return dict(value)
    raise ValueError(f"{name} cannot be changed at run time")


@dataclass(slots=True)
class _Receipt:
    session: SmscSession
    system_id: str
    message_id: str
    submit: SubmitSm
    submitted_at: float  # wall clock
    stat: str
    attempts: int = 0


def _receipt_date(wall: float) -> str:
    return time.strftime("%y%m%d%H%M", time.gmtime(wall))


def _preview(pdu: SubmitSm) -> str:
    """The first 20 characters of the text, for the receipt's text: field."""
    body = pdu.short_message or _payload(pdu)
    if pdu.esm_class & ESM_CLASS_UDHI and body:
        body = body[1 + body[0] :]
    dc = pdu.data_coding
    if dc == 8:
        text = body[:40].decode("utf-16-be", "replace")
    elif dc == 0:
        text = decode_gsm(body[:40])
    else:
        text = body[:20].decode("latin-1")
    return "".join(c if " " <= c <= "~" else "?" for c in text[:20])


def _payload(pdu: Pdu) -> bytes:
    value = pdu.tlvs.get(Tlv.MESSAGE_PAYLOAD)
    return value if isinstance(value, bytes) else b""


def _tlv_json(tlvs: dict[int, TlvValue]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, value in tlvs.items():
        try:
            name = Tlv(tag).name.lower()
        except ValueError:
            name = f"0x{tag:04x}"
        out[name] = value.hex() if isinstance(value, bytes) else value
    return out


class SmscSimulator(SmscHandler):
    """An SMSC in a box; see `SimulatorConfig` for the knobs and `stats()` for the counters."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._initial = asdict(self.config)
        self.server = SmscServer(
            self,
            authenticator=self._authenticate,
            host=self.config.host,
            port=self.config.port,
            system_id=self.config.smsc_system_id,
            deliver_window=self.config.deliver_window,
            response_timeout=self.config.response_timeout,
            enquire_link_interval=self.config.enquire_link_interval,
        )
        self._control: Any = None
        self._next_id = int(time.time() * 1000) << 12  # ids stay unique across restarts
        self._receipt_heap: list[tuple[float, int, _Receipt]] = []
        self._receipt_timer: asyncio.TimerHandle | None = None
        self._receipt_timer_at = 0.0
        self._held: dict[str, deque[_Receipt]] = {}
        self._tiebreak = itertools.count()
        self._rr = 0
        self._bucket = 0.0
        self._bucket_at = 0.0
        self._drop_counts: dict[int, int] = {}
        self._wall_offset = time.time() - time.monotonic()
        self.reset()

    # --- life cycle ----------------------------------------------------------------

    async def start(self) -> tuple[int, int | None]:
        """Listen for SMPP (and HTTP control, if configured); returns both ports."""
        smpp_port = await self.server.start()
        http_port = None
        if self.config.http_port is not None:
            from .control import ControlServer

            self._control = ControlServer(self, self.config.http_host, self.config.http_port)
            http_port = await self._control.start()
        return smpp_port, http_port

    async def stop(self) -> None:
        """Unbind every session, stop listening, and drop pending receipts."""
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._receipt_timer is not None:
            self._receipt_timer.cancel()
            self._receipt_timer = None
        await self.server.stop(unbind=True, timeout=1.0)

    @property
    def smpp_port(self) -> int:
        return self.server.port

    @property
    def http_port(self) -> int | None:
        return self._control.port if self._control is not None else None

    # --- settings ------------------------------------------------------------------

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change runtime settings (all or nothing); returns the settings now in force."""
        checked = {name: _check(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self.config, name, value)
        if checked:
            log.info("config changed: %s", ", ".join(f"{k}={v!r}" for k, v in checked.items()))
        if "throttle_tps" in checked:
            self._bucket = self.config.throttle_tps
            self._bucket_at = time.monotonic()
        return self.settings()

    def settings(self) -> dict[str, Any]:
        return {f.name: getattr(self.config, f.name) for f in fields(self.config)}

    def reset(self, *, config: bool = False) -> None:
        """Forget all counters and recorded messages (and restore the start-up settings)."""
        if config and hasattr(self, "_initial"):
            for name in RUNTIME_SETTINGS:
                setattr(self.config, name, self._initial[name])
        self.submits = 0
        self.accepted = 0
        self.failed = 0
        self.throttled = 0
        self.dropped = 0
        self.duplicates = 0
        self.by_system_id: dict[str, int] = {}
        self.messages: deque[tuple[str, str, SubmitSm, float, int]] = deque(
            maxlen=self.config.keep_messages
        )
        self.arrivals: deque[float] = deque(maxlen=self.config.keep_arrivals)
        self.per_second: dict[int, int] = {}
        self.receipts_sent = 0
        self.receipts_acked = 0
        self.receipts_retried = 0
        self.mo_sent = 0
        self.binds = 0
        self.binds_refused = 0
        self.closes: dict[str, int] = {}
        self.unanswered = 0
        self.max_unanswered = 0
        self._seen: set[int] = set()

    # --- binds ---------------------------------------------------------------------

    def _authenticate(self, session: SmscSession, pdu: BindRequest) -> int:
        cfg = self.config
        status = 0
        if cfg.refuse_binds:
            status = cfg.refuse_status
        elif cfg.system_id is not None and pdu.system_id != cfg.system_id:
            status = CommandStatus.ESME_RINVSYSID
        elif cfg.password is not None and pdu.password != cfg.password:
            status = CommandStatus.ESME_RINVPASWD
        if status:
            self.binds_refused += 1
        else:
            self.binds += 1
        return status

    def session_bound(self, session: SmscSession) -> None:
        if session.can_receive and session.system_id is not None:
            held = self._held.pop(session.system_id, None)
            if held:
                log.info("sending %d held receipts to %s", len(held), session.system_id)
                for receipt in held:
                    self._send_receipt(receipt)

    def session_closed(self, session: SmscSession) -> None:
        self._drop_counts.pop(id(session), None)
        reason = session.close_reason or "closed"
        self.closes[reason] = self.closes.get(reason, 0) + 1

    # --- submits -------------------------------------------------------------------

    def submit_sm(self, session: SmscSession, pdu: SubmitSm) -> Reply:
        cfg = self.config
        now = session.received_at
        self.arrivals.append(now)
        second = int(now + self._wall_offset)
        per_second = self.per_second
        per_second[second] = per_second.get(second, 0) + 1
        if len(per_second) > 3600:
            del per_second[min(per_second)]
        self.submits += 1
        sid = session.system_id or ""
        self.by_system_id[sid] = self.by_system_id.get(sid, 0) + 1
        key = hash((pdu.source_addr, pdu.destination_addr, pdu.short_message))
        seen = self._seen
        if key in seen:
            self.duplicates += 1
        else:
            if len(seen) >= 1_000_000:
                seen.clear()
            seen.add(key)
        if cfg.drop_after:
            count = self._drop_counts.get(id(session), 0) + 1
            self._drop_counts[id(session)] = count
            if count >= cfg.drop_after:
                self.dropped += 1
                self.messages.append(("", sid, pdu, now, -1))
                log.info("dropping %s after %d submits (drop_after)", sid, count)
                session.abort("drop_after")
                return None
        status = 0
        if cfg.throttle_tps > 0 and not self._take_token(now, cfg.throttle_tps):
            status = CommandStatus.ESME_RTHROTTLED
            self.throttled += 1
        elif cfg.fail_rate and random.random() < cfg.fail_rate:
            status = cfg.fail_status
            self.failed += 1
        if status:
            self.messages.append(("", sid, pdu, now, status))
            resp = SubmitSmResp(sequence_number=pdu.sequence_number, command_status=status)
        else:
            self.accepted += 1
            self._next_id = n = self._next_id + 1
            message_id = format(n, "x") if cfg.id_format == "hex" else str(n)
            self.messages.append((message_id, sid, pdu, now, 0))
            if cfg.receipts and pdu.registered_delivery & 0x03:
                self._schedule_receipt(session, sid, message_id, pdu)
            resp = SubmitSmResp(sequence_number=pdu.sequence_number, message_id=message_id)
        if cfg.resp_delay_ms > 0:
            self.unanswered += 1
            if self.unanswered > self.max_unanswered:
                self.max_unanswered = self.unanswered
            session.loop.call_later(cfg.resp_delay_ms / 1000, self._respond_late, session, resp)
            return None
        return resp

    def _respond_late(self, session: SmscSession, resp: Pdu) -> None:
        if self.unanswered > 0:
            self.unanswered -= 1
        session.respond(resp)

    def query_sm(self, session: SmscSession, pdu: QuerySm) -> Reply:
        """Answers for the recent messages only: a simulator keeps no archive."""
        for message_id, _, submit, at, _status in reversed(self.messages):
            if message_id and message_id == pdu.message_id:
                stat = self._stat_for(submit.destination_addr)
                done = time.monotonic() - at >= self.config.dlr_delay_ms / 1000
                return QuerySmResp(
                    sequence_number=pdu.sequence_number,
                    message_id=message_id,
                    final_date=_receipt_date(at + self._wall_offset) + "00000+" if done else "",
                    message_state=RECEIPT_STATES[stat] if done else MessageState.ENROUTE,
                )
        return pdu.response(CommandStatus.ESME_RQUERYFAIL)

    def _take_token(self, now: float, tps: float) -> bool:
        """The SMSC's own throttle: a bucket holding one second's worth of submits."""
        bucket = min(tps, self._bucket + (now - self._bucket_at) * tps)
        self._bucket_at = now
        if bucket >= 1.0:
            self._bucket = bucket - 1.0
            return True
        self._bucket = bucket
        return False

    # --- receipts ------------------------------------------------------------------

    def _stat_for(self, destination: str) -> str:
        cfg = self.config
        best = ""
        stat = "DELIVRD"
        if cfg.undeliverable_prefix and destination.startswith(cfg.undeliverable_prefix):
            best, stat = cfg.undeliverable_prefix, "UNDELIV"
        for prefix, value in cfg.receipt_stats.items():
            if destination.startswith(prefix) and len(prefix) >= len(best):
                best, stat = prefix, value
        return stat

    def _schedule_receipt(
        self, session: SmscSession, system_id: str, message_id: str, pdu: SubmitSm
    ) -> None:
        stat = self._stat_for(pdu.destination_addr)
        if pdu.registered_delivery & 0x03 == 0x02 and stat == "DELIVRD":
            return  # failure-only receipts requested
        receipt = _Receipt(session, system_id, message_id, pdu, time.time(), stat)
        self._push_receipt(receipt, self.config.dlr_delay_ms / 1000)

    def _push_receipt(self, receipt: _Receipt, delay: float) -> None:
        due = time.monotonic() + delay
        heapq.heappush(self._receipt_heap, (due, next(self._tiebreak), receipt))
        if self._receipt_timer is None or due < self._receipt_timer_at:
            if self._receipt_timer is not None:
                self._receipt_timer.cancel()
            loop = asyncio.get_running_loop()
            self._receipt_timer = loop.call_later(max(0.0, delay), self._fire_receipts)
            self._receipt_timer_at = due

    def _fire_receipts(self) -> None:
        self._receipt_timer = None
        heap = self._receipt_heap
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            self._send_receipt(heapq.heappop(heap)[2])
        if heap:
            due = heap[0][0]
            self._receipt_timer = asyncio.get_running_loop().call_later(
                max(0.0, due - now), self._fire_receipts
            )
            self._receipt_timer_at = due

    def _receipt_pdu(self, receipt: _Receipt) -> DeliverSm:
        """The receipt deliver_sm: Appendix B text plus the two TLVs that settle it."""
        sub = receipt.submit
        stat = receipt.stat
        delivered = stat == "DELIVRD"
        text = (
            f"id:{receipt.message_id} sub:001 dlvrd:{'001' if delivered else '000'} "
            f"submit date:{_receipt_date(receipt.submitted_at)} "
            f"done date:{_receipt_date(time.time())} stat:{stat} "
            f"err:{'000' if delivered else '001'} text:{_preview(sub)}"
        )
        return DeliverSm(
            source_addr_ton=sub.dest_addr_ton,
            source_addr_npi=sub.dest_addr_npi,
            source_addr=sub.destination_addr,
            dest_addr_ton=sub.source_addr_ton,
            dest_addr_npi=sub.source_addr_npi,
            destination_addr=sub.source_addr,
            esm_class=ESM_CLASS_DELIVERY_RECEIPT,
            short_message=text.encode("latin-1"),
            tlvs={
                Tlv.RECEIPTED_MESSAGE_ID: receipt.message_id,
                Tlv.MESSAGE_STATE: int(RECEIPT_STATES[stat]),
            },
        )

    def _receiver_for(self, receipt: _Receipt) -> SmscSession | None:
        if receipt.session.can_receive:
            return receipt.session
        candidates = self.server.bound_sessions(receipt.system_id, receivers=True)
        if not candidates:
            return None
        self._rr += 1
        return candidates[self._rr % len(candidates)]

    def _send_receipt(self, receipt: _Receipt) -> None:
        session = self._receiver_for(receipt)
        if session is None:
            held = self._held.setdefault(receipt.system_id, deque(maxlen=100_000))
            held.append(receipt)
            return
        receipt.session = session
        receipt.attempts += 1
        self.receipts_sent += 1
        fut = session.deliver_nowait(self._receipt_pdu(receipt))
        fut.add_done_callback(lambda f: self._receipt_answered(receipt, f))

    def _receipt_answered(self, receipt: _Receipt, fut: asyncio.Future[Pdu]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None and fut.result().command_status == 0:
            self.receipts_acked += 1
            return
        if receipt.attempts >= 10:
            log.info("giving up receipt %s after %d attempts", receipt.message_id, receipt.attempts)
            return
        self.receipts_retried += 1
        if isinstance(exc, SessionClosed):
            self._send_receipt(receipt)  # another session, or held until a bind
        else:
            self._push_receipt(receipt, self.config.receipt_retry_ms / 1000)

    # --- MO ------------------------------------------------------------------------

    async def push_mo(
        self,
        source: str,
        destination: str,
        text: str | None = None,
        *,
        short_message: bytes | None = None,
        data_coding: int | None = None,
        system_id: str | None = None,
        esm_class: int = 0,
        tlvs: dict[int, TlvValue] | None = None,
    ) -> DeliverSmResp:
        """Send a mobile-originated message to a bound receiver (of `system_id`, if given).

        Text goes as GSM 03.38 when it fits, else UCS-2; over 255 octets it rides in
        message_payload. Raises SessionClosed when no receiver is bound.
        """
        body = short_message or b""
        coding = data_coding
        if text is not None:
            try:
                body, coding = encode_gsm(text), 0 if data_coding is None else data_coding
            except ValueError:
                body, coding = text.encode("utf-16-be"), 8
        extra = dict(tlvs or {})
        if len(body) > 255:
            extra[Tlv.MESSAGE_PAYLOAD] = body
            body = b""
        pdu = DeliverSm(
            source_addr_ton=1 if source.lstrip("+").isdigit() else 5,
            source_addr_npi=1 if source.lstrip("+").isdigit() else 0,
            source_addr=source.lstrip("+"),
            dest_addr_ton=1 if destination.lstrip("+").isdigit() else 0,
            dest_addr_npi=1 if destination.lstrip("+").isdigit() else 0,
            destination_addr=destination.lstrip("+"),
            esm_class=esm_class,
            data_coding=coding or 0,
            short_message=body,
            tlvs=extra,
        )
        sessions = self.server.bound_sessions(system_id, receivers=True)
        if not sessions:
            raise SessionClosed(f"no receiver bound{f' as {system_id}' if system_id else ''}")
        self._rr += 1
        resp = await sessions[self._rr % len(sessions)].deliver(pdu)
        self.mo_sent += 1
        return resp

    # --- control -------------------------------------------------------------------

    def disconnect_all(self) -> int:
        """Drop every connection without unbinding, as a crashing SMSC would."""
        count = self.server.drop_all("disconnect requested")
        log.info("dropped %d connections on request", count)
        return count

    async def unbind_all(self) -> int:
        """Unbind every session from the SMSC side."""
        count = await self.server.unbind_all()
        log.info("unbound %d sessions on request", count)
        return count

    # --- views ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        sessions = [
            {
                "system_id": s.system_id,
                "bind_mode": s.bind_mode,
                "peer": list(s.peer) if isinstance(s.peer, tuple) else s.peer,
                "in_flight": s.window_used,
            }
            for s in self.server.sessions
            if s.bound
        ]
        last = sorted(self.per_second.items())[-60:]
        return {
            "submits": self.submits,
            "accepted": self.accepted,
            "failed": self.failed,
            "throttled": self.throttled,
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "by_system_id": dict(self.by_system_id),
            "receipts_sent": self.receipts_sent,
            "receipts_acked": self.receipts_acked,
            "receipts_retried": self.receipts_retried,
            "receipts_pending": len(self._receipt_heap),
            "receipts_held": sum(len(q) for q in self._held.values()),
            "mo_sent": self.mo_sent,
            "binds": self.binds,
            "binds_refused": self.binds_refused,
            "closes": dict(self.closes),
            "unanswered": self.unanswered,
            "max_unanswered": self.max_unanswered,
            "sessions": sessions,
            "per_second": [[second, count] for second, count in last],
            "monotonic": time.monotonic(),
        }

    def recent_messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """The last `limit` submits received, oldest first."""
        items = list(self.messages)[-limit:] if limit > 0 else []
        return [
            {
                "message_id": mid or None,
                "system_id": sid,
                "status": status_name(status) if status > 0 else ("DROPPED" if status else "OK"),
                "source_addr": pdu.source_addr,
                "destination_addr": pdu.destination_addr,
                "data_coding": pdu.data_coding,
                "esm_class": pdu.esm_class,
                "registered_delivery": pdu.registered_delivery,
                "short_message": pdu.short_message.hex(),
                "tlvs": _tlv_json(pdu.tlvs),
                "received_at": at + self._wall_offset,
                "received_monotonic": at,
            }
            for mid, sid, pdu, at, status in items
        ]

    def arrival_times(self, since: float = 0.0, until: float | None = None) -> list[float]:
        """Monotonic arrival times of submits in [since, until], oldest first."""
        out: list[float] = []
        for t in reversed(self.arrivals):
            if t < since:
                break
            if until is None or t <= until:
                out.append(t)
        out.reverse()
        return out

    def pacing(
        self,
        since: float = 0.0,
        until: float | None = None,
        window_ms: float = 100.0,
        raw: bool = False,
    ) -> dict[str, Any]:
        """Rate and burstiness of arrivals, measured here at the SMSC.

        `tps` is (count - 1) / (last - first); `max_in_window` the most arrivals in
        any sliding window of `window_ms` (half-open, so evenly spaced arrivals at
        exactly the limit count limit/10 per 100 ms).
        """
        times = self.arrival_times(since, until)
        return {**pacing_summary(times, window_ms), **({"timestamps": times} if raw else {})}


def pacing_summary(times: Iterable[float], window_ms: float = 100.0) -> dict[str, Any]:
    """Rate and the largest count in any sliding window, for sorted timestamps."""
    ts = list(times)
    count = len(ts)
    width = window_ms / 1000 - 1e-9  # half-open, with a nanosecond for float rounding
    best = 0
    start = 0
    for i, t in enumerate(ts):
        while ts[start] <= t - width:
            start += 1
        if i - start + 1 > best:
            best = i - start + 1
    duration = ts[-1] - ts[0] if count >= 2 else 0.0
    return {
        "count": count,
        "first": ts[0] if ts else None,
        "last": ts[-1] if ts else None,
        "duration": duration,
        "tps": (count - 1) / duration if duration > 0 else 0.0,
        "window_ms": window_ms,
        "max_in_window": best,
        "monotonic": time.monotonic(),
    }
