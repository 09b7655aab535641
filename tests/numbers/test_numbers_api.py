"""Document 002 over real HTTP against a Runtime: number users, numbers import,
get-number (formats, atomic assignment, operator choice), release, my-numbers, and
every error row with its exact status and message."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from numkit import (
    DE,
    SYSTEM_KEY,
    create_user,
    de_numbers,
    import_numbers,
    numbers_settings,
)

from gwkit import ADMIN_KEY, Gateway, admin
from smsgateway.core.numbers.countries import country_id


@pytest.fixture
async def gw(tmp_path: Path, make_gateway: Any) -> Gateway:
    gateway: Gateway = await make_gateway(
        numbers_settings(tmp_path, system_api_key=SYSTEM_KEY, allow_http_webhooks=True)
    )
    return gateway


def _err(r: httpx.Response, status: int, message: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {"status": "error", "message": message}


async def _number(http: httpx.AsyncClient, key: str, **params: Any) -> httpx.Response:
    return await http.get(f"/api/get-number/{key}", params={"country_id": DE, **params})


async def test_import_then_get_number_assigns_and_updates_summaries(gw: Gateway) -> None:
    user = await create_user(gw.http, "a@example.com")
    assert user["api_key"].startswith("nk_") and user["webhook_secret"].startswith("whsec_")
    result = await import_numbers(gw.http, [*de_numbers(3), "+49 151 00000000"])
    assert result == {"added": 3, "existing": []}  # the fourth is the first, spelt otherwise
    again = await import_numbers(gw.http, de_numbers(1))
    assert again == {"added": 0, "existing": [de_numbers(1)[0]]}

    r = await _number(gw.http, user["api_key"])
    assert r.status_code == 200, r.text
    phone = r.json()["data"]["phone_number"]
    assert r.json()["status"] == "success" and phone in de_numbers(3)

    mine = (await gw.http.get(f"/api/my-numbers/{user['api_key']}")).json()["data"]["numbers"]
    assert [n["phone_number"] for n in mine] == [phone]
    assert mine[0]["country_id"] == DE and mine[0]["expires_at"] > mine[0]["assigned_at"]

    listed = await gw.http.get(
        "/api/v1/admin/numbers", params={"state": "assigned"}, headers=admin()
    )
    assert [(n["phone_number"], n["user_id"]) for n in listed.json()["data"]] == [
        (phone, user["user_id"])
    ]
    page = await gw.http.get("/api/v1/admin/numbers", params={"limit": 2}, headers=admin())
    assert len(page.json()["data"]) == 2
    rest = await gw.http.get(
        "/api/v1/admin/numbers",
        params={"after": page.json()["data"][-1]["phone_number"]},
        headers=admin(),
    )
    assert len(rest.json()["data"]) == 1
    bad = await gw.http.get("/api/v1/admin/numbers", params={"state": "x"}, headers=admin())
    assert bad.status_code == 400
    users = (await gw.http.get("/api/v1/admin/number-users", headers=admin())).json()["data"]
    assert users[0]["numbers_taken"] == 1 and "api_key" not in users[0]
    summary = (await gw.http.get("/api/v1/admin/numbers/summary", headers=admin())).json()
    assert summary["data"]["assignments"] == 1
    assert summary["data"]["numbers_assigned"] == 1 and summary["data"]["numbers_free"] == 2

    # The key is stored hashed: not in the database file.
    db = gw.runtime.settings.storage.path
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert user["api_key"] not in dump and user["webhook_secret"] not in dump


async def test_number_formats(gw: Gateway) -> None:
    user = await create_user(gw.http, "f@example.com", number_format="remove_plus")
    await import_numbers(gw.http, ["+4915112345678", "+4915112345679", "+4915112345670"])
    key = user["api_key"]
    got = {
        (await _number(gw.http, key)).json()["data"]["phone_number"],
        (await _number(gw.http, key, number_format="full")).json()["data"]["phone_number"],
        (await _number(gw.http, key, number_format="national")).json()["data"]["phone_number"],
    }
    digits = {"4915112345678", "4915112345679", "4915112345670"}
    remove_plus = {g for g in got if g.startswith("49")}
    full = {g for g in got if g.startswith("+49")}
    national = {g for g in got if g.startswith("0151")}
    assert len(remove_plus) == len(full) == len(national) == 1
    assert remove_plus | {f[1:] for f in full} | {"49" + n[1:] for n in national} == digits
    r = await _number(gw.http, key, number_format="weird")
    _err(r, 400, "number_format must be one of full, national, remove_plus")


async def test_operator_chosen_with_most_free_numbers(gw: Gateway) -> None:
    ops = []
    for name, prefix in (("Small", "49152"), ("Big", "49151")):
        r = await gw.http.post(
            "/api/v1/admin/operators",
            json={"name": name, "country_id": DE, "prefixes": [prefix]},
            headers=admin(),
        )
        assert r.status_code == 201, r.text
        ops.append(r.json()["data"]["id"])
    small, big = ops
    await import_numbers(gw.http, ["+4915200000001", "+4915200000002"])  # by prefix: Small
    await import_numbers(gw.http, de_numbers(3))  # +49151: Big
    init = await gw.http.get(f"/api/init/{(await create_user(gw.http, 'i@x.io'))['api_key']}")
    body = init.json()
    assert body["status"] == "success"
    assert {"id": big, "name": "Big", "country_id": DE} in body["data"]["operators"]
    germany = [c for c in body["data"]["countries"] if c["iso"] == "DE"]
    assert germany == [{"id": DE, "name": "Germany", "phone_code": "49", "iso": "DE"}]
    assert len(body["data"]["countries"]) > 200

    user = await create_user(gw.http, "o@example.com")
    first = (await _number(gw.http, user["api_key"])).json()["data"]["phone_number"]
    assert first.startswith("+49151")  # Big had 3 free, Small 2
    pinned = (await _number(gw.http, user["api_key"], operator_id=small)).json()
    assert pinned["data"]["phone_number"].startswith("+49152")
    r = await _number(gw.http, user["api_key"], operator_id=99999)
    _err(r, 404, "No number received")


async def test_country_ids_are_stable(gw: Gateway) -> None:
    assert country_id("DE") == 83 and country_id("US") == 539 and country_id("AA") == 1


async def test_fifty_concurrent_requests_for_ten_numbers(gw: Gateway) -> None:
    await import_numbers(gw.http, de_numbers(10))
    users = [await create_user(gw.http, f"c{i}@example.com") for i in range(5)]
    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=str(gw.http.base_url), limits=limits) as http:
        answers = await asyncio.gather(*(_number(http, users[i % 5]["api_key"]) for i in range(50)))
    ok = [a.json()["data"]["phone_number"] for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert len(ok) == 10 and len(set(ok)) == 10
    assert set(ok) == set(de_numbers(10))
    assert len(refused) == 40
    for r in refused:
        _err(r, 404, "No number received")


async def test_release_and_reassign_after_quarantine(tmp_path: Path, make_gateway: Any) -> None:
    gw: Gateway = await make_gateway(numbers_settings(tmp_path, quarantine_s=0.3))
    await import_numbers(gw.http, de_numbers(1))
    a = await create_user(gw.http, "a@example.com")
    b = await create_user(gw.http, "b@example.com")
    phone = (await _number(gw.http, a["api_key"])).json()["data"]["phone_number"]
    r = await gw.http.post(f"/api/release-number/{b['api_key']}", json={"phone_number": phone})
    _err(r, 404, "number is not assigned to this user")
    r = await gw.http.post(f"/api/release-number/{a['api_key']}", json={"phone_number": phone})
    assert r.status_code == 200 and r.json()["data"] == {"phone_number": phone, "released": True}
    _err(await _number(gw.http, b["api_key"]), 404, "No number received")  # in quarantine
    await asyncio.sleep(0.4)
    r = await _number(gw.http, b["api_key"])
    assert r.json()["data"]["phone_number"] == phone
    r = await gw.http.post(f"/api/release-number/{a['api_key']}", content=b"{nope")
    assert r.status_code == 400 and r.json()["status"] == "error"


async def test_assignment_expires_into_quarantine(tmp_path: Path, make_gateway: Any) -> None:
    gw: Gateway = await make_gateway(
        numbers_settings(tmp_path, assignment_ttl_s=0.3, quarantine_s=60)
    )
    await import_numbers(gw.http, de_numbers(1))
    a = await create_user(gw.http, "a@example.com")
    assert (await _number(gw.http, a["api_key"])).status_code == 200
    await asyncio.sleep(0.4)
    mine = (await gw.http.get(f"/api/my-numbers/{a['api_key']}")).json()["data"]["numbers"]
    assert mine == []
    _err(await _number(gw.http, a["api_key"]), 404, "No number received")
    summary = (await gw.http.get("/api/v1/admin/numbers/summary", headers=admin())).json()
    assert summary["data"]["numbers_quarantined"] == 1


# -- every error row of 002 ------------------------------------------------------------


async def test_error_rows_of_get_number(gw: Gateway) -> None:
    manager = await create_user(gw.http, "boss@example.com")
    user = await create_user(gw.http, "u@example.com", manager_id=manager["user_id"])
    key = user["api_key"]
    await import_numbers(gw.http, de_numbers(2))

    # 400 user_id is required with api_key (the system key without user_id)
    _err(await _number(gw.http, SYSTEM_KEY), 400, "user_id is required with api_key")
    # 400 country_id is required
    _err(await gw.http.get(f"/api/get-number/{key}"), 400, "country_id is required")
    # 401 Invalid api_key
    _err(await _number(gw.http, "nk_not-a-real-key"), 401, "Invalid api_key")
    # 401 Missing or invalid credentials
    _err(await gw.http.get("/api/get-number", params={"country_id": DE}), 401,
         "Missing or invalid credentials")  # fmt: skip
    _err(await gw.http.get("/api/get-number/"), 401, "Missing or invalid credentials")
    _err(await _number(gw.http, "x" * 300), 401, "Missing or invalid credentials")
    # 404 Target user not found or inactive (system key + user_id)
    _err(await _number(gw.http, SYSTEM_KEY, user_id=999), 404, "Target user not found or inactive")
    # The system key acting for a user works, and a user's key ignores user_id.
    r = await _number(gw.http, SYSTEM_KEY, user_id=user["user_id"])
    assert r.status_code == 200, r.text
    r = await _number(gw.http, key, user_id=999)
    assert r.status_code == 200, r.text
    # 404 No number received (both taken)
    _err(await _number(gw.http, key), 404, "No number received")
    # 403 Manager inactive. Contact support.
    r = await gw.http.patch(
        f"/api/v1/admin/number-users/{manager['user_id']}", json={"active": False},
        headers=admin(),
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["data"]["active"] is False
    _err(await _number(gw.http, key), 403, "Manager inactive. Contact support.")
    _err(await _number(gw.http, SYSTEM_KEY, user_id=user["user_id"]), 403,
         "Manager inactive. Contact support.")  # fmt: skip
    # An inactive or unapproved user's own key: 401 Invalid api_key; via the system key 404.
    await gw.http.patch(
        f"/api/v1/admin/number-users/{manager['user_id']}", json={"active": True}, headers=admin()
    )
    await gw.http.patch(
        f"/api/v1/admin/number-users/{user['user_id']}", json={"approved": False}, headers=admin()
    )
    _err(await _number(gw.http, key), 401, "Invalid api_key")
    _err(await _number(gw.http, SYSTEM_KEY, user_id=user["user_id"]), 404,
         "Target user not found or inactive")  # fmt: skip


async def test_system_configuration_error(tmp_path: Path, make_gateway: Any) -> None:
    gw: Gateway = await make_gateway(numbers_settings(tmp_path))  # no system key
    user = await create_user(gw.http, "u@example.com")
    _err(await _number(gw.http, "anything", user_id=user["user_id"]), 500,
         "System configuration error")  # fmt: skip
    _err(await gw.http.get(f"/api/init/anything?user_id={user['user_id']}"), 500,
         "System configuration error")  # fmt: skip
    # A user's own key needs no system key.
    assert (await gw.http.get(f"/api/init/{user['api_key']}")).status_code == 200


def _break_table(db: str, table: str) -> None:
    """A real storage fault: the table the call needs is gone (another process)."""
    with sqlite3.connect(db) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")


async def test_unable_to_get_number_when_the_store_fails(gw: Gateway) -> None:
    user = await create_user(gw.http, "u@example.com")
    await import_numbers(gw.http, de_numbers(1))
    _break_table(gw.runtime.settings.storage.path, "numbers_summary")
    _err(await _number(gw.http, user["api_key"]), 500, "Unable to get number")


async def test_could_not_fetch_service_data_and_service_fetch_failed(gw: Gateway) -> None:
    user = await create_user(gw.http, "u@example.com")
    _break_table(gw.runtime.settings.storage.path, "number_operators")
    _err(await _number(gw.http, user["api_key"]), 500, "Could not fetch service data")
    _err(await gw.http.get(f"/api/init/{user['api_key']}"), 500, "Service fetch failed")
    _err(await gw.http.get("/api/init/nk_wrong"), 401, "Invalid api_key")


async def test_unknown_paths_and_methods_keep_the_002_shape(gw: Gateway) -> None:
    _err(await gw.http.get("/api/init/key/extra"), 404, "not found")
    _err(await gw.http.delete("/api/get-number/key"), 405, "method not allowed")
    _err(await gw.http.post("/api/init"), 405, "method not allowed")
    r = await gw.http.get("/api/v1/nothing-here")  # other faces keep theirs
    assert r.status_code == 404 and r.json() == {"error": "not found"}
    key = (await create_user(gw.http, "big@example.com"))["api_key"]
    r = await gw.http.post(f"/api/release-number/{key}", content=b"x" * 100_000)
    assert r.status_code == 413 and r.json()["status"] == "error"


async def test_init_errors(gw: Gateway) -> None:
    _err(await gw.http.get("/api/init/nk_wrong"), 401, "Invalid api_key")
    _err(await gw.http.get("/api/init"), 401, "Missing or invalid credentials")
    r = await gw.http.get(f"/api/init/{SYSTEM_KEY}")
    _err(r, 400, "user_id is required with api_key")


# -- admin ---------------------------------------------------------------------------


async def test_admin_needs_the_key_and_validates(gw: Gateway) -> None:
    r = await gw.http.post("/api/v1/admin/number-users", json={"email": "x@example.com"})
    assert r.status_code == 401 and "error" in r.json()
    await create_user(gw.http, "dup@example.com")
    r = await gw.http.post(
        "/api/v1/admin/number-users", json={"email": " DUP@example.com"}, headers=admin()
    )
    assert r.status_code == 400 and "exists" in r.json()["error"]
    r = await gw.http.post(
        "/api/v1/admin/number-users", json={"email": "m@example.com", "manager_id": 777},
        headers=admin(),
    )  # fmt: skip
    assert r.status_code == 400 and "manager_id 777" in r.json()["error"]
    bad = [
        {"numbers": [{"phone_number": "+49123"}]},
        {"numbers": [{"phone_number": "hello"}]},
        {"numbers": [{"phone_number": "+4915100000001", "operator_id": 5}]},
        {"numbers": [{"phone_number": "+4915100000001", "channel": "link:999"}]},
        {"numbers": [{"phone_number": "+4915100000001", "channel": "somewhere"}]},
        {"numbers": []},
        {"numbers": "x"},
    ]
    for body in bad:
        r = await gw.http.post("/api/v1/admin/numbers", json=body, headers=admin())
        assert r.status_code == 400, (body, r.text)
    summary = (await gw.http.get("/api/v1/admin/numbers/summary", headers=admin())).json()
    assert "numbers_free" not in summary["data"]  # nothing half-imported


async def test_key_rotation(gw: Gateway) -> None:
    await import_numbers(gw.http, de_numbers(2))
    user = await create_user(gw.http, "r@example.com")
    r = await gw.http.post(
        f"/api/v1/admin/number-users/{user['user_id']}/rotate",
        json={"api_key": True, "webhook_secret": False},
        headers=admin(ADMIN_KEY),
    )
    assert r.status_code == 200, r.text
    new = r.json()["data"]
    assert "webhook_secret" not in new and new["api_key"] != user["api_key"]
    _err(await _number(gw.http, user["api_key"]), 401, "Invalid api_key")
    assert (await _number(gw.http, new["api_key"])).status_code == 200
    r = await gw.http.post("/api/v1/admin/number-users/999/rotate", json={}, headers=admin())
    assert r.status_code == 404


async def test_webhook_url_rules(tmp_path: Path, make_gateway: Any) -> None:
    gw: Gateway = await make_gateway(numbers_settings(tmp_path))
    refused = {
        "http://hooks.example.com/x": "must use https",
        "https://127.0.0.1/x": "loopback",
        "https://10.1.2.3/x": "private",
        "https://192.168.0.10/x": "private",
        "https://169.254.169.254/latest/meta-data": "metadata",
        "https://[::1]/x": "loopback",
        "https://[::ffff:10.0.0.1]/x": "private",
        "https://localhost/x": "local host",
        "https://metadata.google.internal/x": "local host",
        "https://user:pw@hooks.example.com/x": "credentials",
        "ftp://hooks.example.com/x": "https://",
    }
    for url, why in refused.items():
        r = await gw.http.post(
            "/api/v1/admin/number-users",
            json={"email": f"{abs(hash(url))}@example.com", "webhook_url": url},
            headers=admin(),
        )
        assert r.status_code == 400, url
        assert why in r.json()["error"], (url, r.json())
    user = await create_user(gw.http, "ok@example.com", webhook_url="https://hooks.example.com/x")
    r = await gw.http.patch(
        f"/api/v1/admin/number-users/{user['user_id']}",
        json={"webhook_url": "https://10.0.0.5/hook"},
        headers=admin(),
    )
    assert r.status_code == 400 and "private" in r.json()["error"]


async def test_private_webhook_allowed_by_setting(tmp_path: Path, make_gateway: Any) -> None:
    gw: Gateway = await make_gateway(
        numbers_settings(tmp_path, allow_http_webhooks=True, allow_private_webhooks=True)
    )
    user = await create_user(gw.http, "p@example.com", webhook_url="http://127.0.0.1:9/hook")
    got = await gw.http.get(f"/api/v1/admin/number-users/{user['user_id']}", headers=admin())
    assert got.json()["data"]["webhook_url"] == "http://127.0.0.1:9/hook"


async def test_failed_key_attempts_are_limited_per_address(
    tmp_path: Path, make_gateway: Any
) -> None:
    gw: Gateway = await make_gateway(numbers_settings(tmp_path, failed_auth_per_minute=3))
    user = await create_user(gw.http, "g@example.com")
    for _ in range(10):  # good keys spend nothing
        assert (await gw.http.get(f"/api/init/{user['api_key']}")).status_code == 200
    for n in range(3):
        _err(await gw.http.get(f"/api/init/nk_guess{n}"), 401, "Invalid api_key")
    limited = "too many invalid api_key attempts, try again later"
    _err(await gw.http.get("/api/init/nk_guess4"), 429, limited)
    _err(await gw.http.get(f"/api/init/{user['api_key']}"), 429, limited)
