"""What every face is given: the core services, built once by the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.admin import AdminKey
from ..core.auth import AuthService
from ..core.console import ConsoleService
from ..core.devices import DeviceService
from ..core.messages import MessageService
from ..core.metrics import Metrics
from ..core.numbers.service import NumbersService
from ..core.oneshot import OneShotService
from ..core.ops import OpsService
from ..core.otp.wiring import OtpServices
from ..core.tokens import TokenService
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
    # OTP projects: projects, keys, verifications, the /v1 API (core/otp).
    otp: OtpServices | None = None
    # Linked Android phones (core/devices): the /mobile face and project device links.
    devices: DeviceService | None = None
    # The operator console's sessions, time series and live topics (core/console/).
    console: ConsoleService | None = None
    # Virtual numbers (document 002) and the webhook deliverer (core/numbers, core/webhooks).
    numbers: NumbersService | None = None
    webhooks: WebhookDeliverer | None = None
    # OAuth clients, the token endpoint and the bearer-token verifier (core/tokens/).
    tokens: TokenService | None = None
    # POST /sms/messages (document 003) over the [sms_api] gateways (core/oneshot/).
    oneshot: OneShotService | None = None
