"""Test kit for the device channel: a gateway with no SMPP link, device links made
through `runtime.devices` (where the projects' admin endpoint will call it), and the
reference phone (`smsgateway.devicesim`) talking to it over real sockets."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gwkit import (
    Gateway,
    make_settings,
    self_signed,  # noqa: F401  (re-exported for tests/devices)
)
from smsgateway.core.devices import DeviceService
from smsgateway.devicesim import DeviceSim, linked_phone
from smsgateway.settings import Settings
from smsgateway.settings_devices import DeviceSettings

GatewayFactory = Callable[[Settings], Awaitable[Gateway]]


def device_settings(tmp_path: Path, **devices: Any) -> Settings:
    settings = make_settings(tmp_path, [])
    devices.setdefault("sse_keepalive_s", 0.2)
    settings.devices = DeviceSettings(**devices)
    settings.validate()
    return settings


def svc(gw: Gateway) -> DeviceService:
    assert gw.runtime.devices is not None
    return gw.runtime.devices


def base(gw: Gateway) -> str:
    return f"http://127.0.0.1:{gw.runtime.rest_port}"


def mobile(gw: Gateway) -> str:
    return base(gw) + "/mobile/v1"


async def new_code(gw: Gateway, project_id: int) -> str:
    link = await svc(gw).create_link(project_id, base(gw))
    return link.code


async def phone(gw: Gateway, project_id: int, **kw: Any) -> DeviceSim:
    """A reference phone linked to the project with a fresh code, online."""
    kw.setdefault("retry_s", 0.05)
    kw.setdefault("deliver_delay_s", 0.01)
    return await linked_phone(svc(gw), project_id, base(gw), **kw)


async def send(
    gw: Gateway,
    project_id: int,
    text: str,
    to: str = "+447700900123",
    *,
    validity_ms: int | None = None,
) -> str:
    """Send as a project does: through MessageService.send to the project's device."""
    channel_id = svc(gw).channel_id(project_id)
    assert channel_id is not None, "project has no device"
    messages = gw.runtime.messages
    assert messages is not None
    result = await messages.send(
        owner=f"project:{project_id}",
        channel_id=channel_id,
        source="Gateway",
        destination=to,
        text=text,
        wait="stored",
        validity_ms=validity_ms,
    )
    return str(result.message_id)


def db(gw: Gateway) -> sqlite3.Connection:
    return sqlite3.connect(gw.runtime.settings.storage.path)


def message_status(gw: Gateway, message_id: str) -> tuple[str, list[tuple[int, str, str | None]]]:
    """The message's stored status and its parts (seq, state, smsc_id), read from the
    database file as another process would."""
    with db(gw) as conn:
        row = conn.execute("SELECT status FROM messages WHERE id = ?", (message_id,)).fetchone()
        parts = conn.execute(
            "SELECT seq, state, smsc_id FROM parts WHERE message_id = ? ORDER BY seq",
            (message_id,),
        ).fetchall()
    assert row is not None, f"message {message_id} not stored"
    return row[0], [tuple(p) for p in parts]
