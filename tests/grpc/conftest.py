"""The gRPC face over real sockets: the shared fixtures (tests/conftest.py) with a
gateway that also carries a grpc.aio channel to its gRPC port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import httpx
import pytest
from grpckit import GrpcGateway

from smsgateway.api.grpc.gen import auth_pb2_grpc, sms_pb2_grpc
from smsgateway.runtime import Runtime
from smsgateway.settings import Settings

GatewayFactory = Callable[[Settings], Awaitable[GrpcGateway]]


@pytest.fixture
async def make_gateway() -> AsyncIterator[GatewayFactory]:
    """Like the shared make_gateway, answering a GrpcGateway (channel + stubs + REST)."""
    started: list[GrpcGateway] = []

    async def make(settings: Settings) -> GrpcGateway:
        runtime = Runtime(settings)
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}")
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.rest_port}", timeout=15)
        gw = GrpcGateway(
            runtime,
            channel,
            http,
            auth_pb2_grpc.AuthStub(channel),
            sms_pb2_grpc.SmsServiceStub(channel),
        )
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.stop()
