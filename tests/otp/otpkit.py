"""Helpers for the OTP tests: a gateway with one SMPP link to the simulator, projects
made through the admin API, and the code read back from what the simulator got."""

from __future__ import annotations

import re
from typing import Any

from gwkit import Gateway, admin
from smsgateway.smpp.text import decode_short_message
from smsgateway.smscsim.simulator import SmscSimulator

NUMBER = "+447700900123"
OTHER = "+447700900456"


async def project(gw: Gateway, name: str = "Acme", **settings: Any) -> tuple[int, str]:
    """A new project and one API key for it: (project_id, api_key)."""
    r = await gw.http.post(
        "/api/v1/admin/projects", json={"name": name, **settings}, headers=admin()
    )
    assert r.status_code == 201, r.text
    project_id = int(r.json()["data"]["project_id"])
    return project_id, await new_key(gw, project_id)


async def new_key(gw: Gateway, project_id: int) -> str:
    r = await gw.http.post(f"/api/v1/admin/projects/{project_id}/api-keys", headers=admin())
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["key_id"] and data["api_key"]
    return str(data["api_key"])


def key(api_key: str, **extra: str) -> dict[str, str]:
    return {"X-SMX-API-Key": api_key, **extra}


def texts_to(sim: SmscSimulator, number: str) -> list[str]:
    """Texts of every submit the simulator got for `number` (digits compared)."""
    digits = number.lstrip("+")
    out = []
    for m in sim.recent_messages(10_000):
        if m["destination_addr"].lstrip("+") == digits:
            raw = bytes.fromhex(m["short_message"])
            out.append(decode_short_message(raw, m["data_coding"], udhi=False).text)
    return out


def code_in(text: str) -> str:
    found = re.search(r"\b([0-9]{4,10})\b", text)
    assert found, text
    return found.group(1)


def error_of(r: Any) -> dict[str, Any]:
    body = r.json()
    assert body["success"] is False, body
    err: dict[str, Any] = body["error"]
    assert set(err) == {"code", "message", "origin", "requestId"}, err
    assert err["requestId"] == r.headers["x-request-id"]
    return err
