"""Delivery channels: an SMPP link, a pool of links, a priority list with failover;
devices plug in at run time through the same `Channel` protocol."""

from .base import (
    ACCEPTED,
    DISABLED,
    DOWN,
    REFUSED,
    TIMEOUT,
    AttemptNote,
    Channel,
    DeliverHandler,
    OutcomeSink,
    PartOutcome,
    PartSpec,
    SendJob,
    Validity,
    refuse_all,
)
from .encode import split_text, whole_text_part
from .link import SmppLink
from .pool import SmppPool

__all__ = [
    "ACCEPTED",
    "DISABLED",
    "DOWN",
    "REFUSED",
    "TIMEOUT",
    "AttemptNote",
    "Channel",
    "DeliverHandler",
    "OutcomeSink",
    "PartOutcome",
    "PartSpec",
    "SendJob",
    "SmppLink",
    "SmppPool",
    "Validity",
    "refuse_all",
    "split_text",
    "whole_text_part",
]
