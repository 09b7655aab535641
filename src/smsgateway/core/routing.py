"""Routing: what an `esme` id names (a link or a pool) and whether a caller may use it."""

from __future__ import annotations

from collections.abc import Iterable

from ..settings import LinkSettings, SmppSettings
from .channels import DeliverHandler, OutcomeSink, SmppLink, SmppPool
from .errors import IpNotAllowed, NotFound, Unavailable


class UnknownEsme(NotFound):
    default_message = "unknown esme"


class LinkDisabled(Unavailable):
    default_message = "link disabled"


class Router:
    def __init__(
        self,
        settings: SmppSettings,
        *,
        on_outcomes: OutcomeSink,
        on_deliver: DeliverHandler,
        link_states: dict[int, tuple[bool, str]] | None = None,
    ) -> None:
        states = link_states or {}
        self.links: dict[int, SmppLink] = {}
        for cfg in settings.links:
            enabled, reason = states.get(cfg.id, (cfg.enabled, ""))
            self.links[cfg.id] = SmppLink(
                cfg,
                on_outcomes=on_outcomes,
                on_deliver=on_deliver,
                enabled=enabled,
                reason=reason,
            )
        self.pools: dict[int, SmppPool] = {
            p.id: SmppPool(p, (self.links[i] for i in p.links)) for p in settings.pools
        }

    def get(self, esme: int) -> SmppLink | SmppPool | None:
        return self.links.get(esme) or self.pools.get(esme)

    def get_channel(self, esme: int) -> SmppLink | SmppPool:
        channel = self.get(esme)
        if channel is None:
            raise UnknownEsme()
        return channel

    def resolve(
        self, esme: int, client_ip: str | None, *, require_enabled: bool = True
    ) -> SmppLink | SmppPool:
        """The channel for `esme`, or the error the caller must see."""
        channel = self.get_channel(esme)
        if not channel.allows(client_ip):
            raise IpNotAllowed()
        if require_enabled:
            if isinstance(channel, SmppLink) and not channel.enabled:
                raise LinkDisabled(f"link disabled: {channel.reason}" if channel.reason else None)
            if isinstance(channel, SmppPool) and not any(m.enabled for m in channel.members):
                raise LinkDisabled("every link of the pool is disabled")
        return channel

    def link_settings_for(self, esme: int) -> LinkSettings:
        """Settings that shape encoding for `esme` (a pool uses its first member's)."""
        channel = self.get_channel(esme)
        if isinstance(channel, SmppLink):
            return channel.cfg
        return channel.members[0].cfg

    def remote_system_id(self, esme: int) -> str:
        channel = self.get_channel(esme)
        members: Iterable[SmppLink] = (
            [channel] if isinstance(channel, SmppLink) else channel.members
        )
        for link in members:
            if link.bound and link.client.remote_system_id:
                return link.client.remote_system_id
        return ""

    async def start(self) -> None:
        for link in self.links.values():
            await link.start()

    async def stop(self) -> None:
        for link in self.links.values():
            await link.stop()


__all__ = ["LinkDisabled", "Router", "UnknownEsme"]
