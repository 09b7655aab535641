"""Webhook URL checks (set time and delivery time), address pinning, signatures."""

from __future__ import annotations

import asyncio
import datetime
import socket
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from numkit import DE, Receiver, create_user, de_numbers, import_numbers, numbers_settings

from gwkit import Gateway, admin, eventually
from smsgateway.core.errors import InvalidWebhookUrl
from smsgateway.core.secrets import Secrets
from smsgateway.core.webhooks import UrlPolicy, check_webhook_url, sign, signature_header, verify
from smsgateway.core.webhooks.deliverer import WebhookDeliverer
from smsgateway.core.webhooks.urls import WebhookUrlRefused, resolve_target
from smsgateway.settings_numbers import NumbersSettings
from smsgateway.smscsim.simulator import SmscSimulator
from smsgateway.store.numbers import NumbersStore, OutboxItem
from smsgateway.store.sqlite import SqliteStore

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


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


async def test_https_delivery_connects_to_the_checked_address_with_the_url_name(
    tmp_path: Path,
) -> None:
    """https to a name: the TCP connection goes to the address that was checked, the
    TLS server name (SNI) and the certificate check use the URL's name. Our receiver's
    certificate is self-signed, so the attempt must fail verification (not be sent
    unverified), after the handshake carried the right name."""
    server_names: list[str | None] = []
    ctx = _self_signed(tmp_path)
    ctx.sni_callback = lambda sock, name, _ctx: server_names.append(name)  # type: ignore[assignment,misc]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        db = tmp_path / "x.db"
        store = await SqliteStore.open(str(db))
        try:
            numbers = NumbersStore(store)
            secrets = Secrets(b"k" * 32)
            user_id = await numbers.create_user(
                email="t@example.com",
                name="",
                manager_id=None,
                webhook_url=f"https://localhost:{port}/hook",
                number_format="full",
                key_hash="h",
                secret_enc=secrets.encrypt_secret("whsec_t"),
                now=0,
            )
            assert user_id is not None
            settings = NumbersSettings(allow_private_webhooks=True, webhook_timeout_s=5)
            deliverer = WebhookDeliverer(numbers, secrets, settings)
            item = OutboxItem(
                "e1", user_id, b"{}", 0, 0, f"https://localhost:{port}/hook",
                secrets.encrypt_secret("whsec_t"),
            )  # fmt: skip
            outcome, status, error = await deliverer._post(item)
            await deliverer.stop()
        finally:
            await store.close()
    finally:
        server.close()
    assert server_names == ["localhost"]
    assert outcome == "connect_error" and status is None
    assert "CERTIFICATE_VERIFY_FAILED" in error or "certificate" in error.lower()
