"""Messages through a linked phone, as the app sees it: an SSE `MessageEnqueued`
event, `GET /message` with the app's fields, state reports per recipient that become
the message's state; a phone that goes away and comes back, validity, pacing, a
gateway restart, and two projects that never see each other's phone or messages."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
from devkit import (
    GatewayFactory,
    db,
    device_settings,
    message_status,
    mobile,
    new_code,
    phone,
    send,
    svc,
)

from gwkit import eventually
from smsgateway.devicesim import DeviceSim

APP_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)")


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _register(gw: Any, project_id: int) -> dict[str, Any]:
    code = await new_code(gw, project_id)
    r = await gw.http.post(
        "/mobile/v1/device",
        json={"name": "raw/client", "pushToken": None, "simCards": []},
        headers={"Authorization": f"Code {code}"},
    )
    assert r.status_code == 201
    body: dict[str, Any] = r.json()
    return body


async def _delivered(gw: Any, message_id: str, status: str = "delivered") -> None:
    await eventually(lambda: message_status(gw, message_id)[0] == status)


async def test_event_then_pull_with_the_apps_fields(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    device = await _register(gw, 1)
    lines: list[str] = []
    async with httpx.AsyncClient(base_url=mobile(gw), timeout=10) as client:
        async with client.stream("GET", "/events", headers=_bearer(device["token"])) as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")
            # Proxies (nginx) must pass events on as they come, not buffer them.
            assert events.headers["x-accel-buffering"] == "no"
            assert events.headers["cache-control"] == "no-cache"
            reader = events.aiter_lines()
            # Idle: comments keep the stream alive.
            assert await asyncio.wait_for(anext(reader), 5) == ":keepalive"
            message_id = await send(gw, 1, "Your code is 123456")
            while "data: null" not in lines:
                line = await asyncio.wait_for(anext(reader), 5)
                if line and not line.startswith(":"):
                    lines.append(line)
            assert lines == ["event: MessageEnqueued", "data: null"]
        r = await client.get("/message", headers=_bearer(device["token"]))
    assert r.status_code == 200
    [msg] = r.json()
    assert msg["id"] == message_id and len(msg["id"]) <= 36
    assert msg["message"] == msg["textMessage"]["text"] == "Your code is 123456"
    assert msg["phoneNumbers"] == ["+447700900123"]
    assert msg["state"] == "Pending" and msg["isEncrypted"] is False
    assert msg["withDeliveryReport"] is True and msg["simNumber"] is None
    assert APP_DATE.fullmatch(msg["createdAt"])
    assert msg["validUntil"] is None
    # Handed to the phone, not yet reported: still queued at the gateway.
    assert message_status(gw, message_id)[0] == "queued"


async def test_states_reported_by_the_phone_become_the_message_state(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1)
    try:
        message_id = await send(gw, 1, "hello from a phone")
        await _delivered(gw, message_id)
        assert sim.messages[message_id].text == "hello from a phone"
        assert list(sim.messages[message_id].states) == ["Processed", "Sent", "Delivered"]
        _, parts = message_status(gw, message_id)
        channel_id = svc(gw).channel_id(1)
        assert parts == [(1, "delivered", message_id)]
        assert gw.runtime.messages is not None
        owned = await gw.runtime.messages.get_owned("project:1", message_id)
        assert owned is not None and owned.message.status == "delivered"
        assert owned.parts[0].link_id == channel_id
        assert await gw.runtime.messages.get_owned("project:2", message_id) is None
    finally:
        await sim.stop()


async def test_failed_with_the_recipients_error(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1, fail_numbers={"+447700900666"})
    try:
        ok = await send(gw, 1, "fine", to="+447700900123")
        bad = await send(gw, 1, "doomed", to="+447700900666")
        await _delivered(gw, ok)
        await _delivered(gw, bad, "failed")
        with_error = await gw.runtime.messages.get_owned("project:1", bad)  # type: ignore[union-attr]
        assert with_error is not None
        assert with_error.parts[0].error == "RESULT_ERROR_GENERIC_FAILURE"
    finally:
        await sim.stop()


async def test_a_report_for_a_message_of_no_concern_is_ignored(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    one = await _register(gw, 1)
    two = await _register(gw, 2)
    message_id = await send(gw, 1, "for project one")
    # Project two's phone sees nothing and cannot settle project one's message.
    r = await gw.http.get("/mobile/v1/message", headers=_bearer(two["token"]))
    assert r.json() == []
    report = [
        {
            "id": message_id,
            "state": "Failed",
            "recipients": [{"phoneNumber": "+447700900123", "state": "Failed", "error": "x"}],
            "states": {},
        },
        {"id": "no-such-message", "state": "Sent", "recipients": [], "states": {}},
    ]
    r = await gw.http.patch("/mobile/v1/message", json=report, headers=_bearer(two["token"]))
    assert r.status_code == 204  # as the app's server: unknown ids are skipped
    await asyncio.sleep(0.2)
    assert message_status(gw, message_id)[0] == "queued"
    r = await gw.http.get("/mobile/v1/message", headers=_bearer(one["token"]))
    assert [m["id"] for m in r.json()] == [message_id]


async def test_phone_that_drops_its_stream_gets_its_queued_work(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1)
    try:
        await sim.go_offline()
        await eventually(lambda: not svc(gw).hub.connected(svc(gw).channel(1).device_id))  # type: ignore[union-attr]
        ids = [await send(gw, 1, f"while away {i}") for i in range(3)]
        await asyncio.sleep(0.3)
        assert all(message_status(gw, m)[0] == "queued" for m in ids)
        info = await svc(gw).active_device(1)
        assert info is not None and info.queue_depth == 3
        metrics = (await gw.http.get("/metrics")).text
        labels = f'channel="{svc(gw).channel_id(1)}",project="1"'
        assert f"smsgateway_device_queue_depth{{{labels}}} 3.0" in metrics
        await sim.go_online()
        for m in ids:
            await _delivered(gw, m)
        assert set(ids) <= set(sim.messages)
        info = await svc(gw).active_device(1)
        assert info is not None and info.queue_depth == 0 and info.online
    finally:
        await sim.stop()


async def test_offline_phone_keeps_messages_until_validity_ends(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1)
    try:
        await sim.go_offline()
        short = await send(gw, 1, "expires soon", validity_ms=400)
        long = await send(gw, 1, "still good", validity_ms=60_000)
        await _delivered(gw, short, "expired")
        assert message_status(gw, long)[0] == "queued"
        await sim.go_online()
        await _delivered(gw, long)
        assert short not in sim.messages
        assert APP_DATE.fullmatch(sim.messages[long].valid_until or "")
    finally:
        await sim.stop()


async def test_pacing_holds_what_is_over_the_limit(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path, limit_count=2, limit_period_s=1.5))
    device = await _register(gw, 1)
    ids = [await send(gw, 1, f"paced {i}") for i in range(3)]
    r = await gw.http.get("/mobile/v1/message", headers=_bearer(device["token"]))
    first = [m["id"] for m in r.json()]
    assert first == ids[:2]
    # Asking again re-offers what the phone has not reported, but nothing new; the
    # app's processing order picks oldest or newest first.
    r = await gw.http.get("/mobile/v1/message?order=fifo", headers=_bearer(device["token"]))
    assert [m["id"] for m in r.json()] == ids[:2]
    r = await gw.http.get("/mobile/v1/message?order=lifo", headers=_bearer(device["token"]))
    assert [m["id"] for m in r.json()] == ids[:2][::-1]
    # The window slides: the third goes out once the first hand-out is 1.5 s old.
    await asyncio.sleep(1.6)
    r = await gw.http.get("/mobile/v1/message", headers=_bearer(device["token"]))
    assert [m["id"] for m in r.json()] == ids


async def test_paced_work_wakes_the_phone_when_the_window_frees(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path, limit_count=1, limit_period_s=0.5))
    sim = await phone(gw, 1)
    try:
        ids = [await send(gw, 1, f"one at a time {i}") for i in range(3)]
        for m in ids:
            await _delivered(gw, m)
        assert sim.events_seen.count("MessageEnqueued") >= 3
    finally:
        await sim.stop()


async def test_queued_messages_survive_a_gateway_restart(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    settings = device_settings(tmp_path)
    gw = await make_gateway(settings)
    sim = await phone(gw, 1)
    await sim.go_offline()
    ids = [await send(gw, 1, f"before restart {i}") for i in range(2)]
    await gw.stop()
    gw2 = await make_gateway(settings)
    sim.server = mobile(gw2)
    try:
        info = await svc(gw2).active_device(1)
        assert info is not None and info.queue_depth == 2
        await sim.go_online()
        for m in ids:
            await _delivered(gw2, m)
    finally:
        await sim.stop()


async def test_two_projects_two_phones(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    one = await phone(gw, 1)
    two = await phone(gw, 2)
    try:
        a = await send(gw, 1, "for one")
        b = await send(gw, 2, "for two")
        await _delivered(gw, a)
        await _delivered(gw, b)
        assert set(one.messages) == {a} and set(two.messages) == {b}
        assert svc(gw).channel_id(1) != svc(gw).channel_id(2)
        # Unlinking one project's phone leaves the other's alone.
        await svc(gw).revoke(1)
        c = await send(gw, 2, "still for two")
        await _delivered(gw, c)
        assert svc(gw).channel_id(1) is None
    finally:
        await one.stop()
        await two.stop()


async def test_revoking_fails_what_the_phone_never_took(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1)
    try:
        await sim.go_offline()
        message_id = await send(gw, 1, "never sent")
        await svc(gw).revoke(1)
        await eventually(lambda: message_status(gw, message_id)[0] != "queued")
        assert message_status(gw, message_id)[0] in ("rejected", "failed")
    finally:
        await sim.stop()


async def test_a_phone_that_missed_the_answer_reports_again(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """The app treats a message it already has as a request to report its state."""
    gw = await make_gateway(device_settings(tmp_path))
    sim: DeviceSim = await phone(gw, 1)
    try:
        message_id = await send(gw, 1, "twice offered")
        await _delivered(gw, message_id)
        await sim.pull()
        await asyncio.sleep(0.1)
        assert message_status(gw, message_id)[0] == "delivered"
        assert len(sim.messages) == 1
    finally:
        await sim.stop()


async def test_a_lost_outcome_is_recovered_from_the_phones_report(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """A crash after the phone reported Delivered but before the gateway stored the
    outcome: after the restart the message is queued again, the phone (which knows
    it) reports Delivered again, and that settles it."""
    settings = device_settings(tmp_path)
    gw = await make_gateway(settings)
    sim = await phone(gw, 1)
    message_id = await send(gw, 1, "reported, then lost")
    await _delivered(gw, message_id)
    await sim.go_offline()
    await gw.stop()
    # What the store holds when the outcome's unit never committed.
    with db(gw) as conn:
        conn.execute("DELETE FROM attempts WHERE message_id = ?", (message_id,))
        conn.execute(
            "UPDATE parts SET state = 'queued', smsc_id = NULL, link_id = NULL, done_at = NULL"
            " WHERE message_id = ?",
            (message_id,),
        )
        conn.execute("UPDATE messages SET status = 'queued' WHERE id = ?", (message_id,))
    gw2 = await make_gateway(settings)
    sim.server = mobile(gw2)
    try:
        assert message_status(gw2, message_id)[0] == "queued"
        await sim.go_online()
        await _delivered(gw2, message_id)
        assert len(sim.messages) == 1  # reported again, not sent twice
    finally:
        await sim.stop()


async def test_another_tenant_cannot_send_through_a_projects_phone(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """A native app naming the phone's channel id as its `esme` gets a refusal, and
    the phone never sees the message."""
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1)
    try:
        headers = await gw.user("native@example.com")
        r = await gw.send(headers, esme=svc(gw).channel_id(1), message="not yours")
        body = r.json()
        if r.status_code == 404:
            assert body == {"error": "unknown esme"}  # refused by routing, before storing
        else:
            # Stored, then refused by the phone's channel.
            assert body["success"] is False, body
            await eventually(lambda: message_status(gw, body["message_id"])[0] == "rejected")
        # Direct to the channel, as a job of another owner: refused all the same.
        assert gw.runtime.messages is not None
        other = await gw.runtime.messages.send(
            owner="project:2",
            channel_id=svc(gw).channel_id(1) or 0,
            source="Gateway",
            destination="+447700900123",
            text="still not yours",
            wait="stored",
        )
        await eventually(lambda: message_status(gw, other.message_id)[0] == "rejected")
        await asyncio.sleep(0.2)
        assert sim.messages == {}
    finally:
        await sim.stop()


async def test_a_scheduled_message_for_an_unlinked_phone_is_refused_when_due(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 1)
    try:
        channel_id = svc(gw).channel_id(1)
        assert channel_id is not None and gw.runtime.messages is not None
        later = await gw.runtime.messages.send(
            owner="project:1",
            channel_id=channel_id,
            source="Gateway",
            destination="+447700900123",
            text="due in a moment",
            wait="stored",
            not_before_ms=int(time.time() * 1000) + 600,
        )
        await svc(gw).revoke(1)
        await eventually(lambda: message_status(gw, later.message_id)[0] == "rejected")
        assert sim.messages == {}
    finally:
        await sim.stop()


async def test_messages_of_a_phone_unlinked_before_a_crash_are_refused_at_start(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """Unlinked, then the gateway died before refusing what was queued for it: at the
    next start those messages are refused, not left queued for ever."""
    settings = device_settings(tmp_path)
    gw = await make_gateway(settings)
    sim = await phone(gw, 1)
    await sim.go_offline()
    stranded = await send(gw, 1, "for a phone about to go")
    await gw.stop()
    with db(gw) as conn:  # the unlink committed; its refusals never ran
        conn.execute("UPDATE devices SET revoked_at = 1 WHERE project_id = 1")
    gw2 = await make_gateway(settings)
    try:
        await eventually(lambda: message_status(gw2, stranded)[0] == "rejected")
        assert await svc(gw2).active_device(1) is None
        # A new phone for the project gets a channel of its own and works.
        again = await phone(gw2, 1)
        try:
            fresh = await send(gw2, 1, "for the new phone")
            await _delivered(gw2, fresh)
            assert set(again.messages) == {fresh}
        finally:
            await again.stop()
    finally:
        await sim.stop()


async def test_a_cancelled_report_ends_the_message_failed(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    device = await _register(gw, 1)
    message_id = await send(gw, 1, "to be cancelled")
    r = await gw.http.get("/mobile/v1/message", headers=_bearer(device["token"]))
    assert [m["id"] for m in r.json()] == [message_id]
    report = [
        {
            "id": message_id,
            "state": "Cancelled",
            "recipients": [{"phoneNumber": "+447700900123", "state": "Cancelled"}],
            "states": {"Pending": "2026-12-04T19:00:00.000+00:00"},
        }
    ]
    r = await gw.http.patch("/mobile/v1/message", json=report, headers=_bearer(device["token"]))
    assert r.status_code == 204
    await _delivered(gw, message_id, "failed")
    owned = await gw.runtime.messages.get_owned("project:1", message_id)  # type: ignore[union-attr]
    assert owned is not None and owned.parts[0].error == "cancelled"
