"""Inbound SMS to an assigned number, end to end over real sockets: the simulator
pushes an MO (its HTTP /mo control, or deliver_sm parts), the gateway stores it,
extracts the OTP, writes the outbox row, and a real local HTTP receiver gets a
correctly signed otp_received, exactly once, also after it was down for a while."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from numkit import (
    DE,
    FAST,
    Receiver,
    create_user,
    de_numbers,
    import_numbers,
    numbers_settings,
)

from gwkit import Gateway, admin, dead_link, eventually, link_to, make_settings, metric
from smsgateway.settings_numbers import NumbersSettings
from smsgateway.smpp.gsm import encode_gsm
from smsgateway.smpp.pdu import DataSm, DataSmResp
from smsgateway.smscsim.simulator import SmscSimulator


@pytest.fixture
async def receiver() -> Any:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def _setup(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver, **numbers: Any
) -> tuple[SmscSimulator, Gateway, dict[str, Any], str]:
    sim: SmscSimulator = await make_sim(http_port=0)
    gw: Gateway = await make_gateway(numbers_settings(tmp_path, sim, **{**FAST, **numbers}))
    await gw.bound()
    user = await create_user(gw.http, "otp@example.com", webhook_url=receiver.url)
    receiver.secret = user["webhook_secret"]
    await import_numbers(gw.http, de_numbers(1))
    r = await gw.http.get(f"/api/get-number/{user['api_key']}", params={"country_id": DE})
    phone: str = r.json()["data"]["phone_number"]
    return sim, gw, user, phone


async def _mo_via_control(sim: SmscSimulator, source: str, destination: str, text: str) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"http://127.0.0.1:{sim.http_port}/mo",
            json={"source": source, "destination": destination, "text": text},
        )
    assert r.status_code == 200 and r.json()["status"] == 0, r.text


async def test_mo_reaches_the_receiver_signed(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    sim, gw, user, phone = await _setup(tmp_path, make_sim, make_gateway, receiver)
    # Counters are process-global (one pytest process): compare before and after.
    counters = (
        'smsgateway_webhook_attempts_total{outcome="delivered"}',
        'smsgateway_numbers_otps_total{result="extracted"}',
        'smsgateway_inbound_messages_total{kind="smpp"}',
    )
    before = {name: await metric(gw.http, name) for name in counters}
    text = "G-482913 is your Google verification code."
    await _mo_via_control(sim, "Google", phone.lstrip("+"), text)
    await eventually(lambda: receiver.delivered())
    [d] = receiver.received
    assert receiver.signed_ok(d)
    assert d.headers["x-signature"].startswith("sha256=")
    assert d.headers["content-type"] == "application/json"
    payload = d.json
    assert payload["event"] == "otp_received"
    assert payload["data"] == {
        "phone_number": phone,
        "otp_code": "482913",
        "provider": "Google",
        "sms_text": text,
    }
    assert payload["event_id"] and payload["received_at"].endswith("Z")
    # A wrong secret does not verify: the signature really covers the body.
    assert not Receiver(secret="whsec_other").signed_ok(d)

    # The polling fallback shows it too, and only to its user.
    otps = await gw.http.get(f"/api/otps/{user['api_key']}", params={"phone_number": phone})
    assert otps.status_code == 200
    [otp] = otps.json()["data"]["otps"]
    assert otp["otp_code"] == "482913" and otp["provider"] == "Google"
    other = await create_user(gw.http, "other@example.com")
    theirs = await gw.http.get(f"/api/otps/{other['api_key']}")
    assert theirs.json()["data"]["otps"] == []

    # Stored as delivered, with its attempt logged.
    event = await eventually(lambda: _event(gw, payload["event_id"], "delivered"))
    assert [a["outcome"] for a in event["attempt_log"]] == ["delivered"]

    async def counted() -> dict[str, float]:
        return {name: await metric(gw.http, name) - before[name] for name in counters}

    once = dict.fromkeys(counters, 1.0)

    async def settled() -> bool:
        return await counted() == once

    # The counters move just after the commits waited for above: poll, then compare.
    with contextlib.suppress(AssertionError):
        await eventually(settled, timeout=5)
    assert await counted() == once
    assert await metric(gw.http, "smsgateway_webhook_outbox_backlog") == 0


async def _event(gw: Gateway, event_id: str, state: str) -> dict[str, Any] | None:
    r = await gw.http.get(f"/api/v1/admin/webhooks/{event_id}", headers=admin())
    data: dict[str, Any] = r.json()["data"]
    return data if data["state"] == state else None


async def test_sms_without_code_or_for_a_free_number_sends_nothing(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    sim, gw, user, phone = await _setup(tmp_path, make_sim, make_gateway, receiver)
    await import_numbers(gw.http, ["+4915199999999"])  # free: nobody's
    await _mo_via_control(sim, "Google", "4915199999999", "G-111111 is your code")
    await _mo_via_control(sim, "Friend", phone.lstrip("+"), "See you at 7, call 0800 123 4567")
    await _mo_via_control(sim, "Uber", phone.lstrip("+"), "Your Uber code: 4821")
    await eventually(lambda: receiver.delivered())
    await asyncio.sleep(0.3)
    assert [d.json["data"]["otp_code"] for d in receiver.received] == ["4821"]
    otps = (await gw.http.get(f"/api/otps/{user['api_key']}")).json()["data"]["otps"]
    assert [o["otp_code"] for o in otps] == ["4821", None]  # newest first
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inbound").fetchone()[0] == 3


async def test_receiver_down_then_up_gets_it_exactly_once(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    sim, gw, _user, phone = await _setup(tmp_path, make_sim, make_gateway, receiver)
    receiver.status = 503  # up, but failing
    await _mo_via_control(sim, "WhatsApp", phone.lstrip("+"), "Your WhatsApp code: 318-204")
    await eventually(lambda: len(receiver.received) >= 2)
    await receiver.stop()  # then not listening at all: connections refused
    await asyncio.sleep(1.0)
    receiver.status = 200
    await receiver.start()  # same port
    await eventually(lambda: receiver.delivered(), timeout=15)
    await asyncio.sleep(1.5)  # more than the longest backoff: nothing else arrives
    assert len(receiver.delivered()) == 1
    d = receiver.delivered()[0]
    assert receiver.signed_ok(d) and d.json["data"]["otp_code"] == "318204"
    event = await _event(gw, d.json["event_id"], "delivered")
    assert event is not None
    outcomes = [a["outcome"] for a in event["attempt_log"]]
    assert outcomes[-1] == "delivered" and outcomes.count("delivered") == 1
    assert "http_error" in outcomes and "connect_error" in outcomes
    assert event["attempts"] == len(outcomes)


async def test_retries_stop_after_the_retry_window_and_redeliver(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    sim, gw, _user, phone = await _setup(
        tmp_path, make_sim, make_gateway, receiver, webhook_retry_s=1.0
    )
    receiver.status = 500
    await _mo_via_control(sim, "Telegram", phone.lstrip("+"), "Telegram code: 58213")
    await eventually(lambda: receiver.received)
    event_id = receiver.received[0].json["event_id"]
    failed = await eventually(lambda: _event(gw, event_id, "failed"), timeout=10)
    tries = len(receiver.received)
    assert failed["attempts"] == tries >= 2
    await asyncio.sleep(0.8)
    assert len(receiver.received) == tries  # given up: no more attempts

    receiver.status = 200
    r = await gw.http.post(f"/api/v1/admin/webhooks/{event_id}/redeliver", headers=admin())
    assert r.status_code == 202, r.text
    await eventually(lambda: receiver.delivered())
    assert len(receiver.delivered()) == 1
    r = await gw.http.post("/api/v1/admin/webhooks/nope/redeliver", headers=admin())
    assert r.status_code == 404


async def test_slow_receiver_does_not_delay_another_user(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    slow = Receiver(hang=True)
    await slow.start()
    try:
        sim, gw, _user, phone = await _setup(
            tmp_path, make_sim, make_gateway, receiver, webhook_timeout_s=30.0,
            webhook_concurrency=2,
        )  # fmt: skip
        sleepy = await create_user(gw.http, "slow@example.com", webhook_url=slow.url)
        await import_numbers(gw.http, de_numbers(1, start=500))
        r = await gw.http.get(f"/api/get-number/{sleepy['api_key']}", params={"country_id": DE})
        slow_phone = r.json()["data"]["phone_number"]
        for n in range(5):  # more than its slots: they queue behind the hung ones
            await _mo_via_control(sim, "Google", slow_phone.lstrip("+"), f"G-10000{n} is your code")
        await eventually(lambda: len(slow.received) == 2)
        await _mo_via_control(sim, "Google", phone.lstrip("+"), "G-654321 is your code")
        await eventually(lambda: receiver.delivered(), timeout=5)
        assert receiver.delivered()[0].json["data"]["otp_code"] == "654321"
        assert len(slow.received) == 2  # the slow one still holds only its own slots
    finally:
        await slow.stop()


async def test_multipart_mo_is_reassembled_and_decoded(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    sim, gw, _user, phone = await _setup(tmp_path, make_sim, make_gateway, receiver)
    dest = phone.lstrip("+")
    # UCS-2 in two UDH parts (Cyrillic), sent last part first.
    text = "Код для входа в Telegram: 71502. " + "Никому не давайте этот код! " * 2
    raw = text.encode("utf-16-be")
    half = (len(raw) // 4) * 2
    chunks = [raw[:half], raw[half:]]
    for seq in (2, 1):
        udh = bytes([5, 0, 3, 0x42, 2, seq])
        resp = await sim.push_mo(
            "Telegram", dest, short_message=udh + chunks[seq - 1], data_coding=8, esm_class=0x40
        )
        assert resp.command_status == 0
    # GSM-7 in two parts carried by SAR TLVs.
    gsm_text = "Your Uber code: 4821. " + "Never share this code with anyone. " * 4
    packed = encode_gsm(gsm_text)
    cut = len(packed) // 2
    for seq, chunk in ((1, packed[:cut]), (2, packed[cut:])):
        tlvs = {0x020C: (7).to_bytes(2, "big"), 0x020E: bytes([2]), 0x020F: bytes([seq])}
        resp = await sim.push_mo("Uber", dest, short_message=chunk, data_coding=0, tlvs=tlvs)
        assert resp.command_status == 0
    await eventually(lambda: len(receiver.delivered()) == 2)
    # The SMSC sends a part again (its resp was lost): a late duplicate, dropped.
    udh = bytes([5, 0, 3, 0x42, 2, 1])
    resp = await sim.push_mo(
        "Telegram", dest, short_message=udh + chunks[0], data_coding=8, esm_class=0x40
    )
    assert resp.command_status == 0
    by_code = {d.json["data"]["otp_code"]: d.json["data"] for d in receiver.delivered()}
    assert by_code["71502"]["sms_text"] == text and by_code["71502"]["provider"] == "Telegram"
    assert by_code["4821"]["sms_text"] == gsm_text
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        rows = conn.execute("SELECT text FROM inbound ORDER BY received_at").fetchall()
        assert sorted(r[0] for r in rows) == sorted([text, gsm_text])
        assert conn.execute("SELECT COUNT(*) FROM inbound_parts").fetchone()[0] == 0


async def test_incomplete_set_is_stored_after_the_timeout(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    sim, gw, _user, phone = await _setup(
        tmp_path, make_sim, make_gateway, receiver, inbound_part_timeout_s=0.2
    )
    udh = bytes([5, 0, 3, 0x07, 3, 1])
    part = udh + encode_gsm("Bolt code: 6172. ")
    await sim.push_mo("Bolt", phone.lstrip("+"), short_message=part, esm_class=0x40)
    await asyncio.sleep(0.3)
    assert receiver.received == []  # one part of three: nothing yet
    assert gw.runtime.messages is not None
    assert await gw.runtime.messages.inbound.sweep_parts() == 1
    await eventually(lambda: receiver.delivered())
    assert receiver.delivered()[0].json["data"]["otp_code"] == "6172"


async def test_channel_of_a_number_is_enforced(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    """A number bound to link 2 takes no OTP from an SMS that came on link 1."""
    sim: SmscSimulator = await make_sim(http_port=0)
    settings = make_settings(tmp_path, [link_to(sim), dead_link(2)])
    settings.numbers = NumbersSettings(**FAST)
    gw: Gateway = await make_gateway(settings)
    await gw.bound()
    user = await create_user(gw.http, "ch@example.com", webhook_url=receiver.url)
    receiver.secret = user["webhook_secret"]
    await import_numbers(gw.http, ["+4915177777777"], channel="link:2")
    await import_numbers(gw.http, ["+4915188888888"], channel="link:1")
    for _ in range(2):
        r = await gw.http.get(f"/api/get-number/{user['api_key']}", params={"country_id": DE})
        assert r.status_code == 200
    await _mo_via_control(sim, "Google", "4915177777777", "G-777777 is your code")  # wrong link
    await _mo_via_control(sim, "Google", "4915188888888", "G-888888 is your code")
    await eventually(lambda: receiver.delivered())
    await asyncio.sleep(0.3)
    assert [d.json["data"]["otp_code"] for d in receiver.delivered()] == ["888888"]
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inbound").fetchone()[0] == 2  # both stored


async def test_inbound_service_contract_for_linked_phones(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    """What the device channel calls (COORD.md): receive() answers the inbound id once
    the SMS and what the hooks wrote are committed together."""
    _sim, gw, user, _ = await _setup(tmp_path, make_sim, make_gateway, receiver)
    await import_numbers(gw.http, ["+4915166666666"], channel="project:5")
    mine = (await gw.http.get(f"/api/my-numbers/{user['api_key']}")).json()["data"]["numbers"]
    await gw.http.post(
        f"/api/release-number/{user['api_key']}", json={"phone_number": mine[0]["phone_number"]}
    )
    r = await gw.http.get(f"/api/get-number/{user['api_key']}", params={"country_id": DE})
    assert r.json()["data"]["phone_number"] == "+4915166666666"
    assert gw.runtime.messages is not None
    inbound_id = await gw.runtime.messages.inbound.receive(
        channel_id=1_000_007,  # a linked phone's channel
        source="+15550001111",
        destination="+4915166666666",
        text="Your Viber code: 3818",
        received_at_ms=int(time.time() * 1000),
    )
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        row = conn.execute(
            "SELECT s.otp_code, o.state FROM number_sms s JOIN webhook_outbox o"
            " ON o.event_id = s.event_id WHERE s.id = ?",
            (inbound_id,),
        ).fetchone()
    assert row is not None and row[0] == "3818"
    await eventually(lambda: receiver.delivered())
    assert receiver.delivered()[0].json["data"]["provider"] == "Viber"  # from the text


async def test_data_sm_mo_with_payload_and_sar_parts(
    tmp_path: Path, make_sim: Any, make_gateway: Any, receiver: Receiver
) -> None:
    """data_sm carries its text in message_payload; SAR TLVs join the parts."""
    sim, _, _, phone = await _setup(tmp_path, make_sim, make_gateway, receiver)
    text = "كود التحقق الخاص بك: 482019. لا تشاركه مع أي شخص. " * 2
    raw = text.encode("utf-16-be")
    half = (len(raw) // 4) * 2
    [session] = sim.server.bound_sessions(None, receivers=True)
    for seq, chunk in ((1, raw[:half]), (2, raw[half:])):
        pdu = DataSm(
            source_addr="STC",
            source_addr_ton=5,
            destination_addr=phone.lstrip("+"),
            dest_addr_ton=1,
            dest_addr_npi=1,
            data_coding=8,
            tlvs={
                0x0424: chunk,
                0x020C: (300).to_bytes(2, "big"),
                0x020E: bytes([2]),
                0x020F: bytes([seq]),
            },
        )
        resp = await session.deliver_nowait(pdu)
        assert isinstance(resp, DataSmResp) and resp.command_status == 0
    await eventually(lambda: receiver.delivered())
    data = receiver.delivered()[0].json["data"]
    assert data["sms_text"] == text and data["otp_code"] == "482019"
    assert data["provider"] == "STC"
