"""Signed licenses: the vendor CLI, verification against the configured key only,
upload over HTTP (good, bad, expired, missing), persistence, and enforcement of
max_connections and max_tps on the live links."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from gwkit import admin, eventually, link_to, make_settings
from smsgateway.cli import main
from smsgateway.core.license import (
    LicenseError,
    LicenseManager,
    generate_keypair,
    issue,
    load_private_key,
    load_public_key,
    verify,
)
from smsgateway.settings import SettingsError
from smsgateway.settings_ops import LicenseSettings

TODAY = dt.date.today()


def sign(private_pem: bytes, **kw: Any) -> bytes:
    kw.setdefault("company", "Acme Telecom")
    kw.setdefault("valid_until", TODAY + dt.timedelta(days=365))
    kw.setdefault("max_connections", 10)
    kw.setdefault("max_tps", 1000)
    return issue(load_private_key(private_pem), **kw)


def files(data: bytes, field: str = "license") -> dict[str, Any]:
    return {"files": {field: ("license.json", data, "application/json")}}


def test_cli_keygen_and_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert main(["license", "keygen", "--out", str(keys)]) == 0
    printed = capsys.readouterr().out
    private = keys / "license_private.pem"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    public_b64 = printed.split('public_key = "')[1].split('"')[0]
    # Both forms the settings accept name the same key.
    pem_key = load_public_key((keys / "license_public.pem").read_text())
    assert load_public_key(public_b64).public_bytes_raw() == pem_key.public_bytes_raw()
    # A second keygen does not overwrite the vendor's key by accident.
    assert main(["license", "keygen", "--out", str(keys)]) == 1

    out = tmp_path / "acme.lic"
    args = [
        "license",
        "issue",
        "--key",
        str(private),
        "--company",
        "Acme",
        "--valid-until",
        "2031-01-31",
        "--max-connections",
        "3",
        "--max-tps",
        "250",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    claims = verify(out.read_bytes(), load_public_key(public_b64))
    assert (claims.company, claims.valid_until, claims.max_connections, claims.max_tps) == (
        "Acme",
        "2031-01-31",
        3,
        250,
    )
    bad = list(args)
    bad[bad.index("2031-01-31")] = "31/01/2031"
    assert main(bad) == 1


def test_verification_trusts_the_configured_key_only() -> None:
    private_pem, public_pem, public_b64 = generate_keypair()
    other_private, _, other_public = generate_keypair()
    key = load_public_key(public_b64)
    good = sign(private_pem)
    assert verify(good, key).company == "Acme Telecom"

    with pytest.raises(LicenseError, match="invalid license signature"):
        verify(sign(other_private), key)
    doc = json.loads(good)
    claims = json.loads(base64.urlsafe_b64decode(doc["payload"] + "=="))
    claims["max_tps"] = 10**6
    doc["payload"] = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(LicenseError, match="invalid license signature"):
        verify(json.dumps(doc).encode(), key)
    # A license that brings its own key proves nothing: the field is not even accepted.
    forged = json.loads(sign(other_private))
    forged["public_key"] = other_public
    with pytest.raises(LicenseError, match="invalid license format"):
        verify(json.dumps(forged).encode(), key)
    for junk in (b"not json", b"{}", b'{"format":"x","payload":"","signature":""}', b"  "):
        with pytest.raises(LicenseError):
            verify(junk, key)

    with pytest.raises(ValueError):
        load_public_key("dGVzdA==")  # base64, but not 32 bytes
    with pytest.raises(SettingsError):
        make_settings(Path("/tmp/unused"), [], license=LicenseSettings(public_key="nope"))
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


def test_status_follows_the_date(tmp_path: Path) -> None:
    private_pem, _, public_b64 = generate_keypair()
    day = [TODAY]
    manager = LicenseManager(public_b64, tmp_path / "license.json", today=lambda: day[0])
    assert (manager.status, manager.limits()) == ("none", None)
    manager.accept(sign(private_pem, valid_until=TODAY, max_connections=2, max_tps=50))
    assert (manager.status, manager.limits()) == ("active", (2, 50))  # through its last day
    day[0] = TODAY + dt.timedelta(days=1)
    assert (manager.status, manager.limits()) == ("expired", None)  # expired = no limits
    with pytest.raises(LicenseError, match="expired"):
        manager.accept(sign(private_pem, valid_until=TODAY))
    # A stored file that no longer verifies (the key changed) is "invalid", not trusted.
    _, _, new_key = generate_keypair()
    rotated = LicenseManager(new_key, tmp_path / "license.json")
    rotated.load()
    assert (rotated.status, rotated.limits()) == ("invalid", None)


async def test_upload_over_http(tmp_path: Path, make_gateway) -> None:
    private_pem, public_pem, _ = generate_keypair()
    other_private, _, _ = generate_keypair()
    settings = make_settings(tmp_path, [], license=LicenseSettings(public_key=public_pem.decode()))
    gw = await make_gateway(settings)
    jwt = await gw.user("lic@example.com")

    r = await gw.http.get("/api/v1/settings/license", headers=jwt)
    assert r.json() == {
        "success": True,
        "data": {
            "company": "",
            "valid_until": "",
            "max_connections": 0,
            "max_tps": 0,
            "status": "none",
        },
    }
    until = (TODAY + dt.timedelta(days=30)).isoformat()
    good = sign(private_pem, valid_until=TODAY + dt.timedelta(days=30))
    r = await gw.http.post("/api/v1/settings/license/upload", headers=jwt, **files(good))
    expected = {
        "company": "Acme Telecom",
        "valid_until": until,
        "max_connections": 10,
        "max_tps": 1000,
        "status": "active",
    }
    assert r.status_code == 200, r.text
    assert r.json() == {
        "success": True,
        "message": "License uploaded successfully",
        "data": expected,
    }

    bad_uploads = [
        (files(sign(other_private)), "invalid license signature"),
        (files(b"PK\x03\x04 not a license"), "invalid license format"),
        (files(sign(private_pem, valid_until=TODAY - dt.timedelta(days=1))), "license expired"),
        (files(good, field="file"), "no license file"),
        (files(b""), "license file is empty"),
        ({"content": good, "headers": {"Content-Type": "application/json"}}, "multipart"),
        ({"data": {"license": "text field"}}, "multipart/form-data"),
    ]
    for prefix, headers in (("/api/v1/settings", jwt), ("/api/v1/admin/settings", admin())):
        for kwargs, error in bad_uploads:
            extra = kwargs.pop("headers", {}) if "headers" in kwargs else {}
            r = await gw.http.post(
                f"{prefix}/license/upload", headers={**headers, **extra}, **kwargs
            )
            if extra:
                kwargs["headers"] = extra
            assert r.status_code == 400, (error, r.text)
            assert error in r.json()["error"], r.text
    # The good license is still the one in force, and survives a restart.
    r = await gw.http.get("/api/v1/admin/settings/license", headers=admin())
    assert r.json()["data"] == expected
    await gw.stop()
    gw = await make_gateway(settings)
    r = await gw.http.get("/api/v1/admin/settings/license", headers=admin())
    assert r.json()["data"] == expected
    assert (tmp_path / "license.json").read_bytes() == good


async def test_upload_without_a_configured_key(tmp_path: Path, make_gateway) -> None:
    private_pem, _, _ = generate_keypair()
    gw = await make_gateway(make_settings(tmp_path, []))
    r = await gw.http.post(
        "/api/v1/admin/settings/license/upload", headers=admin(), **files(sign(private_pem))
    )
    assert (r.status_code, r.json()) == (503, {"error": "license public key not configured"})


async def test_expired_and_invalid_stored_licenses_limit_nothing(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    private_pem, _, public_b64 = generate_keypair()
    sim = await make_sim()
    links = [link_to(sim, 1, limit_tps=100), link_to(sim, 2, limit_tps=100)]
    settings = make_settings(tmp_path, links, license=LicenseSettings(public_key=public_b64))
    expired = sign(
        private_pem, valid_until=TODAY - dt.timedelta(days=1), max_connections=1, max_tps=10
    )
    (tmp_path / "license.json").write_bytes(expired)
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    r = await gw.http.get("/api/v1/admin/settings/license", headers=admin())
    assert r.json()["data"]["status"] == "expired"
    rows = (await gw.http.get("/dashboard/smpp-links")).json()["data"]
    assert [(x["status"], x["limit_tps"]) for x in rows] == [("BOUND", 100), ("BOUND", 100)]
    await gw.stop()

    other_private, _, _ = generate_keypair()
    (tmp_path / "license.json").write_bytes(sign(other_private, max_connections=1))
    gw = await make_gateway(settings)
    await gw.bound(2)
    r = await gw.http.get("/api/v1/admin/settings/license", headers=admin())
    assert r.json()["data"]["status"] == "invalid"


async def test_license_limits_connections_and_tps(tmp_path: Path, make_sim, make_gateway) -> None:
    private_pem, _, public_b64 = generate_keypair()
    sims = [await make_sim() for _ in range(3)]
    links = [
        link_to(sims[0], 1, limit_tps=100),
        link_to(sims[1], 2, limit_tps=300),
        link_to(sims[2], 3, limit_tps=0),  # unpaced: asks for the whole license
    ]
    settings = make_settings(tmp_path, links, license=LicenseSettings(public_key=public_b64))
    gw = await make_gateway(settings)
    for link_id in (1, 2, 3):
        await gw.bound(link_id)

    lic = sign(private_pem, max_connections=2, max_tps=100)
    r = await gw.http.post("/api/v1/admin/settings/license/upload", headers=admin(), **files(lic))
    assert r.status_code == 200, r.text
    # Link 3 is beyond the connection count: unbound, shown CLOSED with the reason.
    await eventually(lambda: sims[2].closes.get("unbound by ESME") == 1)

    def view() -> list[tuple[str, float, str]]:
        router = gw.runtime.router
        assert router is not None
        return [
            (link.status, link.client.pacer.limit_tps, link.held) for link in router.links.values()
        ]

    rows = (await gw.http.get("/dashboard/smpp-links")).json()["data"]
    assert [(x["status"], x["limit_tps"], x["reason"]) for x in rows] == [
        ("BOUND", 25, ""),
        ("BOUND", 75, ""),
        ("CLOSED", 0, "license allows 2 connections"),
    ]
    # The pacers really run at the scaled rates: 100 + 300 configured, 100 licensed.
    assert [v[1] for v in view()[:2]] == [25.0, 75.0]

    # At restart the third link never binds.
    binds = sims[2].binds
    await gw.stop()
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    assert view() == [
        ("BOUND", 25.0, ""),
        ("BOUND", 75.0, ""),
        ("CLOSED", 0.0, "license allows 2 connections"),
    ]
    assert sims[2].binds == binds

    # Disabling link 2 frees a connection: link 3 binds, and the paces are shared anew.
    r = await gw.http.put(
        "/api/v1/admin/smpp/2/toggle", json={"enabled": False, "reason": "swap"}, headers=admin()
    )
    assert r.status_code == 200
    await gw.bound(3)
    assert sims[2].binds == binds + 1
    rows = (await gw.http.get("/dashboard/smpp-links")).json()["data"]
    assert [(x["status"], x["limit_tps"]) for x in rows] == [
        ("BOUND", 50),
        ("DISABLED", 300),
        ("BOUND", 50),
    ]
    # Enabling link 2 again while two links run: it stays held, never binding.
    binds2 = sims[1].binds
    r = await gw.http.put("/api/v1/admin/smpp/2/toggle", json={"enabled": True}, headers=admin())
    assert r.status_code == 200
    rows = (await gw.http.get("/dashboard/smpp-links")).json()["data"]
    assert [(x["status"], x["enabled"], x["reason"]) for x in rows][1] == (
        "CLOSED",
        True,
        "license allows 2 connections",
    )
    assert sims[1].binds == binds2
