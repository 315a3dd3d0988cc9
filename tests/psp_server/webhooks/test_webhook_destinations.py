"""Webhooks are not a port scanner: a merchant cannot make the PSP connect
to its own loopback, the cloud's metadata service or any other non-public
address, and the delivery log tells only the class of a failure.

Against real PSPs (in-process and ``psp-server serve`` processes) and real
receivers on loopback. Names resolve through tests/support/dns.py where a
test needs a name to change its address; the PSP's own resolver, connector
and socket factory are the product's. Nothing is sent off loopback: where a
test names 169.254.169.254, the PSP must refuse it before making a socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from psp_server.core.errors import ConfigError
from psp_server.runtime import config
from psp_server.webhooks.store import WebhookStore
from scan2pay_common.timefmt import now_ms
from tests.support.dns import StaticResolver
from tests.support.polling import until
from tests.support.process import PspProcess, create_merchant, create_wallet, run_cli
from tests.support.psp import Merchant, Psp, code_of, start_psp, stop_psp
from tests.support.webhooks import log_until


def networks(text: str) -> Any:
    """What ``--webhook-allow-networks`` takes, parsed as the server does."""
    return config.parse_networks(text)


FAST: dict[str, Any] = {"webhook_retry_base": 0.2, "webhook_retry_max": 1.0, "webhook_timeout": 5.0}
CLASSES = {
    "timeout",
    "connection_refused",
    "tls_error",
    "dns_error",
    "blocked_destination",
    "connection_failed",
    "http_3xx",
    "http_4xx",
    "http_5xx",
    "http_other",
}


class Receiver:
    """An HTTP server on ``host`` that records what it is sent, answers
    ``status`` (``stall``: never), and closes each connection after its
    answer, so that the PSP connects (and resolves) afresh each time."""

    def __init__(self, host: str = "127.0.0.1", status: int = 200) -> None:
        self.host = host
        self.status = status
        self.stall = False
        self.requests: list[bytes] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.read())
        if self.stall:
            await self._release.wait()
        redirect = 300 <= self.status < 400
        headers = {"Location": "http://127.0.0.1:9/elsewhere"} if redirect else {}
        response = web.Response(status=self.status, text="answer", headers=headers)
        response.force_close()
        return response

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family)
        sock.bind((self.host, port))
        await web.SockSite(self._runner, sock).start()
        self.port = sock.getsockname()[1]

    def url(self, host: str | None = None, scheme: str = "http") -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{host}:{self.port}/hook"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


MakeReceiver = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[MakeReceiver]:
    made: list[Receiver] = []

    async def make(host: str = "127.0.0.1", status: int = 200, port: int = 0) -> Receiver:
        one = Receiver(host, status)
        made.append(one)
        await one.start(port)
        return one

    yield make
    for one in made:
        await one.stop()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def register(psp: Psp, merchant: Merchant, url: str) -> tuple[int, Any]:
    return await psp.call("POST", "/v1/webhooks", json={"url": url}, headers=merchant.auth)


async def pay(psp: Psp, merchant: Merchant, order_id: str) -> None:
    checkout = await psp.checkout(merchant, order_id=order_id)
    status, answer = await psp.pay(await psp.wallet(), code_of(checkout))
    assert status == 201, answer


# The policy on its own: every special range, in every form.

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("64:ff9b::7f00:1", "loopback, in an IPv6 form"),  # NAT64
    ("2002:7f00:1::1", "loopback, in an IPv6 form"),  # 6to4
    ("::127.0.0.1", "IPv4-compatible"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("169.254.169.254", "link-local"),  # AWS, GCP, Azure, DigitalOcean... metadata
    ("::ffff:169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%lo", "link-local"),
    ("fd00:ec2::254", "unique local"),  # AWS's IPv6 metadata
    ("168.63.129.16", "cloud metadata"),  # Azure's, a public address
    ("100.100.100.200", "shared"),  # Alibaba's metadata, in carrier-grade NAT space
    ("192.0.0.192", "IETF protocol assignment"),  # Oracle's metadata
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("64:ff9b::a00:1", "private, in an IPv6 form"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.88.99.1", "6to4 relay"),
    ("2001::1", "Teredo"),
    ("2001:2::1", "IETF protocol assignment"),
    ("100::1", "discard-only"),
    ("fec0::1", "site-local"),
    ("4000::1", "reserved"),
    ("not an address", "not an IP address"),
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",  # just past 172.16.0.0/12
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of a public address
]


@pytest.mark.parametrize(("address", "kind"), REFUSED)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    from psp_server.webhooks.destinations import DestinationPolicy

    refusal = DestinationPolicy().refusal_of(address)
    assert refusal is not None, address
    assert kind in refusal, refusal


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    from psp_server.webhooks.destinations import DestinationPolicy

    assert DestinationPolicy().refusal_of(address) is None


def test_allowed_networks_allow_those_addresses_alone() -> None:
    from psp_server.webhooks.destinations import DestinationPolicy

    policy = DestinationPolicy(networks("127.0.0.0/8,10.0.0.0/8"))
    for address in ("127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1", "10.2.3.4", "64:ff9b::a00:1"):
        assert policy.refusal_of(address) is None, address
    refused = ("::1", "0.0.0.0", "169.254.169.254", "192.168.1.1", "::127.0.0.1")  # noqa: S104 - addresses to refuse, not to bind
    for address in refused:
        assert policy.refusal_of(address) is not None, address


# Registration.

# Each form of a non-public address a merchant might register.
BAD_DESTINATIONS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::1]:8080/hook",
    "http://0.0.0.0/hook",
    "http://0.0.0.0:8080/hook",
    "http://[::]/hook",
    "http://0x7f000001/hook",
    "http://0x7F.0.0.1/hook",
    "http://2130706433/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://127.0.0.1./hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[::127.0.0.1]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://127.0.0.1:18997/hook",
    "https://127.0.0.1/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://shop.localhost/hook",
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://168.63.129.16/hook",
    "http://[fe80::1]/hook",
    "http://[fe80::1%25eth0]/hook",
    "http://[fd00:ec2::254]/hook",
    "http://224.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[ff02::1]/hook",
    "http://192.0.2.1/hook",
    "http://127.0.0.%31/hook",
]


async def test_registration_refuses_every_non_public_address_form(psp: Psp) -> None:
    shop = await psp.merchant()
    wrong: list[str] = []
    for url in BAD_DESTINATIONS:
        status, body = await register(psp, shop, url)
        error = body["error"] if isinstance(body, dict) and "error" in body else {}
        message = str(error.get("message", ""))
        clear = "not a public address" in message or "IPv4 address in another form" in message
        clear |= "IPv6 zone" in message or "may hold only" in message
        if (status, error.get("code")) != (422, "invalid_url"):
            wrong.append(f"{url}: {status} {body}")
        elif not clear:
            wrong.append(f"{url}: unclear message {message!r}")
    assert not wrong, "\n".join(wrong)
    # Nothing was made.
    assert (await psp.call("GET", "/v1/webhooks", headers=shop.auth))[1] == {"webhooks": []}


async def test_the_refusal_says_what_the_address_is(psp: Psp) -> None:
    shop = await psp.merchant()
    status, body = await register(psp, shop, "http://169.254.169.254/latest/meta-data/")
    assert status == 422
    assert body["error"]["message"] == (
        "url's host 169.254.169.254 is not a public address (link-local, where cloud"
        " metadata services are); webhooks go only to public addresses unless the PSP's"
        " operator allows others"
    )


async def test_allowed_networks_let_loopback_in_and_nothing_else(
    db: str, receiver: MakeReceiver
) -> None:
    psp = await start_psp(
        db, sweep_interval=0.05, webhook_allow_networks=networks("127.0.0.0/8"), **FAST
    )
    try:
        hook = await receiver()
        shop = await psp.merchant()
        status, webhook = await register(psp, shop, hook.url())
        assert status == 201, webhook
        for url in ("http://[::1]/hook", "http://0.0.0.0/hook", "http://10.0.0.1/hook"):
            status, body = await register(psp, shop, url)
            assert (status, body["error"]["code"]) == (422, "invalid_url"), url
        await pay(psp, shop, "L-1")
        (delivered,) = await log_until(
            psp, shop, webhook["id"], lambda d: d[0]["status"] == "delivered"
        )
        assert (delivered["last_status_code"], delivered["last_error"]) == (200, None)
        assert len(hook.requests) == 1
    finally:
        await stop_psp(psp)


# Delivery: the address connected to is checked, whatever the URL says.


async def test_endpoints_stored_before_the_check_are_refused_on_connection(
    db: str, receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Endpoints registered before this check existed (written to the
    database directly here) point at loopback: in the URL as an address in
    several forms, or as a name the system's resolver turns into 127.0.0.1.
    No request reaches a receiver."""
    caplog.set_level(logging.INFO, logger="psp_server.webhooks")
    psp = await start_psp(db, sweep_interval=0.05, **FAST)
    try:
        v4, v6 = await receiver(), await receiver("::1")
        urls = [
            v4.url(),
            v4.url("localhost"),  # /etc/hosts, through the system's resolver
            v4.url("0x7f000001"),  # the system's resolver reads it as 127.0.0.1
            v4.url("[::ffff:127.0.0.1]"),
            v4.url("0.0.0.0"),  # noqa: S104 - Linux connects 0.0.0.0 to the local host
            v6.url(),
        ]
        shop = await psp.merchant()
        store = WebhookStore.of(psp.storage)
        endpoints = [
            (await store.create_endpoint(shop.id, url, now=now_ms()))[0].id for url in urls
        ]
        await pay(psp, shop, "S-1")
        for url, endpoint_id in zip(urls, endpoints, strict=True):
            (entry,) = await log_until(psp, shop, endpoint_id, lambda d: d[0]["attempts"] >= 1)
            assert entry["status"] == "pending", url
            assert (entry["last_error"], entry["last_status_code"]) == (
                "blocked_destination",
                None,
            ), url
        await asyncio.sleep(0.3)
        assert v4.requests == []
        assert v6.requests == []
        # The operator hears of it, with what the address was.
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and "blocked_destination" in r.getMessage()
        ]
        assert len({w.split(":")[0] for w in warnings}) == len(urls), warnings
        assert all("loopback" in w or "unspecified" in w for w in warnings), warnings
    finally:
        await stop_psp(psp)


