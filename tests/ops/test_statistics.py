"""Dashboard statistics and campaign counters against traffic the test itself sends:
K messages, some refused by the SMSC (the simulator's fail_rate), some reported
undeliverable by receipt; the figures must be exactly those counts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gwkit import admin, eventually, link_to, make_settings

LONG = "x" * 200  # GSM 7-bit, two parts


def _sum_accepted(stats: dict[str, Any]) -> int:
    # Each point is that minute's messages / 60, to three decimals: exact when summed back.
    return sum(round(p["rps"] * 60) for p in stats["rps"]["data"])


async def test_stats_and_campaigns_show_exactly_the_traffic_sent(
    tmp_path: Path, make_sim, make_gateway
) -> None:
    sim = await make_sim(undeliverable_prefix="44999")
    settings = make_settings(tmp_path, [link_to(sim, 1)])
    gw = await make_gateway(settings)
    await gw.bound()
    jwt = await gw.user("stats@example.com")

    sim.configure(fail_rate=1.0)
    for _ in range(3):
        r = await gw.send(jwt, campaign="camp-a")
        assert r.status_code == 500 and r.json()["error"] == "ESME_RSUBMITFAIL"
    sim.configure(fail_rate=0.0)
    for i in range(2):
        r = await gw.send(jwt, campaign="camp-a", destination=f"+4499900000{i}")
        assert r.status_code == 200
    for _ in range(4):
        assert (await gw.send(jwt, campaign="camp-a")).status_code == 200
    for _ in range(3):
        assert (await gw.send(jwt, campaign="camp-b")).status_code == 200
    r = await gw.send(jwt, campaign="camp-b", message=LONG)
    assert r.status_code == 200 and len(r.json()["sms_ids"]) == 2
    assert (await gw.send(jwt)).status_code == 200  # no campaign
    accepted, answered, failed = 14, 15, 3 + 2

    async def settled() -> dict[str, Any] | None:
        r = await gw.http.get("/dashboard/stats")
        assert r.status_code == 200
        stats: dict[str, Any] = r.json()["data"]
        total = sum(p["errors"] for p in stats["errors"]["data"])
        return stats if total == failed else None

    stats = await eventually(settled)
    assert _sum_accepted(stats) == accepted
    assert stats["errors"]["rate"] == round(100 * failed / answered, 3)
    for point in stats["errors"]["data"]:
        assert len(point["time"]) == 5 and point["time"][2] == ":"
    assert 0 <= stats["rps"]["current"] <= accepted
    assert stats["topCampaignStats"] == [
        {"index": 1, "name": "camp-a", "short_name": "camp-a", "messages": 9},
        {"index": 2, "name": "camp-b", "short_name": "camp-b", "messages": 5},
    ]
    system = stats["system"]
    assert set(system) == {"cpu", "ram", "disk"}
    assert all(0.0 <= v <= 100.0 for v in system.values())

    # The JWT view is the same computation.
    r = await gw.http.get("/api/v1/dashboard/stats", headers=jwt)
    assert _sum_accepted(r.json()["data"]) == accepted

    r = await gw.http.get("/api/v1/admin/metrics/campaigns", headers=admin())
    assert r.json() == {
        "success": True,
        "data": [
            {
                "campaign_uuid": "camp-a",
                "messages_sent": 4,
                "messages_failed": 5,
                "messages_total": 9,
                "sme": 1,
            },
            {
                "campaign_uuid": "camp-b",
                "messages_sent": 5,
                "messages_failed": 0,
                "messages_total": 5,
                "sme": 1,
            },
        ],
        "pagination": {"page": 1, "limit": 50, "total": 2, "totalPages": 1},
    }

    metrics = (await gw.http.get("/metrics")).text
    assert f"smsgateway_error_rate_percent {round(100 * failed / answered, 3)}" in metrics

    # Counters survive a restart (flushed at shutdown); the live per-second view does not.
    await gw.stop()
    gw2 = await make_gateway(settings)
    r = await gw2.http.get("/api/v1/admin/metrics/campaigns", headers=admin())
    assert [row["messages_total"] for row in r.json()["data"]] == [9, 5]
    r = await gw2.http.get("/dashboard/stats")
    assert _sum_accepted(r.json()["data"]) == 0


async def test_campaign_pagination(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    gw = await make_gateway(make_settings(tmp_path, [link_to(sim, 1), link_to(sim, 2)]))
    await gw.bound(1)
    await gw.bound(2)
    jwt = await gw.user("pages@example.com")
    for i in range(5):
        assert (await gw.send(jwt, campaign=f"c{i}")).status_code == 200
    assert (await gw.send(jwt, campaign="c0", esme=2)).status_code == 200
    url = "/api/v1/admin/metrics/campaigns"

    seen = []
    for page in (1, 2, 3):
        r = await gw.http.get(url, params={"page": page, "limit": 2}, headers=admin())
        body = r.json()
        assert body["pagination"] == {"page": page, "limit": 2, "total": 6, "totalPages": 3}
        seen += [(row["campaign_uuid"], row["sme"]) for row in body["data"]]
    assert seen == [("c0", 1), ("c0", 2), ("c1", 1), ("c2", 1), ("c3", 1), ("c4", 1)]
    r = await gw.http.get(url, params={"page": 4, "limit": 2}, headers=admin())
    assert r.json()["data"] == [] and r.json()["pagination"]["totalPages"] == 3

    r = await gw.http.get(url, params={"limit": 500}, headers=admin())
    assert r.json()["pagination"] == {"page": 1, "limit": 100, "total": 6, "totalPages": 1}
    for bad in ({"page": 0}, {"page": "abc"}, {"limit": 0}, {"limit": "-1"}, {"page": "1.5"}):
        r = await gw.http.get(url, params=bad, headers=admin())
        assert r.status_code == 400, bad
        assert set(r.json()) == {"error"}
    assert (
        math.ceil(6 / 4)
        == (await gw.http.get(url, params={"limit": 4}, headers=admin())).json()["pagination"][
            "totalPages"
        ]
    )
