"""Attacks on credentials and tenancy, against a live gateway.

tests/e2e/test_native_errors.py already refuses alg none, HS512, tampered payloads and
signatures, expired tokens, another app's secret, another app's X-App-ID, and checks
that login failures all read the same; tests/ops/test_ratelimit.py covers the login
guard's buckets. Added here: algorithm confusion (RS/ES/PS headers, HS256 keyed with
public values), constant-time comparison of every secret, enumeration through the
login guard, SQL injection through every string a client controls, and isolation
between apps (messages, transaction ids, campaign counts).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from resil_kit import (
    ADMIN_KEY,
    BIG_KEEP,
    PASSWORD,
    SimFactory,
    received,
    send_body,
    user_headers,
)

from gwkit import Gateway, eventually, link_to, make_settings
from smsgateway.core.admin import AdminKey
from smsgateway.core.secrets import Secrets
from smsgateway.settings_ops import RateLimitSettings

ADMIN = {"X-Admin-Key": ADMIN_KEY}
CHECK = "/api/v1/sms/check-esme"
INVALID_TOKEN = (401, {"error": "invalid or expired token"})


def b64(data: bytes | dict[str, Any]) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def gateway(tmp_path: Path, make_sim: SimFactory, make_gateway: Any, **kw: Any) -> Gateway:
    sim = await make_sim(keep_messages=BIG_KEEP)
    gw: Gateway = await make_gateway(
        make_settings(tmp_path, [link_to(sim)], admin_key=ADMIN_KEY, **kw)
    )
    await gw.bound()
    gw.sim = sim  # type: ignore[attr-defined]
    return gw


# -- tokens ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_algorithm_confusion_and_public_keys_are_refused(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    gw = await gateway(tmp_path, make_sim, make_gateway)
    reg = await gw.register("victim@example.com")
    app_id, uid = reg["app_id"], reg["user_id"]
    now = int(time.time())
    claims = {"uid": uid, "email": "victim@example.com", "app_id": app_id, "iat": now}
    claims["exp"] = now + 3600
    payload = b64(claims)

    def hs256(key: bytes, header: dict[str, Any] | None = None) -> str:
        head = b64(header or {"alg": "HS256", "typ": "JWT"})
        sig = hmac.new(key, f"{head}.{payload}".encode(), "sha256").digest()
        return f"{head}.{payload}.{b64(sig)}"

    # Things an attacker can know: ids, the email, the server's name, the admin key's
    # header name, empty keys, the text of a public key.
    public_values = [
        b"",
        str(app_id).encode(),
        str(uid).encode(),
        b"victim@example.com",
        b"smsgateway",
        b"secret",
        b"X-Admin-Key",
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
    ]
    tokens = {f"HS256 keyed with {v[:20]!r}": hs256(v) for v in public_values}
    # The right secret, but a header that names another algorithm: a verifier that
    # trusted the header would treat the secret as a public key.
    secret = reg["app_secret"].encode()
    for alg in ("RS256", "ES256", "PS256", "EdDSA", "hs256", "HS256 ", "none", "None", "NONE"):
        tokens[f"alg {alg!r} header"] = hs256(secret, {"alg": alg, "typ": "JWT"})
        tokens[f"alg {alg!r}, no signature"] = f"{b64({'alg': alg})}.{payload}."
    tokens["jwk embedded"] = hs256(
        b"attacker", {"alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"attacker")}}
    )
    tokens["kid path traversal"] = hs256(b"", {"alg": "HS256", "kid": "../../../dev/null"})
    tokens["two dots only"] = ".."
    tokens["huge header"] = f"{b64({'alg': 'HS256', 'x': 'a' * 5000})}.{payload}.AAAA"
    for name, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}", "X-App-ID": str(app_id)}
        r = await gw.http.post(CHECK, json={"esme": 1}, headers=headers)
        assert (r.status_code, r.json()) == INVALID_TOKEN, name
    # The real secret with the real algorithm works: the refusals were about the token.
    headers = {"Authorization": f"Bearer {hs256(secret)}", "X-App-ID": str(app_id)}
    assert (await gw.http.post(CHECK, json={"esme": 1}, headers=headers)).status_code == 200


def test_secrets_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not a timing test: every comparison of a presented secret goes through
    hmac.compare_digest (admin key, API key and OTP hashes, JWT signatures)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    key = AdminKey("the-admin-key")
    for presented in ("wrong", "the-admin-key"):
        with contextlib.suppress(Exception):
            key.check(presented)
    assert len(calls) == 2
    secrets = Secrets(b"k" * 32)
    stored = secrets.keyed_hash_otp("scope", "123456")
    assert secrets.verify_otp("scope", "123456", stored)
    assert not secrets.verify_otp("scope", "654321", stored)
    assert len(calls) == 4
    # PyJWT checks HS256 signatures with hmac.compare_digest too.
    token = jwt.encode({"x": 1}, "s" * 32, algorithm="HS256")
    with contextlib.suppress(jwt.PyJWTError):
        jwt.decode(token[:-2] + "AA", "s" * 32, algorithms=["HS256"])
    assert len(calls) == 5


# -- guessing -------------------------------------------------------------------------


async def test_login_guard_does_not_tell_known_from_unknown_emails(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    gw = await gateway(
        tmp_path,
        make_sim,
        make_gateway,
        ratelimit=RateLimitSettings(login_per_minute=1, login_burst=5),
        trusted_proxies=["127.0.0.1/32"],
    )
    reg = await gw.register("known@example.com")

    async def guesses(email: str, address: str) -> list[tuple[int, str]]:
        out = []
        for i in range(8):
            r = await gw.http.post(
                "/api/v1/auth/login",
                json={"email": email, "password": f"guess-{i:04d}", "app_id": reg["app_id"]},
                headers={"X-Forwarded-For": address},
            )
            out.append((r.status_code, r.text))
        return out

    known = await guesses("known@example.com", "10.0.0.1")
    unknown = await guesses("nobody@example.com", "10.0.0.2")
    assert known == unknown  # same answers, same moment of refusal
    assert [s for s, _ in known] == [401] * 5 + [429] * 3
    # The right password is refused too once the email is locked: guessing stops.
    r = await gw.http.post(
        "/api/v1/auth/login",
        json={"email": "known@example.com", "password": PASSWORD, "app_id": reg["app_id"]},
        headers={"X-Forwarded-For": "10.0.0.3"},
    )
    assert r.status_code == 429
    # A duplicate registration says only that the user exists, and only to an admin.
    r = await gw.http.post(
        "/api/v1/auth/register", json={"email": "known@example.com", "password": PASSWORD}
    )
    assert (r.status_code, r.json()) == (401, {"error": "invalid or missing admin key"})
    r = await gw.http.post(
        "/api/v1/auth/register",
        json={"email": "known@example.com", "password": PASSWORD},
        headers=ADMIN,
    )
    assert (r.status_code, r.json()) == (400, {"error": "user already exists"})


# -- SQL injection ----------------------------------------------------------------------

INJECTIONS = [
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    '" OR ""="',
    "1; DELETE FROM messages; --",
    "') UNION SELECT id, email, password_hash, 1, 1 FROM users --",
    "%' OR 1=1 --",
    "\\'; DROP TABLE parts; --",
    "x'); UPDATE users SET is_admin = 1; --",
]


def is_400(r: httpx.Response) -> bool:
    return r.status_code == 400 and set(r.json()) == {"error"}


def schema_and_counts(db: Path) -> tuple[list[tuple[Any, ...]], dict[str, int]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
        tables = [n for t, n, _, _ in schema if t == "table" and not n.startswith("sqlite_")]
        counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    return schema, counts


async def test_sql_injection_through_every_field_changes_nothing(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    gw = await gateway(tmp_path, make_sim, make_gateway)
    sim = gw.sim  # type: ignore[attr-defined]
    headers = await user_headers(gw.http, "owner@example.com", ADMIN_KEY)
    db = tmp_path / "gw.db"
    schema_before, counts_before = schema_and_counts(db)
    stored: list[tuple[str, str, str]] = []  # (message, transaction_id, campaign)
    http = gw.http
    for n, bad in enumerate(INJECTIONS):
        # Auth surface.
        for path in ("/api/v1/auth/register", "/api/v1/user/register"):
            r = await http.post(path, json={"email": bad, "password": PASSWORD}, headers=ADMIN)
            assert r.status_code == 400, r.text  # not an email address
            r = await http.post(
                path,
                json={"email": f"p{n}{path[8:12]}@example.com", "password": bad, "app_name": bad},
                headers=ADMIN,
            )
            assert r.status_code in (201, 400), r.text  # stored as data, or too short
        for body in (
            {"email": bad, "password": PASSWORD, "app_id": 1},
            {"email": "owner@example.com", "password": bad, "app_id": 1},
        ):
            r = await http.post("/api/v1/auth/login", json=body)
            assert r.status_code in (401, 429), r.text
        for name, value in (("X-App-ID", bad), ("Authorization", f"Bearer {bad}")):
            r = await http.post(CHECK, json={"esme": 1}, headers=headers | {name: value})
            assert r.status_code in (400, 401), r.text
        r = await http.get("/api/v1/admin/proxy-users", headers={"X-Admin-Key": bad})
        assert r.status_code == 401
        # Send surface: addresses refuse it, texts and keys store it as data.
        for field in ("source", "destination"):
            r = await http.post(
                "/api/v1/sms/send", json=send_body(n, **{field: bad}), headers=headers
            )
            assert r.status_code == 400, r.text
        r = await http.post(
            "/api/v1/sms/send",
            json=send_body(n) | {"message": bad, "transaction_id": bad, "campaign": bad},
            headers=headers,
        )
        assert r.status_code == 200 and r.json()["success"], r.text
        stored.append((bad, bad, bad))
        mid = r.json()["message_id"]
        r = await http.post("/api/v1/sms/info", json={"message_id": bad}, headers=headers)
        assert (r.status_code, r.json()) == (404, {"error": "message not found"})
        r = await http.post("/api/v1/sms/info", json={"message_id": mid}, headers=headers)
        assert r.json()["transaction_id"] == bad
        # Operations surface.
        r = await http.put(
            "/api/v1/admin/smpp/1/toggle", json={"enabled": True, "reason": bad}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            "/api/v1/admin/filters",
            json={"name": bad, "rule": 'text.contains("zzz-never")', "description": bad},
            headers=ADMIN,
        )
        created = r.status_code == 200
        assert created or is_400(r), r.text
        r = await http.post(
            "/api/v1/admin/filters", json={"name": f"f{n}", "rule": bad}, headers=ADMIN
        )
        assert r.status_code == 400, r.text  # not CEL
        request = http.build_request("DELETE", "/", headers=ADMIN)
        raw_path = f"/api/v1/admin/filters/{quote(bad, safe='')}"
        request.url = request.url.copy_with(raw_path=raw_path.encode())
        r = await http.send(request)
        assert r.status_code == (200 if created else 404), (bad, r.text)  # the name is data
        for param in ("page", "limit"):
            r = await http.get(
                "/api/v1/admin/metrics/campaigns", params={param: bad}, headers=ADMIN
            )
            assert r.status_code == 400, r.text
        r = await http.delete(f"/api/v1/admin/proxy-users/{quote(bad, safe='')}", headers=ADMIN)
        assert r.status_code in (400, 404), r.text

    schema_after, counts_after = schema_and_counts(db)
    assert schema_after == schema_before  # every table, index and trigger as it was
    assert counts_after["messages"] == counts_before["messages"] + len(INJECTIONS)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT body, transaction_id, campaign FROM messages").fetchall()
        admins = conn.execute("SELECT COUNT(*) FROM users WHERE is_admin = 1").fetchone()[0]
        users = [e for (e,) in conn.execute("SELECT email FROM users")]
    assert sorted(rows) == sorted(stored)  # verbatim, nothing else
    assert admins == 0 and all(e.endswith("@example.com") for e in users)
    # And the SMSC got the texts verbatim.
    await eventually(lambda: len(received([sim])) == len(INJECTIONS))
    texts = sorted(c[0].text for by_seq in received([sim]).values() for c in by_seq.values())
    assert texts == sorted(INJECTIONS)


# -- tenancy ---------------------------------------------------------------------------


async def test_an_app_cannot_reach_another_apps_messages(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    gw = await gateway(tmp_path, make_sim, make_gateway)
    sim = gw.sim  # type: ignore[attr-defined]
    a = await user_headers(gw.http, "a@example.com")
    b = await user_headers(gw.http, "b@example.com")
    body = send_body(1, transaction_id="shared-tx", campaign="alpha-launch")
    ra = await gw.http.post("/api/v1/sms/send", json=body, headers=a)
    assert ra.status_code == 200 and ra.json()["status"] == "submitted"
    # The same transaction_id from another app is another message, not A's answer.
    rb = await gw.http.post(
        "/api/v1/sms/send", json=send_body(2, transaction_id="shared-tx"), headers=b
    )
    assert rb.status_code == 200
    assert rb.json()["message_id"] != ra.json()["message_id"]
    assert rb.json()["sms_ids"] != ra.json()["sms_ids"]
    # ...and A's retry still gets A's first answer.
    again = await gw.http.post("/api/v1/sms/send", json=body, headers=a)
    assert again.json() == ra.json()
    await eventually(lambda: sim.submits == 2)
    mid = ra.json()["message_id"]
    for info in ({"message_id": mid}, {"message_id": mid, "esme": 1}):
        r = await gw.http.post("/api/v1/sms/info", json=info, headers=b)
        assert (r.status_code, r.json()) == (404, {"error": "message not found"})
    # B's token is no key to A's app, nor to the admin's campaign counts.
    r = await gw.http.post(
        "/api/v1/sms/info", json={"message_id": mid}, headers=b | {"X-App-ID": a["X-App-ID"]}
    )
    assert (r.status_code, r.json()) == INVALID_TOKEN
    r = await gw.http.get("/api/v1/admin/metrics/campaigns", headers=b)
    assert (r.status_code, r.json()) == (401, {"error": "invalid or missing admin key"})
    r = await gw.http.get("/api/v1/admin/metrics/campaigns", headers=ADMIN)
    assert [row["campaign_uuid"] for row in r.json()["data"]] == ["alpha-launch"]


async def test_tokens_do_not_outlive_their_user(
    tmp_path: Path, make_sim: SimFactory, make_gateway: Any
) -> None:
    """Deleting a user (admin panel) ends their cached tokens on this node at once."""
    gw = await gateway(tmp_path, make_sim, make_gateway)
    headers = await user_headers(gw.http, "leaver@example.com")
    assert (await gw.http.post(CHECK, json={"esme": 1}, headers=headers)).status_code == 200
    r = await gw.http.get("/api/v1/admin/proxy-users", headers=ADMIN)
    user_id = next(u["id"] for u in r.json()["data"] if u["email"] == "leaver@example.com")
    r = await gw.http.delete(f"/api/v1/admin/proxy-users/{user_id}", headers=ADMIN)
    assert r.json() == {"success": True}
    r = await gw.http.post(CHECK, json={"esme": 1}, headers=headers)
    assert r.status_code == 401
