"""All 31 endpoints of document 001 over HTTP, each with the credential the endpoint
summary gives it: the right one gets the documented shape, a missing or wrong one the
documented status and body."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx

from gwkit import ADMIN_KEY, PASSWORD, admin, link_to, make_settings
from smsgateway.core.license import generate_keypair, issue, load_private_key
from smsgateway.settings import PoolSettings
from smsgateway.settings_ops import DashboardSettings, LicenseSettings

LINK_PASSWORD = "pw"


def license_file(private_pem: bytes, **kw: Any) -> bytes:
    kw.setdefault("company", "Test Co")
    kw.setdefault("valid_until", dt.date.today() + dt.timedelta(days=30))
    kw.setdefault("max_connections", 10)
    kw.setdefault("max_tps", 1000)
    return issue(load_private_key(private_pem), **kw)


def upload(data: bytes) -> dict[str, Any]:
    return {"files": {"license": ("license.json", data, "application/json")}}


# (method, path, request kwargs) per credential; "{msg}" is replaced by a message id.
PUBLIC = [
    ("GET", "/healthy", {}),
    ("GET", "/metrics", {}),
    ("GET", "/dashboard/stats", {}),
    ("POST", "/api/v1/user/login", {"json": {"email": "u@example.com", "password": PASSWORD}}),
]
ADMIN_AUTH = [
    ("POST", "/api/v1/user/register", {"json": {"email": "n@example.com", "password": PASSWORD}}),
    ("POST", "/api/v1/user/validate", {"json": {"user_id": 1}}),
    ("POST", "/api/v1/user/delete", {"json": {"user_id": 2}}),
]
JWT = [
    ("GET", "/api/v1/dashboard/metrics", {}),
    ("GET", "/api/v1/dashboard/stats", {}),
    ("GET", "/api/v1/dashboard/smpp-links", {}),
    ("GET", "/api/v1/dashboard/load-balancers", {}),
    ("GET", "/api/v1/settings/license", {}),
    ("POST", "/api/v1/settings/license/upload", {"license": True}),
    ("GET", "/api/v1/settings/smpp-config", {}),
    ("PUT", "/api/v1/smpp/1/toggle", {"json": {"enabled": True, "reason": "check"}}),
    ("POST", "/api/v1/sms/check-esme", {"json": {"esme": 1}}),
    (
        "POST",
        "/api/v1/sms/send",
        {"json": {"esme": 1, "source": "Test", "destination": "+447700900123", "message": "hi"}},
    ),
    ("POST", "/api/v1/sms/info", {"json": {"esme": 1, "message_id": "{msg}"}}),
]
ADMIN = [
    ("GET", "/api/v1/admin/dashboard/metrics", {}),
    ("GET", "/api/v1/admin/dashboard/smpp-links", {}),
    ("GET", "/api/v1/admin/dashboard/load-balancers", {}),
    ("GET", "/api/v1/admin/metrics/campaigns", {}),
    ("GET", "/api/v1/admin/settings/license", {}),
    ("POST", "/api/v1/admin/settings/license/upload", {"license": True}),
    ("GET", "/api/v1/admin/settings/server-config", {}),
    ("GET", "/api/v1/admin/settings/smpp-config", {}),
    ("PUT", "/api/v1/admin/smpp/1/toggle", {"json": {"enabled": True, "reason": ""}}),
    ("GET", "/api/v1/admin/proxy-users/", {}),
    (
        "POST",
        "/api/v1/admin/proxy-users/register",
        {"json": {"email": "proxy@example.com", "password": PASSWORD, "app_name": "p"}},
    ),
    ("PUT", "/api/v1/admin/proxy-users/{toggled}/toggle-admin", {}),
    ("DELETE", "/api/v1/admin/proxy-users/{user}", {}),
]


def test_the_table_names_all_31_endpoints() -> None:
    # /api/v1/user/login is the one public auth route; 001's summary has 31 rows.
    paths = {(m, p) for m, p, _ in PUBLIC + ADMIN_AUTH + JWT + ADMIN}
    assert len(paths) == 31


async def _call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    kw: dict[str, Any],
    headers: dict[str, str],
    fill: dict[str, str],
    lic: bytes,
) -> httpx.Response:
    for key, value in fill.items():
        path = path.replace("{" + key + "}", value)
    kw = dict(kw)
    if kw.pop("license", False):
        kw.update(upload(lic))
    if "json" in kw:
        kw["json"] = {k: (fill["msg"] if v == "{msg}" else v) for k, v in dict(kw["json"]).items()}
    return await http.request(method, path, headers=headers, **kw)


async def test_every_endpoint_with_its_credentials(tmp_path: Path, make_sim, make_gateway) -> None:
    private_pem, public_pem, _ = generate_keypair()
    sim = await make_sim()
    settings = make_settings(
        tmp_path,
        [link_to(sim, 1), link_to(sim, 2)],
        [PoolSettings(id=10, name="pool-1", links=[1, 2])],
        license=LicenseSettings(public_key=public_pem.decode()),
    )
    gw = await make_gateway(settings)
    await gw.bound(1)
    reg = await gw.register("u@example.com")
    await gw.register("n2@example.com")
    jwt = await gw.login("u@example.com", reg["app_id"])
    sent = await gw.send(jwt)
    assert sent.status_code == 200, sent.text
    lic = license_file(private_pem)
    victim = await gw.register("victim@example.com")
    toggled = await gw.register("toggled@example.com")
    fill = {
        "msg": sent.json()["message_id"],
        "user": str(victim["user_id"]),
        "toggled": str(toggled["user_id"]),
    }

    # Public: no credential at all.
    for method, path, kw in PUBLIC:
        if path.endswith("login"):
            kw = {"json": {**kw["json"], "app_id": reg["app_id"]}}
        r = await _call(gw.http, method, path, kw, {}, fill, lic)
        assert r.status_code == 200, (path, r.text)

    # JWT: each failure of 001's table, in its order, with its exact body.
    failures = [
        ({}, 401, "authorization header required"),
        ({"Authorization": jwt["Authorization"]}, 401, "X-App-ID header required"),
        ({"Authorization": jwt["Authorization"], "X-App-ID": "abc"}, 400, "invalid X-App-ID"),
        ({"Authorization": jwt["Authorization"], "X-App-ID": "99999"}, 401, "unknown app_id"),
        (
            {"Authorization": "Bearer not.a.token", "X-App-ID": jwt["X-App-ID"]},
            401,
            "invalid or expired token",
        ),
    ]
    for method, path, kw in JWT:
        for headers, status, error in failures:
            r = await _call(gw.http, method, path, kw, headers, fill, lic)
            assert (r.status_code, r.json()) == (status, {"error": error}), (path, headers)
        # The admin key is no JWT.
        r = await _call(gw.http, method, path, kw, admin(), fill, lic)
        assert r.status_code == 401, path
        r = await _call(gw.http, method, path, kw, jwt, fill, lic)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        if not path.startswith("/api/v1/sms/"):
            assert body["success"] is True and "data" in body, path

    # Admin key: missing or wrong answers 401 with 001's body; a JWT is no admin key.
    for method, path, kw in ADMIN + ADMIN_AUTH:
        for headers in ({}, admin("wrong-key"), jwt):
            r = await _call(gw.http, method, path, kw, headers, fill, lic)
            assert (r.status_code, r.json()) == (401, {"error": "invalid or missing admin key"}), (
                path,
                headers,
            )
    for method, path, kw in ADMIN + ADMIN_AUTH:
        r = await _call(gw.http, method, path, kw, admin(), fill, lic)
        expected = 201 if path.endswith("register") else 200
        assert r.status_code == expected, (path, r.text)
        if path.startswith("/api/v1/admin/"):
            assert r.json()["success"] is True, path


async def test_admin_endpoints_answer_503_without_a_configured_key(
    tmp_path: Path, make_gateway
) -> None:
    gw = await make_gateway(make_settings(tmp_path, [], admin_key=""))
    fill = {"user": "1", "toggled": "1"}
    for method, path, kw in ADMIN:
        r = await _call(gw.http, method, path, kw, admin("anything"), fill, b"{}")
        assert (r.status_code, r.json()) == (503, {"error": "admin API key not configured"}), path


async def test_public_dashboard_can_require_the_admin_key(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(
        make_settings(tmp_path, [], dashboard=DashboardSettings(public_stats=False))
    )
    for view in ("stats", "smpp-links", "load-balancers"):
        r = await gw.http.get(f"/dashboard/{view}")
        assert (r.status_code, r.json()) == (401, {"error": "invalid or missing admin key"})
        r = await gw.http.get(f"/dashboard/{view}", headers=admin())
        assert r.status_code == 200 and r.json()["success"] is True
    # Probes stay public.
    assert (await gw.http.get("/healthy")).status_code == 200


async def test_links_pools_and_config_views(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    settings = make_settings(
        tmp_path,
        [
            link_to(sim, 1, limit_tps=40, system_type="cp"),
            link_to(sim, 2, limit_tps=60, interface_version="3.3", bind_mode="transmitter"),
        ],
        [PoolSettings(id=10, name="pool-1", links=[1, 2])],
        server_name="gw-test",
        env="test",
    )
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    jwt = await gw.user("views@example.com")

    for path, headers in (
        ("/api/v1/dashboard/smpp-links", jwt),
        ("/api/v1/admin/dashboard/smpp-links", admin()),
        ("/dashboard/smpp-links", {}),
    ):
        body = (await gw.http.get(path, headers=headers)).json()
        assert body["success"] is True
        assert [
            (x["id"], x["name"], x["status"], x["limit_tps"], x["enabled"]) for x in body["data"]
        ] == [(1, "link-1", "BOUND", 40, True), (2, "link-2", "BOUND", 60, True)]
        for row in body["data"]:
            assert isinstance(row["current_tps"], int | float) and row["current_tps"] >= 0

    for path, headers in (
        ("/api/v1/dashboard/load-balancers", jwt),
        ("/api/v1/admin/dashboard/load-balancers", admin()),
    ):
        body = (await gw.http.get(path, headers=headers)).json()
        assert body == {
            "success": True,
            "data": [{"id": 10, "name": "pool-1", "links": ["link-1", "link-2"], "total_tps": 100}],
        }

    for path, headers in (
        ("/api/v1/settings/smpp-config", jwt),
        ("/api/v1/admin/settings/smpp-config", admin()),
    ):
        r = await gw.http.get(path, headers=headers)
        body = r.json()
        assert body["data"][0] == {
            "id": 1,
            "name": "link-1",
            "host": "127.0.0.1",
            "port": sim.smpp_port,
            "system_id": "gw1",
            "system_type": "cp",
            "interface_version": "3.4",
            "response_timeout": 2.0,
        }
        assert body["data"][1]["interface_version"] == "3.3"
        assert "password" not in r.text

    r = await gw.http.get("/api/v1/admin/settings/server-config", headers=admin())
    cfg = r.json()["data"]
    assert cfg["env"] == "test" and cfg["server_name"] == "gw-test"
    assert cfg["endpoint"] == f"127.0.0.1:{gw.runtime.rest_port}"
    assert cfg["tls"] is False
    assert cfg["storage"]["db_path"] == str((tmp_path / "gw.db").resolve())
    assert cfg["security"]["token_ttl"] == "24h0m0s"
    assert cfg["grpc"]["port"] == gw.runtime.grpc_port
    assert cfg["smpp"]["rules_loaded"] is True
    assert cfg["aerospike"]["enabled"] is False and cfg["aerospike"]["hosts"] == ""
    assert cfg["statistic_exporter"]["enabled"] is False
    assert cfg["monitoring"]["otel"] is False
    assert cfg["filters"] == {}
    for secret in (ADMIN_KEY, LINK_PASSWORD + '"'):
        assert secret not in r.text
    # JWT is not enough for the full server configuration.
    r = await gw.http.get("/api/v1/admin/settings/server-config", headers=jwt)
    assert r.status_code == 401


async def test_dashboard_metrics_count_the_store_and_links(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim, 1), link_to(sim, 2)]))
    await gw.bound(1)
    await gw.bound(2)
    jwt = await gw.user("m1@example.com")
    await gw.register("m2@example.com")
    await gw.register("m3@example.com")
    for _ in range(4):
        assert (await gw.send(jwt)).status_code == 200
    for path, headers in (
        ("/api/v1/dashboard/metrics", jwt),
        ("/api/v1/admin/dashboard/metrics", admin()),
    ):
        body = (await gw.http.get(path, headers=headers)).json()
        assert body == {
            "success": True,
            "data": {"total_messages": 4, "total_companies": 3, "active_connections": 2},
        }
    text = (await gw.http.get("/metrics")).text
    assert "smsgateway_active_connections 2.0" in text
    assert "smsgateway_messages_stored 4.0" in text
    assert "smsgateway_apps 3.0" in text
