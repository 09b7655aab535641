"""The one-shot SMS API of document 003: rules for an Sms and the send behind
`POST /sms/messages`."""

from .rules import GSM7_MAX, UCS2_MAX, Sms, parse_sms, sms_units
from .service import OneShotService

__all__ = ["GSM7_MAX", "UCS2_MAX", "OneShotService", "Sms", "parse_sms", "sms_units"]
