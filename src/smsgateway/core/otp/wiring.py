"""The OTP side as the runtime builds it and the faces receive it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...settings_otp import OtpSettings
from ...store.otp import OtpStore
from ...store.sqlite import SqliteStore
from ..idempotency import Idempotency
from ..secrets import Secrets
from .codes import Codes
from .ports import Channels, Devices, Sender
from .projects import ProjectService
from .service import OtpService


@dataclass(frozen=True, slots=True)
class OtpServices:
    projects: ProjectService
    otp: OtpService
    idempotency: Idempotency
    settings: OtpSettings


def build_otp(
    store: SqliteStore,
    secrets: Secrets,
    sender: Sender,
    channels: Channels,
    devices: Callable[[], Devices | None],
    settings: OtpSettings,
) -> OtpServices:
    otp_store = OtpStore(store)
    return OtpServices(
        projects=ProjectService(otp_store, secrets, channels),
        otp=OtpService(otp_store, Codes(secrets), sender, channels, devices, settings),
        idempotency=Idempotency(
            store, ttl_s=settings.idempotency_ttl_s, wait_s=settings.idempotency_wait_s
        ),
        settings=settings,
    )
