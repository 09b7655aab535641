"""Every error row of documents 000/001 on the native face, with its exact body, over
real HTTP against a running gateway.

Each gateway made here records every answer it gives; a fixture fails the test if any
of them was a 500 (500 is reserved for SMSC refusals, tested in test_native_flow).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from gwkit import ADMIN_KEY, Gateway, link_to, make_settings, wait_bound
from smsgateway.settings import LinkSettings, Settings

PASSWORD = "correct-horse-9"
SEND = "/api/v1/sms/send"
CHECK = "/api/v1/sms/check-esme"
INFO = "/api/v1/sms/info"
PREFIXES = ("/api/v1/auth", "/api/v1/user")


def dead_link(link_id: int = 1, **kw: Any) -> LinkSettings:
    """A link whose SMSC is not there: routing and checks work, nothing binds."""
    kw.setdefault("limit_tps", 0)
    return LinkSettings(id=link_id, name=f"link-{link_id}", host="127.0.0.1", port=1, **kw)


def msg(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "esme": 1,
        "source": "+123456789",
        "destination": "+987654321",
        "message": "hello",
    }
    body.update(kw)
    return body


@pytest.fixture
async def gateway(make_gateway) -> AsyncIterator[Callable[[Settings], Awaitable[Gateway]]]:
    """make_gateway, plus a record of every 5xx the gateway answered."""
    server_errors: list[str] = []

    async def make(settings: Settings) -> Gateway:
        gw: Gateway = await make_gateway(settings)

        async def record(response: httpx.Response) -> None:
            if response.status_code == 500:
                await response.aread()
                server_errors.append(f"{response.request.url.path}: {response.text}")

        gw.http.event_hooks["response"].append(record)
        return gw

    yield make
    assert server_errors == [], "no request in this file may answer 500"


async def register(gw: Gateway, email: str) -> dict[str, Any]:
    return await gw.register(email, PASSWORD)


async def login(gw: Gateway, email: str, app_id: int) -> str:
    r = await gw.http.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD, "app_id": app_id}
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def bearer(token: str, app_id: int | str | bytes) -> dict[str, Any]:
    return {
        "Authorization": f"Bearer {token}",
        "X-App-ID": app_id if isinstance(app_id, bytes) else str(app_id),
    }


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- JWT table (001, "Authentication") ------------------------------------------------


async def test_jwt_header_errors_exact_bodies(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    reg = await register(gw, "jwt@example.com")
    app_id = reg["app_id"]
    token = await login(gw, "jwt@example.com", app_id)

    for path in (SEND, CHECK, INFO):
        r = await gw.http.post(path, json=msg(), headers={"X-App-ID": str(app_id)})
        assert (r.status_code, r.json()) == (401, {"error": "authorization header required"})
        r = await gw.http.post(path, json=msg(), headers={"Authorization": f"Bearer {token}"})
        assert (r.status_code, r.json()) == (401, {"error": "X-App-ID header required"})
        for bad in ("abc", "1x", "-1", "1.0", "1_0", "١٢".encode(), "9" * 40):
            r = await gw.http.post(path, json=msg(), headers=bearer(token, bad))
            assert (r.status_code, r.json()) == (400, {"error": "invalid X-App-ID"}), bad
        r = await gw.http.post(path, json=msg(), headers=bearer(token, 999_999))
        assert (r.status_code, r.json()) == (401, {"error": "unknown app_id"})

    # Empty header values count as missing.
    r = await gw.http.post(
        CHECK, json={"esme": 1}, headers=bearer(token, app_id) | {"Authorization": ""}
    )
    assert (r.status_code, r.json()) == (401, {"error": "authorization header required"})
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token, ""))
    assert (r.status_code, r.json()) == (401, {"error": "X-App-ID header required"})

    # The real token works (so the failures below are about the token alone).
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token, app_id))
    assert r.status_code == 200, r.text


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_jwt_bad_tokens_all_say_invalid_or_expired(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    a = await register(gw, "a@example.com")
    b = await register(gw, "b@example.com")
    token_a = await login(gw, "a@example.com", a["app_id"])
    now = int(time.time())
    claims = {"uid": a["user_id"], "email": "a@example.com", "app_id": a["app_id"], "iat": now}
    secret = a["app_secret"]

    header, payload, signature = token_a.split(".")
    forged_payload = b64({**claims, "uid": b["user_id"], "exp": now + 3600})
    bad_tokens = {
        "garbage": "not-a-jwt",
        "three garbage segments": "a.b.c",
        "tampered payload": f"{header}.{forged_payload}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "expired": jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, secret, "HS256"),
        "no exp": jwt.encode(claims, secret, "HS256"),
        "alg none": jwt.encode({**claims, "exp": now + 3600}, None, algorithm="none"),
        "alg none, crafted": f"{b64({'alg': 'none'})}.{b64({**claims, 'exp': now + 3600})}.",
        "HS512 with the right secret": jwt.encode({**claims, "exp": now + 3600}, secret, "HS512"),
        "signed with another app's secret": jwt.encode(
            {**claims, "exp": now + 3600}, b["app_secret"], "HS256"
        ),
        "uid true": jwt.encode({**claims, "uid": True, "exp": now + 3600}, secret, "HS256"),
        "app_id of another app in the claims": jwt.encode(
            {**claims, "app_id": b["app_id"], "exp": now + 3600}, secret, "HS256"
        ),
    }
    expected = (401, {"error": "invalid or expired token"})
    for name, token in bad_tokens.items():
        r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token, a["app_id"]))
        assert (r.status_code, r.json()) == expected, name

    # Not a Bearer scheme at all.
    for value in (f"Basic {token_a}", token_a, "Bearer", f"Token {token_a}"):
        r = await gw.http.post(
            CHECK, json={"esme": 1}, headers={"Authorization": value, "X-App-ID": str(a["app_id"])}
        )
        assert (r.status_code, r.json()) == expected, value

    # App A's valid token presented with app B's X-App-ID.
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token_a, b["app_id"]))
    assert (r.status_code, r.json()) == expected
    # And once more after the token was verified and cached for app A.
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token_a, a["app_id"]))
    assert r.status_code == 200
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token_a, b["app_id"]))
    assert (r.status_code, r.json()) == expected


async def test_token_of_deleted_user_stops_working(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    reg = await register(gw, "gone@example.com")
    token = await login(gw, "gone@example.com", reg["app_id"])
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token, reg["app_id"]))
    assert r.status_code == 200
    r = await gw.http.post(
        "/api/v1/auth/delete", json={"user_id": reg["user_id"]}, headers={"X-Admin-Key": ADMIN_KEY}
    )
    assert r.json() == {"result": True, "error": ""}
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=bearer(token, reg["app_id"]))
    assert r.status_code == 401
    assert r.json()["error"] in ("unknown app_id", "invalid or expired token")


# -- Admin key ------------------------------------------------------------------------


async def test_admin_key_not_configured_is_503(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()], admin_key=""))
    expected = (503, {"error": "admin API key not configured"})
    for prefix in PREFIXES:
        for op, body in (
            ("register", {"email": "x@example.com", "password": PASSWORD}),
            ("validate", {"user_id": 1}),
            ("delete", {"user_id": 1}),
        ):
            for headers in ({}, {"X-Admin-Key": ""}, {"X-Admin-Key": "anything"}):
                r = await gw.http.post(f"{prefix}/{op}", json=body, headers=headers)
                assert (r.status_code, r.json()) == expected, (prefix, op, headers)
    # Login stays public and answers on its own terms.
    r = await gw.http.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": PASSWORD, "app_id": 1}
    )
    assert r.status_code == 401


async def test_admin_key_wrong_or_missing_is_401(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    expected = (401, {"error": "invalid or missing admin key"})
    for prefix in PREFIXES:
        for op, body in (
            ("register", {"email": "x@example.com", "password": PASSWORD}),
            ("validate", {"user_id": 1}),
            ("delete", {"user_id": 1}),
        ):
            for headers in (
                {},
                {"X-Admin-Key": ""},
                {"X-Admin-Key": ADMIN_KEY + "x"},
                {"X-Admin-Key": ADMIN_KEY[:-1]},
                {"X-Admin-Key": ADMIN_KEY.upper()},
            ):
                r = await gw.http.post(f"{prefix}/{op}", json=body, headers=headers)
                assert (r.status_code, r.json()) == expected, (prefix, op, headers)
    # The key is checked before the body: a bad body without a key is still 401.
    r = await gw.http.post("/api/v1/auth/register", content=b"{not json")
    assert (r.status_code, r.json()) == expected


async def test_open_registration_needs_no_key(tmp_path: Path, gateway) -> None:
    settings = make_settings(tmp_path, [dead_link()], admin_key="")
    settings.auth.open_registration = True
    gw = await gateway(settings)
    for i, prefix in enumerate(PREFIXES):
        r = await gw.http.post(
            f"{prefix}/register", json={"email": f"open{i}@example.com", "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        user_id = r.json()["user_id"]
        r = await gw.http.post(f"{prefix}/validate", json={"user_id": user_id})
        assert r.json() == {"is_admin": False, "error": ""}
        r = await gw.http.post(f"{prefix}/delete", json={"user_id": user_id})
        assert r.json() == {"result": True, "error": ""}


# -- Auth section (001 section 2) -------------------------------------------------------


async def test_register_errors(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    key = {"X-Admin-Key": ADMIN_KEY}
    for i, prefix in enumerate(PREFIXES):
        email = f"dup{i}@example.com"
        r = await gw.http.post(
            f"{prefix}/register", json={"email": email, "password": PASSWORD}, headers=key
        )
        assert r.status_code == 201
        body = r.json()
        assert set(body) == {"user_id", "app_id", "app_secret", "error"} and body["error"] == ""
        # Duplicate, also in another case and with spaces: emails are normalised.
        for again in (email, email.upper(), f"  {email} "):
            r = await gw.http.post(
                f"{prefix}/register", json={"email": again, "password": PASSWORD}, headers=key
            )
            assert (r.status_code, r.json()) == (400, {"error": "user already exists"}), again

        bad_bodies: list[Any] = [
            {},
            {"email": "x@example.com"},
            {"password": PASSWORD},
            {"email": 1, "password": PASSWORD},
            {"email": "x@example.com", "password": 12345678},
            {"email": "x@example.com", "password": None},
            {"email": "x@example.com", "password": PASSWORD, "app_name": 5},
            {"email": "not-an-email", "password": PASSWORD},
            {"email": "x@example.com", "password": "short"},
            {"email": "x@example.com", "password": "p" * 300},
            {"email": "x@example.com", "password": PASSWORD, "app_name": "n" * 101},
            [],
            "text",
            None,
        ]
        for bad in bad_bodies:
            r = await gw.http.post(f"{prefix}/register", json=bad, headers=key)
            assert r.status_code == 400, (bad, r.text)
            assert set(r.json()) == {"error"} and r.json()["error"], bad


async def test_login_errors_do_not_tell_which_part_was_wrong(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    reg = await register(gw, "login@example.com")
    other = await register(gw, "other@example.com")
    for prefix in PREFIXES:
        failures = [
            {"email": "login@example.com", "password": "wrong-password", "app_id": reg["app_id"]},
            {"email": "nobody@example.com", "password": PASSWORD, "app_id": reg["app_id"]},
            {"email": "login@example.com", "password": PASSWORD, "app_id": other["app_id"]},
            {"email": "login@example.com", "password": PASSWORD, "app_id": 999_999},
            {"email": "login@example.com", "password": PASSWORD, "app_id": 0},
            {"email": "login@example.com", "password": PASSWORD, "app_id": -5},
            {"email": "login@example.com", "password": PASSWORD, "app_id": 2**80},
        ]
        bodies = set()
        for creds in failures:
            r = await gw.http.post(f"{prefix}/login", json=creds)
            assert r.status_code == 401, (creds, r.text)
            bodies.add(r.text)
        assert bodies == {json.dumps({"error": "invalid email or password"}, separators=(",", ":"))}

        for bad in (
            {},
            {"email": "login@example.com", "password": PASSWORD},
            {"email": "login@example.com", "app_id": 1},
            {"email": "login@example.com", "password": PASSWORD, "app_id": "1"},
            {"email": "login@example.com", "password": PASSWORD, "app_id": 1.5},
            {"email": ["login@example.com"], "password": PASSWORD, "app_id": 1},
        ):
            r = await gw.http.post(f"{prefix}/login", json=bad)
            assert r.status_code == 400, (bad, r.text)
            assert set(r.json()) == {"error"}


async def test_validate_and_delete_errors(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    assert gw.runtime.auth is not None
    admin = await gw.runtime.auth.register("root@example.com", PASSWORD, is_admin=True)
    key = {"X-Admin-Key": ADMIN_KEY}
    for prefix in PREFIXES:
        for op in ("validate", "delete"):
            for user_id in (0, -1, -(2**40), 2**63):
                r = await gw.http.post(f"{prefix}/{op}", json={"user_id": user_id}, headers=key)
                assert r.status_code == 400, (op, user_id, r.text)
                assert set(r.json()) == {"error"}
            for bad in ({}, {"user_id": "1"}, {"user_id": 1.5}, {"user_id": None}, [1]):
                r = await gw.http.post(f"{prefix}/{op}", json=bad, headers=key)
                assert r.status_code == 400, (op, bad, r.text)
            r = await gw.http.post(f"{prefix}/{op}", json={"user_id": 987_654}, headers=key)
            assert (r.status_code, r.json()) == (404, {"error": "user not found"}), op

        r = await gw.http.post(f"{prefix}/validate", json={"user_id": admin.user_id}, headers=key)
        assert r.json() == {"is_admin": True, "error": ""}
        r = await gw.http.post(f"{prefix}/delete", json={"user_id": admin.user_id}, headers=key)
        assert (r.status_code, r.json()) == (400, {"error": "user is admin"})

    # Deleting twice: the second time the user names nothing.
    reg = await register(gw, "twice@example.com")
    r = await gw.http.post("/api/v1/user/delete", json={"user_id": reg["user_id"]}, headers=key)
    assert r.json() == {"result": True, "error": ""}
    r = await gw.http.post("/api/v1/auth/delete", json={"user_id": reg["user_id"]}, headers=key)
    assert (r.status_code, r.json()) == (404, {"error": "user not found"})


# -- SMS section (001 section 6) --------------------------------------------------------


async def test_unknown_esme_and_odd_ids_are_404(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    headers = await gw.user("esme@example.com")
    expected = (404, {"error": "unknown esme"})
    for esme in (2, 0, -1, -(2**63), 2**63 - 1, 2**63, 2**64 + 5):
        r = await gw.http.post(SEND, json=msg(esme=esme), headers=headers)
        assert (r.status_code, r.json()) == expected, esme
        r = await gw.http.post(CHECK, json={"esme": esme}, headers=headers)
        assert (r.status_code, r.json()) == expected, esme
        if esme:  # info without esme (0) does not name a link
            r = await gw.http.post(INFO, json={"esme": esme, "message_id": "x"}, headers=headers)
            assert (r.status_code, r.json()) == expected, esme


async def test_disabled_link_is_503_with_reason(tmp_path: Path, make_sim, gateway) -> None:
    sim = await make_sim()
    gw = await gateway(make_settings(tmp_path, [dead_link(1, enabled=False), link_to(sim, 2)]))
    await wait_bound(gw, 2)
    headers = await gw.user("disabled@example.com")
    r = await gw.http.post(SEND, json=msg(esme=1), headers=headers)
    assert (r.status_code, r.json()) == (503, {"error": "link disabled"})
    # check-esme still answers for a disabled link: it is there, just not in use.
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"persist": False, "system_id": "", "error": "link is disabled"}

    # Disabled at run time with a reason: the reason is shown.
    assert gw.runtime.router is not None
    await gw.runtime.router.links[2].set_enabled(False, "maintenance window")
    r = await gw.http.post(SEND, json=msg(esme=2), headers=headers)
    assert (r.status_code, r.json()) == (503, {"error": "link disabled: maintenance window"})
    assert sim.submits == 0


async def test_ip_allow_list(tmp_path: Path, make_sim, gateway) -> None:
    sim = await make_sim()
    gw = await gateway(make_settings(tmp_path, [link_to(sim, 1, allowed_ips=["10.0.0.0/8"])]))
    await wait_bound(gw)
    headers = await gw.user("ip@example.com")
    forbidden = (403, {"error": "IP not allowed"})
    # We call from 127.0.0.1; without trusted proxies X-Forwarded-For is ignored.
    for extra in ({}, {"X-Forwarded-For": "10.1.2.3"}, {"X-Forwarded-For": "10.1.2.3, 127.0.0.1"}):
        r = await gw.http.post(SEND, json=msg(), headers=headers | extra)
        assert (r.status_code, r.json()) == forbidden, extra
        r = await gw.http.post(CHECK, json={"esme": 1}, headers=headers | extra)
        assert (r.status_code, r.json()) == forbidden, extra
        r = await gw.http.post(INFO, json={"esme": 1, "message_id": "x"}, headers=headers | extra)
        assert (r.status_code, r.json()) == forbidden, extra
    assert sim.submits == 0


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, make_sim, gateway
) -> None:
    sim = await make_sim()
    settings = make_settings(
        tmp_path,
        [link_to(sim, 1, allowed_ips=["10.0.0.0/8"])],
        trusted_proxies=["127.0.0.1/32"],
    )
    gw = await gateway(settings)
    await wait_bound(gw)
    headers = await gw.user("proxy@example.com")
    r = await gw.http.post(SEND, json=msg(), headers=headers | {"X-Forwarded-For": "10.1.2.3"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"
    r = await gw.http.post(
        CHECK, json={"esme": 1}, headers=headers | {"X-Forwarded-For": "10.9.9.9"}
    )
    assert r.status_code == 200
    # The client the proxy names is outside the list; a forged hop before it is ignored.
    for xff in ("192.168.1.1", "10.1.2.3, 192.168.1.1", "garbage", ""):
        r = await gw.http.post(SEND, json=msg(), headers=headers | {"X-Forwarded-For": xff})
        assert (r.status_code, r.json()) == (403, {"error": "IP not allowed"}), xff
    # No header: the peer itself (127.0.0.1) is the client, and it is not in the list.
    r = await gw.http.post(SEND, json=msg(), headers=headers)
    assert (r.status_code, r.json()) == (403, {"error": "IP not allowed"})
    assert sim.submits == 1


async def test_bad_send_fields_are_400_with_a_clear_message(
    tmp_path: Path, make_sim, gateway
) -> None:
    sim = await make_sim()
    gw = await gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("fields@example.com")
    cases: list[tuple[dict[str, Any], str]] = [
        (msg(source=""), "source is required"),
        (msg(source="+1234567890123456"), "source must be"),
        (msg(source="TwelveChars1"), "source must be"),
        (msg(source="Bad-Name"), "source must be"),
        (msg(source="   "), "source must be"),
        (msg(destination=""), "destination is required"),
        (msg(destination="12"), "destination must be"),
        (msg(destination="+44 7700 900123"), "destination must be"),
        (msg(destination="abcdef"), "destination must be"),
        (msg(destination="+1234567890123456"), "destination must be"),
        (msg(message=""), "message must not be empty"),
        (msg(message="a\x00b"), "NUL"),
        (msg(message="x" * 1600), "at most 10 allowed"),
        (msg(message="ж" * 700), "at most 10 allowed"),
        (msg(transaction_id="t" * 129), "transaction_id"),
        (msg(campaign="c" * 129), "campaign"),
    ]
    for body, fragment in cases:
        r = await gw.http.post(SEND, json=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert set(r.json()) == {"error"} and fragment in error, (fragment, error)
    # The limit itself is fine: 10 parts of 153 GSM characters.
    r = await gw.http.post(SEND, json=msg(message="x" * 1530), headers=headers)
    assert r.status_code == 200 and len(r.json()["sms_ids"]) == 10, r.text
    assert sim.submits == 10


async def test_unknown_message_id_is_404(tmp_path: Path, make_sim, gateway) -> None:
    sim = await make_sim()
    gw = await gateway(make_settings(tmp_path, [link_to(sim)]))
    await wait_bound(gw)
    headers = await gw.user("info@example.com")
    for body in (
        {"message_id": "0190c0de-0000-7000-8000-000000000000"},
        {"esme": 1, "message_id": "nope"},
        {"message_id": "' OR 1=1 --"},
    ):
        r = await gw.http.post(INFO, json=body, headers=headers)
        assert (r.status_code, r.json()) == (404, {"error": "message not found"}), body
    for body in ({"message_id": ""}, {"message_id": "m" * 65}, {"esme": 1}, {"message_id": 5}):
        r = await gw.http.post(INFO, json=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"error"}


async def test_malformed_bodies_are_400(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    headers = await gw.user("json@example.com")
    raw_bodies = [
        b"",
        b"   ",
        b"{",
        b"{'esme': 1}",
        b'{"esme": 1,}',
        b"null",
        b"[]",
        b'"text"',
        b"42",
        b"\xff\xfe\x00",
        b'{"esme": 1} trailing',
    ]
    for path in (SEND, CHECK, INFO):
        for raw in raw_bodies:
            r = await gw.http.post(
                path, content=raw, headers=headers | {"Content-Type": "application/json"}
            )
            assert r.status_code == 400, (path, raw, r.text)
            assert set(r.json()) == {"error"} and r.json()["error"], (path, raw)
    wrong_types: list[dict[str, Any]] = [
        msg(esme="1"),
        msg(esme=1.5),
        msg(esme=None),
        msg(esme=True),
        msg(source=123456789),
        msg(destination=["+987654321"]),
        msg(message={"text": "hi"}),
        msg(transaction_id=7),
        {"source": "+1", "destination": "+987654321", "message": "x"},
        {"esme": 1, "destination": "+987654321", "message": "x"},
    ]
    for body in wrong_types:
        r = await gw.http.post(SEND, json=body, headers=headers)
        assert r.status_code == 400, (body, r.text)
        assert set(r.json()) == {"error"}
    # The field at fault is named.
    r = await gw.http.post(SEND, json=msg(esme="1"), headers=headers)
    assert "esme" in r.json()["error"]
    r = await gw.http.post(SEND, json={"esme": 1}, headers=headers)
    assert "source" in r.json()["error"]
    for path, body in (
        ("/api/v1/auth/login", b"{"),
        ("/api/v1/user/login", b"[]"),
        ("/api/v1/auth/register", b""),
    ):
        r = await gw.http.post(path, content=body, headers={"X-Admin-Key": ADMIN_KEY})
        assert r.status_code == 400, (path, body, r.text)
        assert set(r.json()) == {"error"}


async def test_oversized_bodies_are_413(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()], max_body_bytes=2048))
    headers = await gw.user("big@example.com")
    huge = msg(message="x" * 4000)
    r = await gw.http.post(SEND, json=huge, headers=headers)
    assert r.status_code == 413, r.text
    assert set(r.json()) == {"error"} and "too large" in r.json()["error"]

    # Without Content-Length (chunked), the limit holds while reading.
    async def chunks() -> AsyncIterator[bytes]:
        data = json.dumps(huge).encode()
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    r = await gw.http.post(SEND, content=chunks(), headers=headers)
    assert r.status_code == 413, r.text
    assert "too large" in r.json()["error"]
    # Auth endpoints have the same limit.
    r = await gw.http.post(
        "/api/v1/auth/register",
        json={"email": "x@example.com", "password": "p" * 5000},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert r.status_code == 413
    # Just under the limit is fine (and fails on its own merits).
    r = await gw.http.post(SEND, json=msg(esme=2, message="x" * 1500), headers=headers)
    assert (r.status_code, r.json()) == (404, {"error": "unknown esme"})


async def test_unknown_paths_and_wrong_methods(tmp_path: Path, gateway) -> None:
    gw = await gateway(make_settings(tmp_path, [dead_link()]))
    for method, path in (
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/api/v1/sms/sendx"),
        ("POST", "/api/v1/sms"),
        ("GET", "/api/v2/sms/send"),
        ("POST", "/api/v1/admin/unknown"),
        ("DELETE", "/api/v1/auth/whatever"),
    ):
        r = await gw.http.request(method, path)
        assert (r.status_code, r.json()) == (404, {"error": "not found"}), (method, path)
    for method, path in (
        ("GET", SEND),
        ("PUT", SEND),
        ("DELETE", CHECK),
        ("GET", INFO),
        ("GET", "/api/v1/auth/login"),
        ("GET", "/api/v1/user/register"),
        ("POST", "/healthy"),
        ("DELETE", "/metrics"),
    ):
        r = await gw.http.request(method, path)
        assert (r.status_code, r.json()) == (405, {"error": "method not allowed"}), (method, path)
