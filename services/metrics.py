"""Prometheus metrics, one registry per app so that several apps can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lingxi_requests_total",
            "HTTP requests handled, by route and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lingxi_request_duration_seconds",
            "Time to the response's headers, by route.",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.in_flight = Gauge(
            "lingxi_requests_in_flight", "Requests being handled now.", ["service"], registry=self.registry
        )
        self.service = service
        self.in_flight_here = self.in_flight.labels(service)
        self.series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}  # labels() looked up once each

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self.series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            self.series[method, route, status] = series
        count, latency = series
        count.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
