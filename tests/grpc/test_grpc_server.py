"""The gRPC server itself: health, reflection, TLS, metrics, lifecycle, and the small
parsers (peer address, payload decoding) the servicers rely on."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpckit import make_settings, send_request

from gwkit import self_signed
from smsgateway.api.grpc.gen import auth_pb2, auth_pb2_grpc, sms_pb2
from smsgateway.api.grpc.rpc import WrongFieldType, decode, peer_ip
from smsgateway.api.grpc.server import listen_address, server_credentials
from smsgateway.core.errors import InvalidRequest
from smsgateway.runtime import Runtime
from smsgateway.settings import ServerSettings, SettingsError

SERVICES = {
    "auth.Auth",
    "sms.v1.SmsService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
}


async def test_health_reports_serving(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, []))
    health = health_pb2_grpc.HealthStub(gw.channel)
    for service in ["", "auth.Auth", "sms.v1.SmsService"]:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await health.Check(health_pb2.HealthCheckRequest(service="no.Such"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_the_services(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, []))
    stub = reflection_pb2_grpc.ServerReflectionStub(gw.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="sms.v1.SmsService"),
    ]
    replies = [r async for r in stub.ServerReflectionInfo(iter(requests))]
    listed = {s.name for s in replies[0].list_services_response.service}
    assert listed == SERVICES
    # The file a client (grpcurl) needs to build requests is served too.
    from google.protobuf import descriptor_pb2

    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in replies[1].file_descriptor_response.file_descriptor_proto
    ]
    sms = next(f for f in files if f.package == "sms.v1")
    send = next(m for m in sms.message_type if m.name == "SendMessageRequest")
    assert [(f.name, f.number) for f in send.field] == [
        ("esme", 1),
        ("source", 2),
        ("destination", 3),
        ("message", 4),
        ("transaction_id", 5),
        ("campaign", 6),
    ]


async def test_metrics_count_grpc_calls(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, []))
    with pytest.raises(grpc.aio.AioRpcError):
        await gw.sms.CheckESME(sms_pb2.CheckESMERequest(esme=1))
    await gw.register("m@example.com")
    text = (await gw.http.get("/metrics")).text
    assert (
        'smsgateway_grpc_requests_total{code="UNAUTHENTICATED",method="sms.v1.SmsService/CheckESME"}'
        in text
    )
    assert 'smsgateway_grpc_requests_total{code="OK",method="auth.Auth/Register"}' in text


async def test_stop_refuses_new_calls(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path, []))
    await runtime.start()
    port = runtime.grpc_port
    assert port > 0
    await runtime.stop()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await auth_pb2_grpc.AuthStub(channel).Login(auth_pb2.LoginRequest(), timeout=2)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_port_in_use_fails_loudly(tmp_path: Path, make_gateway) -> None:
    """No SO_REUSEPORT: a second gateway on the same port must not start quietly."""
    first = await make_gateway(make_settings(tmp_path / "a", []))
    second = Runtime(make_settings(tmp_path / "b", [], grpc_port=first.runtime.grpc_port))
    try:
        with pytest.raises(RuntimeError, match=r"(?i)bind"):
            await second.start()
    finally:
        await second.stop()


# -- TLS -----------------------------------------------------------------------------


async def test_tls_for_grpc_and_rest(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = make_settings(tmp_path, [], tls_cert=str(cert), tls_key=str(key))
    runtime = Runtime(settings)
    await runtime.start()
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        target = f"127.0.0.1:{runtime.grpc_port}"
        async with grpc.aio.secure_channel(target, creds) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await auth_pb2_grpc.AuthStub(channel).Login(
                    auth_pb2.LoginRequest(email="x@example.com", password="wrong-pass", app_id=1)
                )
            # Reached the servicer through TLS: a real answer, not a transport error.
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

        # A plaintext client cannot talk to the TLS port.
        async with grpc.aio.insecure_channel(target) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await auth_pb2_grpc.AuthStub(plain).Login(auth_pb2.LoginRequest(), timeout=3)
            assert err.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )

        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=context) as client:
            r = await client.get(f"https://127.0.0.1:{runtime.rest_port}/healthy")
        assert r.json() == {"status": "ok"}
    finally:
        await runtime.stop()


def test_tls_settings_must_come_in_pairs(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert server_credentials(ServerSettings()) is None
    assert server_credentials(ServerSettings(tls_cert=str(cert), tls_key=str(key))) is not None
    with pytest.raises(SettingsError, match="set together"):
        server_credentials(ServerSettings(tls_cert=str(cert)))
    with pytest.raises(SettingsError, match="tls_cert/tls_key"):
        server_credentials(ServerSettings(tls_cert=str(cert), tls_key=str(tmp_path / "nope")))


# -- parsers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:127.0.0.1:54321", "127.0.0.1"),
        ("ipv6:[::1]:54321", "::1"),
        ("ipv6:%5B::1%5D:54321", "::1"),
        ("ipv6:[::ffff:10.1.2.3]:443", "10.1.2.3"),
        ("ipv6:[fe80::1%25eth0]:443", "fe80::1"),
        ("unix:/tmp/sock", None),
        ("ipv4:not-an-ip:1", None),
        ("", None),
    ],
)
def test_peer_ip(peer: str, ip: str | None) -> None:
    assert peer_ip(peer) == ip


def test_listen_address() -> None:
    assert listen_address("127.0.0.1", 44044) == "127.0.0.1:44044"
    assert listen_address("::", 0) == "[::]:0"
    assert listen_address("[::1]", 1) == "[::1]:1"


def test_decode() -> None:
    raw = send_request(transaction_id="t").SerializeToString()
    assert decode(raw, sms_pb2.SendMessageRequest).transaction_id == "t"
    assert decode(b"", sms_pb2.SendMessageRequest) == sms_pb2.SendMessageRequest()
    with pytest.raises(InvalidRequest, match="malformed protobuf"):
        decode(b"\x0a\xff", sms_pb2.SendMessageRequest)
    # destination (field 3, a string) sent as a varint.
    with pytest.raises(WrongFieldType, match="`destination`"):
        decode(b"\x18\x01", sms_pb2.SendMessageRequest)
