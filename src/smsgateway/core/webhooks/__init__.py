"""Signed webhooks: URL checks (SSRF), signatures, and the outbox deliverer."""

from .deliverer import WebhookDeliverer
from .signing import sign, signature_header, verify
from .urls import UrlPolicy, WebhookUrlRefused, check_webhook_url

__all__ = [
    "UrlPolicy",
    "WebhookDeliverer",
    "WebhookUrlRefused",
    "check_webhook_url",
    "sign",
    "signature_header",
    "verify",
]
