"""A real phone reaches the gateway over HTTPS only (the app refuses cleartext except
to 127.0.0.1): the device face, its event stream and the link page under TLS."""

from __future__ import annotations

from pathlib import Path

from devkit import GatewayFactory, device_settings, svc

from gwkit import self_signed
from smsgateway.devicesim import DeviceSim, SimConfig


async def test_link_and_event_stream_over_tls(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = device_settings(tmp_path)
    settings.server.tls_cert, settings.server.tls_key = str(cert), str(key)
    gw = await make_gateway(settings)
    base = f"https://127.0.0.1:{gw.runtime.rest_port}"
    link = await svc(gw).create_link(1, base)
    assert link.server_url == base + "/mobile/v1" and link.qr_url.startswith(base)
    sim = DeviceSim(SimConfig(server=link.server_url, code=link.code, verify_tls=str(cert)))
    try:
        await sim.start()
        await sim.stream_open.wait()
        assert await sim.receive_sms("+447700900555", "over TLS") == [204]
        page = await sim.http.get(link.qr_url)
        assert page.status_code == 410  # spent by the sign-in above
        info = await svc(gw).active_device(1)
        assert info is not None and info.online
    finally:
        await sim.stop()