async def test_a_name_that_turns_into_a_blocked_address_is_refused_on_connection(
    db: str, receiver: MakeReceiver
) -> None:
    """DNS rebinding: the name resolves to an allowed address when it is
    registered and first delivered to, and to 127.0.0.1 (or the metadata
    service) afterwards. 127.0.0.2 stands for the merchant's public address:
    the operator allows that one address and nothing else on loopback."""
    names = StaticResolver({"hooks.shop.example": ["127.0.0.2"]})
    psp = await start_psp(
        db,
        sweep_interval=0.05,
        webhook_resolver=names,
        webhook_allow_networks=networks("127.0.0.2/32"),
        **FAST,
    )
    try:
        good = await receiver("127.0.0.2")
        evil = await receiver("127.0.0.1", port=good.port)  # same port, the PSP's host
        shop = await psp.merchant()
        status, webhook = await register(psp, shop, good.url("hooks.shop.example"))
        assert status == 201, webhook

        await pay(psp, shop, "R-1")
        await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] == "delivered")
        assert len(good.requests) == 1

        names.names["hooks.shop.example"] = ["127.0.0.1"]
        await pay(psp, shop, "R-2")
        log = await log_until(
            psp, shop, webhook["id"], lambda d: d[0]["seq"] == 2 and d[0]["attempts"] >= 1
        )
        assert (log[0]["status"], log[0]["last_error"]) == ("pending", "blocked_destination")
        assert log[0]["last_status_code"] is None

        # The metadata service: refused before a socket is made.
        names.names["hooks.shop.example"] = ["169.254.169.254"]
        attempts = log[0]["attempts"]
        log = await log_until(psp, shop, webhook["id"], lambda d: d[0]["attempts"] > attempts)
        assert log[0]["last_error"] == "blocked_destination"

        # An answer with both: the blocked address is dropped, the other used.
        names.names["hooks.shop.example"] = ["127.0.0.1", "127.0.0.2"]
        await log_until(psp, shop, webhook["id"], lambda d: d[0]["status"] == "delivered")
        assert [json.loads(body)["seq"] for body in good.requests] == [1, 2]
        assert evil.requests == []
        # Resolved for each connection, not once.
        assert names.asked.count("hooks.shop.example") >= 4
    finally:
        await stop_psp(psp)


