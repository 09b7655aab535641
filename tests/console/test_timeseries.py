"""The overview's ring buffers: per-second differences of the counters, rolled up
into minutes, bounded in length."""

from __future__ import annotations

from smsgateway.core.console.timeseries import MINUTES, SECONDS, Sampler


def test_seconds_are_differences_and_minutes_their_sums() -> None:
    now = [1_000_000_000 - 1_000_000_000 % 60 + 58.2]  # two seconds before a minute
    counts = [0.0, 0.0, 0.0]
    sampler = Sampler(lambda: (counts[0], counts[1], counts[2]), clock=lambda: now[0])
    assert sampler.sample() is None  # the base
    for step in range(4):
        now[0] += 1
        counts[0] += 10 + step
        counts[1] += 2
        counts[2] += step % 2
        sampler.sample()
    seconds = sampler.per_second()
    assert [p.requests for p in seconds] == [10, 11, 12, 13]
    assert [p.messages for p in seconds] == [2, 2, 2, 2]
    minutes = sampler.per_minute()
    assert len(minutes) == 2 and minutes[1].t - minutes[0].t == 60
    assert minutes[0].requests + minutes[1].requests == 46
    assert minutes[0].errors + minutes[1].errors == 2


def test_the_buffers_are_bounded() -> None:
    now = [0.0]
    counts = [0.0]
    sampler = Sampler(lambda: (counts[0], counts[0], 0.0), clock=lambda: now[0])
    sampler.sample()
    for _ in range(SECONDS + 50):
        now[0] += 1
        counts[0] += 1
        sampler.sample()
    assert len(sampler.per_second()) == SECONDS
    for _ in range(MINUTES + 5):
        now[0] += 60
        sampler.sample()
    assert len(sampler.per_minute()) == MINUTES + 1  # the completed ones and the current
    # A counter that goes backwards (a registry reset) gives zero, not a negative rate.
    counts[0] = 0
    now[0] += 1
    point = sampler.sample()
    assert point is not None and point.requests == 0
