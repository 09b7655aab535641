"""The native REST face end to end: documents 000/001 over real HTTP and SMPP."""

from __future__ import annotations

from pathlib import Path

from gwkit import ADMIN_KEY, eventually, link_to, make_settings, wait_bound
from smsgateway.smpp.text import decode_short_message

LONG_TEXT = ("Grüße aus Zürich 👋 " * 21)[:400]  # UCS-2, emoji straddle part edges


async def test_integration_flow_of_document_000(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("flow@example.com")

    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"persist": True, "system_id": "smscsim", "error": ""}

    r = await gw.http.post(
        "/api/v1/sms/send",
        json={
            "esme": 1,
            "source": "+123456789",
            "destination": "+987654321",
            "message": LONG_TEXT,
            "transaction_id": "tx-001",
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent["success"] is True and sent["error"] == ""
    assert sent["status"] == "submitted"
    assert sent["esme"] == 1 and sent["transaction_id"] == "tx-001"
    parts = len(sent["sms_ids"])
    assert parts >= 6  # 400 UCS-2 characters with emoji: more than 6 x 67 units
    assert len(set(sent["sms_ids"])) == parts
    assert isinstance(sent["task_id"], int) and sent["task_id"] > 0

    # The SMSC got every part, each a UCS-2 segment with a concatenation header, and
    # the segments join back to the text that was sent.
    received = [m for m in sim.messages if m[2].destination_addr == "987654321"]
    assert len(received) == parts
    texts = []
    for *_, pdu, _at, _n in received:
        assert pdu.data_coding == 8 and pdu.esm_class & 0x40
        assert pdu.registered_delivery & 1
        inbound = decode_short_message(pdu.short_message, pdu.data_coding, udhi=True)
        assert inbound.concat is not None and inbound.concat.total == parts
        texts.append((inbound.concat.seq, inbound.text))
    assert "".join(t for _, t in sorted(texts)) == LONG_TEXT

    async def delivered() -> dict | None:
        info = await gw.http.post(
            "/api/v1/sms/info",
            json={"esme": 1, "message_id": sent["message_id"]},
            headers=headers,
        )
        body = info.json()
        return body if body["status"] == "delivered" else None

    info = await eventually(delivered)
    assert info["message_id"] == sent["message_id"]
    assert info["mode"] == "multipart"
    assert info["parts"] == {str(i): "delivered" for i in range(1, parts + 1)}
    assert info["delivered_count"] == parts
    assert info["transaction_id"] == "tx-001"
    assert info["task_id"] == sent["task_id"]
    assert info["error"] == ""
    assert info["updated_at"] >= info["sent_at"] > 1_700_000_000


async def test_single_gsm_message_and_metrics(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("single@example.com")
    r = await gw.http.post(
        "/api/v1/sms/send",
        json={"esme": 1, "source": "Shop", "destination": "447700900123", "message": "Hi €5"},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    *_, pdu, _at, _n = sim.messages[-1]
    assert pdu.source_addr == "Shop" and pdu.source_addr_ton == 5
    assert pdu.data_coding == 0 and pdu.short_message == b"Hi \x1be5"
    assert pdu.dest_addr_ton == 1 and pdu.dest_addr_npi == 1

    info = await eventually(lambda: _info_if(gw, headers, r.json()["message_id"], "delivered"))
    assert info["mode"] == "single" and info["parts"] == {"1": "delivered"}

    metrics = (await gw.http.get("/metrics")).text
    assert "smsgateway_messages_accepted_total" in metrics
    assert 'smsgateway_link_state{link="1",state="BOUND"} 1.0' in metrics
    assert (await gw.http.get("/healthy")).json() == {"status": "ok"}


def _metric(text: str, sample: str) -> float:
    """The value of one exposition sample (name with its labels), 0 if absent."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


async def test_metrics_count_what_a_send_did(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("metrics@example.com")
    samples = (
        "smsgateway_messages_accepted_total",
        'smsgateway_parts_submitted_total{result="ok"}',
        'smsgateway_receipts_total{state="delivered"}',
        'smsgateway_http_requests_total{route="sms_send",status="200"}',
        'smsgateway_http_requests_total{route="sms_send",status="404"}',
        'smsgateway_http_request_seconds_count{route="sms_send"}',
        'smsgateway_http_request_seconds_bucket{le="+Inf",route="sms_send"}',
        "smsgateway_store_units_total",
    )
    text = (await gw.http.get("/metrics")).text
    before = {s: _metric(text, s) for s in samples}

    send = {"esme": 1, "source": "Shop", "destination": "447700900123", "message": "x" * 200}
    r = await gw.http.post("/api/v1/sms/send", json=send, headers=headers)
    assert r.status_code == 200 and len(r.json()["sms_ids"]) == 2
    sent_id = r.json()["message_id"]
    r = await gw.http.post("/api/v1/sms/send", json={**send, "esme": 99}, headers=headers)
    assert r.status_code == 404
    await eventually(lambda: _info_if(gw, headers, sent_id, "delivered"))

    text = (await gw.http.get("/metrics")).text
    grew = {s: _metric(text, s) - before[s] for s in samples}
    assert grew["smsgateway_messages_accepted_total"] == 1
    assert grew['smsgateway_parts_submitted_total{result="ok"}'] == 2
    assert grew['smsgateway_receipts_total{state="delivered"}'] == 2
    assert grew['smsgateway_http_requests_total{route="sms_send",status="200"}'] == 1
    assert grew['smsgateway_http_requests_total{route="sms_send",status="404"}'] == 1
    assert grew['smsgateway_http_request_seconds_count{route="sms_send"}'] == 2
    assert grew['smsgateway_http_request_seconds_bucket{le="+Inf",route="sms_send"}'] == 2
    # A message, its two outcomes and two receipts: at least three writes.
    assert grew["smsgateway_store_units_total"] >= 3
    assert "# TYPE smsgateway_http_request_seconds histogram" in text


async def _info_if(gw, headers, message_id: str, status: str) -> dict | None:
    r = await gw.http.post("/api/v1/sms/info", json={"message_id": message_id}, headers=headers)
    body = r.json()
    return body if body.get("status") == status else None


async def test_transaction_id_makes_retries_safe(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("idem@example.com")
    body = {
        "esme": 1,
        "source": "+123456789",
        "destination": "+987654321",
        "message": "once only",
        "transaction_id": "tx-42",
    }
    first = await gw.http.post("/api/v1/sms/send", json=body, headers=headers)
    again = await gw.http.post("/api/v1/sms/send", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert sim.submits == 1

    # Another app may use the same transaction_id: keys are per app.
    other = await gw.user("idem2@example.com")
    third = await gw.http.post("/api/v1/sms/send", json=body, headers=other)
    assert third.json()["message_id"] != first.json()["message_id"]
    assert sim.submits == 2


async def test_an_app_sees_only_its_own_messages(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    alice = await gw.user("alice@example.com")
    mallory = await gw.user("mallory@example.com")
    sent = await gw.http.post(
        "/api/v1/sms/send",
        json={"esme": 1, "source": "Alice", "destination": "+4915112345678", "message": "x"},
        headers=alice,
    )
    mid = sent.json()["message_id"]
    r = await gw.http.post("/api/v1/sms/info", json={"message_id": mid}, headers=mallory)
    assert r.status_code == 404 and r.json() == {"error": "message not found"}
    r = await gw.http.post("/api/v1/sms/info", json={"message_id": mid}, headers=alice)
    assert r.status_code == 200


async def test_smsc_refusal_answers_500_with_status_name(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    sim = await make_sim(fail_rate=1.0)
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("refused@example.com")
    r = await gw.http.post(
        "/api/v1/sms/send",
        json={"esme": 1, "source": "+123456789", "destination": "+987654321", "message": "no"},
        headers=headers,
    )
    assert r.status_code == 500
    body = r.json()
    assert body["success"] is False
    assert body["error"] == "ESME_RSUBMITFAIL"
    assert body["status"] == "rejected"
    info = await gw.http.post(
        "/api/v1/sms/info", json={"message_id": body["message_id"]}, headers=headers
    )
    assert info.json()["status"] == "rejected"
    assert info.json()["error"] == "ESME_RSUBMITFAIL"


async def test_undeliverable_receipt_rolls_up(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim(undeliverable_prefix="999")
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("undeliv@example.com")
    r = await gw.http.post(
        "/api/v1/sms/send",
        json={"esme": 1, "source": "+123456789", "destination": "+999000111", "message": "x"},
        headers=headers,
    )
    assert r.json()["status"] == "submitted"
    info = await eventually(lambda: _info_if(gw, headers, r.json()["message_id"], "undeliverable"))
    assert info["parts"] == {"1": "undeliverable"} and info["delivered_count"] == 0


async def test_messages_queue_while_smsc_is_down_then_go_out(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    sim = await make_sim()
    port = sim.smpp_port
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)], send_budget_s=0.3))
    await wait_bound(gw)
    headers = await gw.user("queue@example.com")
    await sim.stop()

    ids = []
    for i in range(5):
        r = await gw.http.post(
            "/api/v1/sms/send",
            json={
                "esme": 1,
                "source": "+1234",
                "destination": "+4915112345678",
                "message": f"m{i}",
            },
            headers=headers,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and body["status"] == "queued" and body["sms_ids"] == []
        ids.append(body["message_id"])

    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=headers)
    assert r.json()["persist"] is False
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_link_queue_depth{link="1"} 5.0' in metrics
    assert 'smsgateway_link_state{link="1",state="BOUND"} 0.0' in metrics

    sim2 = await make_sim(port=port)
    await eventually(lambda: sim2.submits >= 5, timeout=30)
    texts = sorted(m[2].short_message for m in sim2.messages)
    assert texts == [f"m{i}".encode() for i in range(5)]
    for mid in ids:
        await eventually(lambda mid=mid: _info_if(gw, headers, mid, "delivered"))
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_link_queue_depth{link="1"} 0.0' in metrics


async def test_pool_delivers_through_the_live_member(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    from smsgateway.settings import LinkSettings, PoolSettings

    sim = await make_sim()
    dead = LinkSettings(id=2, name="dead", host="127.0.0.1", port=1, limit_tps=0)
    settings = make_settings(
        tmp_path,
        [link_to(sim, 1), dead],
        [PoolSettings(id=100, name="pool-1", links=[1, 2])],
    )
    gw = await make_gateway(settings)
    await wait_bound(gw)
    headers = await gw.user("pool@example.com")
    for i in range(6):
        r = await gw.http.post(
            "/api/v1/sms/send",
            json={
                "esme": 100,
                "source": "Pool",
                "destination": "+4915112345678",
                "message": f"{i}",
            },
            headers=headers,
        )
        assert r.json()["status"] == "submitted", r.text
    assert sim.submits == 6
    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 100}, headers=headers)
    assert r.json() == {"persist": True, "system_id": "smscsim", "error": ""}
    assert ADMIN_KEY


async def test_pool_with_no_member_up_holds_its_messages(tmp_path: Path, make_gateway) -> None:
    from gwkit import dead_link
    from smsgateway.settings import PoolSettings

    settings = make_settings(
        tmp_path,
        [dead_link(1), dead_link(2)],
        [PoolSettings(id=100, name="pool-1", links=[1, 2])],
        send_budget_s=0.1,
    )
    gw = await make_gateway(settings)
    headers = await gw.user("pooled@example.com")
    for i in range(3):
        r = await gw.send(headers, esme=100, message=f"{i}")
        assert (r.status_code, r.json()["status"]) == (200, "queued"), r.text
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_pool_queue_depth{pool="100"} 3.0' in metrics
    assert 'smsgateway_link_queue_depth{link="1"} 0.0' in metrics
    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 100}, headers=headers)
    assert r.json()["persist"] is False
