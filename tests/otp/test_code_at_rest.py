"""OTP codes at rest: an OTP message's text (which holds the code) is stored sealed
while pending and wiped once final; the admin view shows a marker; a restart still
sends the right code. The SQLite files are read directly (every table, every column,
and the raw db/wal bytes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from otpkit import NUMBER, OTHER, code_in, key, project, texts_to

from gwkit import admin, eventually, link_to, make_settings
from smsgateway.core.sealed import REDACTED_TEXT, WIPED_BODY, WIPED_PART
from smsgateway.settings_otp import OtpSettings

TEMPLATE = "Your code is {{code}}"


def db_path(gw: Any) -> Path:
    return Path(gw.runtime.settings.storage.path)


def stored_bytes(path: Path) -> bytes:
    """Every value of every row of every table, as bytes, plus the raw files."""
    out = bytearray()
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        out += value
                    elif value is not None:
                        out += str(value).encode("utf-8")
                    out += b"\x1f"
    for suffix in ("", "-wal"):
        f = Path(str(path) + suffix)
        if f.exists():
            out += f.read_bytes()
    return bytes(out)


def message_rows(path: Path, owner: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT id, status, body FROM messages WHERE owner = ? ORDER BY id", (owner,)
        ).fetchall()


def part_payloads(path: Path, message_id: str) -> list[bytes]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT short_message FROM parts WHERE message_id = ? ORDER BY seq", (message_id,)
        ).fetchall()
    return [r[0] for r in rows]


async def admin_text(gw: Any, message_id: str) -> str:
    r = await gw.http.get(f"/api/v1/admin/messages/{message_id}", headers=admin())
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["message"]["text"])


async def test_code_sealed_while_pending_survives_restart_and_is_wiped(
    tmp_path: Path, make_sim: Any, make_gateway: Any
) -> None:
    sim = await make_sim(refuse_binds=True)  # the SMSC is away: the OTP stays pending
    settings = make_settings(tmp_path, [link_to(sim)])
    settings.otp = OtpSettings()
    settings.validate()
    gw = await make_gateway(settings)
    pid, k = await project(gw, "Acme", channel=1, code_length=8, template=TEMPLATE)
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.status_code == 200, r.text
    vid = r.json()["data"]["verificationId"]
    owner = f"project:{pid}"
    [(mid, status, body)] = await eventually(lambda: message_rows(db_path(gw), owner))
    assert status == "queued" and body.startswith("\x00sealed:")
    assert await admin_text(gw, mid) == REDACTED_TEXT
    pending = stored_bytes(db_path(gw))
    assert b"Your code is " not in pending.replace(b"Your code is {{code}}", b"")
    await gw.stop()

    # Restarted with the SMSC back: the stored message goes out with the right code.
    sim.configure(refuse_binds=False)
    gw = await make_gateway(settings)
    [text] = await eventually(lambda: texts_to(sim, NUMBER))
    code = code_in(text)
    assert text == f"Your code is {code}" and len(code) == 8
    assert code.encode() not in pending

    async def delivered() -> bool:
        return message_rows(db_path(gw), owner)[0][1] == "delivered"

    await eventually(delivered)
    [(_, _, body)] = message_rows(db_path(gw), owner)
    assert body == WIPED_BODY
    assert part_payloads(db_path(gw), mid) == [WIPED_PART]
    assert code.encode() not in stored_bytes(db_path(gw))
    assert await admin_text(gw, mid) == REDACTED_TEXT
    r = await gw.http.post(
        "/v1/verify-otp", json={"verificationId": vid, "otp": code}, headers=key(k)
    )
    assert r.json()["data"]["verified"] is True


async def test_resend_sealed_and_wiped_when_delivered(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    pid, k = await project(gw, channel=1, code_length=8, max_sends=2, template=TEMPLATE)
    for _ in range(2):  # the send and a resend of the same code
        r = await gw.http.post("/v1/send-otp", json={"to": OTHER}, headers=key(k))
        assert r.status_code == 200, r.text
    texts = await eventually(lambda: len(texts_to(sim, OTHER)) == 2 and texts_to(sim, OTHER))
    code = code_in(texts[0])
    owner = f"project:{pid}"

    async def all_delivered() -> bool:
        rows = message_rows(db_path(gw), owner)
        return len(rows) == 2 and all(r[1] == "delivered" for r in rows)

    await eventually(all_delivered)
    for mid, _, body in message_rows(db_path(gw), owner):
        assert body == WIPED_BODY
        assert part_payloads(db_path(gw), mid) == [WIPED_PART]
        assert await admin_text(gw, mid) == REDACTED_TEXT
    assert code.encode() not in stored_bytes(db_path(gw))


async def test_rejected_otp_is_wiped(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    sim.configure(fail_rate=1.0)  # every submit refused: the message ends rejected
    pid, k = await project(gw, channel=1, template=TEMPLATE)
    r = await gw.http.post("/v1/send-otp", json={"to": NUMBER}, headers=key(k))
    assert r.status_code == 200, r.text

    async def rejected() -> bool:
        rows = message_rows(db_path(gw), f"project:{pid}")
        return bool(rows) and rows[0][1] == "rejected"

    await eventually(rejected)
    [(mid, _, body)] = message_rows(db_path(gw), f"project:{pid}")
    assert body == WIPED_BODY and part_payloads(db_path(gw), mid) == [WIPED_PART]


async def test_custom_messages_are_not_sealed(otp_gateway) -> None:
    gw, sim = await otp_gateway()
    pid, k = await project(gw, channel=1)
    r = await gw.http.post(
        "/v1/messages", json={"to": NUMBER, "text": "hello 4242"}, headers=key(k)
    )
    assert r.status_code == 200, r.text
    await eventually(lambda: texts_to(sim, NUMBER) == ["hello 4242"])
    [(mid, _, body)] = message_rows(db_path(gw), f"project:{pid}")
    assert body == "hello 4242"
    assert await admin_text(gw, mid) == "hello 4242"


def test_wrong_context_does_not_open(tmp_path: Path) -> None:
    from smsgateway.core.sealed import Sealer
    from smsgateway.core.secrets import Secrets, SecretsError

    sealer = Sealer(Secrets.load(tmp_path))
    body = sealer.seal_body("m1", "Your code is 12345678")
    assert "12345678" not in body and sealer.open_body("m1", body) == "Your code is 12345678"
    try:
        sealer.open_body("m2", body)  # pasted onto another message: refused
    except SecretsError:
        pass
    else:
        raise AssertionError("a sealed body opened under another message id")
