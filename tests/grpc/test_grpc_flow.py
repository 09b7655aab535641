"""Document 000's integration flow through gRPC alone, and the core rules (idempotency,
per-app isolation, SMSC refusal) seen through the gRPC face."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpckit import ADMIN_MD, make_settings, send_request

from gwkit import PASSWORD, eventually, link_to
from smsgateway.api.grpc.gen import auth_pb2, sms_pb2
from smsgateway.smpp.text import decode_short_message

LONG_TEXT = ("Grüße aus Zürich 👋 " * 21)[:400]  # UCS-2, emoji straddle part edges


async def test_integration_flow_of_document_000(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()

    # 1. Register, with the admin key in metadata.
    reg = await gw.auth.Register(
        auth_pb2.RegisterRequest(email="flow@example.com", password=PASSWORD, app_name="shop"),
        metadata=ADMIN_MD,
    )
    assert reg.user_id > 0 and reg.app_id > 0 and len(reg.app_secret) >= 32
    assert reg.error == ""

    # 2. Login: public.
    login = await gw.auth.Login(
        auth_pb2.LoginRequest(email="flow@example.com", password=PASSWORD, app_id=reg.app_id)
    )
    assert login.token.count(".") == 2 and login.error == ""
    md = (("authorization", f"Bearer {login.token}"), ("x-app-id", str(reg.app_id)))

    # 3. CheckESME.
    check = await gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=md)
    assert (check.persist, check.system_id, check.error) == (True, "smscsim", "")

    # 4. SendMessage: a long text goes out in several parts.
    sent = await gw.sms.SendMessage(
        send_request(message=LONG_TEXT, transaction_id="tx-001", campaign="spring"), metadata=md
    )
    assert sent.success is True and sent.error == ""
    assert sent.status == "submitted"
    assert sent.esme == 1 and sent.transaction_id == "tx-001"
    parts = len(sent.sms_ids)
    assert parts >= 6  # 400 UCS-2 characters with emoji: more than 6 x 67 units
    assert len(set(sent.sms_ids)) == parts
    assert sent.task_id > 0 and sent.message_id

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

    # 5. SmsInfo after the receipts: every part delivered.
    async def delivered() -> sms_pb2.SmsInfoResponse | None:
        info = await gw.sms.SmsInfo(
            sms_pb2.SmsInfoRequest(esme=1, message_id=sent.message_id), metadata=md
        )
        return info if info.status == "delivered" else None

    info = await eventually(delivered)
    assert info.message_id == sent.message_id
    assert info.mode == "multipart"
    assert dict(info.parts) == {str(i): "delivered" for i in range(1, parts + 1)}
    assert info.delivered_count == parts
    assert info.transaction_id == "tx-001"
    assert info.task_id == sent.task_id
    assert info.error == ""
    assert info.updated_at >= info.sent_at > 1_700_000_000

    # The admin-only calls, with the key.
    assert (
        await gw.auth.IsAdmin(auth_pb2.IsAdminRequest(user_id=reg.user_id), metadata=ADMIN_MD)
    ) == (auth_pb2.IsAdminResponse(is_admin=False, error=""))
    deleted = await gw.auth.DeleteUser(
        auth_pb2.DeleteUserRequest(user_id=reg.user_id), metadata=ADMIN_MD
    )
    assert deleted.result is True and deleted.error == ""
    # The deleted user's token stops working at once (cached tokens are dropped).
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=md)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_both_faces_share_one_pipeline(tmp_path: Path, make_sim, make_gateway) -> None:
    """A message sent over gRPC is the same record REST reports, and vice versa."""
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    md = await gw.user("both@example.com")
    headers = {"Authorization": md[0][1], "X-App-ID": md[1][1]}

    sent = await gw.sms.SendMessage(send_request(message="via grpc"), metadata=md)
    r = await gw.http.post(
        "/api/v1/sms/info", json={"esme": 1, "message_id": sent.message_id}, headers=headers
    )
    assert r.status_code == 200 and r.json()["task_id"] == sent.task_id

    r = await gw.http.post(
        "/api/v1/sms/send",
        json={"esme": 1, "source": "Shop", "destination": "447700900123", "message": "via rest"},
        headers=headers,
    )
    rest_sent = r.json()
    info = await eventually(
        lambda: _info_if(gw, md, rest_sent["message_id"], "delivered"), timeout=10
    )
    assert dict(info.parts) == {"1": "delivered"} and info.mode == "single"


async def _info_if(gw, md, message_id: str, status: str) -> sms_pb2.SmsInfoResponse | None:
    info = await gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(message_id=message_id), metadata=md)
    return info if info.status == status else None


async def test_transaction_id_makes_retries_safe(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    md = await gw.user("idem@example.com")
    request = send_request(message="once only", transaction_id="tx-42")
    first = await gw.sms.SendMessage(request, metadata=md)
    again = await gw.sms.SendMessage(request, metadata=md)
    assert again == first
    assert sim.submits == 1

    # The key is the app's, whichever face it came through: REST sees the same answer.
    headers = {"Authorization": md[0][1], "X-App-ID": md[1][1]}
    r = await gw.http.post(
        "/api/v1/sms/send",
        json={
            "esme": 1,
            "source": "+123456789",
            "destination": "+987654321",
            "message": "once only",
            "transaction_id": "tx-42",
        },
        headers=headers,
    )
    assert r.json()["message_id"] == first.message_id
    assert sim.submits == 1

    # Another app may use the same transaction_id: keys are per app.
    other = await gw.user("idem2@example.com")
    third = await gw.sms.SendMessage(request, metadata=other)
    assert third.message_id != first.message_id
    assert sim.submits == 2


async def test_an_app_sees_only_its_own_messages(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    alice = await gw.user("alice@example.com")
    mallory = await gw.user("mallory@example.com")
    sent = await gw.sms.SendMessage(send_request(source="Alice"), metadata=alice)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(message_id=sent.message_id), metadata=mallory)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "message not found"
    mine = await gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(message_id=sent.message_id), metadata=alice)
    assert mine.message_id == sent.message_id


async def test_smsc_refusal_answers_ok_with_success_false(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    sim = await make_sim(fail_rate=1.0)
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    md = await gw.user("refused@example.com")
    call = gw.sms.SendMessage(send_request(message="no"), metadata=md)
    sent = await call
    assert await call.code() == grpc.StatusCode.OK
    assert sent.success is False
    assert sent.error == "ESME_RSUBMITFAIL"
    assert sent.status == "rejected"
    assert sent.message_id
    # Read-your-writes: the answer waited for the outcome's commit.
    info = await gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(message_id=sent.message_id), metadata=md)
    assert (info.status, info.error) == ("rejected", "ESME_RSUBMITFAIL")


async def test_open_registration_needs_no_admin_key(tmp_path: Path, make_sim, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, [], admin_key="", open_registration=True))
    reg = await gw.auth.Register(auth_pb2.RegisterRequest(email="o@example.com", password=PASSWORD))
    assert reg.user_id > 0
    admin = await gw.auth.IsAdmin(auth_pb2.IsAdminRequest(user_id=reg.user_id))
    assert admin.is_admin is False


async def test_send_messages_batch(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    md = await gw.user("batch@example.com")
    batch = sms_pb2.SendMessagesRequest(
        messages=[send_request(message=f"batch {i}", transaction_id=f"b-{i}") for i in range(20)]
        + [send_request(destination="not-a-number"), send_request(esme=999)]
    )
    answer = await gw.sms.SendMessages(batch, metadata=md)
    assert len(answer.results) == 22
    sent = answer.results[:20]
    assert all(r.success and r.status == "submitted" and len(r.sms_ids) == 1 for r in sent)
    assert [r.transaction_id for r in sent] == [f"b-{i}" for i in range(20)]
    assert len({r.message_id for r in sent}) == 20
    bad_address, unknown_esme = answer.results[20:]
    assert not bad_address.success and not bad_address.message_id
    assert bad_address.error.startswith("destination must be")
    assert (unknown_esme.success, unknown_esme.error) == (False, "unknown esme")
    # Exactly the 20 good ones reached the SMSC, each once.
    assert sim.submits == 20
    assert sorted(m[2].short_message for m in sim.messages) == sorted(
        f"batch {i}".encode() for i in range(20)
    )

    # The same batch again: every transaction_id answers its first answer, nothing resent.
    again = await gw.sms.SendMessages(
        sms_pb2.SendMessagesRequest(messages=list(batch.messages)[:20]), metadata=md
    )
    assert list(again.results) == list(sent)
    assert sim.submits == 20

    too_many = sms_pb2.SendMessagesRequest(messages=[send_request()] * 1001)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await gw.sms.SendMessages(too_many, metadata=md)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "at most 1000 messages per call"

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await gw.sms.SendMessages(batch)  # no credentials
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
