"""Settings for priority lists: named lists under `[[smpp.lists]]` (usable as a native
`esme` like a pool) and the `[sms_api]` list the one-shot face sends through."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from .settings import SmppSettings

# Ids from the config stay below this; run-time channels (devices) start here.
RUNTIME_ID_BASE = 1_000_000
# The [sms_api] list's own id (it has no [[smpp.lists]] entry): reserved.
SMS_API_ID = RUNTIME_ID_BASE - 1


class ListSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: int
    name: str = ""
    # Link, pool or list ids, tried in this order.
    members: list[int] = []
    # A member that has not answered within this long is given up for the next one.
    attempt_timeout_s: float = 5.0


class SmsApiSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Link, pool or list ids tried in this order for POST /sms/messages; empty: none.
    gateways: list[int] = []
    attempt_timeout_s: float = 5.0


def validate_lists(smpp: SmppSettings, sms_api: SmsApiSettings) -> None:
    """Unique ids across links, pools and lists; members that exist; no list that
    contains itself (directly or through another list). Raises ValueError."""
    ids = {link.id for link in smpp.links} | {pool.id for pool in smpp.pools}
    for cfg_id in sorted(ids):
        if not 0 < cfg_id < SMS_API_ID:
            raise ValueError(f"smpp: id {cfg_id} must be within 1..{SMS_API_ID - 1}")
    lists = {}
    for lst in smpp.lists:
        if lst.id in ids or lst.id in lists:
            raise ValueError(f"smpp.lists: id {lst.id} is used by another link, pool or list")
        if not 0 < lst.id < SMS_API_ID:
            raise ValueError(f"smpp.lists: id {lst.id} must be within 1..{SMS_API_ID - 1}")
        if not lst.members:
            raise ValueError(f"smpp.lists[{lst.id}] needs at least one member")
        if not lst.attempt_timeout_s > 0:
            raise ValueError(f"smpp.lists[{lst.id}].attempt_timeout_s must be positive")
        lists[lst.id] = lst
    known = ids | set(lists)
    for lst in smpp.lists:
        missing = [m for m in lst.members if m not in known]
        if missing:
            raise ValueError(f"smpp.lists[{lst.id}] names unknown members {missing}")
        if len(set(lst.members)) != len(lst.members):
            raise ValueError(f"smpp.lists[{lst.id}] names a member twice")
    for lst in smpp.lists:
        _no_cycle(lst.id, lists, [])
    missing = [g for g in sms_api.gateways if g not in known]
    if missing:
        raise ValueError(f"sms_api.gateways names unknown links, pools or lists {missing}")
    if len(set(sms_api.gateways)) != len(sms_api.gateways):
        raise ValueError("sms_api.gateways names a gateway twice")
    if not sms_api.attempt_timeout_s > 0:
        raise ValueError("sms_api.attempt_timeout_s must be positive")


def _no_cycle(list_id: int, lists: dict[int, ListSettings], path: list[int]) -> None:
    if list_id in path:
        chain = " -> ".join(str(i) for i in [*path, list_id])
        raise ValueError(f"smpp.lists: list {path[0]} contains itself ({chain})")
    for member in lists[list_id].members:
        if member in lists:
            _no_cycle(member, lists, [*path, list_id])
