"""The instruments on a registry of their own: a value off a label's list
becomes ``other``, so that nothing a client sends can grow the series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from psp_server.metrics import NO_METRICS, PrometheusMetrics


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_words_off_the_lists_are_other() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics.request("/v1/payments", "BREW", 405, 0.001)
    metrics.request("/v1/payments", "BREW", 405, 0.001)
    metrics.payment("co_123", 0.01)
    metrics.transition("mer_secret")
    metrics.webhook_delivery("https://example.com/hook")
    metrics.rate_limited("tok:abc")
    requests = "scan2pay_http_requests_total"
    assert sample(registry, requests, route="/v1/payments", method="other", status="405") == 2
    assert sample(registry, "scan2pay_payments_total", outcome="other") == 1
    assert sample(registry, "scan2pay_checkout_transitions_total", to="other") == 1
    assert sample(registry, "scan2pay_webhook_deliveries_total", outcome="other") == 1
    assert sample(registry, "scan2pay_rate_limited_total", limit="other") == 1
    # Only a success is timed: a refusal's time says nothing of the commit.
    assert sample(registry, "scan2pay_payment_duration_seconds_count") == 0


def test_every_listed_series_starts_at_zero() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    assert sample(registry, "scan2pay_payments_total", outcome="succeeded") == 0
    assert sample(registry, "scan2pay_checkout_transitions_total", to="expired") == 0
    assert sample(registry, "scan2pay_rate_limited_total", limit="pay") == 0


def test_the_sampled_gauges_keep_what_they_were_told() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    metrics.sample(mqtt_connected=True, terminals_online=3)
    metrics.sample(mqtt_connected=None, terminals_online=None)  # no broker: left as they were
    assert sample(registry, "scan2pay_mqtt_connected") == 1
    assert sample(registry, "scan2pay_terminals_online") == 3


def test_metrics_off_keep_nothing() -> None:
    assert not NO_METRICS.enabled
    NO_METRICS.request("/", "GET", 200, 0.1)
    NO_METRICS.payment("succeeded", 0.1)
    assert NO_METRICS.scrape_registry() is None
