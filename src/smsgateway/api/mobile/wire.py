"""The app's JSON shapes, field names as the "SMS Gateway for Android" app spells them.

Dates go out as yyyy-MM-dd'T'HH:mm:ss.SSSXXX (milliseconds and an offset), the format
the app's JSON reader is configured with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec


def app_date(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


class RegisterBody(msgspec.Struct):
    name: str | None = None
    pushToken: str | None = None
    simCards: list[Any] | None = None


class PatchDeviceBody(msgspec.Struct):
    id: str
    pushToken: str | None = None
    simCards: list[Any] | None = None


class RecipientIn(msgspec.Struct):
    phoneNumber: str
    state: str
    error: str | None = None


class MessageStateIn(msgspec.Struct):
    id: str
    state: str
    recipients: list[RecipientIn] = []
    states: dict[str, Any] = {}


class SmsReceivedPayload(msgspec.Struct):
    message: str = ""
    phoneNumber: str = ""
    receivedAt: str = ""
    messageId: str = ""
    sender: str | None = None
    recipient: str | None = None
    simNumber: int | None = None


class WebhookEventIn(msgspec.Struct):
    event: str
    id: str = ""
    webhookId: str = ""
    deviceId: str = ""
    payload: dict[str, Any] = {}


class TextMessageOut(msgspec.Struct):
    text: str


class MessageOut(msgspec.Struct, omit_defaults=False):
    id: str
    message: str
    textMessage: TextMessageOut
    phoneNumbers: list[str]
    simNumber: int | None
    withDeliveryReport: bool
    isEncrypted: bool
    priority: int
    validUntil: str | None
    createdAt: str
    state: str


class RegisterOut(msgspec.Struct):
    id: str
    token: str
    login: str
    password: str


class WebhookOut(msgspec.Struct):
    id: str
    deviceId: str
    url: str
    event: str
