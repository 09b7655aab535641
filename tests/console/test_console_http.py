"""The console's HTTP side over real sockets: sign-in limits, same-origin checks,
sessions (hashed, expiring, Secure under TLS), page snapshots, the live stream and
its limits (slow clients dropped), and the admin message API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sqlite3
import ssl
from pathlib import Path
from typing import Any

import httpx

from gwkit import ADMIN_KEY, Gateway, eventually, link_to, make_settings, self_signed
from smsgateway.core.errors import InvalidRequest
from smsgateway.settings_console import ConsoleSettings

COOKIE = "smsgw_console"


def origin(gw: Gateway) -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{gw.runtime.rest_port}"}


async def sign_in(gw: Gateway) -> str:
    r = await gw.http.post("/console/api/login", json={"admin_key": ADMIN_KEY}, headers=origin(gw))
    assert r.status_code == 200, r.text
    session = r.cookies[COOKIE]
    gw.http.cookies.clear()  # each test says which cookie it sends
    return session


def with_session(session: str, **extra: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session}", **extra}


async def test_sign_in_guesses_are_rate_limited(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim()
    # Behind a trusted proxy, so each attempt may name its own client address.
    settings = make_settings(tmp_path, [link_to(sim)], trusted_proxies=["127.0.0.0/8"])
    settings.console = ConsoleSettings(login_per_minute=1, login_burst=3)
    gw: Gateway = await make_gateway(settings)

    async def attempt(body: dict[str, str], address: str) -> httpx.Response:
        return await gw.http.post(
            "/console/api/login", json=body, headers={**origin(gw), "X-Forwarded-For": address}
        )

    # Per address: three guesses, then a wait, even with the right key.
    for _ in range(3):
        r = await attempt({"admin_key": "guess"}, "203.0.113.1")
        assert r.status_code == 401 and r.json() == {"error": "invalid admin key"}
    r = await attempt({"admin_key": "guess"}, "203.0.113.1")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    r = await attempt({"admin_key": ADMIN_KEY}, "203.0.113.1")
    assert r.status_code == 429 and COOKIE not in r.cookies
    # Per account: guesses at one password from many addresses share one allowance.
    wrong = {"email": "boss@example.com", "password": "nope-nope-nope"}
    for n in range(3):
        assert (await attempt(wrong, f"198.51.100.{n + 1}")).status_code == 401
    assert (await attempt(wrong, "198.51.100.99")).status_code == 429
    # Someone else, from elsewhere, is not held up by either.
    r = await attempt({"email": "other@example.com", "password": "whatever-1"}, "192.0.2.7")
    assert r.status_code == 401
    refused = gw.runtime.console.sessions.guard.refused  # type: ignore[union-attr]
    assert refused == 3


async def test_unsafe_requests_must_come_from_the_console_itself(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    session = await sign_in(gw)
    body = {"enabled": False, "reason": "from elsewhere"}
    url = "/console/api/links/1/toggle"
    for headers in (
        with_session(session, Origin="http://evil.example"),
        with_session(session, **{"Sec-Fetch-Site": "cross-site"}),
        with_session(session, **{"Sec-Fetch-Site": "same-site"}),
        with_session(session),  # neither header: not a page of ours
    ):
        r = await gw.http.post(url, json=body, headers=headers)
        assert r.status_code == 403, headers
        assert r.json() == {"error": "cross-origin request refused"}
    link = gw.runtime.router.links[1]  # type: ignore[union-attr]
    assert link.enabled
    r = await gw.http.post(
        "/console/api/login",
        json={"admin_key": ADMIN_KEY},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403 and COOKIE not in r.cookies
    # From the console's own origin it works (and is audited as the console's).
    r = await gw.http.post(url, json=body, headers=with_session(session, **origin(gw)))
    assert r.status_code == 200, r.text
    assert next(x for x in r.json()["links"] if x["id"] == 1)["status"] == "DISABLED"
    r = await gw.http.post(
        url,
        json={"enabled": True},
        headers=with_session(session, **{"Sec-Fetch-Site": "same-origin"}),
    )
    assert r.status_code == 200
    audit = await gw.runtime.store.list_audit()  # type: ignore[union-attr]
    actions = [(a.actor, a.action, a.detail) for a in audit]
    assert ("console:admin-key", "link.disable", "from elsewhere") in actions
    assert ("console:admin-key", "link.enable", "") in actions
    # GETs carry no such check (they change nothing), but still need the session.
    assert (await gw.http.get("/console/api/pages/links")).status_code == 401


async def test_sessions_are_stored_hashed_and_end(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    settings.console = ConsoleSettings(session_ttl_s=4)
    gw: Gateway = await make_gateway(settings)
    r = await gw.http.post("/console/api/login", json={"admin_key": ADMIN_KEY}, headers=origin(gw))
    set_cookie = r.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=4"):
        assert attribute.lower() in set_cookie.lower(), set_cookie
    assert "secure" not in set_cookie.lower()  # plain HTTP here; see the TLS test
    session = r.cookies[COOKIE]
    gw.http.cookies.clear()
    assert len(session) >= 40
    assert ADMIN_KEY not in r.text and session not in r.text
    db = sqlite3.connect(tmp_path / "gw.db")
    rows = db.execute("SELECT id_hash, actor FROM console_sessions").fetchall()
    db.close()
    assert rows == [(hashlib.sha256(session.encode()).hexdigest(), "admin-key")]
    r = await gw.http.get("/console/api/session", headers=with_session(session))
    assert r.json()["signed_in"] is True and r.json()["actor"] == "admin-key"

    async def expired() -> bool:
        r = await gw.http.get("/console/api/session", headers=with_session(session))
        return r.json() == {"signed_in": False}

    await eventually(expired, timeout=10)
    r = await gw.http.get("/console/api/pages/overview", headers=with_session(session))
    assert r.status_code == 401
    assert r.json() == {"error": "console session required (sign in again)"}
    # Logout deletes the row at once.
    other = await sign_in(gw)
    r = await gw.http.post("/console/api/logout", headers=with_session(other, **origin(gw)))
    assert r.status_code == 200 and 'smsgw_console=""' in r.headers["set-cookie"]
    r = await gw.http.get("/console/api/pages/overview", headers=with_session(other))
    assert r.status_code == 401


async def test_the_cookie_is_secure_under_tls(tmp_path: Path, make_gateway: Any) -> None:
    cert, key = self_signed(tmp_path)
    gw: Gateway = await make_gateway(
        make_settings(tmp_path, [], tls_cert=str(cert), tls_key=str(key))
    )
    base = f"https://127.0.0.1:{gw.runtime.rest_port}"
    context = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(base_url=base, verify=context) as http:
        r = await http.post(
            "/console/api/login", json={"admin_key": ADMIN_KEY}, headers={"Origin": base}
        )
        assert r.status_code == 200, r.text
        assert "secure" in r.headers["set-cookie"].lower()
        r = await http.get("/console")
        assert "script-src 'self'" in r.headers["content-security-policy"]


async def test_pages_answer_snapshots_and_the_stream_carries_their_topics(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    settings.console = ConsoleSettings(heartbeat_s=0.3, max_streams=2)
    gw: Gateway = await make_gateway(settings)
    await gw.bound()
    session = await sign_in(gw)
    h = with_session(session)
    r = await gw.http.get("/console/api/session", headers=h)
    names = [p["name"] for p in r.json()["pages"]]
    assert names[:3] == ["overview", "links", "messages"]
    for name in names:
        r = await gw.http.get(f"/console/api/pages/{name}", headers=h)
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["cache-control"] == "no-store"
        assert ADMIN_KEY not in r.text
    overview = (await gw.http.get("/console/api/pages/overview", headers=h)).json()["data"]
    assert overview["links"][0]["status"] == "BOUND"
    assert {"seconds", "minutes", "totals", "queues", "system", "license"} <= set(overview)
    assert (await gw.http.get("/console/api/pages/nope", headers=h)).status_code == 404
    assert (await gw.http.get("/console/api/stream?page=nope", headers=h)).status_code == 404

    events: list[str] = []
    async with gw.http.stream("GET", "/console/api/stream?page=overview", headers=h) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        async for line in s.aiter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            if {"metrics", "links"} <= set(events):
                break
    heartbeats = 0
    async with gw.http.stream("GET", "/console/api/stream?page=messages", headers=h) as s:
        async for line in s.aiter_lines():
            assert not line.startswith("event: ")  # the messages page has no topics
            heartbeats += line == ": heartbeat"
            if heartbeats == 2:
                break
    # At most max_streams at once; a third waits its turn.
    async with (
        gw.http.stream("GET", "/console/api/stream?page=links", headers=h) as a,
        gw.http.stream("GET", "/console/api/stream?page=links", headers=h) as b,
    ):
        assert a.status_code == b.status_code == 200
        await eventually(lambda: gw.runtime.console.hub.subscribers == 2)  # type: ignore[union-attr]
        r = await gw.http.get("/console/api/stream?page=links", headers=h)
        assert r.status_code == 503
    await eventually(lambda: gw.runtime.console.hub.subscribers == 0)  # type: ignore[union-attr]


async def test_a_client_that_stops_reading_is_dropped(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim)])
    settings.console = ConsoleSettings(heartbeat_s=1.0, client_queue=4)
    gw: Gateway = await make_gateway(settings)
    console = gw.runtime.console
    assert console is not None
    session = await sign_in(gw)
    sock = socket.create_connection(("127.0.0.1", gw.runtime.rest_port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"GET /console/api/stream?page=links HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Cookie: {COOKIE}={session}\r\n\r\n".encode()
    )
    await eventually(lambda: console.hub.subscribers == 1)
    # The client reads nothing; the gateway keeps publishing big events.
    pad = "x" * 64 * 1024
    for _ in range(400):
        console.hub.publish("links", {"pad": pad})
        await asyncio.sleep(0)
        if console.hub.dropped:
            break
    assert console.hub.dropped == 1
    assert console.hub.subscribers == 0
    # ...and its connection is closed rather than held: reading now ends in EOF.
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def read_to_eof() -> None:
        while await loop.sock_recv(sock, 1 << 20):
            pass

    await asyncio.wait_for(read_to_eof(), timeout=20)
    sock.close()
    # A well-behaved client still gets its stream.
    async with gw.http.stream(
        "GET", "/console/api/stream?page=links", headers=with_session(session)
    ) as s:
        async for line in s.aiter_lines():
            if line == "event: links":
                break


async def test_admin_message_search(tmp_path: Path, make_sim: Any, make_gateway: Any) -> None:
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    await gw.bound()
    alice = await gw.user("alice@example.com")
    bob = await gw.user("bob@example.com")
    a1 = (await gw.send(alice, destination="+447700900001", transaction_id="t-1")).json()
    a2 = (await gw.send(alice, destination="447700900002", campaign="spring")).json()
    b1 = (
        await gw.send(bob, destination="+447700900001", message="x" * 200)  # two parts
    ).json()
    admin = {"X-Admin-Key": ADMIN_KEY}

    async def ids(**query: str) -> list[str]:
        r = await gw.http.get("/api/v1/admin/messages", params=query, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True
        return [m["message_id"] for m in r.json()["data"]]

    assert await ids() == [b1["message_id"], a2["message_id"], a1["message_id"]]
    assert await ids(destination="447700900001") == [b1["message_id"], a1["message_id"]]
    assert await ids(destination="+447700900002") == [a2["message_id"]]
    assert await ids(transaction_id="t-1") == [a1["message_id"]]
    assert await ids(message_id=a2["message_id"]) == [a2["message_id"]]
    alice_app = alice["X-App-ID"]
    assert await ids(owner=f"app:{alice_app}") == [a2["message_id"], a1["message_id"]]
    assert await ids(owner=alice_app, limit="1") == [a2["message_id"]]
    assert await eventually(lambda: _all_delivered(ids, 3), timeout=10)
    assert await ids(status="rejected") == []
    assert await ids(since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z") == []
    assert len(await ids(since="2000-01-01T00:00:00Z")) == 3
    # A bound between two messages splits them (ids are time-ordered: the bound is an
    # id bound too, and the created_at check keeps it exact).
    rows = (await gw.http.get("/api/v1/admin/messages", headers=admin)).json()["data"]
    created = {m["message_id"]: m["created_at"] for m in rows}
    cut = created[a2["message_id"]]
    newer = [i for i, at in created.items() if at >= cut]
    assert set(await ids(since=str(cut))) == set(newer)
    assert set(await ids(until=str(cut))) == set(created) - set(newer)

    r = await gw.http.get(f"/api/v1/admin/messages/{b1['message_id']}", headers=admin)
    assert r.status_code == 200
    detail = r.json()["data"]
    assert detail["message"]["owner"] == f"app:{bob['X-App-ID']}"
    assert detail["message"]["parts_total"] == 2 and detail["message"]["text"] == "x" * 200
    assert [p["seq"] for p in detail["parts"]] == [1, 2]
    for part in detail["parts"]:
        assert part["state"] == "delivered" and part["smsc_id"] and part["receipt_at"]
    (attempt,) = detail["attempts"]  # which gateway took it, and what it answered
    assert attempt["channel_id"] == 1 and attempt["channel_kind"] == "link"
    assert attempt["outcome"] == "accepted" and attempt["error"] == ""
    assert attempt["started_at"] <= attempt["ended_at"]

    for bad, word in (
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"destination": "call me"}, "destination"),
        ({"owner": "nobody"}, "owner"),
        ({"since": "2030-01-02T00:00:00", "until": "2030-01-01T00:00:00"}, "until"),
    ):
        r = await gw.http.get("/api/v1/admin/messages", params=bad, headers=admin)
        assert r.status_code == 400 and word in r.json()["error"], (bad, r.text)
    r = await gw.http.get("/api/v1/admin/messages/nope", headers=admin)
    assert r.status_code == 404 and r.json() == {"error": "message not found"}
    assert (await gw.http.get("/api/v1/admin/messages")).status_code == 401
    r = await gw.http.get("/api/v1/admin/messages", headers={"X-Admin-Key": "wrong"})
    assert r.status_code == 401
    # A tenant's JWT is not an admin credential.
    assert (await gw.http.get("/api/v1/admin/messages", headers=alice)).status_code == 401
    # A console session is.
    session = await sign_in(gw)
    r = await gw.http.get("/api/v1/admin/messages", headers=with_session(session))
    assert r.status_code == 200 and len(r.json()["data"]) == 3
    doc = (await gw.http.get("/openapi.json")).json()
    assert "/api/v1/admin/messages/{message_id}" in doc["paths"]
    assert not [p for p in doc["paths"] if p.startswith("/console")]


async def _all_delivered(ids: Any, n: int) -> bool:
    return len(await ids(status="delivered")) == n


async def test_signing_out_ends_the_sessions_live_streams(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    console = gw.runtime.console
    assert console is not None
    mine, theirs = await sign_in(gw), await sign_in(gw)
    async with (
        httpx.AsyncClient(base_url=str(gw.http.base_url), timeout=15) as a,
        httpx.AsyncClient(base_url=str(gw.http.base_url), timeout=15) as b,
        a.stream("GET", "/console/api/stream?page=links", headers=with_session(mine)) as s1,
        b.stream("GET", "/console/api/stream?page=links", headers=with_session(theirs)) as s2,
    ):
        await eventually(lambda: console.hub.subscribers == 2)
        r = await gw.http.post("/console/api/logout", headers=with_session(mine, **origin(gw)))
        assert r.status_code == 200
        lines = [line async for line in s1.aiter_lines()]  # ends: the server closed it
        assert lines[0] == "retry: 3000"
        assert console.hub.subscribers == 1
        async for line in s2.aiter_lines():  # the other session's stream goes on
            if line == "event: links":
                break


async def test_a_feature_adds_its_page_and_topic(
    tmp_path: Path, make_sim: Any, make_gateway: Any, monkeypatch: Any
) -> None:
    """What a later feature does to appear in the console: one Page in the registry
    (its snapshot reads any service) and, for live data, one topic."""
    from smsgateway.api.console import Page, pages

    async def snapshot(services: Any) -> dict[str, Any]:
        return {"users": len(await services.auth.list_users())}

    async def double(ctx: Any, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("n"), int):
            raise InvalidRequest("n must be an integer")
        return {"n": body["n"] * 2, "actor": ctx.actor, "base": ctx.base_url}

    probe = Page("probe", "Probe", snapshot, ("probe",), {"double": double})
    monkeypatch.setitem(pages._PAGES, "probe", probe)
    sim = await make_sim()
    gw: Gateway = await make_gateway(make_settings(tmp_path, [link_to(sim)]))
    assert gw.runtime.console is not None
    ticks = iter(range(1, 1000))
    gw.runtime.console.add_topic("probe", lambda: {"tick": next(ticks)})
    await gw.register("someone@example.com")
    h = with_session(await sign_in(gw))
    listed = (await gw.http.get("/console/api/session", headers=h)).json()["pages"]
    assert {"name": "probe", "title": "Probe", "topics": ["probe"]} in listed
    r = await gw.http.get("/console/api/pages/probe", headers=h)
    assert r.json()["data"] == {"users": 1}
    assert b'src="/console/static/pages/probe.js"' in (await gw.http.get("/console")).content
    url = "/console/api/pages/probe/actions/double"
    r = await gw.http.post(url, json={"n": 21}, headers={**h, **origin(gw)})
    base = f"http://127.0.0.1:{gw.runtime.rest_port}"
    assert r.json() == {"ok": True, "data": {"n": 42, "actor": "console:admin-key", "base": base}}
    r = await gw.http.post(url, json={"n": "x"}, headers={**h, **origin(gw)})
    assert r.status_code == 400 and r.json() == {"error": "n must be an integer"}
    assert (await gw.http.post(url, content=b"[1]", headers={**h, **origin(gw)})).status_code == 400
    assert (await gw.http.post(url, json={"n": 1}, headers=h)).status_code == 403
    r = await gw.http.post(url.replace("double", "nope"), json={}, headers={**h, **origin(gw)})
    assert r.status_code == 404
    async with gw.http.stream("GET", "/console/api/stream?page=probe", headers=h) as s:
        async for line in s.aiter_lines():
            if line.startswith("data: "):
                assert json.loads(line[6:])["tick"] >= 1
                break


async def test_the_console_can_be_switched_off(tmp_path: Path, make_gateway: Any) -> None:
    settings = make_settings(tmp_path, [])
    settings.console = ConsoleSettings(enabled=False)
    gw: Gateway = await make_gateway(settings)
    for path in ("/console", "/docs", "/console/api/session"):
        r = await gw.http.get(path)
        assert r.status_code == 404 and r.json() == {"error": "not found"}
    assert (await gw.http.get("/healthy")).status_code == 200
    # The admin message API is not the console's page: it stays.
    r = await gw.http.get("/api/v1/admin/messages", headers={"X-Admin-Key": ADMIN_KEY})
    assert r.status_code == 200 and r.json() == {"success": True, "data": []}


async def test_the_links_page_shows_a_pools_traffic_split(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    from smsgateway.settings import PoolSettings

    sim = await make_sim()
    settings = make_settings(
        tmp_path,
        [link_to(sim, 1), link_to(sim, 2)],
        [PoolSettings(id=100, name="pool-1", links=[1, 2])],
    )
    gw: Gateway = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    user = await gw.user("pool@example.com")
    for n in range(20):
        r = await gw.send(user, esme=100, destination=f"+44770090{n:04d}")
        assert r.status_code == 200, r.text
    h = with_session(await sign_in(gw))
    view = (await gw.http.get("/console/api/pages/links", headers=h)).json()["data"]
    (pool,) = view["pools"]
    assert pool["name"] == "pool-1" and pool["status"] == "BOUND"
    members = {m["name"]: m for m in pool["members"]}
    assert set(members) == {"link-1", "link-2"}
    assert sum(m["submitted"] for m in members.values()) == 20
    assert abs(sum(m["share"] for m in members.values()) - 100.0) < 0.2
    links = {x["id"]: x for x in view["links"]}
    assert links[1]["submitted"] + links[2]["submitted"] == 20
    assert links[1]["window"] == 10 and links[1]["queue_depth"] == 0
    assert links[1]["last_submit_at"] is not None or links[2]["last_submit_at"] is not None


async def test_the_links_page_shows_failover_through_a_priority_list(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    from smsgateway.settings_channels import ListSettings

    sim = await make_sim()
    settings = make_settings(tmp_path, [link_to(sim, 1), link_to(sim, 2)])
    settings.smpp.lists = [ListSettings(id=200, name="failover", members=[1, 2])]
    settings.validate()
    gw: Gateway = await make_gateway(settings)
    await gw.bound(1)
    await gw.bound(2)
    session = await sign_in(gw)
    r = await gw.http.post(
        "/console/api/links/1/toggle",
        json={"enabled": False, "reason": "drill"},
        headers=with_session(session, **origin(gw)),
    )
    assert r.status_code == 200
    user = await gw.user("list@example.com")
    for n in range(3):
        r = await gw.send(user, esme=200, destination=f"+44770091{n:04d}")
        assert r.status_code == 200 and r.json()["success"], r.text
    view = (await gw.http.get("/console/api/pages/links", headers=with_session(session))).json()[
        "data"
    ]
    (failover,) = view["lists"]
    assert failover["name"] == "failover" and failover["status"] == "BOUND"
    first, second = failover["members"]
    assert (first["name"], first["status"]) == ("link-1", "DISABLED")
    assert first["attempts"]["down"] == 3 and first["attempts"]["accepted"] == 0
    assert second["attempts"] == {"accepted": 3, "refused": 0, "timeout": 0, "down": 0}
