"""SMSC faults, injected through the simulator while real traffic flows through a real
gateway (Runtime on ephemeral ports, SQLite file, SMPP over TCP).

Every test ends the same way: every message the gateway accepted (HTTP 200) is found
at the SMSC, counted in the simulator's own record of submits, its parts joining to
the text that was sent; /sms/info shows each message in its final state; and any
duplicate copy at the SMSC is accounted for by a submit whose response never came.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from resil_kit import (
    ADMIN_KEY,
    BIG_KEEP,
    SimFactory,
    client,
    complete,
    destination,
    parts_of,
    reconcile,
    send_body,
    send_many,
    settle,
    start,
    statuses,
    user_headers,
)

from gwkit import Gateway, eventually, link_to, make_settings
from smsgateway.settings import Settings
from smsgateway.smpp.constants import CommandStatus, Tlv
from smsgateway.smpp.session import LinkState
from smsgateway.smscsim.simulator import SmscSimulator

# -- the connection goes away -----------------------------------------------------------


async def resends(gw: Any, reason: str) -> float:
    """smsgateway_parts_resent_total for `reason`, from /metrics."""
    sample = f'smsgateway_parts_resent_total{{reason="{reason}"}} '
    text = (await gw.http.get("/metrics")).text
    return next((float(x[len(sample) :]) for x in text.splitlines() if x.startswith(sample)), 0.0)


async def test_smsc_drops_the_connection_with_a_full_window_in_flight(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(
        tmp_path, make_sim, make_gateway, link={"window": 10, "response_timeout": 30.0}
    )
    sim.configure(resp_delay_ms=60_000)  # the SMSC takes submits and sits on the answers
    sent = await send_many(gw, headers, range(30))  # 50 parts, budget 0.3 s: "queued"
    assert all(b["status"] == "queued" for b in sent.values())
    await eventually(lambda: sim.unanswered == 10)  # the whole window is in flight
    in_flight = sim.unanswered
    sim.configure(resp_delay_ms=0)
    resent = await resends(gw, "connection")
    assert sim.disconnect_all() == 1
    rec = await settle(gw, headers, [sim], sent)
    # Only parts whose submit_sm_resp never came may have been sent twice, and the
    # gateway counted each of those as a possible duplicate.
    assert rec.duplicates <= in_flight
    assert rec.duplicates <= await resends(gw, "connection") - resent <= in_flight
    assert client(gw).disconnects == 1


async def test_smsc_that_stops_answering_entirely_is_dropped_and_rebound(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """No submit_sm_resp and no enquire_link_resp: the SMSC process hangs (it stops
    reading its socket). The gateway's keepalive notices, drops the link, binds again
    and sends what was waiting."""
    sim, gw, headers = await start(
        tmp_path,
        make_sim,
        make_gateway,
        link={"response_timeout": 1.0, "enquire_link_interval": 0.5},
    )
    sent = await send_many(gw, headers, range(0, 6))
    await eventually(lambda: complete([sim], sent))
    for session in list(sim.server.sessions):
        assert session.transport is not None
        session.transport.pause_reading()  # hung: reads nothing, answers nothing
    sent |= await send_many(gw, headers, range(6, 20))
    await eventually(lambda: sim.binds >= 2, timeout=15)
    rec = await settle(gw, headers, [sim], sent)
    assert rec.duplicates == 0  # the hung SMSC never read the first attempts
    assert client(gw).disconnects >= 1


async def test_smsc_that_stops_answering_submits_gets_them_again(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """The SMSC takes submits and never answers them (but still answers enquire_link):
    each part is sent again after the response timeout, so every duplicate at the SMSC
    is exactly one timed-out submit."""
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, link={"response_timeout": 1.0})
    resent = await resends(gw, "timeout")
    sim.configure(resp_delay_ms=600_000)
    sent = await send_many(gw, headers, range(12))
    await asyncio.sleep(2.5)  # two rounds of timeouts and resends
    sim.configure(resp_delay_ms=0)
    rec = await settle(gw, headers, [sim], sent)
    timeouts = client(gw).errors  # response timeouts of submits (nothing else failed)
    assert timeouts > 0 and client(gw).last_error == "response timeout"
    assert rec.duplicates == timeouts
    # Each one was counted as a resend (a possible duplicate) by the gateway itself.
    assert await resends(gw, "timeout") - resent == timeouts


async def test_smsc_answers_slowly(tmp_path: Path, make_sim: SimFactory, make_gateway: Any) -> None:
    sim, gw, headers = await start(
        tmp_path, make_sim, make_gateway, link={"response_timeout": 5.0, "window": 50}, budget=1.0
    )
    sim.configure(resp_delay_ms=2_000)
    started = time.monotonic()
    sent = await send_many(gw, headers, range(20))
    # The answer does not wait past the send budget: stored, then "queued".
    assert time.monotonic() - started < 1.9
    assert {b["status"] for b in sent.values()} == {"queued"}
    rec = await settle(gw, headers, [sim], sent)
    assert rec.duplicates == 0 and client(gw).errors == 0


async def test_smsc_unbinds_in_the_middle_of_traffic(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway)
    sim.configure(resp_delay_ms=400)
    sending = asyncio.create_task(send_many(gw, headers, range(40)))
    await eventually(lambda: sim.unanswered >= 5)
    assert await sim.unbind_all() == 1
    in_flight = sim.unanswered  # submits taken and never answered (window: 10)
    sim.configure(resp_delay_ms=0)
    sent = await sending
    rec = await settle(gw, headers, [sim], sent)
    assert rec.duplicates <= in_flight
    assert sim.closes.get("unbound", 0) + sim.closes.get("unbound by ESME", 0) >= 1
    assert client(gw).disconnects >= 1


async def test_smsc_refuses_binds_for_a_while(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(
        tmp_path, make_sim, make_gateway, sim={"refuse_binds": True}, wait_bound=False
    )
    sent = await send_many(gw, headers, range(10))
    assert {b["status"] for b in sent.values()} == {"queued"}
    await eventually(lambda: sim.binds_refused >= 2)
    assert client(gw).state is not LinkState.BOUND and sim.submits == 0
    sim.configure(refuse_binds=False)
    await settle(gw, headers, [sim], sent)
    assert sim.binds == 1


# -- refusals that mean "later" ---------------------------------------------------------


async def test_smsc_throttles_and_everything_gets_through(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway)
    sim.configure(throttle_tps=25)
    sent = await send_many(gw, headers, range(36))  # 60 parts at once, 25 per second
    rec = await settle(gw, headers, [sim], sent)
    assert sim.throttled > 0 and client(gw).throttled == sim.throttled
    assert rec.duplicates == 0  # a throttled submit is refused, not taken


async def test_message_queue_full_is_retried_not_reported(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """ESME_RMSGQFUL for a while: the gateway backs off and retries, like throttling."""
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway)
    sim.configure(fail_rate=1.0, fail_status=CommandStatus.ESME_RMSGQFUL)
    sent = await send_many(gw, headers, range(12))
    await eventually(lambda: sim.failed >= 5)
    await asyncio.sleep(1.0)
    sim.configure(fail_rate=0.0)
    rec = await settle(gw, headers, [sim], sent)
    assert rec.duplicates == 0
    assert client(gw).throttled == sim.failed


async def test_smsc_refusal_past_max_retry_time_is_reported(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """...for the link's `throttle_retry_s`; past it the refusal is the answer and the
    message is final: `rejected` with the SMPP status."""
    link = {"throttle_pause": 0.05, "throttle_retry_s": 0.5}
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=3.0, link=link)
    sim.configure(fail_rate=1.0, fail_status=CommandStatus.ESME_RMSGQFUL)
    r = await gw.http.post("/api/v1/sms/send", json=send_body(1), headers=headers)
    assert r.status_code == 500, r.text
    body = r.json()
    assert (body["success"], body["status"], body["error"]) == (False, "rejected", "ESME_RMSGQFUL")
    r = await gw.http.post(
        "/api/v1/sms/info", json={"message_id": body["message_id"]}, headers=headers
    )
    assert r.json()["status"] == "rejected" and r.json()["error"] == "ESME_RMSGQFUL"


async def test_throttle_retry_zero_keeps_retrying_until_the_smsc_takes_it(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    link = {"throttle_pause": 0.05, "throttle_retry_s": 0}
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=0.2, link=link)
    sim.configure(fail_rate=1.0, fail_status=CommandStatus.ESME_RTHROTTLED)
    sent = await send_many(gw, headers, [1])
    assert sent[1]["status"] == "queued"
    await eventually(lambda: sim.failed >= 10)  # throttled again and again, for 0.5 s+
    sim.configure(fail_rate=0.0)
    rec = await settle(gw, headers, [sim], sent)
    assert rec.duplicates == 0


# -- receipts ---------------------------------------------------------------------------


async def test_receipt_before_submit_sm_resp_is_held_and_matched(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=1.0)
    sim.configure(resp_delay_ms=400, dlr_delay_ms=10)
    sent = await send_many(gw, headers, range(12))
    assert {b["status"] for b in sent.values()} == {"submitted"}
    rec = await settle(gw, headers, [sim], sent)
    assert rec.duplicates == 0
    counters = gw.runtime.messages.counters  # type: ignore[union-attr]
    # Every receipt beat its resp, was held, and was matched when the resp came.
    assert counters.unmatched_receipts == rec.parts == sim.receipts_acked


async def test_receipt_right_behind_its_resp_is_never_lost(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """The SMSC sends each receipt at once after its submit_sm_resp, often in the same
    read: the receipt's lookup can reach the store before the part's outcome does
    (a multipart send records its outcomes only once every part is answered). Every
    receipt must still land on its part."""
    sim, gw, headers = await start(tmp_path, make_sim, make_gateway, budget=1.0)
    sim.configure(dlr_delay_ms=0)
    sent = await send_many(gw, headers, range(60))
    rec = await settle(gw, headers, [sim], sent, timeout=15.0)
    assert rec.duplicates == 0 and sim.receipts_acked == rec.parts


def _part_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT message_id, seq, link_id, smsc_id, state, error FROM parts ORDER BY 1, 2"
        ).fetchall()


async def test_receipts_for_ids_never_given_change_nothing(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    sim1 = await make_sim(keep_messages=BIG_KEEP)
    sim2 = await make_sim(keep_messages=BIG_KEEP)
    settings = make_settings(
        tmp_path, [link_to(sim1, 1), link_to(sim2, 2)], admin_key=ADMIN_KEY, send_budget_s=2.0
    )
    gw: Gateway = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    headers = await user_headers(gw.http)
    sent = await send_many(gw, headers, range(6))
    await settle(gw, headers, [sim1], sent)
    sim1.configure(receipts=False)
    pending = await send_many(gw, headers, range(6, 8))  # submitted, no receipt coming
    await eventually(lambda: complete([sim1], pending))
    await asyncio.sleep(0.2)  # the outcome writes are in
    counters = gw.runtime.messages.counters  # type: ignore[union-attr]
    before_rows = _part_rows(tmp_path / "gw.db")
    unmatched = counters.unmatched_receipts
    real_id = pending[6]["sms_ids"][0]

    def receipt(mid: str, stat: str = "DELIVRD", tlv: bool = True) -> dict[str, Any]:
        text = f"id:{mid} sub:001 dlvrd:001 submit date:2401010000 done date:2401010000 stat:{stat}"
        return {
            "short_message": f"{text} err:000 text:x".encode(),
            "esm_class": 0x04,
            "tlvs": {Tlv.RECEIPTED_MESSAGE_ID: mid, Tlv.MESSAGE_STATE: 2} if tlv else {},
        }

    hostile: list[tuple[SmscSimulator, dict[str, Any]]] = [
        (sim1, receipt("deadbeefcafe")),  # an id this SMSC never gave
        (sim1, receipt("000000000000000000000000000000000001", tlv=False)),
        (sim1, receipt("12345", "UNDELIV", tlv=False)),  # digits: hex and decimal readings
        (sim1, receipt("x" * 65)),  # longer than any id
        (sim1, receipt("'; DROP TABLE parts; --", "UNDELIV")),
        (sim2, receipt(real_id, "UNDELIV")),  # link 1's real id, arriving on link 2
    ]
    for smsc, kw in hostile:
        resp = await smsc.push_mo(destination(6), "Resil", **kw)
        assert resp.command_status == 0
    # Receipts with no id at all are not receipts: stored as inbound text, answered OK.
    resp = await sim1.push_mo(destination(6), "Resil", short_message=b"stat:DELIVRD", esm_class=4)
    assert resp.command_status == 0

    assert counters.unmatched_receipts == unmatched + len(hostile)
    assert _part_rows(tmp_path / "gw.db") == before_rows
    assert await statuses(gw.http, headers, [b["message_id"] for b in pending.values()]) == {
        "submitted": 2
    }
    # The gateway is unharmed: new traffic flows and settles.
    sim1.configure(receipts=True)
    more = await send_many(gw, headers, range(8, 12))
    await settle(gw, headers, [sim1], more)


@pytest.mark.parametrize(
    "receipts_first",
    [False, True],
    ids=["resp-first", "receipt-first"],
)
async def test_smsc_restarts_with_a_new_id_space(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any, receipts_first: bool
) -> None:
    """A restarted SMSC hands out the ids it handed out before. New receipts must land
    on the new messages, never on old parts that carry the same id."""
    sim1 = await make_sim(keep_messages=BIG_KEEP)
    first_id = sim1._next_id  # where this SMSC's id space starts
    settings = make_settings(tmp_path, [link_to(sim1, 1)], admin_key=ADMIN_KEY, send_budget_s=2.0)
    gw: Gateway = await make_gateway(settings)
    await gw.bound()
    headers = await user_headers(gw.http)
    old_done = await send_many(gw, headers, range(0, 6))  # 10 parts, delivered
    await settle(gw, headers, [sim1], old_done)
    sim1.configure(receipts=False)
    old_open = await send_many(gw, headers, range(6, 12))  # 10 parts, receipts never come
    await eventually(lambda: complete([sim1], old_open))
    await asyncio.sleep(0.2)

    port = sim1.smpp_port
    await sim1.stop()
    sim2 = await make_sim(port=port, keep_messages=BIG_KEEP, dlr_delay_ms=10)
    sim2._next_id = first_id  # the id space restarts: every id below collides
    if receipts_first:
        sim2.configure(resp_delay_ms=300)  # every receipt beats its resp
    await eventually(lambda: client(gw).state is LinkState.BOUND, timeout=15)
    new = await send_many(gw, headers, range(12, 24))
    old_ids = {i for b in (old_done | old_open).values() for i in b["sms_ids"]}
    new_ids = {i for b in new.values() for i in b["sms_ids"]}
    assert len(old_ids & new_ids) == 20  # the collision this test is about

    await settle(gw, headers, [sim1, sim2], new, timeout=3)
    assert await statuses(gw.http, headers, [b["message_id"] for b in old_done.values()]) == {
        "delivered": 6
    }
    # The old messages whose receipts were lost with the old SMSC stay submitted.
    assert await statuses(gw.http, headers, [b["message_id"] for b in old_open.values()]) == {
        "submitted": 6
    }


async def two_member_pool(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any, pin_timeout_s: float = 10.0
) -> tuple[SmscSimulator, SmscSimulator, Settings, Gateway, dict[str, str]]:
    """Pool 100 of links 1 and 2, both bound. The first member's SMSC drops the
    connection at its second submit (`drop_after=2`), so it takes part 1 of a long
    message and leaves parts 2 and 3 unanswered; window 1 sends them in order."""
    from smsgateway.settings import PoolSettings

    first = await make_sim(keep_messages=BIG_KEEP, drop_after=2)
    other = await make_sim(keep_messages=BIG_KEEP)
    settings = make_settings(
        tmp_path,
        [link_to(first, 1, window=1), link_to(other, 2)],
        [PoolSettings(id=100, name="pool", links=[1, 2], pin_timeout_s=pin_timeout_s)],
        admin_key=ADMIN_KEY,
        send_budget_s=0.3,
    )
    gw: Gateway = await make_gateway(settings)
    for n in (1, 2):
        await gw.bound(n)
    return first, other, settings, gw, await user_headers(gw.http)


async def test_long_message_is_not_split_across_pool_members(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """The SMSC behind the first member accepts part 1 of a three-part message and then
    drops the connection (twice: `drop_after=2`). The other member is idle and bound,
    but parts 2 and 3 wait for the first link: only that SMSC can join them to part 1."""
    first, other, _, gw, headers = await two_member_pool(tmp_path, make_sim, make_gateway)
    assert parts_of(0) == 3
    sent = await send_many(gw, headers, [0], esme=100)
    rec = await settle(gw, headers, [first, other], sent)
    assert first.dropped >= 1  # the connection really went away mid-message
    assert rec.per_sim == {0: 3}, rec.per_sim  # all three parts at the first SMSC
    assert other.submits == 0
    # Later messages still use both members: only the started message was pinned.
    more = await send_many(gw, headers, [1, 2, 4, 5], esme=100)
    await settle(gw, headers, [first, other], more)
    assert other.submits > 0


async def test_long_message_moves_on_when_its_pool_member_stays_down(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """The first SMSC takes part 1, drops the connection and never comes back: after
    the pool's `pin_timeout_s` the other member sends the rest; nothing is stranded."""
    first, other, _, gw, headers = await two_member_pool(
        tmp_path, make_sim, make_gateway, pin_timeout_s=0.5
    )
    first.configure(refuse_binds=True)
    sent = await send_many(gw, headers, [0], esme=100)
    # Part 1's receipt stays with the first SMSC, so the message shows "submitted".
    rec = await settle(gw, headers, [first, other], sent, final=frozenset({"submitted"}))
    assert rec.per_sim == {0: 1, 1: 2}, rec.per_sim


