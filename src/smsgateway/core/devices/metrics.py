"""Device gauges, read from the running channels at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# (channel id, project id, online, queue depth) per linked phone.
Rows = Callable[[], Iterable[tuple[int, int, bool, int]]]


class DeviceCollector(Collector):
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    def collect(self) -> Iterable[GaugeMetricFamily]:
        online = GaugeMetricFamily(
            "smsgateway_device_online",
            "1 while the linked phone holds its event stream or was seen lately",
            labels=["channel", "project"],
        )
        depth = GaugeMetricFamily(
            "smsgateway_device_queue_depth",
            "Messages waiting for the phone to take and report them",
            labels=["channel", "project"],
        )
        for channel_id, project_id, is_online, pending in self._rows():
            labels = [str(channel_id), str(project_id)]
            online.add_metric(labels, 1.0 if is_online else 0.0)
            depth.add_metric(labels, float(pending))
        yield online
        yield depth
