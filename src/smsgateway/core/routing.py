"""Routing: what a channel id (`esme`) names and whether a caller may use it.

Links, pools and priority lists come from the config (ids below 1_000_000, the
`[sms_api]` list at 999_999); run-time channels (devices, ids from 1_000_000) are
added and removed while the gateway runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from ..settings import LinkSettings, Settings, SmppSettings
from ..settings_channels import SMS_API_ID, SmsApiSettings
from .channels import Channel, DeliverHandler, OutcomeSink, SmppLink, SmppPool
from .channels.priority import PriorityList
from .errors import IpNotAllowed, NotFound, Unavailable


class UnknownEsme(NotFound):
    default_message = "unknown esme"


class LinkDisabled(Unavailable):
    default_message = "link disabled"


class Router:
    def __init__(
        self,
        settings: SmppSettings | Settings,
        *,
        on_outcomes: OutcomeSink,
        on_deliver: DeliverHandler,
        link_states: dict[int, tuple[bool, str]] | None = None,
    ) -> None:
        smpp = settings.smpp if isinstance(settings, Settings) else settings
        sms_api = settings.sms_api if isinstance(settings, Settings) else SmsApiSettings()
        states = link_states or {}
        self.links: dict[int, SmppLink] = {}
        for cfg in smpp.links:
            enabled, reason = states.get(cfg.id, (cfg.enabled, ""))
            self.links[cfg.id] = SmppLink(
                cfg,
                on_outcomes=on_outcomes,
                on_deliver=on_deliver,
                enabled=enabled,
                reason=reason,
            )
        self.pools: dict[int, SmppPool] = {
            p.id: SmppPool(p, (self.links[i] for i in p.links)) for p in smpp.pools
        }
        self.lists: dict[int, PriorityList] = {}
        pending = {lst.id: lst for lst in smpp.lists}
        while pending:  # inner lists first (settings validation ruled out cycles)
            for lst in list(pending.values()):
                if all(m not in pending for m in lst.members):
                    members = [self._config_channel(m) for m in lst.members]
                    self.lists[lst.id] = PriorityList(
                        lst.id,
                        lst.name,
                        members,
                        lst.attempt_timeout_s,
                        on_outcomes=on_outcomes,
                    )
                    del pending[lst.id]
        self.sms_api: PriorityList | None = None
        if sms_api.gateways:
            self.sms_api = PriorityList(
                SMS_API_ID,
                "sms_api",
                [self._config_channel(g) for g in sms_api.gateways],
                sms_api.attempt_timeout_s,
                on_outcomes=on_outcomes,
            )
        self.runtime: dict[int, Channel] = {}
        self._added: list[Callable[[Channel], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _config_channel(self, channel_id: int) -> Channel:
        channel: Channel | None = (
            self.links.get(channel_id) or self.pools.get(channel_id) or self.lists.get(channel_id)
        )
        if channel is None:
            raise ValueError(f"no link, pool or list {channel_id}")
        return channel

    # -- lookup ----------------------------------------------------------------------

    def get(self, esme: int) -> Channel | None:
        """The link, pool, list or run-time channel with this id."""
        link = self.links.get(esme)
        if link is not None:
            return link
        channel: Channel | None = self.pools.get(esme) or self.lists.get(esme)
        if channel is None:
            if self.sms_api is not None and esme == SMS_API_ID:
                return self.sms_api
            channel = self.runtime.get(esme)
        return channel

    def get_channel(self, esme: int) -> Channel:
        channel = self.get(esme)
        if channel is None:
            raise UnknownEsme()
        return channel

    def kind_of(self, channel_id: int) -> str:
        channel = self.get(channel_id)
        return channel.kind if channel is not None else "device"

    def check_enabled(self, channel: Channel) -> None:
        """LinkDisabled for a disabled link, a pool whose links are all disabled, or
        a run-time channel that says DISABLED. A list is never refused here: its
        disabled members are skipped (and noted) one by one."""
        if isinstance(channel, SmppLink):
            if not channel.enabled:
                raise LinkDisabled(f"link disabled: {channel.reason}" if channel.reason else None)
        elif isinstance(channel, SmppPool):
            if not any(m.enabled for m in channel.members):
                raise LinkDisabled("every link of the pool is disabled")
        elif not isinstance(channel, PriorityList) and channel.status == "DISABLED":
            raise LinkDisabled(f"{channel.name} is disabled")

    def resolve(self, esme: int, client_ip: str | None, *, require_enabled: bool = True) -> Channel:
        """The channel for `esme`, or the error the caller must see."""
        channel = self.get_channel(esme)
        if not channel.allows(client_ip):
            raise IpNotAllowed()
        if require_enabled:
            self.check_enabled(channel)
        return channel

    def smpp_settings_for(self, esme: int) -> LinkSettings | None:
        """Settings that shape encoding for `esme` at accept: its own link's, a pool's
        or list's first link's; None for a channel that sends whole texts."""
        channel = self.get(esme)
        while channel is not None:
            if isinstance(channel, SmppLink):
                return channel.cfg
            if isinstance(channel, SmppPool):
                return channel.members[0].cfg if channel.members else None
            if isinstance(channel, PriorityList):
                channel = channel.members[0] if channel.members else None
                continue
            return None
        return None

    def link_settings_for(self, esme: int) -> LinkSettings:
        cfg = self.smpp_settings_for(esme)
        if cfg is None:
            raise UnknownEsme()
        return cfg

    def pool_of(self, channel: Channel, link_id: int) -> SmppPool | None:
        """The pool through which `channel` (a list) reaches link `link_id`, if any."""
        if isinstance(channel, SmppPool):
            return channel if any(m.id == link_id for m in channel.members) else None
        if isinstance(channel, PriorityList):
            for member in channel.members:
                pool = self.pool_of(member, link_id)
                if pool is not None:
                    return pool
        return None

    def remote_system_id(self, esme: int) -> str:
        channel = self.get_channel(esme)
        for link in _links_of(channel):
            if link.bound and link.client.remote_system_id:
                return link.client.remote_system_id
        return ""

    # -- run-time channels -------------------------------------------------------------

    def on_channel_added(self, hook: Callable[[Channel], None]) -> None:
        """`hook(channel)` runs for every channel added later (the message service
        sends it what is stored for it)."""
        self._added.append(hook)

    def add_channel(self, channel: Channel) -> None:
        """A channel that comes and goes at run time (a device). Its id must be free
        (devices: 1_000_000 + device id). Queued messages stored for that id go to it."""
        if self.get(channel.id) is not None:
            raise ValueError(f"channel id {channel.id} is taken")
        self.runtime[channel.id] = channel
        for hook in self._added:
            hook(channel)

    def remove_channel(self, channel_id: int) -> None:
        """Forget a run-time channel; what is stored for it stays queued in the store."""
        self.runtime.pop(channel_id, None)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        for link in self.links.values():
            await link.start()
        lists = list(self.lists.values())
        if self.sms_api is not None:
            lists.append(self.sms_api)
        # Lists hold their work until their members had a chance to bind (at most
        # their attempt timeout), in the background: start-up does not wait for it.
        for lst in lists:
            task = asyncio.create_task(lst.start(lst.attempt_timeout_s), name=f"{lst.name}-start")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for lst in [*self.lists.values(), *([self.sms_api] if self.sms_api else [])]:
            lst.stop()
        for link in self.links.values():
            await link.stop()


def _links_of(channel: Channel) -> Iterable[SmppLink]:
    if isinstance(channel, SmppLink):
        yield channel
    elif isinstance(channel, SmppPool):
        yield from channel.members
    elif isinstance(channel, PriorityList):
        for member in channel.members:
            yield from _links_of(member)


__all__ = ["LinkDisabled", "Router", "UnknownEsme"]
