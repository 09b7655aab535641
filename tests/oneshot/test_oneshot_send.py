"""POST /sms/messages all the way to SMSC simulators: tokens from the gateway's own
endpoint and from a real OIDC provider both send; the [sms_api] list fails over (link A
refusing every submit, or not bound, and the message reaches B's SMSC, one attempt per
member); every gateway refusing is a 500 problem; Idempotency-Key sends once; the
boundary bodies of 003 go out as one SMS each; the sends are ordinary messages."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from gwkit import Gateway, admin, dead_link, eventually, link_to, make_settings, metric
from oidckit import AUDIENCE, OidcProvider
from smsgateway.settings import LinkSettings, Settings
from smsgateway.settings_channels import SmsApiSettings
from smsgateway.settings_oauth import IssuerSettings, OAuthSettings
from smsgateway.smscsim.simulator import SmscSimulator
from tokkit import bearer, create_client, get_token

SimFactory = Callable[..., Awaitable[SmscSimulator]]
GatewayFactory = Callable[[Settings], Awaitable[Gateway]]
OK = {"sender": "+4740003410", "recipient": "+4798765432", "message": "Your code: 1234"}
EMOJI = "\U0001f600"
# Process-global counters (every test runs in one process): tests assert deltas.
SENT = 'smsgateway_sms_api_requests_total{outcome="sent"}'
REFUSED = 'smsgateway_sms_api_requests_total{outcome="refused"}'


async def _gateway(
    tmp_path: Path,
    make_gateway: GatewayFactory,
    links: list[LinkSettings],
    *,
    oidc: OidcProvider | None = None,
    timeout_s: float = 2.0,
) -> Gateway:
    settings = make_settings(tmp_path, links)
    settings.sms_api = SmsApiSettings(
        gateways=[link.id for link in links], attempt_timeout_s=timeout_s
    )
    issuers = [IssuerSettings(issuer=oidc.issuer, audience=AUDIENCE)] if oidc else []
    settings.oauth = OAuthSettings(issuers=issuers)
    settings.validate()
    gw = await make_gateway(settings)
    router = gw.runtime.router
    assert router is not None and router.sms_api is not None
    sms_api = router.sms_api
    await eventually(lambda: sms_api.ready)
    return gw


async def _token(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    client_id, secret = await create_client(http)
    return client_id, bearer(await get_token(http, client_id, secret))


def _rows(gw: Gateway, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        return conn.execute(sql, params).fetchall()


def _attempts(gw: Gateway, message_id: str) -> list[tuple[int, str]]:
    return [
        (r[0], r[1])
        for r in _rows(
            gw,
            "SELECT channel_id, outcome FROM attempts WHERE message_id = ? ORDER BY attempt",
            message_id,
        )
    ]


async def test_own_and_oidc_tokens_both_send(
    tmp_path: Path,
    make_sim: SimFactory,
    make_gateway: GatewayFactory,
    oidc: OidcProvider,
) -> None:
    sim = await make_sim()
    gw = await _gateway(tmp_path, make_gateway, [link_to(sim, 1)], oidc=oidc)
    await gw.bound(1)
    sent_before = await metric(gw.http, SENT)
    client_id, own = await _token(gw.http)
    r = await gw.http.post("/sms/messages", json=OK, headers=own)
    assert r.status_code == 200, r.text
    assert r.content == b""
    got = sim.recent_messages()
    assert [m["status"] for m in got] == ["OK"]
    assert got[0]["destination_addr"] == "4798765432"
    assert bytes.fromhex(got[0]["short_message"]) == b"Your code: 1234"

    external = bearer(await oidc.token())
    r = await gw.http.post("/sms/messages", json={**OK, "sender": "Signicat"}, headers=external)
    assert r.status_code == 200, r.text
    assert len(sim.recent_messages()) == 2
    # The owners say whose messages they are.
    owners = {row[0] for row in _rows(gw, "SELECT owner FROM messages")}
    assert owners == {f"oauth:{client_id}", f"oauth:{oidc.issuer}#main-client"}
    # An alphanumeric sender goes out with TON 5.
    last = list(sim.messages)[-1][2]
    assert last.source_addr == "Signicat" and last.source_addr_ton == 5

    assert await metric(gw.http, SENT) - sent_before == 2
    totals = (await gw.http.get("/api/v1/admin/dashboard/metrics", headers=admin())).json()
    assert totals["data"]["total_messages"] == 2


async def test_boundary_messages_go_out_as_one_sms(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    sim = await make_sim()
    gw = await _gateway(tmp_path, make_gateway, [link_to(sim, 1)])
    await gw.bound(1)
    _, auth = await _token(gw.http)
    texts = ["a" * 160, "€" * 80, "a" * 158 + "€", "ж" * 70, EMOJI * 35, "ж" * 68 + EMOJI]
    for text in texts:
        r = await gw.http.post("/sms/messages", json={**OK, "message": text}, headers=auth)
        assert r.status_code == 200, (text, r.text)
    got = sim.recent_messages()
    assert len(got) == len(texts)  # one submit each: one SMS, no concatenation
    assert all(m["esm_class"] & 0x40 == 0 for m in got)
    assert [m["data_coding"] for m in got] == [0, 0, 0, 8, 8, 8]


async def test_failover_when_the_first_gateway_refuses(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    a, b = await make_sim(), await make_sim()
    a.configure(fail_rate=1.0)
    gw = await _gateway(tmp_path, make_gateway, [link_to(a, 1), link_to(b, 2)])
    await gw.bound(1)
    await gw.bound(2)
    client_id, auth = await _token(gw.http)
    r = await gw.http.post("/sms/messages", json=OK, headers=auth)
    assert r.status_code == 200, r.text
    assert [m["status"] for m in a.recent_messages()] == ["ESME_RSUBMITFAIL"]
    assert [m["status"] for m in b.recent_messages()] == ["OK"]
    # A message like any other: the admin message search finds it by owner, with the
    # attempt each member made.
    found = await gw.http.get(
        "/api/v1/admin/messages", params={"owner": f"oauth:{client_id}"}, headers=admin()
    )
    assert found.status_code == 200, found.text
    (row,) = found.json()["data"]
    assert row["destination"] == OK["recipient"] and row["link_id"] == 2
    detail = await gw.http.get(f"/api/v1/admin/messages/{row['message_id']}", headers=admin())
    attempts = [(t["channel_id"], t["outcome"]) for t in detail.json()["data"]["attempts"]]
    assert attempts == [(1, "refused"), (2, "accepted")]
    assert _attempts(gw, row["message_id"]) == attempts


async def test_failover_when_the_first_gateway_is_down(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    b = await make_sim()
    gw = await _gateway(tmp_path, make_gateway, [dead_link(1), link_to(b, 2)])
    await gw.bound(2)
    _, auth = await _token(gw.http)
    r = await gw.http.post("/sms/messages", json=OK, headers=auth)
    assert r.status_code == 200, r.text
    assert [m["status"] for m in b.recent_messages()] == ["OK"]
    (message_id,) = [row[0] for row in _rows(gw, "SELECT id FROM messages")]
    assert _attempts(gw, message_id) == [(1, "down"), (2, "accepted")]


async def test_every_gateway_refusing_is_a_500_problem(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    a, b = await make_sim(), await make_sim()
    a.configure(fail_rate=1.0)
    b.configure(fail_rate=1.0)
    link_a = link_to(a, 1)
    gw = await _gateway(tmp_path, make_gateway, [link_a, link_to(b, 2)])
    await gw.bound(1)
    await gw.bound(2)
    refused_before = await metric(gw.http, REFUSED)
    _, auth = await _token(gw.http)
    r = await gw.http.post("/sms/messages", json=OK, headers=auth)
    assert r.status_code == 500, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["title"] == "500 Internal Server Error"
    assert body["status"] == 500
    assert body["instance"] == str(r.request.url)
    # The detail names no link, host, port, system id or password.
    for secret in ("127.0.0.1", str(a.smpp_port), "link-1", link_a.system_id, "pw", "ESME_"):
        assert secret not in body["detail"]
    (message_id,) = [row[0] for row in _rows(gw, "SELECT id FROM messages")]
    assert _attempts(gw, message_id) == [(1, "refused"), (2, "refused")]
    assert await metric(gw.http, REFUSED) - refused_before == 1


async def test_idempotency_key_sends_once(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    sim = await make_sim()
    gw = await _gateway(tmp_path, make_gateway, [link_to(sim, 1)])
    await gw.bound(1)
    client_id, auth = await _token(gw.http)
    keyed = auth | {"Idempotency-Key": "order-1"}
    first = await gw.http.post("/sms/messages", json=OK, headers=keyed)
    again = await gw.http.post("/sms/messages", json=OK, headers=keyed)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.content == b""
    assert len(sim.recent_messages()) == 1  # nothing sent twice
    # Concurrent repeats: one send, the others answered from the first.
    burst = auth | {"Idempotency-Key": "order-2"}
    answers = await asyncio.gather(
        *(gw.http.post("/sms/messages", json=OK, headers=burst) for _ in range(5))
    )
    assert sorted({a.status_code for a in answers}) in ([200], [200, 409])
    assert len(sim.recent_messages()) == 2
    # The same key with another body: 409 problem, nothing sent.
    other = await gw.http.post(
        "/sms/messages", json={**OK, "message": "Your code: 9999"}, headers=keyed
    )
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["title"] == "409 Conflict"
    assert len(sim.recent_messages()) == 2
    # Keys are per owner: another client may use the same key.
    _, stranger = await _token(gw.http)
    r = await gw.http.post(
        "/sms/messages", json=OK, headers=stranger | {"Idempotency-Key": "order-1"}
    )
    assert r.status_code == 200
    assert len(sim.recent_messages()) == 3
    # A bad key is a violation.
    r = await gw.http.post("/sms/messages", json=OK, headers=auth | {"Idempotency-Key": "a b"})
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["violations"][0]["message"]
    assert client_id


async def test_a_refused_send_releases_its_idempotency_key(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    sim = await make_sim()
    sim.configure(fail_rate=1.0)
    gw = await _gateway(tmp_path, make_gateway, [link_to(sim, 1)])
    await gw.bound(1)
    _, auth = await _token(gw.http)
    keyed = auth | {"Idempotency-Key": "retry-me"}
    assert (await gw.http.post("/sms/messages", json=OK, headers=keyed)).status_code == 500
    sim.configure(fail_rate=0.0)
    assert (await gw.http.post("/sms/messages", json=OK, headers=keyed)).status_code == 200
    assert [m["status"] for m in sim.recent_messages()] == ["ESME_RSUBMITFAIL", "OK"]
    assert (await gw.http.post("/sms/messages", json=OK, headers=keyed)).status_code == 200
    assert len(sim.recent_messages()) == 2


async def test_expired_idempotency_keys_are_swept(
    tmp_path: Path, make_sim: SimFactory, make_gateway: GatewayFactory
) -> None:
    sim = await make_sim()
    gw = await _gateway(tmp_path, make_gateway, [link_to(sim, 1)])
    await gw.bound(1)
    _, auth = await _token(gw.http)
    keyed = auth | {"Idempotency-Key": "old-order"}
    assert (await gw.http.post("/sms/messages", json=OK, headers=keyed)).status_code == 200
    oneshot = gw.runtime.oneshot
    assert oneshot is not None
    assert await oneshot.idempotency.sweep() == 0  # still live
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        conn.execute("UPDATE idempotency SET expires_at = 1 WHERE key = 'old-order'")
    assert await oneshot.idempotency.sweep() == 1
    assert _rows(gw, "SELECT key FROM idempotency WHERE key = 'old-order'") == []
    # The key is free again: another body under it is a new send, not a 409.
    other = {**OK, "message": "Your code: 5678"}
    assert (await gw.http.post("/sms/messages", json=other, headers=keyed)).status_code == 200
    assert len(sim.recent_messages()) == 2
