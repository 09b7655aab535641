"""Prometheus metrics for the process.

Counters and histograms live in one registry per process; gauges that describe live
objects (link state, queue depth) are read at scrape time by a collector the runtime
registers, so they can never go stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LINK_STATES = ("CONNECTING", "BOUND", "UNBINDING", "CLOSED", "DISABLED")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "smsgateway_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "smsgateway_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.messages_accepted = Counter(
            "smsgateway_messages_accepted", "Messages stored and accepted", registry=r
        )
        self.parts_submitted = Counter(
            "smsgateway_parts_submitted",
            "Parts answered by the SMSC, by result",
            ["result"],
            registry=r,
        )
        self.receipts = Counter(
            "smsgateway_receipts",
            "Delivery receipts by resulting part state",
            ["state"],
            registry=r,
        )


METRICS = Metrics()


class LiveCollector(Collector):
    """Link state and queue depth, read from the running objects at scrape time."""

    def __init__(self, links: Callable[[], Iterable[tuple[int, str, str, int, float]]]) -> None:
        self._links = links

    def collect(self) -> Iterable[GaugeMetricFamily]:
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
