"""Part and message states, the roll-up rule and the receipt-state mapping.

Pure functions, no I/O: the store calls `rollup` inside its write transaction, the
faces call nothing here but read the words.

Part states, in order of progress: `queued` and `sending` (internal: the submit_sm is
written, no submit_sm_resp yet) < `submitted` < the final states `delivered`,
`undeliverable`, `expired`, `rejected`, `failed`.

A message takes the state of its least advanced part that is not final (`sending`
shows as `queued`), else its worst final state. Worst first:

    rejected > undeliverable > expired > failed > delivered

Why this order: `rejected` is a definite "no" for the request itself (bad address,
barred, refused by the SMSC) and is what a client must fix; `undeliverable` is a
definite "no" from the network for this handset; `expired` says the network tried
until validity ran out; `failed` is the vaguest outcome (deleted by the SMSC, or our
own give-up) so it yields to any more specific failure; `delivered` only when every
part is.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class PartState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"


FINAL_STATES: frozenset[str] = frozenset(
    {
        PartState.DELIVERED,
        PartState.UNDELIVERABLE,
        PartState.EXPIRED,
        PartState.REJECTED,
        PartState.FAILED,
    }
)
PENDING_STATES: frozenset[str] = frozenset({PartState.QUEUED, PartState.SENDING})
ALL_STATES: frozenset[str] = frozenset(PartState)

# Higher is worse; only final states are ranked.
_WORST: dict[str, int] = {
    PartState.DELIVERED: 0,
    PartState.FAILED: 1,
    PartState.EXPIRED: 2,
    PartState.UNDELIVERABLE: 3,
    PartState.REJECTED: 4,
}


def is_final(state: str) -> bool:
    return state in FINAL_STATES


def rollup(states: Iterable[str]) -> str:
    """The message status for the given part states (see the module docstring)."""
    # Set operations, not generator scans: this runs for every message and receipt.
    seen = set(states)
    if not seen:
        raise ValueError("a message has at least one part")
    unknown = seen - ALL_STATES
    if unknown:
        raise ValueError(f"unknown part state {sorted(unknown)[0]!r}")
    if not seen.isdisjoint(PENDING_STATES):
        return PartState.QUEUED.value
    if PartState.SUBMITTED in seen:
        return PartState.SUBMITTED.value
    return str(max(seen, key=_WORST.__getitem__))


# SMPP 3.4 message_state values (5.2.28) and the 7-letter `stat:` words of the
# receipt text (Appendix B), both mapped onto part states. ACCEPTED/ENROUTE/UNKNOWN
# say nothing final, so the part stays `submitted`.
_RECEIPT_WORDS: dict[str, PartState] = {
    "DELIVERED": PartState.DELIVERED,
    "DELIVRD": PartState.DELIVERED,
    "EXPIRED": PartState.EXPIRED,
    "DELETED": PartState.FAILED,
    "UNDELIVERABLE": PartState.UNDELIVERABLE,
    "UNDELIV": PartState.UNDELIVERABLE,
    "REJECTED": PartState.REJECTED,
    "REJECTD": PartState.REJECTED,
    "ACCEPTED": PartState.SUBMITTED,
    "ACCEPTD": PartState.SUBMITTED,
    "ENROUTE": PartState.SUBMITTED,
    "UNKNOWN": PartState.SUBMITTED,
    # SMPP 5.0 only, seen from some SMSCs speaking 3.4: the SMSC dropped it.
    "SKIPPED": PartState.FAILED,
}

_RECEIPT_CODES: dict[int, PartState] = {
    1: PartState.SUBMITTED,  # ENROUTE
    2: PartState.DELIVERED,
    3: PartState.EXPIRED,
    4: PartState.FAILED,  # DELETED
    5: PartState.UNDELIVERABLE,
    6: PartState.SUBMITTED,  # ACCEPTED
    7: PartState.SUBMITTED,  # UNKNOWN
    8: PartState.REJECTED,
    9: PartState.FAILED,  # SKIPPED (SMPP 5.0)
}


def receipt_state(stat: str | int) -> PartState:
    """Map a receipt's `stat:` word or message_state TLV value to a part state.

    Anything unrecognised keeps the part `submitted`: a receipt we cannot read is
    no evidence that the message failed.
    """
    if isinstance(stat, int):
        return _RECEIPT_CODES.get(stat, PartState.SUBMITTED)
    return _RECEIPT_WORDS.get(stat.strip().upper(), PartState.SUBMITTED)
