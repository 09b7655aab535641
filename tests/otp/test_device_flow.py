"""The OTP flow through a linked phone: device-link from the admin API, the reference
device (devicesim) signs in with the code, gets the SMS, reports it; verify with the
code it received. DEVICE_NOT_LINKED before linking and after revoking; /v1/status
tells linked, online and what blocks sending; two projects never share a phone.

Needs DeviceService and the device simulator (the devices work, COORD.md); skipped
until that is merged."""

from __future__ import annotations

from typing import Any

import pytest
from otpkit import NUMBER, code_in, error_of, key, project

from gwkit import Gateway, admin, eventually

devicesim = pytest.importorskip("smsgateway.devicesim")


async def _link(gw: Gateway, project_id: int) -> Any:
    r = await gw.http.post(f"/api/v1/admin/projects/{project_id}/device-link", headers=admin())
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["qrSvg"].lstrip().startswith("<svg") and data["qrUrl"].startswith("http")
    assert data["serverUrl"].endswith("/mobile/v1") and data["expiresAt"].endswith("Z")
    sim = devicesim.DeviceSim(
        devicesim.SimConfig(
            server=data["serverUrl"], code=data["code"], retry_s=0.05, deliver_delay_s=0.01
        )
    )
    await sim.start()
    await sim.stream_open.wait()
    return sim


async def test_otp_through_a_linked_device(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    pid, k = await project(gw, "Phone", code_length=5)
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.status_code == 409 and error_of(r)["code"] == "DEVICE_NOT_LINKED"
    phone = await _link(gw, pid)
    try:
        shown = (await gw.http.get(f"/api/v1/admin/projects/{pid}", headers=admin())).json()
        assert shown["data"]["device"]["online"] is True
        status = (await gw.http.get("/v1/status", headers=key(k))).json()["data"]
        assert status["ready"] is True and status["blockers"] == []
        assert status["device"]["linked"] is True and status["device"]["online"] is True
        r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["channel"] == "device"
        [got] = await eventually(lambda: list(phone.messages.values()))
        assert got.phone_numbers == [NUMBER]
        code = code_in(got.text)
        assert len(code) == 5
        r = await gw.http.post(
            "/v1/verify-otp",
            json={"verificationId": data["verificationId"], "otp": code},
            headers=key(k),
        )
        assert r.json()["data"]["verified"] is True
        # A custom message: its state follows the device's reports.
        r = await gw.http.post("/v1/messages", json={"to": NUMBER, "text": "hi"}, headers=key(k))
        mid = r.json()["data"]["messageId"]

        async def delivered() -> bool:
            r = await gw.http.get(f"/v1/messages/{mid}", headers=key(k))
            return bool(r.json()["data"]["status"] == "delivered")

        await eventually(delivered)
        # Another project has no phone: it cannot use this one.
        _, other = await project(gw, "Other")
        r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(other))
        assert r.status_code == 409 and error_of(r)["code"] == "DEVICE_NOT_LINKED"
        r = await gw.http.get(f"/v1/messages/{mid}", headers=key(other))
        assert r.status_code == 404
        # Revoked: DEVICE_NOT_LINKED again.
        r = await gw.http.delete(f"/api/v1/admin/projects/{pid}/device", headers=admin())
        assert r.json()["data"] == {"revoked": True}
        r = await gw.http.post("/v1/send-otp", json={"to": "+447700900999"}, headers=key(k))
        assert r.status_code == 409 and error_of(r)["code"] == "DEVICE_NOT_LINKED"
        status = (await gw.http.get("/v1/status", headers=key(k))).json()["data"]
        assert status["device"]["linked"] is False and status["ready"] is False
    finally:
        await phone.stop()
