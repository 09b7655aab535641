"""The inbound hook of the numbers service: an SMS to an assigned number becomes an
OTP record for its user and, when it holds a code and the user has a webhook URL, an
`otp_received` event in the outbox, all in the inbound SMS's own writer unit."""

from __future__ import annotations

import datetime
import logging
import sqlite3
from collections.abc import Callable

import msgspec

from ...store import numbers as units
from ...store.models import InboundRow
from ..ids import uuid7
from ..metrics import METRICS, FastCounter
from .channels import ChannelMatcher
from .otp_extract import Extracted, extract

log = logging.getLogger(__name__)

OTPS = FastCounter(
    "smsgateway_numbers_otps",
    "SMS received for assigned numbers, by whether an OTP code was extracted",
    ["result"],
)
METRICS.registry.register(OTPS)
_FOUND = OTPS.labels("extracted")
_NONE = OTPS.labels("no_code")


class _Data(msgspec.Struct):
    phone_number: str
    otp_code: str
    provider: str
    sms_text: str


class OtpReceived(msgspec.Struct):
    """Document 002's payload, plus `event_id` and `received_at` (allowed extras)."""

    event: str
    data: _Data
    event_id: str
    received_at: str


_encoder = msgspec.json.Encoder()


def _iso(ms: int) -> str:
    at = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_e164(address: str) -> str | None:
    """An MO's destination as stored numbers are keyed (+E.164). Cheap on purpose: this
    runs in the writer thread for every inbound SMS; a destination that is not an
    international number in digits is no number of ours."""
    digits = address.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit()) or not 7 <= len(digits) <= 15:
        return None
    return "+" + digits


class OtpHook:
    def __init__(self, channels: ChannelMatcher, wake: Callable[[], None]) -> None:
        self._channels = channels
        self._wake = wake

    def __call__(self, conn: sqlite3.Connection, row: InboundRow) -> Callable[[], None] | None:
        phone = _as_e164(row.destination)
        if phone is None:
            return None
        number = units.assigned_number(conn, phone, row.received_at)
        if number is None:
            return None
        if number.channel and not self._channels.matches(number.channel, row.link_id):
            log.warning(
                "SMS for an assigned number arrived on another channel; not handed over",
                extra={"inbound_id": row.id, "channel_id": row.link_id},
            )
            return None
        try:
            found = extract(row.text, row.source)
        except Exception:  # a parsing bug must not refuse the SMS itself
            log.exception("OTP extraction failed", extra={"inbound_id": row.id})
            found = Extracted(None, row.source)
        event_id = uuid7() if found.code is not None and number.webhook_url else None
        body = None
        if event_id is not None and found.code is not None:
            body = _encoder.encode(
                OtpReceived(
                    "otp_received",
                    _Data(number.phone_number, found.code, found.provider, row.text),
                    event_id,
                    _iso(row.received_at),
                )
            )
        units.record_inbound_sms(
            conn,
            units.SmsRow(
                row.id,
                number.phone_number,
                row.source,
                found.code,
                found.provider,
                row.text,
                row.received_at,
                event_id,
            ),
            number.user_id,
            body,
            row.received_at,
        )
        counter = _FOUND if found.code is not None else _NONE
        wake = self._wake if body is not None else None

        def after() -> None:
            counter.inc()
            if wake is not None:
                wake()

        return after
