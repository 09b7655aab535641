"""Content filters: CEL rules from the settings file and the admin API, blacklist and
whitelist, blocked and allowed sends, counts, and the admin API's errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gwkit import admin, link_to, make_settings
from smsgateway.core.filters import BlockedByFilter, FilterError, FilterSet, compile_filter
from smsgateway.settings import SettingsError
from smsgateway.settings_ops import FilterSettings


def test_blacklist_whitelist_and_errors() -> None:
    filters = FilterSet()
    filters.check(1, 1, "S", "+44", "anything")  # no filters: nothing to do
    black = compile_filter(
        "no-casino",
        "blacklist",
        'text_lower.contains("casino")',
        active=True,
        description="",
        source="api",
    )
    white = compile_filter(
        "uk-only",
        "whitelist",
        'destination.startsWith("+44") || app == 7',
        active=True,
        description="",
        source="api",
    )
    filters.put(black)
    filters.put(white)
    filters.check(1, 1, "S", "+447700900123", "hello")
    filters.check(7, 1, "S", "+33612345678", "hello")  # app 7 is whitelisted anywhere
    with pytest.raises(BlockedByFilter, match="blocked by filter no-casino"):
        filters.check(1, 1, "S", "+447700900123", "Win at the CASINO")
    with pytest.raises(BlockedByFilter, match="blocked by filter uk-only"):
        filters.check(1, 1, "S", "+33612345678", "hello")
    assert (black.blocked, white.blocked) == (1, 1)

    # Inactive filters are not evaluated; removed ones are gone.
    filters.put(
        compile_filter("uk-only", "whitelist", "false", active=False, description="", source="api")
    )
    filters.check(1, 1, "S", "+33612345678", "hello")
    assert filters.remove("no-casino") is black
    filters.check(1, 1, "S", "+447700900123", "casino")

    # A rule that fails at run time is skipped for that message and counted.
    fails = compile_filter(
        "div", "blacklist", "10 / (link - 2) > 1", active=True, description="", source="api"
    )
    filters.put(fails)
    filters.check(1, 2, "S", "+44", "x")  # division by zero: skipped, not blocked
    assert fails.errors == 1 and fails.blocked == 0
    with pytest.raises(BlockedByFilter):
        filters.check(1, 3, "S", "+44", "x")


@pytest.mark.parametrize(
    ("name", "mode", "rule", "error"),
    [
        ("ok", "blacklist", "text.contains(", "does not compile"),
        ("ok", "blacklist", 'sender == "x"', "unknown variable(s) sender"),
        ("ok", "blacklist", '"text"', "must be true or false"),
        ("ok", "blacklist", "text + 1 == 2", "fails on a sample message"),
        ("ok", "greylist", "true", "blacklist or whitelist"),
        ("bad name!", "blacklist", "true", "filter name"),
        ("ok", "blacklist", "", "rule must be"),
        ("ok", "blacklist", "x" * 5000, "rule must be"),
    ],
)
def test_bad_filters_are_refused(name: str, mode: str, rule: str, error: str) -> None:
    with pytest.raises(FilterError, match=error.replace("(", r"\(").replace(")", r"\)")):
        compile_filter(name, mode, rule, active=True, description="", source="api")


def test_settings_with_a_bad_filter_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="filters: filter bad"):
        make_settings(tmp_path, [], filters=[FilterSettings(name="bad", rule="nope ==")])
    with pytest.raises(SettingsError, match="used twice"):
        make_settings(
            tmp_path,
            [],
            filters=[FilterSettings(name="a", rule="true"), FilterSettings(name="a", rule="true")],
        )


async def test_filters_over_http(tmp_path: Path, make_sim, make_gateway) -> None:
    sim = await make_sim()
    settings = make_settings(
        tmp_path,
        [link_to(sim, 1)],
        filters=[
            FilterSettings(
                name="no-casino",
                mode="blacklist",
                description="gambling spam",
                rule='text_lower.contains("casino")',
            )
        ],
    )
    gw = await make_gateway(settings)
    await gw.bound()
    jwt = await gw.user("filters@example.com")

    r = await gw.send(jwt, message="Big wins at the Casino tonight")
    assert (r.status_code, r.json()) == (400, {"error": "blocked by filter no-casino"})
    assert (await gw.send(jwt, message="your code is 1234")).status_code == 200

    # Add a whitelist through the admin API: only UK numbers from now on.
    rule = 'destination.startsWith("+44")'
    r = await gw.http.post(
        "/api/v1/admin/filters",
        json={"name": "uk-only", "mode": "whitelist", "rule": rule, "description": "UK"},
        headers=admin(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {
        "name": "uk-only",
        "active": True,
        "mode": "whitelist",
        "description": "UK",
        "rule": rule,
        "source": "api",
        "blocked": 0,
        "errors": 0,
    }
    submits = sim.submits
    r = await gw.send(jwt, destination="+33612345678")
    assert (r.status_code, r.json()) == (400, {"error": "blocked by filter uk-only"})
    assert (await gw.send(jwt, destination="+447700900999")).status_code == 200
    assert sim.submits == submits + 1  # the blocked message never reached the SMSC
    assert gw.runtime.store is not None
    assert await gw.runtime.store.count_messages() == 2  # nor the store

    body = (await gw.http.get("/api/v1/admin/filters", headers=admin())).json()
    assert [(f["name"], f["source"], f["blocked"]) for f in body["data"]] == [
        ("no-casino", "settings", 1),
        ("uk-only", "api", 1),
    ]
    cfg = (await gw.http.get("/api/v1/admin/settings/server-config", headers=admin())).json()
    assert cfg["data"]["filters"]["uk-only"] == {
        "active": True,
        "blacklist": False,
        "description": "UK",
        "snippet": rule,
    }
    metrics = (await gw.http.get("/metrics")).text
    assert 'smsgateway_filter_blocked_total{filter="uk-only"} 1.0' in metrics

    # Errors of the admin API.
    for bad, status in (
        ({"name": "x", "rule": "text.contains("}, 400),
        ({"name": "x", "rule": "nothing == 1"}, 400),
        ({"name": "x", "rule": "true", "mode": "maybe"}, 400),
        ({"name": "no-casino", "rule": "false"}, 400),  # from the settings file
        ({"rule": "true"}, 400),
        ({"name": "x", "rule": "true", "surprise": 1}, 400),
    ):
        r = await gw.http.post("/api/v1/admin/filters", json=bad, headers=admin())
        assert r.status_code == status, (bad, r.text)
        assert set(r.json()) == {"error"}
    r = await gw.http.delete("/api/v1/admin/filters/no-casino", headers=admin())
    assert r.status_code == 400
    r = await gw.http.delete("/api/v1/admin/filters/unknown", headers=admin())
    assert (r.status_code, r.json()) == (404, {"error": "filter not found"})
    r = await gw.http.get("/api/v1/admin/filters", headers=jwt)
    assert r.status_code == 401

    # Stored filters survive a restart; deleting one takes effect at once.
    await gw.stop()
    gw = await make_gateway(settings)
    jwt = await gw.login("filters@example.com", 1)
    assert (await gw.send(jwt, destination="+33612345678")).status_code == 400
    r = await gw.http.delete("/api/v1/admin/filters/uk-only", headers=admin())
    assert r.json() == {"success": True}
    assert (await gw.send(jwt, destination="+33612345678")).status_code == 200
