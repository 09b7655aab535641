"""Every error the gRPC face answers: its status code (from the catalogue's grpc_status)
and its text, which must be the text the REST face puts in `{"error": ...}` for the
same mistake. Over a real channel against a running gateway."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpckit import ADMIN_MD, GrpcGateway, Metadata, make_settings, send_request

from gwkit import ADMIN_KEY, PASSWORD, dead_link, link_to
from smsgateway.api.grpc.gen import auth_pb2, sms_pb2
from smsgateway.core.errors import catalogue
from smsgateway.settings_ops import RateLimitSettings

Code = grpc.StatusCode
SEND = "/sms.v1.SmsService/SendMessage"


async def failure(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


def rest_headers(md: Metadata) -> dict[str, str]:
    names = {"authorization": "Authorization", "x-app-id": "X-App-ID", "x-admin-key": "X-Admin-Key"}
    return {names[k]: v for k, v in md}


async def rest_error(gw: GrpcGateway, path: str, body: Any, md: Metadata) -> tuple[int, str]:
    r = await gw.http.post(path, json=body, headers=rest_headers(md))
    return r.status_code, r.json()["error"]


@pytest.fixture
async def gw(tmp_path: Path, make_gateway) -> GrpcGateway:
    """A gateway with one link that never binds (routing and checks work) and one that
    only 10.0.0.0/8 may use."""
    gateway: GrpcGateway = await make_gateway(
        make_settings(
            tmp_path,
            [dead_link(1), dead_link(2, allowed_ips=["10.0.0.0/8"]), dead_link(3, enabled=False)],
        )
    )
    return gateway


def test_every_catalogue_status_is_a_grpc_status_code() -> None:
    for error in catalogue():
        assert grpc.StatusCode[error.grpc_status].name == error.grpc_status


# -- credentials ---------------------------------------------------------------------


async def test_token_errors_match_rest(gw: GrpcGateway) -> None:
    md = await gw.user("creds@example.com")
    token, app_id = md[0], md[1]
    other = await gw.user("other@example.com")
    cases: list[tuple[Metadata, Code, str]] = [
        ((), Code.UNAUTHENTICATED, "authorization header required"),
        ((app_id,), Code.UNAUTHENTICATED, "authorization header required"),
        ((token,), Code.UNAUTHENTICATED, "X-App-ID header required"),
        ((token, ("x-app-id", "abc")), Code.INVALID_ARGUMENT, "invalid X-App-ID"),
        ((token, ("x-app-id", "-1")), Code.INVALID_ARGUMENT, "invalid X-App-ID"),
        ((token, ("x-app-id", "999999")), Code.UNAUTHENTICATED, "unknown app_id"),
        (
            (("authorization", "Bearer not.a.jwt"), app_id),
            Code.UNAUTHENTICATED,
            "invalid or expired token",
        ),
        (
            (("authorization", "Basic abc"), app_id),
            Code.UNAUTHENTICATED,
            "invalid or expired token",
        ),
        # A valid token presented for another app.
        ((token, other[1]), Code.UNAUTHENTICATED, "invalid or expired token"),
    ]
    for metadata, code, text in cases:
        for call in (
            gw.sms.SendMessage(send_request(), metadata=metadata),
            gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=metadata),
            gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(message_id="x"), metadata=metadata),
        ):
            assert await failure(call) == (code, text), metadata
        status, rest_text = await rest_error(gw, "/api/v1/sms/check-esme", {"esme": 1}, metadata)
        assert rest_text == text and status in (400, 401)


async def test_admin_key_missing_or_wrong(gw: GrpcGateway) -> None:
    register = auth_pb2.RegisterRequest(email="k@example.com", password=PASSWORD)
    for md in [(), (("x-admin-key", "wrong"),), (("x-admin-key", ""),)]:
        for call in (
            gw.auth.Register(register, metadata=md),
            gw.auth.IsAdmin(auth_pb2.IsAdminRequest(user_id=1), metadata=md),
            gw.auth.DeleteUser(auth_pb2.DeleteUserRequest(user_id=1), metadata=md),
        ):
            assert await failure(call) == (Code.UNAUTHENTICATED, "invalid or missing admin key")
    _, text = await rest_error(
        gw, "/api/v1/auth/register", {"email": "k@example.com", "password": PASSWORD}, ()
    )
    assert text == "invalid or missing admin key"


async def test_admin_key_not_configured_is_unavailable(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, [], admin_key=""))
    call = gw.auth.Register(
        auth_pb2.RegisterRequest(email="k@example.com", password=PASSWORD),
        metadata=(("x-admin-key", ADMIN_KEY),),
    )
    assert await failure(call) == (Code.UNAVAILABLE, "admin API key not configured")


async def test_login_and_user_errors(gw: GrpcGateway) -> None:
    reg = await gw.register("u@example.com")
    bad_logins = [
        auth_pb2.LoginRequest(email="u@example.com", password="wrong-password", app_id=reg.app_id),
        auth_pb2.LoginRequest(email="nobody@example.com", password=PASSWORD, app_id=reg.app_id),
        auth_pb2.LoginRequest(email="u@example.com", password=PASSWORD, app_id=reg.app_id + 100),
        auth_pb2.LoginRequest(email="u@example.com", password=PASSWORD),
    ]
    for login in bad_logins:
        assert await failure(gw.auth.Login(login)) == (
            Code.UNAUTHENTICATED,
            "invalid email or password",
        )

    duplicate = gw.auth.Register(
        auth_pb2.RegisterRequest(email="u@example.com", password=PASSWORD), metadata=ADMIN_MD
    )
    assert await failure(duplicate) == (Code.ALREADY_EXISTS, "user already exists")

    for email, password in [("not-an-email", PASSWORD), ("v@example.com", "short")]:
        request = auth_pb2.RegisterRequest(email=email, password=password)
        code, text = await failure(gw.auth.Register(request, metadata=ADMIN_MD))
        status, rest_text = await rest_error(
            gw, "/api/v1/auth/register", {"email": email, "password": password}, ADMIN_MD
        )
        assert (code, text) == (Code.INVALID_ARGUMENT, rest_text) and status == 400

    missing = gw.auth.IsAdmin(auth_pb2.IsAdminRequest(user_id=424242), metadata=ADMIN_MD)
    assert await failure(missing) == (Code.NOT_FOUND, "user not found")
    missing = gw.auth.DeleteUser(auth_pb2.DeleteUserRequest(user_id=424242), metadata=ADMIN_MD)
    assert await failure(missing) == (Code.NOT_FOUND, "user not found")
    # user_id 0 is what an empty request carries: refused, not looked up.
    code, _ = await failure(gw.auth.IsAdmin(auth_pb2.IsAdminRequest(), metadata=ADMIN_MD))
    assert code == Code.INVALID_ARGUMENT

    assert gw.runtime.auth is not None
    admin = await gw.runtime.auth.register("root@example.com", PASSWORD, is_admin=True)
    is_admin = await gw.auth.IsAdmin(
        auth_pb2.IsAdminRequest(user_id=admin.user_id), metadata=ADMIN_MD
    )
    assert is_admin.is_admin is True
    refused = gw.auth.DeleteUser(
        auth_pb2.DeleteUserRequest(user_id=admin.user_id), metadata=ADMIN_MD
    )
    assert await failure(refused) == (Code.INVALID_ARGUMENT, "user is admin")


# -- routing and validation ----------------------------------------------------------


async def test_routing_errors_match_rest(gw: GrpcGateway) -> None:
    md = await gw.user("route@example.com")
    cases: list[tuple[int, Code, str, int]] = [
        (42, Code.NOT_FOUND, "unknown esme", 404),
        (0, Code.NOT_FOUND, "unknown esme", 404),
        (2, Code.PERMISSION_DENIED, "IP not allowed", 403),
    ]
    for esme, code, text, http_status in cases:
        assert await failure(gw.sms.SendMessage(send_request(esme=esme), metadata=md)) == (
            code,
            text,
        )
        check = gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=esme), metadata=md)
        assert await failure(check) == (code, text)
        if esme:  # SmsInfo's esme is optional: 0 means "not given"
            info = gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(esme=esme, message_id="m"), metadata=md)
            assert await failure(info) == (code, text)
        body = {"esme": esme, "source": "+1234", "destination": "+987654321", "message": "x"}
        assert await rest_error(gw, "/api/v1/sms/send", body, md) == (http_status, text)

    disabled = await failure(gw.sms.SendMessage(send_request(esme=3), metadata=md))
    assert disabled[0] == Code.UNAVAILABLE and disabled[1].startswith("link disabled")

    # A link that is down is an answer, not an error.
    check = await gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=md)
    assert check.persist is False and check.error.startswith("link is ")

    missing = gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(message_id="nope"), metadata=md)
    assert await failure(missing) == (Code.NOT_FOUND, "message not found")
    empty = gw.sms.SmsInfo(sms_pb2.SmsInfoRequest(), metadata=md)
    assert await failure(empty) == (Code.INVALID_ARGUMENT, "message_id is required")


async def test_validation_errors_match_rest(gw: GrpcGateway) -> None:
    md = await gw.user("valid@example.com")
    bad: list[dict[str, Any]] = [
        {"destination": "abc"},
        {"destination": ""},
        {"destination": "+1"},
        {"source": ""},
        {"source": "A" * 40},
        {"message": ""},
        {"message": "x" * 5000},
        {"transaction_id": "t" * 129},
        {"campaign": "c" * 129},
    ]
    for fields in bad:
        code, text = await failure(gw.sms.SendMessage(send_request(**fields), metadata=md))
        body = {"esme": 1, "source": "+123456789", "destination": "+987654321", "message": "x"}
        body.update(fields)
        status, rest_text = await rest_error(gw, "/api/v1/sms/send", body, md)
        assert (code, text) == (Code.INVALID_ARGUMENT, rest_text), fields
        assert status == 400


# -- payloads ------------------------------------------------------------------------


async def test_garbage_payload_is_invalid_argument(gw: GrpcGateway) -> None:
    md = await gw.user("garbage@example.com")
    for payload in [b"\xff" * 16, b"\x0a\xff", b"\x12\x02\xff\xfe", b"not protobuf at all"]:
        code, text = await failure(gw.raw(SEND)(payload, metadata=md))
        assert code == Code.INVALID_ARGUMENT, payload
        assert text.startswith("malformed protobuf: "), text
    # Public calls decode too.
    code, _ = await failure(gw.raw("/auth.Auth/Login")(b"\xff\xff\xff"))
    assert code == Code.INVALID_ARGUMENT


async def test_wrong_typed_payload_is_invalid_argument(gw: GrpcGateway) -> None:
    md = await gw.user("typed@example.com")
    # A LoginRequest where a SendMessageRequest belongs: `email` (a string) lands on
    # field 1, which is the int64 `esme`.
    wrong = auth_pb2.LoginRequest(email="a@b.c", password="x", app_id=5).SerializeToString()
    assert await failure(gw.raw(SEND)(wrong, metadata=md)) == (
        Code.INVALID_ARGUMENT,
        "invalid request body: field `esme` has the wrong type",
    )
    # Unknown field numbers are a newer client's fields: accepted and ignored.
    newer = send_request(esme=42).SerializeToString() + b"\xa0\x06\x01"  # field 100 = 1
    assert await failure(gw.raw(SEND)(newer, metadata=md)) == (Code.NOT_FOUND, "unknown esme")


async def test_oversized_message_is_resource_exhausted(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, [], max_body_bytes=4096))
    md = await gw.user("big@example.com")
    code, text = await failure(gw.sms.SendMessage(send_request(message="x" * 5000), metadata=md))
    assert code == Code.RESOURCE_EXHAUSTED, text
    # Just under the limit is read and handled as usual (this gateway has no links).
    under = gw.sms.SendMessage(send_request(message="x" * 3000), metadata=md)
    assert await failure(under) == (Code.NOT_FOUND, "unknown esme")


async def test_unknown_method_is_unimplemented(gw: GrpcGateway) -> None:
    code, _ = await failure(gw.raw("/sms.v1.SmsService/Nope")(b""))
    assert code == Code.UNIMPLEMENTED


async def test_allow_listed_peer_may_send(tmp_path: Path, make_sim, make_gateway) -> None:
    """The peer address from context.peer() is what the allow-list sees."""
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim, allowed_ips=["127.0.0.1/32"])]))
    await gw.bound()
    md = await gw.user("allowed@example.com")
    sent = await gw.sms.SendMessage(send_request(), metadata=md)
    assert sent.success and sent.status == "submitted"


async def test_global_limit_takes_grpc_calls_from_the_same_bucket(
    tmp_path: Path, make_gateway
) -> None:
    """L1 is one bucket for the whole gateway: a gRPC flood is refused like a REST one."""
    limits = RateLimitSettings(global_rps=0.01, global_burst=3)
    gw = await make_gateway(make_settings(tmp_path, [dead_link(1)], ratelimit=limits))
    # Two tokens go on REST (a 404 counts: L1 comes before routing), one on gRPC.
    for _ in range(2):
        assert (await gw.http.get("/api/v1/nowhere")).status_code == 404
    wrong = auth_pb2.LoginRequest(email="nobody@example.com", password="x", app_id=1)
    assert (await failure(gw.auth.Login(wrong)))[0] == Code.UNAUTHENTICATED
    # The bucket is empty now: even a public call is refused before it is decoded.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await gw.raw("/auth.Auth/Login")(b"\xff")
    assert (err.value.code(), err.value.details()) == (
        Code.RESOURCE_EXHAUSTED,
        "rate limit exceeded",
    )
    trailers = {k: v for k, v in err.value.trailing_metadata() or ()}
    assert trailers["x-ratelimit-limit"] == "0.01" and int(trailers["retry-after"]) >= 1
    assert (await gw.http.get("/api/v1/nowhere")).status_code == 429
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_ratelimit_refused_total{level="global"} 2.0' in metrics


async def test_rate_limits_apply_to_grpc_too(tmp_path: Path, make_gateway) -> None:
    """The per-app limit and the failed-login guard are the core's, whichever face."""
    limits = RateLimitSettings(app_rps=0.01, app_burst=2, login_per_minute=1, login_burst=2)
    gw = await make_gateway(make_settings(tmp_path, [dead_link(1)], ratelimit=limits))
    md = await gw.user("limited@example.com")
    for _ in range(2):
        await gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1), metadata=md)
    assert (err.value.code(), err.value.details()) == (
        Code.RESOURCE_EXHAUSTED,
        "rate limit exceeded",
    )
    trailers = {k: v for k, v in err.value.trailing_metadata() or ()}
    assert trailers["x-ratelimit-limit"] and int(trailers["retry-after"]) >= 1
    # The bucket is the app's, not the face's: REST is refused as well.
    status, text = await rest_error(gw, "/api/v1/sms/check-esme", {"esme": 1}, md)
    assert (status, text) == (429, "rate limit exceeded")

    wrong = auth_pb2.LoginRequest(email="limited@example.com", password="wrong-password", app_id=1)
    for _ in range(2):
        assert (await failure(gw.auth.Login(wrong)))[0] == Code.UNAUTHENTICATED
    assert await failure(gw.auth.Login(wrong)) == (
        Code.RESOURCE_EXHAUSTED,
        "too many login attempts, try again later",
    )
