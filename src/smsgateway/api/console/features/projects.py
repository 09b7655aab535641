"""The Projects page: OTP projects (document 004), their API keys and their phone.

Through core.otp's ProjectService and the DeviceService, as /api/v1/admin/projects
does. A new API key is shown once, in the answer to the action that made it; the QR
of a device link is drawn on the page (an SVG image) with its one-time code.
"""

from __future__ import annotations

from typing import Any

import msgspec
import segno

from ....core.devices import DeviceService
from ....core.errors import Unavailable
from ....core.otp.projects import Project, ProjectPatch
from ....core.otp.wiring import OtpServices
from ...services import Services
from ..pages import ActionContext, Page, register_page
from .base import body_as


class NewProject(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class ProjectRef(msgspec.Struct, forbid_unknown_fields=True):
    project_id: int


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    project_id: int
    name: str = ""


class KeyRef(msgspec.Struct, forbid_unknown_fields=True):
    project_id: int
    key_id: str


def _otp(services: Services) -> OtpServices:
    if services.otp is None:
        raise Unavailable("the OTP service is not running")
    return services.otp


def _devices(services: Services) -> DeviceService:
    if services.devices is None:
        raise Unavailable("the device service is not running")
    return services.devices


async def _project_view(services: Services, p: Project) -> dict[str, Any]:
    keys = await _otp(services).projects.keys(p.id)
    devices = services.devices
    device = await devices.active_device(p.id) if devices is not None else None
    return {
        "project_id": p.id,
        "name": p.name,
        "channel": p.settings.channel,
        "created_at": p.created_at,
        "api_keys": [
            {
                "key_id": k.key_id,
                "name": k.name,
                "created_at": k.created_at,
                "revoked_at": k.revoked_at,
            }
            for k in keys
        ],
        "device": None
        if device is None
        else {
            "id": device.id,
            "name": device.name,
            "online": device.online,
            "last_seen_ms": device.last_seen_ms,
            "queue_depth": device.queue_depth,
        },
    }


async def snapshot(services: Services) -> dict[str, Any]:
    projects = await _otp(services).projects.all()
    return {"projects": [await _project_view(services, p) for p in projects]}


async def create_project(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    new = body_as(body, NewProject)
    project = await _otp(ctx.services).projects.create(ProjectPatch(name=new.name))
    await _audit(ctx, "project.create", f"project:{project.id}", project.name)
    return {"project_id": project.id, "name": project.name}


async def create_key(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    new = body_as(body, NewKey)
    key = await _otp(ctx.services).projects.create_key(new.project_id, new.name)
    await _audit(ctx, "project.key.create", f"project:{new.project_id}", key.key_id)
    return {"project_id": new.project_id, "key_id": key.key_id, "api_key": key.api_key}


async def revoke_key(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    ref = body_as(body, KeyRef)
    await _otp(ctx.services).projects.revoke_key(ref.project_id, ref.key_id)
    await _audit(ctx, "project.key.revoke", f"project:{ref.project_id}", ref.key_id)
    return {"project_id": ref.project_id, "key_id": ref.key_id, "revoked": True}


async def link_device(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    ref = body_as(body, ProjectRef)
    project = await _otp(ctx.services).projects.get(ref.project_id)
    link = await _devices(ctx.services).create_link(project.id, ctx.base_url)
    await _audit(ctx, "device.link", f"project:{project.id}", "")
    # An <img> (img-src data:) rather than inline markup; the link's own SVG is made
    # for inlining and has no namespace, which an image needs.
    image = segno.make(link.qr_url, error="m").svg_data_uri(scale=4, border=2)
    return {
        "project_id": project.id,
        "code": link.code,
        "server_url": link.server_url,
        "expires_at_ms": link.expires_at_ms,
        "qr_url": link.qr_url,
        "qr_image": image,
    }


async def revoke_device(ctx: ActionContext, body: dict[str, Any]) -> dict[str, Any]:
    ref = body_as(body, ProjectRef)
    revoked = await _devices(ctx.services).revoke(ref.project_id)
    await _audit(ctx, "device.revoke", f"project:{ref.project_id}", "")
    return {"project_id": ref.project_id, "revoked": revoked}


async def _audit(ctx: ActionContext, action: str, target: str, detail: str) -> None:
    if ctx.services.console is not None:
        await ctx.services.console.store.audit(ctx.actor, action, target, detail)


register_page(
    Page(
        "projects",
        "OTP projects",
        snapshot,
        order=50,
        actions={
            "create_project": create_project,
            "create_key": create_key,
            "revoke_key": revoke_key,
            "link_device": link_device,
            "revoke_device": revoke_device,
        },
    )
)
