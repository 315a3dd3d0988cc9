"""The instruments: ``Metrics`` records nothing (``--metrics off``, and
what every part holds until an app gives it more), ``PrometheusMetrics``
records to prometheus-client's counters, histograms and gauges.

Every label value comes from a fixed list or from the route table, so that
the number of series is bounded whatever clients send: a method aiohttp
accepts but HTTP does not name is ``other``, an outcome off its list is
``other``. The hot path looks each combination of labels up once and keeps
the child it got (``labels()`` costs a few microseconds per call)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from psp_server.metrics import shared
from scan2pay_common.statuses import Status

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PAYMENT_OUTCOMES = frozenset({"succeeded", "replayed", "refused", "unavailable", "error"})
WEBHOOK_OUTCOMES = frozenset({"delivered", "retrying", "failed", "dropped"})
LIMITS = frozenset({"qr", "pay", "pair"})
# The statuses a checkout moves to, and its refunds, which leave it paid
# (scan2pay_common/statuses.py).
TRANSITIONS = frozenset(
    {*(status.value for status in Status if status is not Status.PENDING), "refunded"}
)
OTHER = "other"

# Seconds. A request or a payment on a healthy PSP takes a few
# milliseconds; the upper buckets catch a database that stalls.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def _known(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


class Metrics:
    """Records nothing: the PSP with ``--metrics off``. Each method is what
    one part of the PSP reports."""

    enabled = False

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """An HTTP request answered; ``route`` is its template, never its path."""

    def checkout_created(self) -> None: ...

    def transition(self, to: str, count: int = 1) -> None:
        """``count`` checkouts committed to status ``to``."""

    def payment(self, outcome: str, seconds: float) -> None:
        """A payment request's outcome and its time from arrival to commit."""

    def webhook_delivery(self, outcome: str) -> None: ...

    def rate_limited(self, limit: str) -> None: ...

    def db_error(self) -> None:
        """A transaction that failed: the database away, or refusing it."""

    def sample(self, *, mqtt_connected: bool | None, terminals_online: int | None) -> None:
        """This process's view of the broker, taken every few seconds."""

    def scrape_registry(self) -> CollectorRegistry | None:
        """What a scrape renders; None: nothing, metrics are off."""
        return None


NO_METRICS = Metrics()


class PrometheusMetrics(Metrics):
    """prometheus-client's instruments, registered with ``registry`` (one
    process), or, in multiprocess mode (``registry=None``), written to the
    shared folder that ``SharedMetrics`` made and read back from it."""

    enabled = True

    def __init__(self, registry: CollectorRegistry | None, *, broker: bool = True) -> None:
        """``broker``: whether this PSP has one; without, the gauges of the
        broker's link and the terminals are not served (a 0 would page
        someone about a broker the PSP was told not to use)."""
        # No *_created series: twice the lines for a start time that
        # Prometheus does not need (multiprocess mode never writes them).
        disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus-client leaves it untyped
        self._registry = registry
        self._requests = Counter(
            "scan2pay_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self._request_seconds = Histogram(
            "scan2pay_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._checkouts = Counter(
            "scan2pay_checkouts_created", "Checkouts created.", registry=registry
        )
        self._transitions = Counter(
            "scan2pay_checkout_transitions",
            "Checkouts committed to a new status, by that status, and refunds"
            " (to=refunded; the checkout stays paid).",
            ("to",),
            registry=registry,
        )
        self._payments = Counter(
            "scan2pay_payments",
            "Payment requests, by outcome: succeeded, replayed (an idempotent retry),"
            " refused (a 4xx), unavailable (the database away) or error.",
            ("outcome",),
            registry=registry,
        )
        self._payment_seconds = Histogram(
            "scan2pay_payment_duration_seconds",
            "Time from a payment request's arrival to its commit.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._webhooks = Counter(
            "scan2pay_webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered, retrying, failed (retries"
            " exhausted) or dropped (the endpoint was disabled meanwhile).",
            ("outcome",),
            registry=registry,
        )
        self._rate_limited = Counter(
            "scan2pay_rate_limited",
            "Requests refused 429 by a rate limit, by limit.",
            ("limit",),
            registry=registry,
        )
        self._db_errors = Counter(
            "scan2pay_db_errors",
            "Transactions that failed: the database unreachable or refusing them.",
            registry=registry,
        )
        # One value per live process; the lowest says whether every worker's
        # relay is connected. Every worker watches the same broker, so the
        # highest count of terminals is the count.
        self._mqtt_connected: Gauge | None = None
        self._terminals_online: Gauge | None = None
        if broker:
            self._mqtt_connected = Gauge(
                "scan2pay_mqtt_connected",
                "1 when the outbox relay of every server process is connected to the broker.",
                registry=registry,
                multiprocess_mode="livemin",
            )
            self._terminals_online = Gauge(
                "scan2pay_terminals_online",
                "Terminals whose retained state says online, over all merchants.",
                registry=registry,
                multiprocess_mode="livemax",
            )
        self._by_request: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        # Each series from 0 at start, so that rate() and increase() see the
        # first event rather than a series that appears at 1.
        for counter, words in (
            (self._transitions, TRANSITIONS),
            (self._payments, PAYMENT_OUTCOMES),
            (self._webhooks, WEBHOOK_OUTCOMES),
            (self._rate_limited, LIMITS),
        ):
            for word in sorted(words):
                counter.labels(word)

    @classmethod
    def for_this_process(cls, *, broker: bool) -> PrometheusMetrics:
        """Shared with the other workers when this process is one of them,
        else this process's own registry."""
        registry = None if shared.current() is not None else CollectorRegistry()
        return cls(registry, broker=broker)

    def scrape_registry(self) -> CollectorRegistry:
        """What a scrape renders: this process's registry, or one that reads
        every worker's files."""
        if self._registry is not None:
            return self._registry
        folder = shared.current()
        if folder is None:
            raise RuntimeError(f"multiprocess metrics without their folder ({shared.ENV})")
        return folder.registry()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._by_request.get(key)
        if children is None:
            method = _known(method, METHODS)
            children = (
                self._requests.labels(route, method, str(status)),
                self._request_seconds.labels(route),
            )
            self._by_request[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def checkout_created(self) -> None:
        self._checkouts.inc()

    def transition(self, to: str, count: int = 1) -> None:
        if count:
            self._transitions.labels(_known(to, TRANSITIONS)).inc(count)

    def payment(self, outcome: str, seconds: float) -> None:
        self._payments.labels(_known(outcome, PAYMENT_OUTCOMES)).inc()
        if outcome == "succeeded":
            self._payment_seconds.observe(seconds)

    def webhook_delivery(self, outcome: str) -> None:
        self._webhooks.labels(_known(outcome, WEBHOOK_OUTCOMES)).inc()

    def rate_limited(self, limit: str) -> None:
        self._rate_limited.labels(_known(limit, LIMITS)).inc()

    def db_error(self) -> None:
        self._db_errors.inc()

    def sample(self, *, mqtt_connected: bool | None, terminals_online: int | None) -> None:
        if mqtt_connected is not None and self._mqtt_connected is not None:
            self._mqtt_connected.set(1 if mqtt_connected else 0)
        if terminals_online is not None and self._terminals_online is not None:
            self._terminals_online.set(terminals_online)
