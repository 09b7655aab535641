"""The roll-up rule (core.status) the store applies, and receipt-state mapping."""

from __future__ import annotations

import pytest

from smsgateway.core.status import FINAL_STATES, PartState, receipt_state, rollup

ROLLUP_TABLE: list[tuple[list[str], str]] = [
    # Anything pending (queued or sending) shows the message as queued.
    (["queued"], "queued"),
    (["sending"], "queued"),
    (["submitted", "sending"], "queued"),
    (["delivered", "queued"], "queued"),
    (["rejected", "sending", "submitted"], "queued"),
    # Else the least advanced non-final part: submitted.
    (["submitted"], "submitted"),
    (["delivered", "submitted"], "submitted"),
    (["rejected", "submitted"], "submitted"),
    # All final: delivered only when every part is.
    (["delivered"], "delivered"),
    (["delivered", "delivered", "delivered"], "delivered"),
    (["delivered", "failed"], "failed"),
    # Worst final state: rejected > undeliverable > expired > failed > delivered.
    (["failed", "expired"], "expired"),
    (["expired", "undeliverable"], "undeliverable"),
    (["undeliverable", "rejected"], "rejected"),
    (["rejected", "failed", "expired", "undeliverable", "delivered"], "rejected"),
    (["delivered", "expired", "failed"], "expired"),
    (["failed", "delivered", "undeliverable"], "undeliverable"),
]


@pytest.mark.parametrize(("states", "expected"), ROLLUP_TABLE)
def test_rollup_table(states: list[str], expected: str) -> None:
    assert rollup(states) == expected
    assert rollup(reversed(states)) == expected  # order of parts never matters


def test_rollup_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        rollup([])
    with pytest.raises(ValueError):
        rollup(["DELIVRD"])


def test_rollup_returns_plain_words() -> None:
    out = rollup([PartState.DELIVERED])
    assert out == "delivered" and type(out) is str


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", "delivered"),
        ("DELIVERED", "delivered"),
        ("delivrd", "delivered"),
        ("EXPIRED", "expired"),
        ("DELETED", "failed"),
        ("UNDELIV", "undeliverable"),
        ("UNDELIVERABLE", "undeliverable"),
        ("REJECTD", "rejected"),
        ("REJECTED", "rejected"),
        ("ACCEPTD", "submitted"),
        ("ACCEPTED", "submitted"),
        ("ENROUTE", "submitted"),
        ("UNKNOWN", "submitted"),
        ("gibberish", "submitted"),
        (1, "submitted"),
        (2, "delivered"),
        (3, "expired"),
        (4, "failed"),
        (5, "undeliverable"),
        (6, "submitted"),
        (7, "submitted"),
        (8, "rejected"),
        (99, "submitted"),
    ],
)
def test_receipt_state(stat: str | int, state: str) -> None:
    assert receipt_state(stat) == state


def test_final_states() -> None:
    assert {"delivered", "undeliverable", "expired", "rejected", "failed"} == FINAL_STATES
