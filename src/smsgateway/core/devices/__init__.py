"""Android phones as a delivery channel (the "SMS Gateway for Android" app)."""

from ..errors import InvalidDeviceToken, InvalidLinkCode
from .channel import CHANNEL_ID_BASE, DeviceChannel, Pending, StateReport, channel_id_for
from .service import (
    DeviceInfo,
    DeviceLink,
    DeviceService,
    DeviceSession,
    InboundSms,
    LinkPage,
    Registration,
    parse_app_date,
)

__all__ = [
    "CHANNEL_ID_BASE",
    "DeviceChannel",
    "DeviceInfo",
    "DeviceLink",
    "DeviceService",
    "DeviceSession",
    "InboundSms",
    "InvalidDeviceToken",
    "InvalidLinkCode",
    "LinkPage",
    "Pending",
    "Registration",
    "StateReport",
    "channel_id_for",
    "parse_app_date",
]
