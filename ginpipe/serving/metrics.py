"""What ``GET /metrics`` reports, in Prometheus' text format (``prometheus_client``).

Requests by run and status code, requests in flight, errors by run and kind, items per
request, items per batch (how well batching works), and request latency from the body's
first byte to the answer. A registry of its own per server, so two servers in one process
never mix counts.
"""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # the *_created series: a timestamp per label set, noise here
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ginpipe_requests",
            "Prediction requests answered, by run and HTTP status code.",
            ["run", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ginpipe_request_errors",
            "Prediction requests refused or failed, by run and kind of error.",
            ["run", "kind"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "ginpipe_requests_in_flight",
            "Prediction requests accepted and not answered yet.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "ginpipe_request_latency_seconds",
            "Seconds from a prediction request's arrival to its answer.",
            ["run"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.items = Histogram(
            "ginpipe_request_items",
            "Items per prediction request.",
            ["run"],
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "ginpipe_batch_items",
            "Items per batch the model ran on (requests batched together).",
            ["run"],
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        # labelled children by their labels: ``labels()`` takes a lock and builds a key on
        # each call, a cost paid per request otherwise
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def answered(
        self, run: str, code: int, seconds: float, kind: str | None = None, items: int = 0
    ) -> None:
        """One prediction request answered with ``code``; ``items`` predicted (200)."""
        self._child(self.requests, run, str(code)).inc()
        self._child(self.latency, run).observe(seconds)
        if items:
            self._child(self.items, run).observe(items)
        if kind is not None:
            self._child(self.errors, run, kind).inc()

    def batch_observer(self, run: str) -> Any:
        histogram = self.batch_size.labels(run=run)
        return lambda size: histogram.observe(size)

    def text(self) -> tuple[bytes, str]:
        """The exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
