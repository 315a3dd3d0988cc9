"""A real Prometheus scrapes ``psp-server serve --workers 2`` on PostgreSQL
through its metrics port while the test sells, and the counts and the rate
Prometheus answers are what the test did, whichever worker served what."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import wait_until
from tests.support.postgres import PgServer, fresh_database
from tests.support.process import PspProcess, create_merchant, create_wallet
from tests.support.prometheus import Prometheus
from tests.support.workers import WorkerLog

CHECKOUTS = 6
PAID = 4
# GET /Q/{code} allows this many per address per minute, whichever worker
# answers (the workers share their buckets); asked QR_LOOKUPS times, the
# rest are refused 429, and each refusal is counted.
QR_LIMIT = 2
QR_LOOKUPS = 5


def call(
    url: str, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Idempotency-Key": uuid.uuid4().hex, "Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def pg_db(pg_server: PgServer, pg_psp_template: str) -> Iterator[str]:
    with fresh_database(pg_server, pg_psp_template) as dsn:
        yield dsn


@pytest.mark.timeout(120)
def test_prometheus_scrapes_every_worker_and_counts_what_happened(
    pg_db: str, tmp_path: Path, prometheus: Callable[[str], Prometheus]
) -> None:
    merchant = create_merchant(pg_db)
    wallet = create_wallet(pg_db, balance="1000.00")
    server = PspProcess(
        pg_db,
        workers=2,
        log_path=tmp_path / "psp.log",
        extra=("--metrics-port", "0", "--rate-qr-per-ip", f"{QR_LIMIT}/60s"),
    )
    try:
        WorkerLog(server).wait_for_workers(2)
        scraper = prometheus(server.metrics_url)
        started = time.monotonic()
        # Every series at 0 before the first sale, as the rate needs.
        wait_until(lambda: scraper.scrapes() >= 2, "two scrapes before the sales")

        codes = []
        for n in range(CHECKOUTS):
            status, created = call(
                server.url,
                "POST",
                "/v1/checkouts",
                merchant["api_key"],
                {"order_id": f"M-{n}", "amount": 250, "currency": "EUR"},
            )
            assert status == 201, created
            codes.append(created["qr_url"].rsplit("/Q/", 1)[1])
            canceled_id = created["id"]
        for code in codes[:PAID]:
            status, paid = call(server.url, "POST", "/v1/payments", wallet["token"], {"code": code})
            assert status == 201, paid
        status, _ = call(server.url, "POST", "/v1/payments", wallet["token"], {"code": codes[0]})
        assert status == 409  # paid already: refused
        status, _ = call(
            server.url, "POST", f"/v1/checkouts/{canceled_id}/cancel", merchant["api_key"]
        )
        assert status == 200
        lookups = [call(server.url, "GET", f"/Q/{codes[-1]}")[0] for _ in range(QR_LOOKUPS)]
        limited = lookups.count(429)
        assert limited == QR_LOOKUPS - QR_LIMIT, lookups

        def counted(promql: str, expected: float) -> bool:
            return scraper.value(promql) == expected

        wait_until(
            lambda: counted('sum(scan2pay_payments_total{outcome="succeeded"})', PAID),
            "the payments in Prometheus",
            timeout=15,
            every=0.2,
        )
        # One scrape more, after the sales, for the rate's window to end on.
        after = scraper.scrapes()
        wait_until(lambda: scraper.scrapes() > after, "a scrape after the sales", every=0.2)

        expected = {
            "sum(scan2pay_checkouts_created_total)": CHECKOUTS,
            'sum(scan2pay_payments_total{outcome="refused"})': 1,
            'sum(scan2pay_checkout_transitions_total{to="paid"})': PAID,
            'sum(scan2pay_checkout_transitions_total{to="cancelled"})': 1,
            'sum(scan2pay_rate_limited_total{limit="qr"})': limited,
            "sum(scan2pay_payment_duration_seconds_count)": PAID,
            'sum(scan2pay_http_requests_total{route="/v1/payments",status="201"})': PAID,
            'sum(scan2pay_http_requests_total{route="/v1/checkouts",method="POST"})': CHECKOUTS,
            'sum(scan2pay_http_requests_total{route="/Q/{code}",status="429"})': limited,
            'sum(scan2pay_http_request_duration_seconds_count{route="/Q/{code}"})': QR_LOOKUPS,
            # No broker: every event the sales wrote (a payment's, a
            # cancellation's) waits in the outbox.
            "scan2pay_outbox_pending": PAID + 1,
            "scan2pay_db_errors_total": 0,
        }
        answered = {promql: scraper.value(promql) for promql in expected}
        assert answered == expected

        # The rate over a window holding every scrape: Prometheus's own
        # extrapolation past the last sample is at most one interval, so
        # rate * window is the payments made, give or take that share.
        scraped = time.monotonic() - started
        window = int(scraped) + 2
        succeeded = 'scan2pay_payments_total{outcome="succeeded"}'
        rate = scraper.value(f"sum(rate({succeeded}[{window}s]))")
        assert rate is not None
        # The samples span at least the time scraped less one interval.
        assert PAID <= rate * window <= PAID * (1 + 1.5 / (scraped - 1)), (rate, window)

        # Both workers answered, and their counts were added up.
        log = WorkerLog(server)
        log.update()
        assert len([pid for pid, n in log.answered.items() if n]) == 2, log.answered
    finally:
        server.stop()


def scrape_total(url: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        text = answer.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                total += found.value
    return total


@pytest.mark.timeout(90)
def test_what_a_killed_worker_counted_still_counts(pg_db: str, tmp_path: Path) -> None:
    import os
    import signal

    merchant = create_merchant(pg_db)
    server = PspProcess(pg_db, workers=2, log_path=tmp_path / "psp.log")
    try:
        log = WorkerLog(server)
        workers = log.wait_for_workers(2)
        for n in range(6):
            status, _ = call(
                server.url,
                "POST",
                "/v1/checkouts",
                merchant["api_key"],
                {"order_id": f"K-{n}", "amount": 100, "currency": "EUR"},
            )
            assert status == 201
        created = "scan2pay_checkouts_created_total"
        assert scrape_total(server.metrics_url, created) == 6
        log.update()
        victim = max(workers, key=lambda pid: log.answered[pid])
        assert log.answered[victim] > 0
        os.kill(victim, signal.SIGKILL)
        log.wait_for_workers(2, gone=victim)
        assert scrape_total(server.metrics_url, created) == 6
        assert scrape_total(server.metrics_url, created) == 6  # whichever worker answers
    finally:
        server.stop()
