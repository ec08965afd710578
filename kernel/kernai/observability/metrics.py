"""The Prometheus metrics the server exports at ``/metrics`` (prometheus_client, one registry per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Counters, gauges and histograms of requests, tokens and model workers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kernai_http_requests",
            "HTTP requests by route, status and model.",
            ["method", "route", "status", "model"],
            registry=r,
        )
        self.latency = Histogram(
            "kernai_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("kernai_prompt_tokens", "Tokens in (prompts).", ["model"], registry=r)
        self.completion_tokens = Counter(
            "kernai_completion_tokens", "Tokens out (generated).", ["model"], registry=r
        )
        self.time_to_first_token = Histogram(
            "kernai_time_to_first_token_seconds",
            "Time from a streaming request to its first chunk.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "kernai_inference_duration_seconds",
            "Time a backend took per request.",
            ["model", "capability"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.load_time = Histogram(
            "kernai_model_load_seconds",
            "Time to start a worker and load its model.",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=r,
        )
        self.loaded = Gauge("kernai_models_loaded", "Models with a running worker.", registry=r)
        self.restarts = Counter(
            "kernai_worker_restarts", "Automatic restarts after a worker crashed.", ["model"], registry=r
        )
        self.crashes = Counter(
            "kernai_worker_crashes", "Workers that exited unexpectedly.", ["model"], registry=r
        )
        self.evictions = Counter(
            "kernai_model_evictions",
            "Models stopped to make room or when idle.",
            ["model", "reason"],
            registry=r,
        )
        self.queue_depth = Gauge("kernai_queue_depth", "Requests waiting for a model.", ["model"], registry=r)
        self.active = Gauge(
            "kernai_active_requests", "Requests a model is serving now.", ["model"], registry=r
        )
        self.rejected = Counter(
            "kernai_rejected_requests", "Requests refused before reaching a model.", ["reason"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
