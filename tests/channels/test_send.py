"""MessageService.send over real sockets: the wait modes, owners, idempotency keys,
scheduled sends, validity, run-time channels and their reports, attempts rows.

Each test runs a Runtime (tests/gwkit.py) against the built-in SMSC simulator and a
real SQLite file; the run-time channel is a small real Channel class that records the
jobs it is given and answers through the service's sink, as a device channel does.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gwkit import Gateway, dead_link, eventually, link_to, make_settings
from smsgateway.core.channels import OutcomeSink, PartOutcome, SendJob
from smsgateway.core.errors import InvalidRequest
from smsgateway.core.messages import MessageService
from smsgateway.core.routing import LinkDisabled, UnknownEsme
from smsgateway.settings import Settings
from smsgateway.smscsim.simulator import SmscSimulator

SimFactory = Callable[..., Awaitable[SmscSimulator]]
GatewayFactory = Callable[[Settings], Awaitable[Gateway]]

DEST = "+447700900123"
SENT = ("submitted", "delivered")  # the simulator's receipt may come first


def service(gw: Gateway) -> MessageService:
    assert gw.runtime.messages is not None
    return gw.runtime.messages


def db_rows(gw: Gateway, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(gw.runtime.settings.storage.path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def status_of(gw: Gateway, owner: str, message_id: str) -> str:
    row = await service(gw).get_owned(owner, message_id)
    assert row is not None
    return row.message.status


class RecordingChannel:
    """A run-time channel that sends whole texts, as a device does: it keeps the jobs
    it is given and answers when the test says so."""

    kind = "device"

    def __init__(self, channel_id: int, sink: OutcomeSink) -> None:
        self.id = channel_id
        self.name = f"device-{channel_id}"
        self.jobs: list[SendJob] = []
        self._sink = sink

    @property
    def status(self) -> str:
        return "BOUND"

    @property
    def bound(self) -> bool:
        return True

    def allows(self, address: str | None) -> bool:
        return True

    def enqueue(self, job: SendJob) -> None:
        self.jobs.append(job)

    def sent(self, job: SendJob, error: str | None = None) -> None:
        """The phone sent it (its id is the message id), or refused it."""
        seq = job.parts[0].seq
        outcome = PartOutcome(seq, self.id, None if error else job.message_id, error)
        job.outcomes[seq] = outcome
        self._sink(job, [outcome])


@pytest.fixture
async def one_link(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> tuple[SmscSimulator, Gateway]:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    return sim, gw


async def test_budget_send_is_submitted_and_owned(one_link: tuple[SmscSimulator, Gateway]) -> None:
    sim, gw = one_link
    result = await service(gw).send(
        owner="oauth:client-a", channel_id=1, source="Shop", destination=DEST, text="hi there"
    )
    assert result.success and result.status == "submitted" and len(result.sms_ids) == 1
    assert sim.recent_messages()[-1]["source_addr"] == "Shop"
    row = await service(gw).get_owned("oauth:client-a", result.message_id)
    assert row is not None and row.message.owner == "oauth:client-a"
    assert row.message.body == "hi there" and row.parts[0].smsc_id == result.sms_ids[0]
    # Another tenant does not see it, nor does an app reading by app id 0.
    assert await service(gw).get_owned("oauth:client-b", result.message_id) is None
    assert await service(gw).get_owned("app:0", result.message_id) is None
    attempts = await service(gw).attempts(result.message_id)
    assert [(a.attempt, a.channel_id, a.channel_kind, a.outcome) for a in attempts] == [
        (1, 1, "link", "accepted")
    ]


async def test_native_send_is_owned_by_its_app_and_records_an_attempt(
    one_link: tuple[SmscSimulator, Gateway],
) -> None:
    _, gw = one_link
    reg = await gw.register("owner@example.com")
    headers = await gw.login("owner@example.com", reg["app_id"])
    r = await gw.send(headers)
    assert r.status_code == 200, r.text
    message_id = r.json()["message_id"]
    row = await service(gw).get_owned(f"app:{reg['app_id']}", message_id)
    assert row is not None and row.message.app_id == reg["app_id"]
    assert [(a.outcome, a.channel_id) for a in await service(gw).attempts(message_id)] == [
        ("accepted", 1)
    ]
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_channel_attempts_total{channel="1",outcome="accepted"}' in metrics


async def test_alphanumeric_sender_goes_out_with_ton_5_and_ton_can_be_chosen(
    one_link: tuple[SmscSimulator, Gateway],
) -> None:
    sim, gw = one_link
    await service(gw).send(owner="o", channel_id=1, source="Alpha", destination=DEST, text="a")
    await service(gw).send(owner="o", channel_id=1, source="+4912345", destination=DEST, text="b")
    await service(gw).send(
        owner="o", channel_id=1, source="12345", destination=DEST, text="c", source_ton=3
    )
    sent = {bytes.fromhex(m["short_message"]).decode(): m for m in sim.recent_messages()}
    assert len(sent) == 3
    # The simulator keeps PDUs: read the TONs it got.
    tons = {
        pdu.short_message.decode(): (pdu.source_addr_ton, pdu.source_addr_npi)
        for _, _, pdu, _, _ in sim.messages
    }
    assert tons == {"a": (5, 0), "b": (1, 1), "c": (3, 1)}


async def test_stored_answers_before_the_smsc_and_still_sends(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    sim = await make_sim(resp_delay_ms=800)
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim, response_timeout=5.0)]))
    await gw.bound()
    result = await service(gw).send(
        owner="project:7", channel_id=1, source="Shop", destination=DEST, text="x", wait="stored"
    )
    assert result.status == "queued" and result.sms_ids == []
    # Committed when it answered: the row is there at once.
    assert await status_of(gw, "project:7", result.message_id) == "queued"

    async def submitted() -> bool:
        return await status_of(gw, "project:7", result.message_id) in SENT

    await eventually(submitted)


async def test_accepted_waits_past_the_budget(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    sim = await make_sim(resp_delay_ms=600)
    settings = make_settings(tmp_path, [link_to(sim, response_timeout=5.0)], send_budget_s=0.2)
    gw = await make_gateway(settings)
    await gw.bound()
    budget = await service(gw).send(
        owner="o", channel_id=1, source="Shop", destination=DEST, text="budget"
    )
    assert budget.status == "queued"  # the budget ran out before the SMSC answered
    accepted = await service(gw).send(
        owner="o", channel_id=1, source="Shop", destination=DEST, text="acc", wait="accepted"
    )
    assert accepted.status == "submitted" and accepted.success and accepted.sms_ids


async def test_accepted_reports_a_refusal_as_rejected(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    sim = await make_sim(fail_rate=1.0)
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    result = await service(gw).send(
        owner="o", channel_id=1, source="Shop", destination=DEST, text="no", wait="accepted"
    )
    assert not result.success and result.status == "rejected"
    assert result.error == "ESME_RSUBMITFAIL"
    attempts = await service(gw).attempts(result.message_id)
    assert [(a.outcome, a.error) for a in attempts] == [("refused", "ESME_RSUBMITFAIL")]


async def test_bad_input_and_unknown_channels_are_refused(
    one_link: tuple[SmscSimulator, Gateway],
) -> None:
    _, gw = one_link
    svc = service(gw)
    base: dict[str, Any] = dict(owner="o", channel_id=1, source="Shop", destination=DEST, text="t")
    with pytest.raises(UnknownEsme):
        await svc.send(**{**base, "channel_id": 77})
    for bad in (
        {"wait": "later"},
        {"owner": ""},
        {"source": "far too long sender"},
        {"destination": "12"},
        {"text": ""},
        {"validity_ms": 0},
        {"source_ton": 9},
        {"idempotency_key": "k" * 129},
    ):
        with pytest.raises(InvalidRequest):
            await svc.send(**{**base, **bad})
    assert db_rows(gw, "SELECT COUNT(*) FROM messages") == [(0,)]
    await gw.ops.links.toggle(1, False, "maintenance", "test")
    with pytest.raises(LinkDisabled):
        await svc.send(**base)


async def test_idempotency_key_replays_and_concurrent_repeats_wait(
    one_link: tuple[SmscSimulator, Gateway],
) -> None:
    sim, gw = one_link
    svc = service(gw)

    async def send(owner: str, key: str, text: str = "once") -> Any:
        return await svc.send(
            owner=owner,
            channel_id=1,
            source="Shop",
            destination=DEST,
            text=text,
            idempotency_key=key,
        )

    first, second, third = await asyncio.gather(
        send("oauth:a", "k1"), send("oauth:a", "k1"), send("oauth:a", "k1")
    )
    assert first.message_id == second.message_id == third.message_id
    later = await send("oauth:a", "k1", "other text")
    assert later.message_id == first.message_id and later.sms_ids == first.sms_ids
    assert later.status == first.status == "submitted"
    # The key is the owner's: another owner's same key is another message.
    other = await send("oauth:b", "k1")
    assert other.message_id != first.message_id
    assert len(sim.recent_messages()) == 2
    assert db_rows(gw, "SELECT COUNT(*) FROM messages") == [(2,)]


async def test_idempotency_key_replay_of_a_stored_send_after_restart(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    gw = await make_gateway(settings)
    await gw.bound()
    first = await service(gw).send(
        owner="project:1",
        channel_id=1,
        source="Shop",
        destination=DEST,
        text="x",
        wait="stored",
        idempotency_key="abc",
    )
    await eventually(lambda: len(sim.recent_messages()) == 1)
    await gw.stop()
    gw2 = await make_gateway(settings)
    again = await service(gw2).send(
        owner="project:1",
        channel_id=1,
        source="Shop",
        destination=DEST,
        text="x",
        wait="stored",
        idempotency_key="abc",
    )
    assert again.message_id == first.message_id and again.status == "queued"
    await asyncio.sleep(0.2)
    assert len(sim.recent_messages()) == 1


async def test_scheduled_send_waits_for_its_time(one_link: tuple[SmscSimulator, Gateway]) -> None:
    sim, gw = one_link
    at = int(time.time() * 1000) + 1200
    result = await service(gw).send(
        owner="o", channel_id=1, source="Shop", destination=DEST, text="later", not_before_ms=at
    )
    assert result.status == "queued"
    await asyncio.sleep(0.6)
    assert sim.recent_messages() == []
    await eventually(lambda: len(sim.recent_messages()) == 1)
    assert sim.recent_messages()[0]["received_at"] * 1000 >= at - 5  # wall clock, ms


async def test_scheduled_send_survives_a_restart(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    gw = await make_gateway(settings)
    await gw.bound()
    at = int(time.time() * 1000) + 2500
    result = await service(gw).send(
        owner="o", channel_id=1, source="Shop", destination=DEST, text="later", not_before_ms=at
    )
    await gw.stop()
    assert sim.recent_messages() == []
    gw2 = await make_gateway(settings)
    await gw2.bound()
    await asyncio.sleep(max(0.0, at / 1000 - time.time() - 0.5))
    assert sim.recent_messages() == []  # not before its time, after the restart too

    async def submitted() -> bool:
        return await status_of(gw2, "o", result.message_id) in SENT

    await eventually(submitted)
    assert len(sim.recent_messages()) == 1
    assert sim.recent_messages()[0]["received_at"] * 1000 >= at - 5


async def test_validity_expires_an_unsent_message(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(make_settings(tmp_path, [dead_link(1)]))
    result = await service(gw).send(
        owner="o",
        channel_id=1,
        source="Shop",
        destination=DEST,
        text="stale",
        wait="accepted",
        validity_ms=400,
    )
    assert result.status == "expired" and not result.success

    row = await service(gw).get_owned("o", result.message_id)
    assert row is not None and row.message.status == "expired"
    assert [p.state for p in row.parts] == ["expired"]


async def test_validity_expires_across_a_restart(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    sim = await make_sim()
    dead = make_settings(tmp_path, [dead_link(1)])
    gw = await make_gateway(dead)
    result = await service(gw).send(
        owner="o",
        channel_id=1,
        source="Shop",
        destination=DEST,
        text="stale",
        wait="stored",
        validity_ms=300,
    )
    await gw.stop()
    await asyncio.sleep(0.4)
    # Back with a working SMSC, past the validity: it is not sent, it is expired.
    gw2 = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw2.bound()

    async def expired() -> bool:
        return await status_of(gw2, "o", result.message_id) == "expired"

    await eventually(expired)
    await asyncio.sleep(0.2)
    assert sim.recent_messages() == []


async def test_run_time_channel_gets_whole_text_and_reports(
    one_link: tuple[SmscSimulator, Gateway],
) -> None:
    sim, gw = one_link
    svc = service(gw)
    router = gw.runtime.router
    assert router is not None
    device = RecordingChannel(1_000_042, svc.record_outcomes)
    router.add_channel(device)
    assert router.get(1_000_042) is device
    with pytest.raises(ValueError):
        router.add_channel(RecordingChannel(1, svc.record_outcomes))  # a link's id
    text = "Your code is 123456 " * 12  # several SMS worth: a phone sends it whole
    result = await svc.send(
        owner="project:3",
        channel_id=1_000_042,
        source="Shop",
        destination=DEST,
        text=text,
        wait="stored",
    )
    assert result.status == "queued"
    job = device.jobs[0]
    assert (job.text, job.owner, job.message_id) == (text, "project:3", result.message_id)
    assert len(job.parts) == 1 and job.parts[0].seq == 1
    device.sent(job)

    async def state(want: str) -> bool:
        return await status_of(gw, "project:3", result.message_id) == want

    await eventually(lambda: state("submitted"))
    row = await svc.get_owned("project:3", result.message_id)
    assert row is not None and row.parts[0].smsc_id == result.message_id
    assert row.message.mode == "single" and row.message.body == text
    svc.channel_report(1_000_042, result.message_id, "delivered", None)
    await eventually(lambda: state("delivered"))
    # A report from another channel, or of a state a channel cannot report, does nothing.
    svc.channel_report(1_000_043, result.message_id, "failed", "x")
    with pytest.raises(InvalidRequest):
        svc.channel_report(1_000_042, result.message_id, "submitted", None)
    await asyncio.sleep(0.1)
    assert await state("delivered")
    attempts = await svc.attempts(result.message_id)
    assert [(a.channel_id, a.channel_kind, a.outcome) for a in attempts] == [
        (1_000_042, "device", "accepted")
    ]
    assert sim.recent_messages() == []  # nothing went to the SMSC


async def test_run_time_channel_added_later_gets_what_was_stored(
    one_link: tuple[SmscSimulator, Gateway],
) -> None:
    _, gw = one_link
    svc = service(gw)
    router = gw.runtime.router
    assert router is not None
    first = RecordingChannel(1_000_007, svc.record_outcomes)
    router.add_channel(first)
    result = await svc.send(
        owner="project:1", channel_id=1_000_007, source="Shop", destination=DEST, text="t",
        wait="stored",
    )  # fmt: skip
    assert len(first.jobs) == 1
    router.remove_channel(1_000_007)
    assert router.get(1_000_007) is None
    with pytest.raises(UnknownEsme):
        await svc.send(
            owner="project:1", channel_id=1_000_007, source="S", destination=DEST, text="t"
        )
    again = RecordingChannel(1_000_007, svc.record_outcomes)
    router.add_channel(again)  # the phone is back: what is still queued goes to it
    await eventually(lambda: len(again.jobs) == 1)
    assert again.jobs[0].message_id == result.message_id and again.jobs[0].text == "t"
    again.sent(again.jobs[0], error="RESULT_ERROR_GENERIC_FAILURE")

    async def rejected() -> bool:
        return await status_of(gw, "project:1", result.message_id) == "rejected"

    await eventually(rejected)


async def test_attempt_rows_ride_in_the_outcome_units(
    make_sim: SimFactory, make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """A native send still costs two writer units (the insert, the outcome): its
    attempts row commits with the outcome, not in a unit of its own."""
    sim = await make_sim(receipts=False)
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    headers = await gw.user("units@example.com")
    store = gw.runtime.store
    assert store is not None
    before = store.writer_units
    for n in range(5):
        r = await gw.send(headers, message=f"m{n}")
        assert r.json()["status"] == "submitted"
    assert store.writer_units - before == 10
    assert db_rows(gw, "SELECT attempt, outcome, COUNT(*) FROM attempts GROUP BY 1, 2") == [
        (1, "accepted", 5)
    ]
