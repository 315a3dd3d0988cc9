"""What the PSP counts and how Prometheus reads it: the instruments the
other parts record to (``instruments``), the folder that adds up every
``--workers`` process (``shared``), the HTTP requests' middleware
(``requests``) and ``GET /metrics`` with the gauges read from the database
at scrape time (``exposition``). Labels carry route templates, methods,
statuses and outcomes from fixed lists: never an id, a key or an amount."""

from psp_server.metrics.instruments import NO_METRICS, Metrics, PrometheusMetrics
from psp_server.metrics.shared import SharedMetrics

__all__ = ["NO_METRICS", "Metrics", "PrometheusMetrics", "SharedMetrics"]
