"""``GET /metrics`` of a live PSP: what it counts after real traffic, that
no label ever carries an id, key, code or amount, and where it is served
(the public port, a metrics port of its own, or nowhere)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from psp_server.api.guards.request_metrics import UNMATCHED
from psp_server.metrics.instruments import (
    LIMITS,
    METHODS,
    OTHER,
    PAYMENT_OUTCOMES,
    TRANSITIONS,
    WEBHOOK_OUTCOMES,
)
from psp_server.runtime.config import Rate, parse_networks
from scan2pay_common.messages import TerminalState
from scan2pay_common.topics import state_topic
from tests.support.broker import Mosquitto, free_port
from tests.support.mqtt import publish
from tests.support.polling import until
from tests.support.psp import Psp, code_of, start_psp, stop_psp

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: aiohttp.ClientSession, url: str) -> tuple[str, Samples]:
    async with http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def routes_of(psp: Psp) -> set[str]:
    served = {
        route.resource.canonical
        for route in psp.server.app.router.routes()
        if route.resource is not None
    }
    return served | {UNMATCHED}


@pytest.fixture
async def busy_psp(db: str) -> AsyncIterator[Psp]:
    """A PSP with tight QR limits and webhooks allowed to loopback."""
    psp = await start_psp(
        db,
        sweep_interval=0.05,
        rate_qr_per_ip=Rate(1, 60.0),
        webhook_allow_networks=parse_networks("127.0.0.0/8"),
        webhook_retry_base=60.0,
    )
    yield psp
    await stop_psp(psp)


async def test_what_traffic_leaves_in_the_metrics_and_no_label_carries_an_id(
    busy_psp: Psp,
) -> None:
    psp = busy_psp
    merchant = await psp.merchant()
    wallet = await psp.wallet(balance=1_000_000)
    status, hook = await psp.call(
        "POST",
        "/v1/webhooks",
        json={"url": f"http://127.0.0.1:{free_port()}/hook"},  # nobody listens there
        headers=merchant.auth,
    )
    assert status == 201, hook
    paid = await psp.checkout(merchant, amount=777_777, order_id="ORDER-SECRET-1")
    canceled = await psp.checkout(merchant, amount=4242, order_id="B-2")
    expiring = await psp.checkout(merchant, amount=3131, order_id="C-3")
    assert (await psp.pay(wallet, code_of(paid)))[0] == 201
    assert (await psp.pay(wallet, code_of(paid)))[0] == 409
    status, _ = await psp.call(
        "POST", f"/v1/checkouts/{canceled['id']}/cancel", headers=merchant.auth
    )
    assert status == 200
    status, _ = await psp.call(
        "POST",
        f"/v1/checkouts/{paid['id']}/refunds",
        json={"amount": 1},
        headers={**merchant.auth, "Idempotency-Key": "refund-1"},
    )
    assert status == 201
    assert (await psp.call("GET", f"/Q/{code_of(expiring)}"))[0] == 200
    assert (await psp.call("GET", f"/Q/{code_of(expiring)}"))[0] == 429
    assert (await psp.call("GET", f"/v1/checkouts/{paid['id']}", headers=merchant.auth))[0] == 200
    assert (await psp.call("GET", "/no/such/page/co_abc"))[0] == 404
    assert (await psp.call("PROPFIND", "/v1/checkouts"))[0] == 405
    psp.pass_expiry(expiring)

    async def settled() -> Samples | None:
        _, samples = await scrape(psp.http, psp.url + "/metrics")
        done = (
            value(samples, "scan2pay_checkout_transitions_total", to="expired") == 1
            and value(samples, "scan2pay_webhook_deliveries_total", outcome="retrying") >= 1
        )
        return samples if done else None

    samples = await until(settled, what="the expiry and a webhook attempt", timeout=15)
    text, samples = await scrape(psp.http, psp.url + "/metrics")

    assert value(samples, "scan2pay_checkouts_created_total") == 3
    assert value(samples, "scan2pay_payments_total", outcome="succeeded") == 1
    assert value(samples, "scan2pay_payments_total", outcome="refused") == 1
    assert value(samples, "scan2pay_payment_duration_seconds_count") == 1
    for to, count in (("paid", 1), ("cancelled", 1), ("expired", 1), ("refunded", 1)):
        assert value(samples, "scan2pay_checkout_transitions_total", to=to) == count, to
    assert value(samples, "scan2pay_rate_limited_total", limit="qr") == 1
    assert value(samples, "scan2pay_webhook_pending") >= 1
    assert value(samples, "scan2pay_outbox_pending") >= 4  # no broker: events wait
    assert value(samples, "scan2pay_outbox_oldest_pending_age_seconds") > 0
    assert value(samples, "scan2pay_db_errors_total") == 0
    # No broker: no gauge of its link or of terminals, rather than a 0 that pages.
    assert "scan2pay_mqtt_connected" not in text
    assert "scan2pay_terminals_online" not in text
    requests = "scan2pay_http_requests_total"
    assert value(samples, requests, route="/v1/payments", method="POST", status="201") == 1
    assert value(samples, requests, route="/Q/{code}", method="GET", status="429") == 1
    assert value(samples, requests, route=UNMATCHED, method="GET", status="404") == 1
    # A method HTTP does not name is "other"; a 405 matched no route.
    assert value(samples, requests, route=UNMATCHED, method=OTHER, status="405") == 1

    # Every label value is from its allow-list: nothing the traffic named
    # (ids, codes, keys, tokens, order ids, amounts) is in any of them.
    allowed: dict[str, set[str]] = {
        "route": routes_of(psp),
        "method": set(METHODS) | {OTHER},
        "status": {str(code) for code in range(100, 600)},
        "to": set(TRANSITIONS),
        "outcome": set(PAYMENT_OUTCOMES) | set(WEBHOOK_OUTCOMES),
        "limit": set(LIMITS),
        "le": set(),  # histogram bounds: numbers, checked below
    }
    for (name, labels), _ in samples.items():
        for label, word in labels:
            assert label in allowed, f"{name} has an unexpected label {label}"
            if label == "le":
                assert word == "+Inf" or float(word) > 0, (name, word)
            else:
                assert word in allowed[label], f"{name}{{{label}={word!r}}}"
    secrets: list[Any] = [
        merchant.id, merchant.key, wallet.id, wallet.token, hook["id"], hook["secret"],
        "ORDER-SECRET-1", "777777", "4242", "3131",
    ]  # fmt: skip
    for checkout in (paid, canceled, expiring):
        secrets += [checkout["id"], code_of(checkout)]
    # The series' names and labels, without their values: a sample's value
    # (a sum of seconds, say) may hold any digits, "4242" among them.
    series = "\n".join(line.rsplit(" ", 1)[0] for line in text.splitlines())
    for secret in secrets:
        assert str(secret) not in series, f"{secret!r} is in /metrics"


async def test_a_metrics_port_takes_metrics_off_the_public_port(tmp_path: Path) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"), metrics_port=0)
    try:
        assert psp.server.metrics_url is not None
        assert not psp.server.metrics_url.startswith(psp.url)
        assert (await psp.call("GET", "/metrics"))[0] == 404
        await psp.call("GET", "/healthz")
        _, samples = await scrape(psp.http, psp.server.metrics_url)
        requests = "scan2pay_http_requests_total"
        assert value(samples, requests, route=UNMATCHED, method="GET", status="404") == 1
        assert value(samples, requests, route="/healthz", method="GET", status="200") == 1
        # The metrics port serves /metrics and nothing else of the PSP's.
        base = psp.server.metrics_url.removesuffix("/metrics")
        for path in ("/healthz", "/v1/checkouts", "/openapi.json"):
            async with psp.http.get(base + path) as response:
                assert response.status == 404, path
    finally:
        await stop_psp(psp)


async def test_metrics_off_serves_none_and_counts_nothing(tmp_path: Path) -> None:
    psp = await start_psp(str(tmp_path / "psp.db"), metrics=False)
    try:
        assert psp.server.metrics_url is None
        assert (await psp.call("GET", "/metrics"))[0] == 404
        assert (await psp.call("GET", "/readyz"))[0] == 200
    finally:
        await stop_psp(psp)


async def test_the_relay_link_and_the_terminals_online_over_all_merchants(
    tmp_path: Path, broker: Mosquitto
) -> None:
    online = TerminalState(online=True, screen="idle", checkout_id=None, displayed_at=None)
    offline = TerminalState(online=False, screen="idle", checkout_id=None, displayed_at=None)
    # Retained states of three terminals of two merchants, one of them off.
    states = {
        ("mer_census1", "t1"): online,
        ("mer_census1", "t2"): offline,
        ("mer_census2", "t1"): online,
    }
    for (merchant_id, terminal_id), state in states.items():
        publish(broker.port, state_topic(merchant_id, terminal_id), state.to_json())
    psp = await start_psp(str(tmp_path / "psp.db"), mqtt_url=broker.url)
    try:

        async def sampled() -> Samples | None:
            _, samples = await scrape(psp.http, psp.url + "/metrics")
            ok = (
                value(samples, "scan2pay_mqtt_connected") == 1
                and value(samples, "scan2pay_terminals_online") == 2
            )
            return samples if ok else None

        await until(sampled, what="the broker's link and two terminals online", timeout=15)
        # One goes offline, its will or its own word: the count follows.
        publish(broker.port, state_topic("mer_census2", "t1"), offline.to_json())

        async def one_online() -> bool:
            _, samples = await scrape(psp.http, psp.url + "/metrics")
            return value(samples, "scan2pay_terminals_online") == 1

        await until(one_online, what="one terminal online", timeout=15)
        broker.stop()
        # The relay finds the broker gone when it next publishes.
        merchant, wallet = await psp.merchant(), await psp.wallet()
        assert (await psp.pay(wallet, code_of(await psp.checkout(merchant))))[0] == 201

        async def disconnected() -> bool:
            _, samples = await scrape(psp.http, psp.url + "/metrics")
            return value(samples, "scan2pay_mqtt_connected") == 0

        await until(disconnected, what="the relay's link down", timeout=15)
    finally:
        await stop_psp(psp)


def test_the_documented_metrics_are_the_served_ones() -> None:
    """docs/metrics.md names each metric the PSP serves, and no other."""
    doc = (Path(__file__).parents[3] / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(scan2pay_[a-z_]+)`", doc))
    from prometheus_client import CollectorRegistry

    from psp_server.metrics import PrometheusMetrics

    registry = CollectorRegistry()
    PrometheusMetrics(registry)
    served = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in registry.collect()
    }
    served |= {
        "scan2pay_outbox_pending",
        "scan2pay_outbox_oldest_pending_age_seconds",
        "scan2pay_webhook_pending",
    }
    assert documented == served
