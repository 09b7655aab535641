"""Cutting a text into SMPP parts for one link: done per attempt, since each link may
join long messages its own way (UDH 8/16-bit, SAR, message_payload)."""

from __future__ import annotations

import itertools
import time

from ...smpp import text as smpp_text
from ...smpp.pdu import encode_tlv_value
from .base import PartSpec

# Concatenation references must differ between concurrent long messages to one
# handset; one counter for every link is enough for that.
_refs = itertools.count(int(time.time()) & 0xFF)

TooManyParts = smpp_text.TooManyParts


def split_text(text: str, method: str, *, max_parts: int) -> list[PartSpec]:
    """The parts `text` takes on a link that joins with `method`; TooManyParts above
    `max_parts`."""
    ref = next(_refs) & (0xFFFF if method != "udh8" else 0xFF)
    segments = smpp_text.split(text, method=method, reference=ref, max_parts=max_parts)
    return [
        PartSpec(
            seq=seg.index,
            short_message=seg.short_message,
            data_coding=seg.data_coding,
            esm_class=seg.esm_class_bits,
            tlvs={tag: encode_tlv_value(tag, value) for tag, value in seg.tlvs.items()},
        )
        for seg in segments
    ]


def whole_text_part() -> list[PartSpec]:
    """The one part of a message a channel sends as a whole text (a phone): the text
    itself stays on the message row."""
    return [PartSpec(seq=1, short_message=b"", data_coding=0, esm_class=0, tlvs={})]