async def test_the_merchant_sees_only_the_class_of_a_failure(
    db: str, receiver: MakeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="psp_server.webhooks")
    names = StaticResolver({"blocked.shop.example": ["::1"]})
    psp = await start_psp(
        db,
        sweep_interval=0.05,
        webhook_resolver=names,
        webhook_allow_networks=networks("127.0.0.0/8"),
        webhook_retry_base=60,
        webhook_timeout=0.5,
    )
    try:
        ok, moved, missing, broken, slow = (
            await receiver(status=200),
            await receiver(status=302),
            await receiver(status=404),
            await receiver(status=503),
            await receiver(),
        )
        slow.stall = True
        refused_port = closed_port()
        expected = {
            ok.url(): ("delivered", None, 200),
            moved.url(): ("pending", "http_3xx", 302),
            missing.url(): ("pending", "http_4xx", 404),
            broken.url(): ("pending", "http_5xx", 503),
            slow.url(): ("pending", "timeout", None),
            f"http://127.0.0.1:{refused_port}/hook": ("pending", "connection_refused", None),
            ok.url(scheme="https"): ("pending", "tls_error", None),  # it speaks plain HTTP
            ok.url("nowhere.shop.example"): ("pending", "dns_error", None),
            ok.url("blocked.shop.example"): ("pending", "blocked_destination", None),
        }
        shop = await psp.merchant()
        webhooks: dict[str, str] = {}
        for url in expected:
            status, webhook = await register(psp, shop, url)
            assert status == 201, webhook
            webhooks[url] = webhook["id"]
        await pay(psp, shop, "C-1")

        seen: list[str] = []
        for url, (state, error, code) in expected.items():
            (entry,) = await log_until(psp, shop, webhooks[url], lambda d: d[0]["attempts"] >= 1)
            assert (entry["status"], entry["last_error"], entry["last_status_code"]) == (
                state,
                error,
                code,
            ), url
            assert entry["last_error"] is None or entry["last_error"] in CLASSES
            # Every field but the event's id (random hex, which could hold a port's digits).
            seen.append(json.dumps({k: v for k, v in entry.items() if k != "event_id"}))
        # Nothing of the error's text, the addresses or the ports.
        text = "\n".join(seen)
        ports = {str(r.port) for r in (ok, moved, missing, broken, slow)} | {str(refused_port)}
        for leak in ("127.0.0.1", "::1", "Error", "error:", "Cannot", "host", "SSL", *ports):
            assert leak not in text, leak
        # The operator's log has the detail.
        assert "ClientConnectorError" in caplog.text or "Cannot connect" in caplog.text
        assert "HTTP 503" in caplog.text
        assert "HTTP 404" in caplog.text
    finally:
        await stop_psp(psp)


