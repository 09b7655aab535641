"""`channel` of a number: the link, pool or OTP project its SMS arrive on.

Written `link:<id>`, `pool:<id>` or `project:<id>`. An SMS for a number with a
channel is handed to its user only when it arrived there: on that link, on a member
of that pool, or (project) on a linked phone's channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from ..errors import InvalidRequest

_SPEC = re.compile(r"^(link|pool|project):([1-9]\d{0,17})$")
DEVICE_CHANNEL_BASE = 1_000_000


class ChannelMatcher:
    def __init__(
        self,
        links: Callable[[], set[int]],
        pools: Callable[[], Mapping[int, set[int]]],
        project_channel: Callable[[int], int | None] | None = None,
    ) -> None:
        self._links = links
        self._pools = pools
        # Until the device service is wired in, a project's SMS are any phone's.
        self._project_channel = project_channel

    def check(self, spec: str) -> str:
        """The spec as stored, or a 400 naming what is wrong."""
        if spec == "":
            return spec
        m = _SPEC.match(spec)
        if m is None:
            raise InvalidRequest("channel must be link:<id>, pool:<id> or project:<id>")
        kind, ident = m.group(1), int(m.group(2))
        if kind == "link" and ident not in self._links():
            raise InvalidRequest(f"channel {spec}: no such link")
        if kind == "pool" and ident not in self._pools():
            raise InvalidRequest(f"channel {spec}: no such pool")
        return spec

    def matches(self, spec: str, channel_id: int | None) -> bool:
        m = _SPEC.match(spec)
        if m is None or channel_id is None:
            return False
        kind, ident = m.group(1), int(m.group(2))
        if kind == "link":
            return channel_id == ident
        if kind == "pool":
            return channel_id in self._pools().get(ident, set())
        if self._project_channel is not None:
            return self._project_channel(ident) == channel_id
        return channel_id >= DEVICE_CHANNEL_BASE
