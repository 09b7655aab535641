"""The asyncio ESME client over real TCP against the simulator, plus the pacer's rules.

No test here asserts a speed: bounds on time only say "this failed fast rather than
after a 30 s timeout".
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from smsgateway.smpp.constants import CommandId, CommandStatus, MessageState, Tlv
from smsgateway.smpp.errors import CommandError, ResponseTimeout, SessionClosed
from smsgateway.smpp.pacing import Pacer
from smsgateway.smpp.pdu import (
    BindTransceiverResp,
    DataSm,
    DeliverSm,
    EnquireLinkResp,
    Framer,
    GenericNack,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    decode,
    encode,
)
from smsgateway.smpp.receipt import parse_receipt
from smsgateway.smpp.session import ClientConfig, EsmeClient, LinkState


def sms(dest: str = "447700900001", text: bytes = b"hello", **kw: Any) -> SubmitSm:
    return SubmitSm(source_addr="12345", destination_addr=dest, short_message=text, **kw)


# --- pacer (deterministic: a fake clock, no sleeping) ------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(pacer: Pacer, clock: FakeClock, seconds: float, step: float = 0.0005) -> list[float]:
    """Take every token the pacer allows while time advances in small steps."""
    taken = []
    end = clock.now + seconds
    while clock.now < end:
        while pacer.try_acquire():
            taken.append(clock.now)
        clock.now += step
    return taken


def max_in_window(times: list[float], width: float = 0.1) -> int:
    best = start = 0
    for i, t in enumerate(times):
        while times[start] <= t - width:
            start += 1
        best = max(best, i - start + 1)
    return best


@pytest.mark.parametrize("limit", [5, 50, 200, 1000, 15])
def test_pacer_rate_and_100ms_windows(limit: int) -> None:
    clock = FakeClock()
    pacer = Pacer(limit, clock=clock)
    taken = drain(pacer, clock, 3.0)
    # 1% under the limit by design (1 ms of slack per 100 ms window), never above
    assert 0.985 * 3 * limit - 1 <= len(taken) <= 3 * limit + 1
    assert max_in_window(taken) <= limit / 10 + 1
    if limit % 10 == 0:
        assert max_in_window(taken) <= limit // 10


def test_pacer_absorbs_late_wakeups_without_bursting() -> None:
    clock = FakeClock()
    pacer = Pacer(1000, clock=clock)
    # an event loop that only gets round to us every 2.5 ms: without catching up on
    # the schedule this would give 800/s; the guard's wait rounds up to our steps
    taken = drain(pacer, clock, 2.0, step=0.0025)
    assert len(taken) >= 0.97 * 2000
    assert max_in_window(taken) <= 101


def test_pacer_idle_does_not_bank_tokens() -> None:
    clock = FakeClock()
    pacer = Pacer(100, clock=clock)
    drain(pacer, clock, 0.5)
    clock.now += 5.0  # idle
    burst = 0
    while pacer.try_acquire():
        burst += 1
    assert burst <= 2


def test_pacer_unlimited_and_set_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(0, clock=clock)
    assert all(pacer.try_acquire() for _ in range(10_000))
    pacer.set_rate(10)
    assert pacer.limit_tps == 10
    assert len(drain(pacer, clock, 1.0)) in (10, 11)
    pacer.set_rate(-1)
    assert pacer.limit_tps == 0 and pacer.try_acquire()


def test_pacer_back_off_pauses_halves_and_recovers() -> None:
    clock = FakeClock()
    pacer = Pacer(100, clock=clock)
    drain(pacer, clock, 0.2)
    pacer.back_off(0.5)
    pacer.back_off(0.5)  # a burst of throttles halves once
    assert pacer.rate == 50
    assert pacer.paused and not pacer.try_acquire()
    clock.now += 0.5
    assert pacer.try_acquire()
    taken = drain(pacer, clock, 6.0)
    assert pacer.rate == 100  # recovered
    assert len(taken) < 6 * 100


def test_pacer_back_off_unlimited_only_pauses() -> None:
    clock = FakeClock()
    pacer = Pacer(0, clock=clock)
    pacer.back_off(1.0)
    assert not pacer.try_acquire()
    clock.now += 1.0
    assert pacer.try_acquire() and pacer.rate == 0


async def test_pacer_async_acquire_hands_out_in_order() -> None:
    pacer = Pacer(200)
    order: list[int] = []

    async def take(i: int) -> None:
        await pacer.acquire()
        order.append(i)

    await asyncio.wait_for(asyncio.gather(*(take(i) for i in range(20))), 5)
    assert order == list(range(20))
    assert pacer.waiting == 0


async def test_pacer_cancelled_waiter_is_removed() -> None:
    pacer = Pacer(1)
    await pacer.acquire()
    task = asyncio.ensure_future(pacer.acquire())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pacer.waiting == 0


# --- binding ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["transceiver", "transmitter", "receiver"])
async def test_bind_in_each_mode(make_sim: Any, make_client: Any, mode: str) -> None:
    sim = await make_sim()
    states: list[LinkState] = []
    client = await make_client(sim.smpp_port, bind_mode=mode)
    client.on_state_change = states.append
    assert client.state is LinkState.BOUND and client.bound
    assert client.remote_system_id == "smscsim"
    (session,) = sim.server.bound_sessions()
    assert session.bind_mode == mode and session.system_id == "tester"
    if mode == "receiver":
        with pytest.raises(Exception, match="may not be sent"):
            await client.submit(sms())
    else:
        resp = await client.submit(sms())
        assert resp.message_id
    await client.stop()
    assert states[-2:] == [LinkState.UNBINDING, LinkState.CLOSED]


async def test_wrong_password_and_system_id_are_refused(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(system_id="gw", password="secret")
    client = await make_client(sim.smpp_port, system_id="gw", password="wrong", bound=False)
    with pytest.raises(TimeoutError):
        await client.wait_bound(0.5)
    assert client.last_bind_status == CommandStatus.ESME_RINVPASWD
    assert "ESME_RINVPASWD" in (client.last_error or "")
    other = await make_client(sim.smpp_port, system_id="nope", password="secret", bound=False)
    with pytest.raises(TimeoutError):
        await other.wait_bound(0.5)
    assert other.last_bind_status == CommandStatus.ESME_RINVSYSID
    good = await make_client(sim.smpp_port, system_id="gw", password="secret")
    assert good.bound
    assert sim.binds_refused >= 2 and sim.binds == 1


async def test_submit_fails_fast_when_not_bound(make_sim: Any) -> None:
    client = EsmeClient(ClientConfig("127.0.0.1", 1, "x", "y"))
    with pytest.raises(SessionClosed):
        await client.submit(sms())
    assert client.state is LinkState.CLOSED


# --- window, timeouts, in-flight failures ---------------------------------------------------


async def test_window_is_respected(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(resp_delay_ms=30)
    client = await make_client(sim.smpp_port, window=4)
    results = await asyncio.gather(*(client.submit(sms(str(i))) for i in range(24)))
    assert len({r.message_id for r in results}) == 24
    assert sim.max_unanswered == 4  # the window filled, and never overflowed
    assert client.in_flight == 0 and client.submitted == 24


async def test_response_timeout_fails_one_request_and_the_session_goes_on(
    make_sim: Any, make_client: Any
) -> None:
    sim = await make_sim(resp_delay_ms=800)
    client = await make_client(sim.smpp_port, response_timeout=0.2)
    with pytest.raises(ResponseTimeout):
        await client.submit(sms())
    assert client.in_flight == 0 and client.errors == 1
    sim.configure(resp_delay_ms=0)
    resp = await client.submit(sms())
    assert resp.message_id and client.state is LinkState.BOUND


async def test_in_flight_requests_fail_fast_when_the_connection_drops(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(resp_delay_ms=20_000)
    client = await make_client(sim.smpp_port, window=10, response_timeout=30)
    tasks = [asyncio.ensure_future(client.submit(sms(str(i)))) for i in range(5)]
    await eventually(lambda: sim.submits == 5)
    assert client.in_flight == 5
    sim.disconnect_all()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    assert all(isinstance(r, SessionClosed) for r in results), results
    assert client.in_flight == 0
    await client.wait_bound(5)  # and it comes back by itself
    sim.configure(resp_delay_ms=0)
    assert (await client.submit(sms())).message_id


async def test_drop_after_fails_the_unanswered_submit(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(drop_after=3)
    client = await make_client(sim.smpp_port)
    await client.submit(sms("1"))
    await client.submit(sms("2"))
    with pytest.raises(SessionClosed):
        await client.submit(sms("3"))
    assert sim.dropped == 1


# --- reconnecting ------------------------------------------------------------------------


async def test_reconnects_after_the_smsc_restarts_on_the_same_port(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim()
    port = sim.smpp_port
    client = await make_client(port)
    await sim.stop()
    await eventually(lambda: client.state is LinkState.CONNECTING)
    with pytest.raises(SessionClosed):
        await client.submit(sms())
    await asyncio.sleep(0.3)  # a few failed attempts against a closed port
    again = await make_sim(port=port)
    await client.wait_bound(10)
    assert (await client.submit(sms())).message_id
    assert again.submits == 1 and client.disconnects >= 1


# --- throttling --------------------------------------------------------------------------


async def test_throttling_backs_off_and_everything_gets_through(
    make_sim: Any, make_client: Any
) -> None:
    sim = await make_sim(throttle_tps=100)
    client = await make_client(sim.smpp_port, window=10, throttle_pause=0.1)
    results = await asyncio.wait_for(
        asyncio.gather(*(client.submit(sms(str(i))) for i in range(250))), 60
    )
    assert len({r.message_id for r in results}) == 250
    assert client.throttled > 0 and client.retries == client.throttled
    assert sim.accepted == 250 and sim.throttled == client.throttled
    assert client.pacer.back_offs > 0


async def test_throttling_gives_up_after_max_retry_time(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(throttle_tps=0.001)
    sim._bucket = 0.0
    client = await make_client(sim.smpp_port, throttle_pause=0.05, max_retry_time=0.2)
    with pytest.raises(CommandError) as info:
        await client.submit(sms())
    assert info.value.status == CommandStatus.ESME_RTHROTTLED
    assert client.throttled >= 2


async def test_submit_soon_is_submit_without_a_task(make_sim: Any, make_client: Any) -> None:
    """Sent at once when the window has room and the pacer a token; None otherwise
    (the caller awaits `submit` then); the future settles as `submit` would."""
    sim = await make_sim(resp_delay_ms=100)
    client = await make_client(sim.smpp_port, window=2, throttle_pause=0.05)
    first, second = client.submit_soon(sms("a")), client.submit_soon(sms("b"))
    assert first is not None and second is not None
    assert client.submit_soon(sms("c")) is None  # the window (2) is full
    resps = await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert [type(r) for r in resps] == [SubmitSmResp, SubmitSmResp]
    assert len({r.message_id for r in resps}) == 2 and client.submitted == 2

    # A refusal is a CommandError, counted, as from `submit`.
    sim.configure(resp_delay_ms=0, fail_rate=1.0, fail_status=CommandStatus.ESME_RINVDSTADR)
    refused = client.submit_soon(sms("d"))
    assert refused is not None
    with pytest.raises(CommandError) as info:
        await asyncio.wait_for(refused, 5)
    assert info.value.status == CommandStatus.ESME_RINVDSTADR and client.errors == 1

    # Throttled: retried by `submit`'s loop until the SMSC takes it.
    sim.configure(fail_status=CommandStatus.ESME_RTHROTTLED)
    throttled = client.submit_soon(sms("e"))
    assert throttled is not None
    await asyncio.sleep(0.2)
    assert not throttled.done() and client.throttled >= 2
    sim.configure(fail_rate=0.0)
    resp = await asyncio.wait_for(throttled, 5)
    assert isinstance(resp, SubmitSmResp) and resp.message_id
    assert client.retries == client.throttled

    await client.stop()
    with pytest.raises(SessionClosed):
        client.submit_soon(sms("f"))


async def test_paced_client_submits_everything(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim()
    client = await make_client(sim.smpp_port, limit_tps=200)
    await asyncio.gather(*(client.submit(sms(str(i))) for i in range(40)))
    assert sim.accepted == 40
    assert client.measured_tps() > 0


# --- receipts and MO ---------------------------------------------------------------------


async def test_receipt_arrives_with_receipted_message_id(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(dlr_delay_ms=20)
    got: list[DeliverSm | DataSm] = []
    client = await make_client(sim.smpp_port, on_deliver=got.append)
    resp = await client.submit(sms(text=b"Hello receipt", registered_delivery=1))
    await eventually(lambda: got)
    (receipt,) = got
    assert isinstance(receipt, DeliverSm)
    assert receipt.esm_class == 0x04
    assert receipt.tlvs[Tlv.RECEIPTED_MESSAGE_ID] == resp.message_id
    assert receipt.tlvs[Tlv.MESSAGE_STATE] == MessageState.DELIVERED
    parsed = parse_receipt(receipt.short_message, receipt.tlvs)
    assert parsed is not None and parsed.message_id == resp.message_id
    assert parsed.state is MessageState.DELIVERED
    assert b"text:Hello receipt" in receipt.short_message
    await eventually(lambda: sim.receipts_acked == 1)


async def test_no_receipt_unless_asked(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(dlr_delay_ms=0)
    got: list[Any] = []
    client = await make_client(sim.smpp_port, on_deliver=got.append)
    await client.submit(sms(registered_delivery=0))
    await client.submit(sms(registered_delivery=2))  # failures only; this one is delivered
    await asyncio.sleep(0.1)
    assert got == [] and sim.receipts_sent == 0


async def test_callback_failure_answers_rx_t_appn_and_the_smsc_retries(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(dlr_delay_ms=0, receipt_retry_ms=30)
    calls: list[DeliverSm | DataSm] = []

    def flaky(pdu: DeliverSm | DataSm) -> None:
        calls.append(pdu)
        if len(calls) == 1:
            raise RuntimeError("database down")

    client = await make_client(sim.smpp_port, on_deliver=flaky)
    await client.submit(sms(registered_delivery=1))
    await eventually(lambda: sim.receipts_acked == 1)
    assert len(calls) == 2 and sim.receipts_retried == 1


async def test_async_callback_status_is_the_answer(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim(dlr_delay_ms=0, receipt_retry_ms=30)
    seen: list[int] = []

    async def handler(pdu: DeliverSm | DataSm) -> int:
        await asyncio.sleep(0)
        seen.append(1)
        return CommandStatus.ESME_RX_T_APPN if len(seen) < 3 else 0

    client = await make_client(sim.smpp_port, on_deliver=handler)
    await client.submit(sms(registered_delivery=1))
    await eventually(lambda: sim.receipts_acked == 1)
    assert len(seen) == 3


async def test_mo_push_reaches_on_deliver(make_sim: Any, make_client: Any, eventually: Any) -> None:
    sim = await make_sim()
    got: list[DeliverSm | DataSm] = []
    await make_client(sim.smpp_port, bind_mode="receiver", on_deliver=got.append)
    resp = await sim.push_mo("447700900123", "12345", "Hello MO")
    assert resp.command_status == 0
    (mo,) = got
    assert isinstance(mo, DeliverSm)
    assert mo.esm_class == 0 and mo.data_coding == 0
    assert mo.short_message == b"Hello MO"
    assert mo.source_addr == "447700900123" and mo.destination_addr == "12345"
    ucs2 = await sim.push_mo("447700900123", "12345", "Привет")
    assert ucs2.command_status == 0
    assert got[1].data_coding == 8
    assert got[1].short_message.decode("utf-16-be") == "Привет"


# --- unbinding ---------------------------------------------------------------------------


async def test_unbind_from_the_client(make_sim: Any, make_client: Any, eventually: Any) -> None:
    sim = await make_sim()
    client = await make_client(sim.smpp_port)
    await client.stop()
    assert client.state is LinkState.CLOSED
    await eventually(lambda: sim.closes.get("unbound by ESME") == 1)
    assert not sim.server.sessions
    await asyncio.sleep(0.2)
    assert client.state is LinkState.CLOSED and sim.binds == 1  # no reconnect


async def test_unbind_from_the_smsc_then_reconnect(
    make_sim: Any, make_client: Any, eventually: Any
) -> None:
    sim = await make_sim()
    states: list[LinkState] = []
    client = await make_client(sim.smpp_port)
    client.on_state_change = states.append
    assert await sim.unbind_all() == 1
    await eventually(lambda: sim.binds == 2)
    await client.wait_bound(5)
    assert LinkState.CONNECTING in states and states[-1] is LinkState.BOUND
    assert sim.closes.get("unbound") == 1
    assert (await client.submit(sms())).message_id


# --- other requests ----------------------------------------------------------------------


async def test_query_sm_through_request(make_sim: Any, make_client: Any) -> None:
    sim = await make_sim(dlr_delay_ms=0)
    client = await make_client(sim.smpp_port)
    resp = await client.submit(sms())
    await asyncio.sleep(0.01)
    answer = await client.request(QuerySm(message_id=resp.message_id, source_addr="12345"))
    assert isinstance(answer, QuerySmResp)
    assert answer.message_id == resp.message_id
    assert answer.message_state == MessageState.DELIVERED
    missing = await client.request(QuerySm(message_id="nope"))
    assert missing.command_status == CommandStatus.ESME_RQUERYFAIL


async def test_enquire_link_when_idle(make_sim: Any, make_client: Any, eventually: Any) -> None:
    sim = await make_sim()
    client = await make_client(sim.smpp_port, enquire_link_interval=0.1)
    link = client._link
    assert link is not None
    await eventually(lambda: link.enquire_links_sent >= 2)
    assert client.state is LinkState.BOUND and client._link is link


# --- a misbehaving SMSC ------------------------------------------------------------------


class RawSmsc:
    """A hand-driven SMSC: answers binds, records what the ESME sends, sends anything."""

    def __init__(self, answer_enquire_link: bool = True) -> None:
        self.answer_enquire_link = answer_enquire_link
        self.connections = 0
        self.received: list[Any] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        framer = Framer()
        try:
            while data := await reader.read(65536):
                for frame in framer.feed(data):
                    pdu = decode(frame)
                    self.received.append(pdu)
                    if pdu.command_id == CommandId.BIND_TRANSCEIVER:
                        resp = BindTransceiverResp(
                            sequence_number=pdu.sequence_number, system_id="raw"
                        )
                        writer.write(encode(resp))
                    elif pdu.command_id == CommandId.ENQUIRE_LINK and self.answer_enquire_link:
                        writer.write(encode(EnquireLinkResp(sequence_number=pdu.sequence_number)))
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()


async def test_garbage_from_the_smsc_gets_generic_nack_then_close(
    make_client: Any, eventually: Any
) -> None:
    raw = RawSmsc()
    port = await raw.start()
    try:
        client = await make_client(port)
        writer = raw.writers[0]
        writer.write(struct.pack(">IIII", 16, 0x00000077, 0, 4242))  # unknown command
        nack = await eventually(
            lambda: next((p for p in raw.received if isinstance(p, GenericNack)), None)
        )
        assert nack.command_status == CommandStatus.ESME_RINVCMDID
        assert nack.sequence_number == 4242
        assert client.state is LinkState.BOUND
        writer.write(b"\x00\x00\x00\x03garbage")  # impossible length: cannot resync
        await eventually(lambda: raw.connections == 2)  # closed, and came back
        await client.wait_bound(5)
        nacks = [p for p in raw.received if isinstance(p, GenericNack)]
        assert nacks[-1].command_status == CommandStatus.ESME_RINVCMDLEN
    finally:
        await raw.stop()


async def test_unanswered_enquire_link_drops_and_reconnects(
    make_client: Any, eventually: Any
) -> None:
    raw = RawSmsc(answer_enquire_link=False)
    port = await raw.start()
    try:
        client = await make_client(port, enquire_link_interval=0.1, response_timeout=0.2)
        await eventually(lambda: raw.connections >= 2)
        await client.wait_bound(5)
        assert client.disconnects >= 1
    finally:
        await raw.stop()
