"""The per-second ring behind the dashboard, on a fake clock."""

from __future__ import annotations

from smsgateway.core.ops import go_duration, short_name
from smsgateway.core.stats import SPAN_S, Traffic, minute_label, percent

T0 = 1_700_000_000 - 1_700_000_000 % 60  # a minute boundary (22:13 UTC)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_current_rate_and_minutes() -> None:
    clock = Clock(T0)
    traffic = Traffic(clock=clock)
    for second in range(10):
        clock.now = T0 + second + 0.5
        for _ in range(second):  # 0, 1, ..., 9 messages in seconds 0..9
            traffic.add_accepted()
        traffic.add_answered(ok=second, refused=1)
    clock.now = T0 + 10.2
    # The last five complete seconds: 5+6+7+8+9 = 35.
    assert traffic.current_rps() == 7.0
    clock.now = T0 + 61
    traffic.add_accepted(6)
    traffic.add_failed(2)  # receipts
    points = traffic.minutes()
    assert [(p.minute, p.accepted, p.answered, p.failed) for p in points] == [
        (T0, 45, 55, 10),
        (T0 + 60, 6, 0, 2),
    ]
    assert minute_label(T0) == "22:13" and minute_label(T0 + 60) == "22:14"
    assert percent(10, 55) == 18.182 and percent(3, 0) == 0.0


def test_the_ring_forgets_what_is_an_hour_old() -> None:
    clock = Clock(T0)
    traffic = Traffic(clock=clock)
    traffic.add_accepted(100)
    clock.now = T0 + SPAN_S  # the same slot, an hour later
    traffic.add_accepted(1)
    points = traffic.minutes(60)
    assert len(points) == 60
    assert sum(p.accepted for p in points) == 1
    # The first second of a fresh Traffic has no complete second behind it.
    assert Traffic(clock=Clock(T0)).current_rps() == 0.0


def test_formatting_helpers() -> None:
    assert go_duration(86400) == "24h0m0s"
    assert go_duration(3600) == "1h0m0s"
    assert go_duration(90) == "1m30s"
    assert go_duration(5) == "5s"
    assert short_name("campaign-abc") == "campaign-abc"
    assert short_name("a-very-long-campaign-name-2025") == "a-very-long-campaig…"
