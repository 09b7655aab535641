"""PUT /api/v1/smpp/:id/toggle and its admin twin: a disabled link unbinds (the SMSC
sees the unbind), refuses sends with the reason, is skipped by its pool, and stays
disabled across a restart; every change leaves an audit row."""

from __future__ import annotations

from pathlib import Path

from gwkit import admin, eventually, link_to, make_settings
from smsgateway.settings import PoolSettings

UNBOUND = "unbound by ESME"


async def test_disable_and_enable_a_link(tmp_path: Path, make_sim, make_gateway) -> None:
    sim1 = await make_sim()
    sim2 = await make_sim()
    settings = make_settings(
        tmp_path,
        [link_to(sim1, 1), link_to(sim2, 2)],
        [PoolSettings(id=10, name="pool-1", links=[1, 2])],
    )
    gw = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    reg = await gw.register("ops@example.com")
    jwt = await gw.login("ops@example.com", reg["app_id"])

    r = await gw.http.put(
        "/api/v1/smpp/1/toggle",
        json={"enabled": False, "reason": "maintenance window"},
        headers=jwt,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "data": {"id": 1, "name": "link-1", "enabled": False}}
    # A clean unbind, seen at the SMSC.
    await eventually(lambda: sim1.closes.get(UNBOUND) == 1)

    links = (await gw.http.get("/api/v1/dashboard/smpp-links", headers=jwt)).json()["data"]
    assert (links[0]["status"], links[0]["enabled"], links[0]["reason"]) == (
        "DISABLED",
        False,
        "maintenance window",
    )
    r = await gw.send(jwt, esme=1)
    assert (r.status_code, r.json()) == (503, {"error": "link disabled: maintenance window"})
    r = await gw.http.post("/api/v1/sms/check-esme", json={"esme": 1}, headers=jwt)
    assert r.json()["persist"] is False

    # The pool carries on through its other member only.
    before1, before2 = sim1.submits, sim2.submits
    for _ in range(4):
        r = await gw.send(jwt, esme=10)
        assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert (sim1.submits, sim2.submits) == (before1, before2 + 4)
    lbs = (await gw.http.get("/api/v1/dashboard/load-balancers", headers=jwt)).json()["data"]
    assert lbs[0]["total_tps"] == 0  # link 2 is unpaced (0); link 1 no longer counts

    assert gw.runtime.store is not None
    audit = await gw.runtime.store.list_audit()
    row = next(a for a in audit if a.target == "link:1")
    assert (row.actor, row.action, row.detail) == (
        f"user:{reg['user_id']}",
        "link.disable",
        "maintenance window",
    )

    # Restart on the same data directory: still disabled, never bound again.
    binds = sim1.binds
    await gw.stop()
    gw = await make_gateway(settings)
    await gw.bound(2)
    links = (await gw.http.get("/api/v1/admin/dashboard/smpp-links", headers=admin())).json()
    assert (links["data"][0]["status"], links["data"][0]["reason"]) == (
        "DISABLED",
        "maintenance window",
    )
    assert sim1.binds == binds
    jwt = await gw.login("ops@example.com", reg["app_id"])
    assert (await gw.send(jwt, esme=1)).status_code == 503

    # Enabled again (admin key): it binds and sends.
    r = await gw.http.put(
        "/api/v1/admin/smpp/1/toggle", json={"enabled": True, "reason": "done"}, headers=admin()
    )
    assert r.json() == {"success": True, "data": {"id": 1, "name": "link-1", "enabled": True}}
    await gw.bound(1)
    assert sim1.binds == binds + 1
    r = await gw.send(jwt, esme=1)
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert gw.runtime.store is not None
    audit = await gw.runtime.store.list_audit()
    assert (audit[0].actor, audit[0].action, audit[0].target) == ("admin", "link.enable", "link:1")


async def test_toggle_refuses_bad_ids_and_bodies(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    settings = make_settings(
        tmp_path, [link_to(sim, 1)], [PoolSettings(id=10, name="pool-1", links=[1])]
    )
    gw = await make_gateway(settings)
    jwt = await gw.user("bad@example.com")
    ok = {"enabled": False, "reason": "x"}
    for prefix, headers in (("/api/v1/smpp", jwt), ("/api/v1/admin/smpp", admin())):
        for link_id, status, error in (
            ("99", 404, "link not found"),
            ("10", 404, "link not found"),  # a pool is not a link
            ("abc", 400, "invalid link id"),
            ("-1", 400, "invalid link id"),
            ("0", 400, "invalid link id"),
            ("1" * 30, 400, "invalid link id"),
        ):
            r = await gw.http.put(f"{prefix}/{link_id}/toggle", json=ok, headers=headers)
            assert (r.status_code, r.json()) == (status, {"error": error}), link_id
        for body in (
            {},
            {"reason": "no flag"},
            {"enabled": "yes"},
            {"enabled": 1},
            {"enabled": False, "reason": 5},
            {"enabled": False, "reason": "r" * 300},
            {"enabled": False, "extra": True},
            [],
        ):
            r = await gw.http.put(f"{prefix}/1/toggle", json=body, headers=headers)
            assert r.status_code == 400, body
            assert set(r.json()) == {"error"}
        r = await gw.http.put(
            f"{prefix}/1/toggle",
            content=b"{not json",
            headers={**headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 400
    # Nothing changed.
    assert gw.runtime.router is not None and gw.runtime.router.links[1].enabled
