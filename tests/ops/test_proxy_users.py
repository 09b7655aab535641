"""The admin panel's proxy users: list (never a secret in clear), register, delete,
toggle admin, with 001's statuses for bad ids and bodies."""

from __future__ import annotations

from pathlib import Path

import jwt as pyjwt

from gwkit import PASSWORD, admin, make_settings

USERS = "/api/v1/admin/proxy-users"
SECRET = "s" * 40


async def test_register_list_toggle_delete(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, []))
    first = await gw.register("first@example.com")

    r = await gw.http.post(
        f"{USERS}/register",
        json={
            "email": "api-user@example.com",
            "password": "strongpass",
            "app_name": "my-app",
            "app_secret": SECRET,
        },
        headers=admin(),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["success"] is True
    user_id, app_id = created["data"]["user_id"], created["data"]["app_id"]
    assert user_id == first["user_id"] + 1
    # The chosen secret really signs this app's tokens.
    r = await gw.http.post(
        "/api/v1/user/login",
        json={"email": "api-user@example.com", "password": "strongpass", "app_id": app_id},
    )
    assert pyjwt.decode(r.json()["token"], SECRET, algorithms=["HS256"])["uid"] == user_id

    for path in (f"{USERS}/", USERS):
        r = await gw.http.get(path, headers=admin())
        assert r.status_code == 200
        assert r.json() == {
            "success": True,
            "data": [
                {
                    "id": first["user_id"],
                    "email": "first@example.com",
                    "is_admin": False,
                    "app_id": first["app_id"],
                    "app_name": "default",
                    "app_secret": "********",
                },
                {
                    "id": user_id,
                    "email": "api-user@example.com",
                    "is_admin": False,
                    "app_id": app_id,
                    "app_name": "my-app",
                    "app_secret": "********",
                },
            ],
        }
        assert SECRET not in r.text and first["app_secret"] not in r.text

    r = await gw.http.put(f"{USERS}/{user_id}/toggle-admin", headers=admin())
    assert r.json() == {"success": True, "data": {"id": user_id, "is_admin": True}}
    r = await gw.http.post("/api/v1/user/validate", json={"user_id": user_id}, headers=admin())
    assert r.json()["is_admin"] is True
    # An admin is not deleted by accident: demote first.
    r = await gw.http.delete(f"{USERS}/{user_id}", headers=admin())
    assert (r.status_code, r.json()) == (400, {"error": "user is admin"})
    r = await gw.http.put(f"{USERS}/{user_id}/toggle-admin", headers=admin())
    assert r.json() == {"success": True, "data": {"id": user_id, "is_admin": False}}
    r = await gw.http.delete(f"{USERS}/{user_id}", headers=admin())
    assert (r.status_code, r.json()) == (200, {"success": True})
    r = await gw.http.get(USERS, headers=admin())
    assert [u["id"] for u in r.json()["data"]] == [first["user_id"]]

    assert gw.runtime.store is not None
    actions = [(a.actor, a.action, a.target) for a in await gw.runtime.store.list_audit()]
    assert ("admin", "user.create", f"user:{user_id}") in actions
    assert ("admin", "user.delete", f"user:{user_id}") in actions
    assert actions.count(("admin", "user.set_admin", f"user:{user_id}")) == 2


async def test_proxy_user_errors(tmp_path: Path, make_gateway) -> None:
    gw = await make_gateway(make_settings(tmp_path, []))
    await gw.register("taken@example.com")
    for body in (
        {},
        {"email": "x@example.com"},
        {"password": PASSWORD},
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "x@example.com", "password": "short"},
        {"email": "x@example.com", "password": PASSWORD, "app_secret": "too-short"},
        {"email": "taken@example.com", "password": PASSWORD},
        {"email": 5, "password": PASSWORD},
    ):
        r = await gw.http.post(f"{USERS}/register", json=body, headers=admin())
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"error"}
    r = await gw.http.post(
        f"{USERS}/register",
        json={"email": "Taken@Example.com", "password": PASSWORD},
        headers=admin(),
    )
    assert (r.status_code, r.json()) == (400, {"error": "user already exists"})

    for method in ("DELETE", "PUT"):
        suffix = "/toggle-admin" if method == "PUT" else ""
        for bad in ("abc", "0", "-3", "9" * 25):
            r = await gw.http.request(method, f"{USERS}/{bad}{suffix}", headers=admin())
            assert (r.status_code, r.json()) == (400, {"error": "invalid user id"}), bad
        r = await gw.http.request(method, f"{USERS}/4242{suffix}", headers=admin())
        assert (r.status_code, r.json()) == (404, {"error": "user not found"})
