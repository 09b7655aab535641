"""What every face is given: the core services, built once by the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.admin import AdminKey
from ..core.auth import AuthService
from ..core.console import ConsoleService
from ..core.messages import MessageService
from ..core.metrics import Metrics
from ..core.numbers.service import NumbersService
from ..core.ops import OpsService
from ..core.webhooks.deliverer import WebhookDeliverer
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
    # The operator console's sessions, time series and live topics (core/console/).
    console: ConsoleService | None = None
    # Virtual numbers (document 002) and the webhook deliverer (core/numbers, core/webhooks).
    numbers: NumbersService | None = None
    webhooks: WebhookDeliverer | None = None
