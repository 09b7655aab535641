"""Linking a phone by one-time code, as the app does it (POST /device with
`Authorization: Code`, then Bearer on every call; 401 makes it sign in again), and
the page the link's QR code opens on the phone."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from devkit import GatewayFactory, base, device_settings, mobile, new_code, phone, svc

from smsgateway.devicesim import DeviceSim, SimConfig, Unauthorized


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REGISTER = {"name": "Google/sdk_gphone64", "pushToken": None, "simCards": []}


async def test_register_by_code_answers_as_the_app_expects(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    code = await new_code(gw, 7)
    assert re.fullmatch(r"\d{6}", code)
    r = await gw.http.post(
        "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {code}"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "token", "login", "password"}
    assert 0 < len(body["id"]) <= 21 and len(body["token"]) >= 32
    bearer = {"Authorization": f"Bearer {body['token']}"}
    # The app's next calls: settings, webhooks, pending messages, all with the token.
    r = await gw.http.get("/mobile/v1/settings", headers=bearer)
    assert r.status_code == 200
    settings = r.json()
    assert settings["gateway"]["notification_channel"] == "SSE_ONLY"
    assert len(settings["webhooks"]["signing_key"]) >= 32
    r = await gw.http.get("/mobile/v1/webhooks", headers=bearer)
    assert r.status_code == 200
    [hook] = r.json()
    assert hook["event"] == "sms:received" and hook["deviceId"] == body["id"]
    assert hook["url"].startswith(base(gw) + "/mobile/v1/")
    r = await gw.http.get("/mobile/v1/message", headers=bearer)
    assert r.status_code == 200 and r.json() == []
    r = await gw.http.patch(
        "/mobile/v1/device",
        json={"id": body["id"], "pushToken": "fcm-token", "simCards": []},
        headers=bearer,
    )
    assert r.status_code == 204
    info = await svc(gw).active_device(7)
    assert info is not None and info.name == REGISTER["name"]
    assert svc(gw).channel_id(7) == 1_000_000 + info.id


async def test_code_is_single_use_and_other_auth_is_refused(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    code = await new_code(gw, 1)
    first = await gw.http.post(
        "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {code}"}
    )
    assert first.status_code == 201
    again = await gw.http.post(
        "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {code}"}
    )
    assert again.status_code == 401
    assert "message" in again.json()
    for header in ("", "Bearer some-private-token", "Basic QUJDREVGOnNlY3JldA=="):
        r = await gw.http.post(
            "/mobile/v1/device", json=REGISTER, headers={"authorization": header}
        )
        assert r.status_code == 401, header
    # Wrong token and no token on the device's calls.
    for auth in ("Bearer nope", "", f"Code {code}"):
        r = await gw.http.get("/mobile/v1/message", headers={"Authorization": auth})
        assert r.status_code == 401


async def test_code_expires(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path, code_ttl_s=1))
    link = await svc(gw).create_link(3, base(gw))
    await asyncio.sleep(1.2)
    r = await gw.http.post(
        "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {link.code}"}
    )
    assert r.status_code == 401
    assert await svc(gw).active_device(3) is None


async def test_wrong_codes_are_limited(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path, code_attempts_per_min=3))
    code = await new_code(gw, 1)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        r = await gw.http.post(
            "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {wrong}"}
        )
        assert r.status_code == 401
    # The right code too, now: guessing stops for this address.
    r = await gw.http.post(
        "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {code}"}
    )
    assert r.status_code == 429


async def test_bad_bodies_are_400(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    code = await new_code(gw, 1)
    auth = {"Authorization": f"Code {code}"}
    for content in (b"{", b"[]", b'{"name": 5}', b'{"name": "' + b"x" * 200 + b'"}'):
        r = await gw.http.post("/mobile/v1/device", content=content, headers=auth)
        assert r.status_code == 400, content
    # The code survived the bad requests: it is spent only by a registration.
    r = await gw.http.post("/mobile/v1/device", json=REGISTER, headers=auth)
    assert r.status_code == 201
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    for content in (b"{", b'{"id": 1}', b"[1]"):
        r = await gw.http.patch("/mobile/v1/message", content=content, headers=bearer)
        assert r.status_code == 400, content
    r = await gw.http.patch(
        "/mobile/v1/message",
        json=[{"id": "x", "state": "Teleported", "recipients": []}],
        headers=bearer,
    )
    assert r.status_code == 400
    r = await gw.http.get("/mobile/v1/message?order=random", headers=bearer)
    assert r.status_code == 400


async def test_revoke_gives_401_and_signing_in_again_needs_a_new_code(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 5)
    try:
        r = await gw.http.get("/mobile/v1/device", headers=_bearer(sim.token))
        assert r.status_code == 200 and r.json()["device"]["id"] == sim.device_id
        assert await svc(gw).revoke(5) is True
        # The app's registration check now says "not registered here".
        r = await gw.http.get("/mobile/v1/device", headers=_bearer(sim.token))
        assert r.status_code == 200 and "device" not in r.json()
        assert await svc(gw).active_device(5) is None and svc(gw).channel_id(5) is None
        # The stream ends and the app's next call is refused: it forgets its token.
        r = await gw.http.get("/mobile/v1/message", headers=_bearer(sim.token))
        assert r.status_code == 401
        await sim.pull()
        assert sim.unauthorized
        # Signing in again with the old code is refused; a new code links again.
        with pytest.raises(Unauthorized):
            await sim.register()
        assert await svc(gw).revoke(5) is False
    finally:
        await sim.stop()
    again = await phone(gw, 5)
    try:
        assert again.device_id != sim.device_id
        assert (await svc(gw).active_device(5)) is not None
    finally:
        await again.stop()


async def test_a_new_phone_retires_the_old_one(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    old = await phone(gw, 9)
    new = await phone(gw, 9)
    try:
        info = await svc(gw).active_device(9)
        assert info is not None and svc(gw).channel_id(9) == 1_000_000 + info.id
        r = await gw.http.get("/mobile/v1/message", headers=_bearer(old.token))
        assert r.status_code == 401
        r = await gw.http.get("/mobile/v1/message", headers=_bearer(new.token))
        assert r.status_code == 200
    finally:
        await old.stop()
        await new.stop()


async def test_forget_project_unlinks_and_spends_its_codes(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 4)
    spare = await new_code(gw, 4)
    try:
        await svc(gw).forget_project(4)
        assert await svc(gw).active_device(4) is None
        r = await gw.http.get("/mobile/v1/message", headers=_bearer(sim.token))
        assert r.status_code == 401
        r = await gw.http.post(
            "/mobile/v1/device", json=REGISTER, headers={"Authorization": f"Code {spare}"}
        )
        assert r.status_code == 401
    finally:
        await sim.stop()


async def test_link_survives_restart(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    settings = device_settings(tmp_path)
    gw = await make_gateway(settings)
    sim = await phone(gw, 2)
    await sim.go_offline()
    await gw.stop()
    gw2 = await make_gateway(settings)
    sim.server = mobile(gw2)
    try:
        r = await gw2.http.get("/mobile/v1/message", headers=_bearer(sim.token))
        assert r.status_code == 200
        info = await svc(gw2).active_device(2)
        assert info is not None
    finally:
        await sim.stop()


async def test_link_page_shows_url_and_code_under_a_strict_csp(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    link = await svc(gw).create_link(11, base(gw))
    assert link.server_url == mobile(gw)
    assert link.qr_svg.startswith("<svg") and "</svg>" in link.qr_svg
    assert link.qr_url.startswith(base(gw) + "/mobile/link/")
    assert link.code not in link.qr_url  # the URL carries a token, not the code
    r = await gw.http.get(link.qr_url.removeprefix(base(gw)))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = r.text
    assert link.code in html and link.server_url in html and "By code" in html
    assert "<style" not in html and "style=" not in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # no inline script
    assert html.count("data-copy=") == 2
    for asset in ("/mobile/static/link.js", "/mobile/static/link.css"):
        assert asset in html
        r = await gw.http.get(asset)
        assert r.status_code == 200 and r.content
    # Once the code is spent, the page no longer shows it.
    sim = DeviceSim(SimConfig(server=link.server_url, code=link.code))
    try:
        await sim.register()
    finally:
        await sim.stop()
    r = await gw.http.get(link.qr_url.removeprefix(base(gw)))
    assert r.status_code == 410 and link.code not in r.text
    r = await gw.http.get("/mobile/link/not-a-token")
    assert r.status_code == 404
    r = await gw.http.get("/mobile/static/../../secret")
    assert r.status_code == 404


async def test_link_codes_are_stored_hashed(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    link = await svc(gw).create_link(1, base(gw))
    sim = DeviceSim(SimConfig(server=link.server_url, code=link.code))
    try:
        await sim.register()
    finally:
        await sim.stop()
    raw = Path(gw.runtime.settings.storage.path).read_bytes()
    for p in Path(gw.runtime.settings.storage.path).parent.glob("gw.db*"):
        raw += p.read_bytes()
    assert sim.token is not None and sim.signing_key is not None
    for secret in (sim.token, sim.signing_key, link.qr_url.rsplit("/", 1)[1]):
        assert secret.encode() not in raw
    assert isinstance(httpx.URL(link.qr_url), httpx.URL)
