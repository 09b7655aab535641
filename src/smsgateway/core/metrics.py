"""Prometheus metrics for the process.

Counters and histograms live in one registry per process; gauges that describe live
objects (link state, queue depth) are read at scrape time by a collector the runtime
registers, so they can never go stale.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from math import inf

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

LINK_STATES = ("CONNECTING", "BOUND", "UNBINDING", "CLOSED", "DISABLED")


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


class FastCounter(Collector):
    """A Prometheus counter family that costs one float add per increment.

    prometheus_client's Counter takes a lock and checks its state on every inc(),
    several times per message on the send path. These children are a bare number
    each, read at scrape time. Increments come from the event-loop thread only (the
    REST and gRPC faces and the core all run there), so no lock is needed.
    """

    def __init__(self, name: str, doc: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.doc = doc
        self.labelnames = list(labelnames)
        self._children: dict[tuple[str, ...], _CounterChild] = {}
        if not self.labelnames:
            self._children[()] = _CounterChild()

    def labels(self, *values: str, **named: str) -> _CounterChild:
        key = tuple(values) if values else tuple(named[n] for n in self.labelnames)
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}")
            child = self._children[key] = _CounterChild()
        return child

    def inc(self, amount: float = 1.0) -> None:
        self._children[()].value += amount

    def total(self, where: Callable[[tuple[str, ...]], bool] | None = None) -> float:
        """The sum over children (those whose label values `where` accepts): what
        the console's sampler reads once a second."""
        return sum(
            child.value
            for key, child in list(self._children.items())
            if where is None or where(key)
        )

    def values(self) -> dict[tuple[str, ...], float]:
        """Every child's value by its label values (a copy)."""
        return {key: child.value for key, child in list(self._children.items())}

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for key, child in list(self._children.items()):
            family.add_metric(list(key), child.value)
        yield family


class FastHistogram(Collector):
    """A Prometheus histogram family in the same spirit as FastCounter."""

    def __init__(
        self, name: str, doc: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name = name
        self.doc = doc
        self.labelnames = list(labelnames)
        self.bounds = tuple(sorted(buckets))
        self._children: dict[tuple[str, ...], _HistogramChild] = {}

    def labels(self, *values: str) -> _HistogramChild:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}")
            child = self._children[values] = _HistogramChild(self.bounds)
        return child

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labelnames)
        for key, child in list(self._children.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*self.bounds, inf), child.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == inf else repr(float(bound)), cumulative))
            family.add_metric(list(key), buckets, child.total)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = FastCounter(
            "smsgateway_http_requests", "HTTP requests by route and status", ["route", "status"]
        )
        self.latency = FastHistogram(
            "smsgateway_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.messages_accepted = FastCounter(
            "smsgateway_messages_accepted", "Messages stored and accepted"
        )
        self.parts_submitted = FastCounter(
            "smsgateway_parts_submitted", "Parts answered by the SMSC, by result", ["result"]
        )
        self.parts_resent = FastCounter(
            "smsgateway_parts_resent",
            "Parts sent to the SMSC again because their first submit got no answer"
            " (possible duplicates), by why",
            ["reason"],
        )
        self.receipts = FastCounter(
            "smsgateway_receipts", "Delivery receipts by resulting part state", ["state"]
        )
        # Channels (issue 11): every try of a channel, and messages that expired unsent.
        self.channel_attempts = FastCounter(
            "smsgateway_channel_attempts",
            "Tries of a channel (link, pool, list member, device) by outcome"
            " (accepted, refused, timeout, down)",
            ["channel", "outcome"],
        )
        self.messages_expired = FastCounter(
            "smsgateway_messages_expired", "Messages whose validity ended before they were sent"
        )
        for family in (
            self.requests,
            self.latency,
            self.messages_accepted,
            self.parts_submitted,
            self.parts_resent,
            self.receipts,
            self.channel_attempts,
            self.messages_expired,
        ):
            self.registry.register(family)


METRICS = Metrics()


class LiveCollector(Collector):
    """Link state, queue depth and store commits, read from the running objects at
    scrape time."""

    def __init__(
        self,
        links: Callable[[], Iterable[tuple[int, str, str, int, float]]],
        store: Callable[[], tuple[int, int]] | None = None,
        pools: Callable[[], Iterable[tuple[int, int]]] | None = None,
    ) -> None:
        self._links = links
        self._store = store
        self._pools = pools

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        state = GaugeMetricFamily(
            "smsgateway_link_state", "1 for the link's current state", labels=["link", "state"]
        )
        depth = GaugeMetricFamily(
            "smsgateway_link_queue_depth", "Messages waiting for the link", labels=["link"]
        )
        tps = GaugeMetricFamily(
            "smsgateway_link_tps", "Measured submits per second", labels=["link"]
        )
        for link_id, _name, status, pending, measured in self._links():
            for s in LINK_STATES:
                state.add_metric([str(link_id), s], 1.0 if s == status else 0.0)
            depth.add_metric([str(link_id)], float(pending))
            tps.add_metric([str(link_id)], measured)
        yield state
        yield depth
        yield tps
        if self._pools is not None:
            # Jobs a pool holds itself: none of its members could take them.
            pooled = GaugeMetricFamily(
                "smsgateway_pool_queue_depth",
                "Messages waiting for any member of the pool",
                labels=["pool"],
            )
            for pool_id, pending in self._pools():
                pooled.add_metric([str(pool_id)], float(pending))
            yield pooled
        if self._store is not None:
            # units / commits is the group-commit factor: how many writes share one
            # transaction (and its fsync-bearing commit).
            commits, units = self._store()
            yield CounterMetricFamily(
                "smsgateway_store_commits", "Write transactions run by the store", commits
            )
            yield CounterMetricFamily(
                "smsgateway_store_units", "Writes (units) run by the store", units
            )
