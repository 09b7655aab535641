"""Webhook URL checks (set time and delivery time), address pinning, signatures."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from numkit import DE, Receiver, create_user, de_numbers, import_numbers, numbers_settings

from gwkit import Gateway, admin, eventually
from smsgateway.core.errors import InvalidWebhookUrl
from smsgateway.core.webhooks import UrlPolicy, check_webhook_url, sign, signature_header, verify
from smsgateway.core.webhooks.urls import WebhookUrlRefused, resolve_target
from smsgateway.smscsim.simulator import SmscSimulator

STRICT = UrlPolicy()
OPEN = UrlPolicy(allow_http=True, allow_private=True)


def test_set_time_checks() -> None:
    assert check_webhook_url("https://hooks.example.com/otp?x=1", STRICT) == (
        "https://hooks.example.com/otp?x=1"
    )
    assert check_webhook_url("", STRICT) == ""
    for url in (
        "https://100.64.0.1/x",  # carrier-grade NAT: not public
        "https://0.0.0.0/x",
        "https://[fe80::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://hooks.example.com:99999/x",
        "https://hooks.example.com/a b",
        "https:///nohost",
    ):
        with pytest.raises(InvalidWebhookUrl):
            check_webhook_url(url, STRICT)
    assert check_webhook_url("http://127.0.0.1:8080/x", OPEN) == "http://127.0.0.1:8080/x"


async def test_delivery_time_resolution_refuses_a_name_of_a_private_address() -> None:
    """A name that passes the set-time check but resolves to a non-public address now
    (this machine's own name: loopback or a private address) is refused."""
    name = socket.gethostname()
    try:
        socket.getaddrinfo(name, 443)
    except OSError:
        pytest.skip("this machine's name does not resolve")
    url = f"https://{name}/hook"
    check_webhook_url(url, STRICT)  # a plain name: fine when set
    with pytest.raises(WebhookUrlRefused, match="resolves to"):
        await resolve_target(url, STRICT)


async def test_the_checked_address_is_the_one_connected_to() -> None:
    target = await resolve_target("http://localhost:8123/hook?a=1", OPEN)
    assert target.url in ("http://127.0.0.1:8123/hook?a=1", "http://[::1]:8123/hook?a=1")
    assert target.host == "localhost:8123" and target.server_name is None
    tls = await resolve_target("https://localhost/hook", OPEN)
    assert tls.host == "localhost" and tls.server_name == "localhost"
    with pytest.raises(WebhookUrlRefused):
        await resolve_target("http://localhost:8123/hook", UrlPolicy(allow_http=True))


def test_signature() -> None:
    body = b'{"event":"otp_received"}'
    ts = str(int(time.time()))
    header = signature_header("whsec_x", ts, body)
    assert header == "sha256=" + sign("whsec_x", ts, body)
    assert verify("whsec_x", ts, body, header)
    assert not verify("whsec_x", ts, body + b" ", header)
    assert not verify("whsec_y", ts, body, header)
    assert not verify(
        "whsec_x", str(int(ts) - 3600), body, signature_header("whsec_x", str(int(ts) - 3600), body)
    )


async def test_private_url_stored_earlier_is_refused_at_delivery(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    """Stored while private addresses were allowed; the setting turned off since: the
    delivery-time check refuses it (logged as refused_url), nothing is sent."""
    receiver = Receiver()
    await receiver.start()
    try:
        sim: SmscSimulator = await make_sim()
        first: Gateway = await make_gateway(
            numbers_settings(tmp_path, sim, allow_http_webhooks=True, allow_private_webhooks=True)
        )
        user = await create_user(first.http, "p@example.com", webhook_url=receiver.url)
        await import_numbers(first.http, de_numbers(1))
        r = await first.http.get(f"/api/get-number/{user['api_key']}", params={"country_id": DE})
        phone = r.json()["data"]["phone_number"]
        await first.stop()
        gw: Gateway = await make_gateway(
            numbers_settings(tmp_path, sim, allow_http_webhooks=True, webhook_backoff_base_s=60.0)
        )
        await gw.bound()
        await sim.push_mo("Google", phone.lstrip("+"), "G-135790 is your code")
        event_id = await eventually(lambda: _first_event(gw))
        await eventually(lambda: _attempted(gw, event_id))
        log = (await gw.http.get(f"/api/v1/admin/webhooks/{event_id}", headers=admin())).json()
        assert log["data"]["attempt_log"][0]["outcome"] == "refused_url"
        assert "loopback" in log["data"]["attempt_log"][0]["error"]
        assert receiver.received == []
    finally:
        await receiver.stop()


def _first_event(gw: Gateway) -> str | None:
    with sqlite3.connect(gw.runtime.settings.storage.path) as conn:
        row = conn.execute("SELECT event_id FROM webhook_outbox").fetchone()
    return None if row is None else str(row[0])


async def _attempted(gw: Gateway, event_id: str) -> bool:
    r = await gw.http.get(f"/api/v1/admin/webhooks/{event_id}", headers=admin())
    return bool(r.json()["data"]["attempt_log"])
