"""Projects through the admin API: CRUD, settings validation, API keys (hashed, shown
once, revocable), and device linking without a DeviceService."""

from __future__ import annotations

import sqlite3

from otpkit import key, new_key, project

from gwkit import admin

BASE = "/api/v1/admin/projects"


async def test_project_crud_and_defaults(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    r = await gw.http.post(BASE, json={"name": "Acme"}, headers=admin())
    assert r.status_code == 201
    body = r.json()
    assert body["success"] is True
    data = body["data"]
    pid = data["project_id"]
    assert data["name"] == "Acme"
    assert data["code_length"] == 6 and data["ttl_s"] == 600
    assert data["max_checks"] == 5 and data["max_sends"] == 5
    assert data["channel"] == "device"
    assert "{{code}}" in data["template"]

    r = await gw.http.patch(
        f"{BASE}/{pid}",
        json={"code_length": 8, "channel": 1, "test_numbers": {"+447700900999": "4242"}},
        headers=admin(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["code_length"] == 8
    assert r.json()["data"]["channel"] == 1
    assert r.json()["data"]["name"] == "Acme"

    r = await gw.http.get(f"{BASE}/{pid}", headers=admin())
    assert r.status_code == 200
    assert r.json()["data"]["test_numbers"] == {"+447700900999": "4242"}
    assert r.json()["data"]["api_keys"] == []
    assert r.json()["data"]["device"] is None

    other, _ = await project(gw, "Other")
    r = await gw.http.get(BASE, headers=admin())
    assert [p["project_id"] for p in r.json()["data"]] == [pid, other]

    r = await gw.http.delete(f"{BASE}/{pid}", headers=admin())
    assert r.status_code == 200 and r.json() == {"success": True}
    assert (await gw.http.get(f"{BASE}/{pid}", headers=admin())).status_code == 404
    assert (await gw.http.delete(f"{BASE}/{pid}", headers=admin())).status_code == 404
    # Ids are never reused: a new project cannot inherit a deleted one's keys or data.
    newer, _ = await project(gw, "Newer")
    assert newer > other


async def test_admin_key_required(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    for method, path in [
        ("POST", BASE),
        ("GET", BASE),
        ("GET", f"{BASE}/1"),
        ("PATCH", f"{BASE}/1"),
        ("DELETE", f"{BASE}/1"),
        ("POST", f"{BASE}/1/api-keys"),
        ("DELETE", f"{BASE}/1/api-keys/abc"),
        ("POST", f"{BASE}/1/device-link"),
    ]:
        r = await gw.http.request(method, path, json={"name": "x"}, headers=admin("wrong"))
        assert r.status_code == 401, (method, path, r.text)


async def test_settings_are_validated(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    bad = [
        {},
        {"name": ""},
        {"name": "x" * 65},
        {"name": "A", "code_length": 3},
        {"name": "A", "code_length": 11},
        {"name": "A", "ttl_s": 0},
        {"name": "A", "max_checks": 0},
        {"name": "A", "max_sends": 100},
        {"name": "A", "template": "no code here"},
        {"name": "A", "template": "{{code}} {{nope}}"},
        {"name": "A", "template": "{{code}} {{"},
        {"name": "A", "template": "{{code}}" + "x" * 470},
        {"name": "A", "channel": "smpp"},
        {"name": "A", "channel": 99},
        {"name": "A", "sender": "way too long sender"},
        {"name": "A", "test_numbers": {"12345": "1234"}},
        {"name": "A", "test_numbers": {"+447700900999": "12"}},
        {"name": "A", "unknown": 1},
        {"name": 5},
    ]
    for body in bad:
        r = await gw.http.post(BASE, json=body, headers=admin())
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]
    r = await gw.http.post(BASE, content=b"{not json", headers=admin())
    assert r.status_code == 400
    assert (await gw.http.get(BASE, headers=admin())).json()["data"] == []
    pid, _ = await project(gw)
    r = await gw.http.patch(f"{BASE}/{pid}", json={"template": "nothing"}, headers=admin())
    assert r.status_code == 400
    r = await gw.http.patch(f"{BASE}/{pid}", json={"ttl_s": 60}, headers=admin())
    assert r.status_code == 200 and r.json()["data"]["ttl_s"] == 60
    assert (await gw.http.patch(f"{BASE}/999", json={}, headers=admin())).status_code == 404
    assert (await gw.http.get(f"{BASE}/abc", headers=admin())).status_code == 400


async def test_api_keys_hashed_several_revocable(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    pid, first = await project(gw)
    second = await new_key(gw, pid)
    assert first != second
    for k in (first, second):
        r = await gw.http.get("/v1/status", headers=key(k))
        assert r.status_code == 200, r.text
    r = await gw.http.get(f"{BASE}/{pid}/api-keys", headers=admin())
    keys = r.json()["data"]
    assert len(keys) == 2 and all(k["active"] for k in keys)
    assert all("api_key" not in k for k in keys)
    # Stored only as keyed hashes: the database holds neither key.
    db = sqlite3.connect(gw.runtime.settings.storage.path)
    dump = "\n".join(db.iterdump())
    db.close()
    # The secret part alone either (smx_<12-hex key id>_<secret>; the id is stored).
    for k in (first, second):
        assert k not in dump and k[len("smx_") + 13 :] not in dump

    key_id = keys[0]["key_id"]
    r = await gw.http.delete(f"{BASE}/{pid}/api-keys/{key_id}", headers=admin())
    assert r.status_code == 200
    revoked = first if key_id in first else second
    live = second if revoked is first else first
    r = await gw.http.get("/v1/status", headers=key(revoked))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert (await gw.http.get("/v1/status", headers=key(live))).status_code == 200
    r = await gw.http.delete(f"{BASE}/{pid}/api-keys/{key_id}", headers=admin())
    assert r.status_code == 404
    # A key of one project cannot be revoked through another.
    other, _ = await project(gw, "Other")
    live_id = next(k["key_id"] for k in keys if k["key_id"] != key_id)
    r = await gw.http.delete(f"{BASE}/{other}/api-keys/{live_id}", headers=admin())
    assert r.status_code == 404
    assert (await gw.http.get("/v1/status", headers=key(live))).status_code == 200
    # Deleting the project ends its keys.
    await gw.http.delete(f"{BASE}/{pid}", headers=admin())
    assert (await gw.http.get("/v1/status", headers=key(live))).status_code == 401
    r = await gw.http.post(f"{BASE}/{pid}/api-keys", headers=admin())
    assert r.status_code == 404


async def test_device_endpoints_without_a_device(otp_gateway) -> None:
    gw, _ = await otp_gateway()
    pid, _ = await project(gw)
    # Nothing linked yet: revoking is a no-op, and an unknown project is 404.
    r = await gw.http.delete(f"{BASE}/{pid}/device", headers=admin())
    assert r.status_code == 200 and r.json()["data"] == {"revoked": False}
    r = await gw.http.post(f"{BASE}/999/device-link", headers=admin())
    assert r.status_code == 404
    r = await gw.http.post(f"{BASE}/{pid}/device-link", headers=admin())
    assert r.status_code == 201 and r.json()["data"]["code"]