# The setting, as an operator gives it.


def test_the_setting_takes_networks_from_the_flag_or_the_environment() -> None:
    var = "SCAN2PAY_WEBHOOK_ALLOW_NETWORKS"
    assert config.load({}, env={}).webhook_allow_networks == ()
    settings = config.load({"webhook_allow_networks": "127.0.0.0/8, ::1/128"}, env={})
    assert [str(n) for n in settings.webhook_allow_networks] == ["127.0.0.0/8", "::1/128"]
    from_env = config.load({}, env={var: "10.0.0.0/8"})
    assert [str(n) for n in from_env.webhook_allow_networks] == ["10.0.0.0/8"]
    flag_wins = config.load({"webhook_allow_networks": "none"}, env={var: "10.0.0.0/8"})
    assert flag_wins.webhook_allow_networks == ()
    single = config.load({"webhook_allow_networks": "192.168.1.20"}, env={})
    assert [str(n) for n in single.webhook_allow_networks] == ["192.168.1.20/32"]


def test_every_bad_network_is_reported_at_once_with_the_other_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(
            {
                "webhook_allow_networks": "127.0.0.1/33,loopback, 10.0.0.1/8,::ffff:127.0.0.0/104",
                "port": "http",
            },
            env={},
        )
    (networks,) = [p for p in caught.value.problems if p.startswith("webhook_allow_networks")]
    assert networks == (
        "webhook_allow_networks (SCAN2PAY_WEBHOOK_ALLOW_NETWORKS): '127.0.0.1/33' is not a"
        " network; 'loopback' is not a network; '10.0.0.1/8' has host bits set;"
        " '::ffff:127.0.0.0/104' is IPv4-mapped: write the IPv4 network; expected"
        " comma-separated networks that webhooks may reach besides public addresses, like"
        " 127.0.0.0/8,::1/128 or 10.0.0.0/8; or none (the default)"
    )
    assert any(p.startswith("port (SCAN2PAY_PORT)") for p in caught.value.problems)

    result = run_cli(
        "serve",
        "--webhook-allow-networks",
        "127.0.0.0/33",
        "--db",
        str(tmp_path / "x.db"),
        env={"SCAN2PAY_PORT": "http"},
    )
    assert result.returncode == 2
    assert "webhook_allow_networks (SCAN2PAY_WEBHOOK_ALLOW_NETWORKS)" in result.stderr
    assert "like 127.0.0.0/8,::1/128" in result.stderr
    assert "port (SCAN2PAY_PORT)" in result.stderr
    assert not (tmp_path / "x.db").exists()


