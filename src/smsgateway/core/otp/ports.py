"""What the OTP services need from their neighbours, as Protocols.

MessageService (core/messages.py), DeviceService (core/devices) and the Router
satisfy these structurally; the OTP code depends on nothing more than what is listed
here, and "no DeviceService" is simply `None` (no device linked).
"""

from __future__ import annotations

from typing import Literal, Protocol

from ...store.models import MessageWithParts


class DeviceLinkView(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def server_url(self) -> str: ...
    @property
    def expires_at_ms(self) -> int: ...
    @property
    def qr_svg(self) -> str: ...
    @property
    def qr_url(self) -> str: ...


class DeviceInfoView(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def online(self) -> bool: ...
    @property
    def last_seen_ms(self) -> int | None: ...
    @property
    def queue_depth(self) -> int: ...


class Devices(Protocol):
    """The part of DeviceService (core/devices) the OTP side uses."""

    async def create_link(self, project_id: int, base_url: str) -> DeviceLinkView: ...
    async def active_device(self, project_id: int) -> DeviceInfoView | None: ...
    async def revoke(self, project_id: int) -> bool: ...
    def channel_id(self, project_id: int) -> int | None: ...
    async def forget_project(self, project_id: int) -> None: ...


class SentView(Protocol):
    @property
    def message_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def error(self) -> str: ...


class Sender(Protocol):
    """The part of MessageService the OTP side uses (COORD.md's core contract)."""

    async def send(
        self,
        *,
        owner: str,
        channel_id: int,
        source: str,
        destination: str,
        text: str,
        idempotency_key: str = "",
        wait: Literal["budget", "accepted", "stored"] = "budget",
        not_before_ms: int | None = None,
        validity_ms: int | None = None,
        campaign: str = "",
        source_ton: int | None = None,
        sensitive: bool = False,
    ) -> SentView: ...

    async def get_owned(self, owner: str, message_id: str) -> MessageWithParts | None: ...


class ChannelView(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def bound(self) -> bool: ...


class Channels(Protocol):
    """Channel lookup by id (the Router): links, pools, priority lists."""

    def get(self, channel_id: int, /) -> ChannelView | None: ...