async def test_long_message_stays_on_its_pool_member_across_a_restart(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """As above, but the first SMSC then refuses to bind and the gateway is stopped with
    parts 2 and 3 still queued. The restarted gateway sends them to the first link
    again, although the other member is bound first."""
    first, other, settings, gw, headers = await two_member_pool(tmp_path, make_sim, make_gateway)
    first.configure(refuse_binds=True)
    sent = await send_many(gw, headers, [0], esme=100)
    await eventually(lambda: first.dropped >= 1)
    await asyncio.sleep(0.3)  # reconnects are refused meanwhile
    await gw.stop()
    assert reconcile([first, other], sent).per_sim == {0: 1}  # part 1 only, so far

    first.configure(drop_after=0)
    gw = await make_gateway(settings)
    await gw.bound(2)
    await asyncio.sleep(0.3)  # the other member is bound and idle...
    first.configure(refuse_binds=False)  # ...before the first one binds
    rec = await settle(gw, headers, [first, other], sent)
    assert rec.per_sim == {0: 3}, rec.per_sim
    assert other.submits == 0


@pytest.mark.parametrize("stop", ["unbind", "drop"])
async def test_pool_keeps_delivering_while_its_links_go_down(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any, stop: str
) -> None:
    """Three SMSCs, three links, one pool; the SMSCs go away one by one while traffic
    flows (politely with unbind, or by dropping the connections). Everything accepted
    is counted across the three SMSCs."""
    from smsgateway.settings import PoolSettings

    sims = [await make_sim(keep_messages=BIG_KEEP, resp_delay_ms=30) for _ in range(3)]
    settings = make_settings(
        tmp_path,
        [link_to(s, n + 1, window=5) for n, s in enumerate(sims)],
        # Parts a stopped SMSC took first wait 1 s for it, then go on.
        [PoolSettings(id=100, name="pool", links=[1, 2, 3], pin_timeout_s=1.0)],
        admin_key=ADMIN_KEY,
        send_budget_s=0.5,
    )
    gw: Gateway = await make_gateway(settings)
    for n in (1, 2, 3):
        await gw.bound(n)
    headers = await user_headers(gw.http)
    sent: dict[int, dict[str, Any]] = {}
    counter = iter(range(100_000))
    stop_sending = asyncio.Event()

    async def worker() -> None:
        while not stop_sending.is_set():
            i = next(counter)
            sent.update(await send_many(gw, headers, [i], esme=100))

    workers = [asyncio.create_task(worker()) for _ in range(6)]
    for smsc in sims[:2]:
        await asyncio.sleep(0.8)
        await eventually(lambda s=smsc: s.unanswered > 0)  # parts in flight right now
        if stop == "drop":
            smsc.disconnect_all()
        await smsc.stop()
    await asyncio.sleep(0.8)
    stop_sending.set()
    await asyncio.gather(*workers)
    assert len(sent) > 50
    rec = await settle(
        gw, headers, sims, sent, final=frozenset({"delivered", "submitted"}), timeout=20
    )
    assert rec.per_sim.get(2, 0) > 0  # the last SMSC standing carried the rest
