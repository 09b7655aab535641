"""Webhook URLs: what may be set, and where a delivery may connect (SSRF).

Checked twice: when a URL is set (scheme, credentials, a literal address or a name
that can only be local: a clear 400), and at every delivery, after resolving the
host, against every address it resolves to. The delivery then connects to the
address that was checked (the Host header and TLS server name keep the URL's name),
so a DNS answer that changes between the check and the connect (DNS rebinding)
cannot send the request anywhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ..errors import InvalidWebhookUrl

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba).
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
_LOCAL_NAMES = ("localhost", "metadata.google.internal", "metadata")
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain")


class WebhookUrlRefused(Exception):
    """Delivery-time refusal: the message says why."""


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: `url` names the checked address; `host` is the Host header
    and `server_name` the TLS server name (None for http)."""

    url: str
    host: str
    server_name: str | None


def refusal(ip: IpAddress, policy: UrlPolicy) -> str | None:
    """Why a delivery may not go to `ip`, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast:
        return "a multicast address"
    if policy.allow_private:
        return None
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def _split(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"webhook_url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidWebhookUrl("webhook_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"webhook_url is not a valid URL: {exc}") from None
    return parts


def check_webhook_url(url: str, policy: UrlPolicy) -> str:
    """The URL as stored, or InvalidWebhookUrl (400) saying what is wrong with it.
    An empty string (no webhook) is allowed."""
    if url == "":
        return url
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidWebhookUrl("webhook_url must be an https:// URL")
    if scheme == "http" and not policy.allow_http:
        raise InvalidWebhookUrl(
            "webhook_url must use https (plain http is off: numbers.allow_http_webhooks)"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("webhook_url must not contain credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidWebhookUrl("webhook_url has no host")
    try:
        ip: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        why = refusal(ip, policy)
        if why is not None:
            raise InvalidWebhookUrl(
                f"webhook_url points to {why} (refused: numbers.allow_private_webhooks is off)"
            )
    elif not policy.allow_private and (
        host.lower() in _LOCAL_NAMES or host.lower().endswith(_LOCAL_SUFFIXES)
    ):
        raise InvalidWebhookUrl(
            "webhook_url names a local host (refused: numbers.allow_private_webhooks is off)"
        )
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


async def resolve_target(url: str, policy: UrlPolicy) -> Target:
    """Check the URL again, resolve its host now, check every address; the pinned
    target. Raises WebhookUrlRefused."""
    try:
        check_webhook_url(url, policy)
    except InvalidWebhookUrl as exc:
        raise WebhookUrlRefused(exc.message) from None
    if not url:
        raise WebhookUrlRefused("no webhook_url is set")
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except OSError as exc:
        raise WebhookUrlRefused(f"cannot resolve {host}: {exc}") from None
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = refusal(address, policy)
        if why is not None:
            # One bad answer refuses them all: a name that can resolve to a private
            # address is not a public receiver.
            raise WebhookUrlRefused(f"{host} resolves to {why} ({address})")
        addresses.append(address)
    if not addresses:
        raise WebhookUrlRefused(f"cannot resolve {host}")
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{port}"
    default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    named = f"[{host}]" if ":" in host else host
    host_header = named if default_port else f"{named}:{port}"
    pinned = urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    return Target(pinned, host_header, host if scheme == "https" else None)
