"""What every face is given: the core services, built once by the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.admin import AdminKey
from ..core.auth import AuthService
from ..core.devices import DeviceService
from ..core.messages import MessageService
from ..core.metrics import Metrics
from ..core.ops import OpsService
from ..settings import Settings


@dataclass
class Services:
    settings: Settings
    auth: AuthService
    messages: MessageService
    admin_key: AdminKey
    metrics: Metrics
    # Dashboard, settings, link control, admin panel, rate limits (core/ops.py).
    ops: OpsService | None = None
    # Linked Android phones (core/devices): the /mobile face and project device links.
    devices: DeviceService | None = None
