"""SMS the phone receives reach the gateway through the app's sms:received webhook:
GET /webhooks points it at the gateway, GET /settings gives the signing key, and the
app signs each POST with X-Signature = hex HMAC-SHA256(body + X-Timestamp)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

from devkit import GatewayFactory, db, device_settings, phone, svc


def _inbound(gw: object) -> list[tuple[int, str, str]]:
    with db(gw) as conn:  # type: ignore[arg-type]
        rows = conn.execute("SELECT link_id, source, text FROM inbound ORDER BY received_at")
        return [tuple(r) for r in rows.fetchall()]


async def test_signed_sms_is_stored_as_inbound(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 3)
    try:
        assert await sim.receive_sms("+447700900555", "Your code is 4321") == [204]
        channel_id = svc(gw).channel_id(3)
        assert _inbound(gw) == [(channel_id, "+447700900555", "Your code is 4321")]
    finally:
        await sim.stop()


async def test_bad_signature_is_refused(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 3)
    try:
        assert await sim.receive_sms("+447700900555", "forged", key="not-the-key") == [401]
        assert _inbound(gw) == []
        # Tampered body under a good signature.
        hook = sim.webhooks[0]["url"]
        body = json.dumps(
            {"id": "e1", "event": "sms:received", "payload": {"message": "a", "phoneNumber": "1"}}
        ).encode()
        ts = str(int(time.time()))
        assert sim.signing_key is not None
        sig = hmac.new(sim.signing_key.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
        signed = {"X-Signature": sig, "X-Timestamp": ts}
        r = await gw.http.post(
            hook,
            content=body.replace(b'"a"', b'"b"'),
            headers=signed,
        )
        assert r.status_code == 401
        r = await gw.http.post(hook, content=body)  # no signature at all
        assert r.status_code == 401
        r = await gw.http.post(
            hook.rsplit("/", 1)[0] + "/someone-else",
            content=body,
            headers=signed,
        )
        assert r.status_code == 401
        # The untampered one goes through.
        r = await gw.http.post(hook, content=body, headers=signed)
        assert r.status_code == 204
        assert [t for _, _, t in _inbound(gw)] == ["a"]
    finally:
        await sim.stop()


async def test_stale_timestamp_is_refused(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path, webhook_max_skew_s=60))
    sim = await phone(gw, 3)
    try:
        old = int(time.time()) - 120
        assert await sim.receive_sms("+447700900555", "replayed", timestamp=old) == [401]
        future = int(time.time()) + 120
        assert await sim.receive_sms("+447700900555", "early", timestamp=future) == [401]
        assert _inbound(gw) == []
        assert await sim.receive_sms("+447700900555", "fresh") == [204]
        assert len(_inbound(gw)) == 1
    finally:
        await sim.stop()


async def test_a_retried_event_is_stored_once(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 3)
    try:
        hook = sim.webhooks[0]["url"]
        body = json.dumps(
            {
                "id": "evt-1",
                "webhookId": "gw",
                "event": "sms:received",
                "deviceId": "local-id",
                "payload": {
                    "messageId": "m1",
                    "message": "once",
                    "phoneNumber": "+447700900555",
                    "simNumber": 1,
                    "receivedAt": "2026-12-04T19:00:00.000+01:00",
                },
            }
        ).encode()
        ts = str(int(time.time()))
        assert sim.signing_key is not None
        sig = hmac.new(sim.signing_key.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
        signed = {"X-Signature": sig, "X-Timestamp": ts}
        for _ in range(2):
            r = await gw.http.post(hook, content=body, headers=signed)
            assert r.status_code == 204
        assert [t for _, _, t in _inbound(gw)] == ["once"]
        with db(gw) as conn:
            (received,) = conn.execute("SELECT received_at FROM inbound").fetchone()
        assert received == 1796407200000  # 18:00 UTC, from the app's +01:00 date
    finally:
        await sim.stop()


async def test_revoked_device_webhook_is_refused(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = await make_gateway(device_settings(tmp_path))
    sim = await phone(gw, 3)
    try:
        await svc(gw).revoke(3)
        assert await sim.receive_sms("+447700900555", "after revoke") == [401]
        assert _inbound(gw) == []
    finally:
        await sim.stop()