async def _deliver_through(
    process: PspProcess, merchant: dict[str, str], wallet: dict[str, Any], url: str, order: str
) -> tuple[int, Any]:
    """Registers ``url``; when that works, pays a checkout. The answer to the
    registration."""
    auth = {"Authorization": f"Bearer {merchant['api_key']}"}
    async with aiohttp.ClientSession(process.url) as http:
        async with http.post("/v1/webhooks", json={"url": url}, headers=auth) as response:
            answer = (response.status, await response.json())
        if answer[0] != 201:
            return answer
        async with http.post(
            "/v1/checkouts",
            json={"order_id": order, "amount": 100, "currency": "EUR"},
            headers=auth,
        ) as response:
            checkout = await response.json()
        async with http.post(
            "/v1/payments",
            json={"code": code_of(checkout)},
            headers={"Authorization": f"Bearer {wallet['token']}"},
        ) as response:
            assert response.status == 201
    return answer


async def test_a_psp_server_reaches_loopback_only_when_its_operator_says_so(
    tmp_path: Path, receiver: MakeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "psp.db"
    merchant = await asyncio.to_thread(create_merchant, db)
    wallet = await asyncio.to_thread(create_wallet, db)
    hook = await receiver()
    monkeypatch.delenv("SCAN2PAY_WEBHOOK_ALLOW_NETWORKS", raising=False)
    variants: list[tuple[tuple[str, ...], dict[str, str], int]] = [
        ((), {}, 422),
        (("--webhook-allow-networks", "127.0.0.0/8"), {}, 201),
        ((), {"SCAN2PAY_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32,::1/128"}, 201),
    ]
    delivered = 0
    for n, (flags, env, expected) in enumerate(variants):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        process = await asyncio.to_thread(PspProcess, db, extra=flags)
        try:
            status, body = await _deliver_through(process, merchant, wallet, hook.url(), f"P-{n}")
            assert status == expected, body
            if expected == 422:
                assert body["error"]["code"] == "invalid_url"
                assert "not a public address (loopback)" in body["error"]["message"]
            else:
                delivered += 1
                # Awaited here, so the loop's variables cannot move on meanwhile.
                await until(
                    lambda: len(hook.requests) >= delivered,  # noqa: B023 - awaited before the loop moves on
                    what=lambda: f"delivery {delivered}; {process.log()}",  # noqa: B023 - awaited before the loop moves on
                    every=0.02,
                )
            if flags:
                assert "webhooks may go to public addresses and to 127.0.0.0/8" in process.log()
        finally:
            await asyncio.to_thread(process.stop)
            if process.process.stdout is not None:
                process.process.stdout.close()
        for name in env:
            monkeypatch.delenv(name)
