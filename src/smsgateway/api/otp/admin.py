"""Admin routes for projects (X-Admin-Key): projects, API keys, device link.

Bodies `{"success": true, "data": ...}`; errors keep the native `{"error": ...}`
through `NativeApi.endpoint`, as every other /api/v1/admin route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...core.errors import DeviceServiceMissing
from ...core.otp.projects import Project, ProjectPatch
from ...core.otp.service import iso
from ...core.otp.wiring import OtpServices
from ...store.otp import ApiKeyRow
from ..http import decode_json, json_response
from ..ops import _path_id

if TYPE_CHECKING:
    from ..rest import NativeApi

Handler = Callable[[Request], Awaitable[Response]]


class KeyBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""


class DeviceLinkBody(msgspec.Struct, forbid_unknown_fields=True):
    """Nothing to say yet; an empty body or `{}`."""


def _ok(data: Any, status: int = 200) -> Response:
    return json_response({"success": True, "data": data}, status)


def project_view(p: Project) -> dict[str, Any]:
    s = p.settings
    return {
        "project_id": p.id,
        "name": p.name,
        "channel": s.channel,
        "code_length": s.code_length,
        "ttl_s": s.ttl_s,
        "max_checks": s.max_checks,
        "max_sends": s.max_sends,
        "template": s.template,
        "sender": s.sender,
        "test_numbers": s.test_numbers,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


def key_view(k: ApiKeyRow) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "name": k.name,
        "created_at": iso(k.created_at),
        "revoked_at": iso(k.revoked_at),
        "active": k.revoked_at is None,
    }


class ProjectAdminRoutes:
    def __init__(self, api: NativeApi, otp: OtpServices) -> None:
        self.api = api
        self.otp = otp
        self.projects = otp.projects

    def _admin(self, request: Request) -> None:
        self.api._admin(request)

    async def _patch(self, request: Request) -> ProjectPatch:
        return decode_json(await self.api.read(request), ProjectPatch)

    async def create(self, request: Request) -> Response:
        self._admin(request)
        project = await self.projects.create(await self._patch(request))
        return _ok(project_view(project), 201)

    async def list_all(self, request: Request) -> Response:
        self._admin(request)
        return _ok([project_view(p) for p in await self.projects.all()])

    async def get(self, request: Request) -> Response:
        self._admin(request)
        project = await self.projects.get(_path_id(request, "project"))
        view = project_view(project)
        view["api_keys"] = [key_view(k) for k in await self.projects.keys(project.id)]
        devices = self.otp.otp.devices
        device = await devices.active_device(project.id) if devices is not None else None
        view["device"] = (
            None
            if device is None
            else {
                "id": device.id,
                "name": device.name,
                "online": device.online,
                "last_seen": iso(device.last_seen_ms),
                "queue_depth": device.queue_depth,
            }
        )
        return _ok(view)

    async def update(self, request: Request) -> Response:
        self._admin(request)
        project_id = _path_id(request, "project")
        project = await self.projects.update(project_id, await self._patch(request))
        return _ok(project_view(project))

    async def delete(self, request: Request) -> Response:
        self._admin(request)
        project_id = _path_id(request, "project")
        await self.projects.delete(project_id)
        devices = self.otp.otp.devices
        if devices is not None:
            await devices.forget_project(project_id)
        return json_response({"success": True})

    async def create_key(self, request: Request) -> Response:
        self._admin(request)
        project_id = _path_id(request, "project")
        raw = await self.api.read(request)
        body = decode_json(raw, KeyBody) if raw.strip() else KeyBody()
        key = await self.projects.create_key(project_id, body.name)
        return _ok({"key_id": key.key_id, "api_key": key.api_key}, 201)

    async def list_keys(self, request: Request) -> Response:
        self._admin(request)
        keys = await self.projects.keys(_path_id(request, "project"))
        return _ok([key_view(k) for k in keys])

    async def revoke_key(self, request: Request) -> Response:
        self._admin(request)
        project_id = _path_id(request, "project")
        await self.projects.revoke_key(project_id, str(request.path_params["key_id"]))
        return json_response({"success": True})

    async def device_link(self, request: Request) -> Response:
        self._admin(request)
        project_id = _path_id(request, "project")
        raw = await self.api.read(request)
        if raw.strip():
            decode_json(raw, DeviceLinkBody)
        project = await self.projects.get(project_id)
        devices = self.otp.otp.devices
        if devices is None:
            raise DeviceServiceMissing()
        # The URL this call came in on; DeviceService prefers its own public_url setting.
        link = await devices.create_link(project.id, str(request.base_url).rstrip("/"))
        return _ok(
            {
                "code": link.code,
                "serverUrl": link.server_url,
                "expiresAt": iso(link.expires_at_ms),
                "qrSvg": link.qr_svg,
                "qrUrl": link.qr_url,
            },
            201,
        )

    async def revoke_device(self, request: Request) -> Response:
        self._admin(request)
        project = await self.projects.get(_path_id(request, "project"))
        devices = self.otp.otp.devices
        revoked = await devices.revoke(project.id) if devices is not None else False
        return _ok({"revoked": revoked})

    def routes(self) -> list[BaseRoute]:
        e = self.api.endpoint
        base = "/api/v1/admin/projects"
        return [
            Route(base, e("admin_project_create", self.create), methods=["POST"]),
            Route(base, e("admin_projects", self.list_all), methods=["GET"]),
            Route(f"{base}/{{id}}", e("admin_project", self.get), methods=["GET"]),
            Route(f"{base}/{{id}}", e("admin_project_update", self.update), methods=["PATCH"]),
            Route(f"{base}/{{id}}", e("admin_project_delete", self.delete), methods=["DELETE"]),
            Route(
                f"{base}/{{id}}/api-keys",
                e("admin_project_key_create", self.create_key),
                methods=["POST"],
            ),
            Route(
                f"{base}/{{id}}/api-keys", e("admin_project_keys", self.list_keys), methods=["GET"]
            ),
            Route(
                f"{base}/{{id}}/api-keys/{{key_id}}",
                e("admin_project_key_revoke", self.revoke_key),
                methods=["DELETE"],
            ),
            Route(
                f"{base}/{{id}}/device-link",
                e("admin_project_device_link", self.device_link),
                methods=["POST"],
            ),
            Route(
                f"{base}/{{id}}/device",
                e("admin_project_device_revoke", self.revoke_device),
                methods=["DELETE"],
            ),
        ]
