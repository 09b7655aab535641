"""Custom messages: one, bulk (per-message ids and states), GET by id, scheduled
sends, the per-number guard, stats, and isolation between projects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from otpkit import NUMBER, OTHER, error_of, key, project, texts_to

from gwkit import eventually


async def _message(gw, k: str, message_id: str) -> dict:
    r = await gw.http.get(f"/v1/messages/{message_id}", headers=key(k))
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_message_delivered_and_isolated(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, a = await project(gw, "A", channel=1)
    _, b = await project(gw, "B", channel=1)
    r = await gw.http.post("/v1/messages", json={"to": NUMBER, "text": "hello"}, headers=key(a))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["to"] == NUMBER and data["status"] in ("queued", "submitted")
    mid = data["messageId"]
    await eventually(lambda: texts_to(sim, NUMBER) == ["hello"])

    async def delivered() -> bool:
        return (await _message(gw, a, mid))["status"] == "delivered"

    await eventually(delivered)
    shown = await _message(gw, a, mid)
    assert shown["messageId"] == mid and shown["to"] == NUMBER
    assert shown["parts"][0]["status"] == "delivered"
    # B cannot see A's message; an unknown id is the same 404.
    for k, m in ((b, mid), (a, "0190b5c4-0000-7000-8000-000000000000")):
        r = await gw.http.get(f"/v1/messages/{m}", headers=key(k))
        assert r.status_code == 404 and error_of(r)["code"] == "NOT_FOUND"
    stats = (await gw.http.get("/v1/stats", headers=key(a))).json()["data"]
    assert stats["totals"]["custom"] == {"sent": 1, "delivered": 1, "failed": 0}
    assert stats["days"][0]["date"] == datetime.now(UTC).date().isoformat()
    empty = (await gw.http.get("/v1/stats", headers=key(b))).json()["data"]
    assert empty["totals"]["custom"] == {"sent": 0, "delivered": 0, "failed": 0}
    assert empty["days"] == []


async def test_bulk_per_message_ids_and_states(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, channel=1)
    numbers = [f"+4477009002{i:02d}" for i in range(20)]
    body = {"messages": [{"to": n, "text": f"bulk {n}"} for n in numbers]}
    body["messages"].insert(3, {"to": "nope", "text": "x"})
    r = await gw.http.post("/v1/messages/bulk", json=body, headers=key(k))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["accepted"] == 20 and data["rejected"] == 1
    items = data["messages"]
    assert [i["index"] for i in items] == list(range(21))
    bad = items[3]
    assert bad["messageId"] is None and bad["status"] == "rejected"
    assert bad["error"]["code"] == "VALIDATION_ERROR"
    good = [i for i in items if i["messageId"]]
    assert len({i["messageId"] for i in good}) == 20
    assert [i["to"] for i in good] == numbers
    for n in numbers:
        await eventually(lambda n=n: texts_to(sim, n) == [f"bulk {n}"])
    for item in good[:3]:
        assert (await _message(gw, k, item["messageId"]))["to"] == item["to"]


async def test_scheduled_send(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, channel=1)
    at = datetime.now(UTC) + timedelta(seconds=2)
    send_at = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    r = await gw.http.post(
        "/v1/messages", json={"to": OTHER, "text": "later", "sendAt": send_at}, headers=key(k)
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "scheduled" and data["sendAt"] == send_at
    shown = await _message(gw, k, data["messageId"])
    assert shown["sendAt"] == send_at and shown["status"] == "scheduled"
    await asyncio.sleep(0.3)
    assert texts_to(sim, OTHER) == []
    await eventually(lambda: texts_to(sim, OTHER) == ["later"])
    assert (await _message(gw, k, data["messageId"]))["status"] != "scheduled"
    got = next(m for m in sim.recent_messages() if m["destination_addr"].endswith(OTHER[1:]))
    assert got["received_at"] >= at.timestamp() - 0.05


async def test_per_destination_guard(otp_gateway) -> None:
    gw, sim = await otp_gateway(destination_burst=2, destination_per_hour=1)
    _, a = await project(gw, "A", channel=1)
    _, b = await project(gw, "B", channel=1)
    for _ in range(2):
        r = await gw.http.post("/v1/messages", json={"to": NUMBER, "text": "x"}, headers=key(a))
        assert r.status_code == 200
    r = await gw.http.post("/v1/messages", json={"to": NUMBER, "text": "x"}, headers=key(a))
    assert r.status_code == 429 and error_of(r)["code"] == "RATE_LIMITED"
    assert int(r.headers["retry-after"]) > 60
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(a))
    assert r.status_code == 429
    bulk = {"messages": [{"to": NUMBER, "text": "y"}, {"to": OTHER, "text": "y"}]}
    items = (await gw.http.post("/v1/messages/bulk", json=bulk, headers=key(a))).json()
    items = items["data"]["messages"]
    assert items[0]["error"]["code"] == "RATE_LIMITED" and items[1]["messageId"]
    # Another project's sends to the number are its own.
    r = await gw.http.post("/v1/messages", json={"to": NUMBER, "text": "x"}, headers=key(b))
    assert r.status_code == 200
    await eventually(lambda: len(texts_to(sim, NUMBER)) == 3)


async def test_bulk_of_a_thousand_over_the_plain_body_limit(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    _, k = await project(gw, channel=1)
    text = "A longer notice for every customer, so the body outgrows 64 KiB: " + "x" * 40
    numbers = [f"+4477009{i:05d}" for i in range(1000)]
    body = {"messages": [{"to": n, "text": text} for n in numbers]}
    r = await gw.http.post("/v1/messages/bulk", json=body, headers=key(k))
    assert len(r.request.content) > gw.runtime.settings.server.max_body_bytes
    assert r.status_code == 200, r.text[:300]
    data = r.json()["data"]
    assert data["accepted"] == 1000 and data["rejected"] == 0
    assert len({m["messageId"] for m in data["messages"]}) == 1000
    await eventually(lambda: len(sim.recent_messages(2000)) >= 1000, timeout=60)
