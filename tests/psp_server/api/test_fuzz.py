"""Fuzzing.

* The live API against its own openapi.json with schemathesis: every
  operation with generated (positive and negative) inputs and valid
  credentials for its security scheme, all of schemathesis's checks (no 5xx,
  documented statuses, content types, headers and bodies, auth enforced,
  ...). The server runs in a thread of its own: schemathesis calls it
  synchronously.
* The terminal's payload parsers and its MQTT message handler with random
  bytes and mutated valid payloads: the parsers raise nothing but
  ``InvalidValue``, the handler never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

import psp_server
from hardware.base import DummyDisplay
from psp_server.core.payloads import check_idempotency_key
from scan2pay_common.errors import InvalidValue
from scan2pay_common.messages import CheckoutEvent, parse_display_command
from scan2pay_common.mqtt_url import MqttTarget
from scan2pay_common.signing import SigningKey
from terminal.config import TerminalConfig
from terminal.daemon import TerminalDaemon
from tests.support.psp import Merchant, Psp, Wallet, code_of, start_psp, stop_psp

# The API.


@dataclass
class LivePsp:
    url: str
    merchant: Merchant
    wallet: Wallet
    loop: asyncio.AbstractEventLoop


@pytest.fixture(scope="module")
def live_psp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePsp]:
    """A PSP serving from a thread of its own, with a merchant, a wallet and a
    checkout or two to find, that pairs terminals (its broker folder a
    temporary one); no rate limits (they would answer 429)."""
    db = tmp_path_factory.mktemp("fuzz") / "psp.db"
    broker_folder = tmp_path_factory.mktemp("fuzz-mosquitto")
    loop = asyncio.new_event_loop()
    started: Future[tuple[Psp, Merchant, Wallet]] = Future()

    async def start() -> tuple[Psp, Merchant, Wallet]:
        psp = await start_psp(
            str(db),
            sweep_interval=0.05,
            rate_qr_per_ip=None,
            rate_qr_per_token=None,
            rate_pay_per_ip=None,
            rate_pay_per_token=None,
            rate_pair_per_ip=None,
            terminal_mqtt=MqttTarget.parse("mqtts://127.0.0.1:8883"),
            mosquitto_dir=broker_folder,
        )
        merchant, wallet = await psp.merchant(), await psp.wallet(balance=10**9)
        for n in range(2):
            checkout = await psp.checkout(merchant, order_id=f"F-{n}")
            if n:
                assert (await psp.pay(wallet, code_of(checkout)))[0] == 201
        return psp, merchant, wallet

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.set_result(loop.run_until_complete(start()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test waiting on the future
            started.set_exception(exc)
            return
        loop.run_forever()

    thread = threading.Thread(target=run, name="fuzzed-psp", daemon=True)
    thread.start()
    psp, merchant, wallet = started.result(timeout=30)
    yield LivePsp(psp.url, merchant, wallet, loop)
    asyncio.run_coroutine_threadsafe(stop_psp(psp), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


# Loaded from the file at collection, one test per operation; the calls go to
# the live server (its /openapi.json serves these very bytes: test_openapi).
# schemathesis.pytest.from_fixture would load it from the server, but its lazy
# loader does not work with pytest 9 (it writes Node._nodeid).
schema = schemathesis.openapi.from_path(Path(psp_server.__file__).with_name("openapi.json"))


def _auth(case: Case[Any], live: LivePsp) -> dict[str, str]:
    """Valid credentials for the operation's security scheme."""
    schemes = {name for req in case.operation.definition.raw.get("security", []) for name in req}
    if "merchantKey" in schemes:
        return live.merchant.auth
    if "walletToken" in schemes:
        return live.wallet.auth
    return {}


# Rules the document states in words but no schema can: a schema-valid
# request may be refused 422 with these codes. The check that schema-valid
# data is accepted is left out for these operations, and a refusal of a
# positive case must be one of these codes:
# - a currency must be in ISO 4217, not only three capitals (invalid_currency);
# - an amount or expires_in is a JSON integer literal: 1.0 is an integer to
#   JSON Schema but refused (invalid_amount, invalid_expires_in); an amount
#   is at most the server's max_amount setting (amount_too_large);
# - a description's pattern holds the rule's characters of the first plane;
#   noncharacters past it and lone surrogates are in words only
#   (invalid_description);
# - POST /v1/webhooks: the url's pattern lets through non-ASCII, user@host and
#   other URLs its description says are refused (invalid_url);
# - GET /v1/events: ``after`` has no documented maximum, but the server
#   refuses more than 19 digits (invalid_after).
# - PATCH /v1/merchant: qr_format emv needs mcc, country and city, given now
#   or before (emv_settings_missing); a city's 15 characters are counted once
#   it is written in ASCII (invalid_city); emv_profile names a registered
#   profile (invalid_emv_profile); a payload must build with the PSP's public
#   URL, which PIX wants https:// (invalid_emv).
# - POST /v1/terminals/{terminal_id}/static-codes: an open amount's min is at
#   most its max, and its currency is in ISO 4217 (invalid_open_amount).
SEMANTIC_REFUSALS = {
    "POST /v1/checkouts": {
        "invalid_currency",
        "invalid_amount",
        "amount_too_large",
        "invalid_expires_in",
        "invalid_description",
    },
    "POST /v1/checkouts/{checkout_id}/refunds": {"invalid_amount", "amount_too_large"},
    "POST /v1/webhooks": {"invalid_url"},
    "GET /v1/events": {"invalid_after"},
    "POST /v1/terminals/{terminal_id}/static-codes": {"invalid_open_amount"},
    "PATCH /v1/merchant": {
        "emv_settings_missing",
        "invalid_city",
        "invalid_emv_profile",
        "invalid_emv",
    },
}
# Checks left out per operation, with why.
# - GET /v1/events: schemathesis sends a non-integer ``after`` (2**52 as a
#   float) as the query string "4503599627370496", a valid value, and then
#   expects a refusal.
# - /pay: any string is a valid ``code`` by the schema; only a payment URL
#   of this PSP's (or an EMV payload around one) is accepted, which a
#   generated string is not, so its refusal is no failure.
EXCLUDED = {
    "GET /v1/events": [negative_data_rejection],
    "GET /pay": [positive_data_acceptance],
    "POST /pay": [positive_data_acceptance],
}


def _fresh_idempotency_key(case: Case[Any]) -> None:
    """A valid Idempotency-Key made unique per case: schemathesis reuses the
    keys it generates with other bodies, which the API rightly refuses
    (idempotency_mismatch). Invalid keys stay, to be refused as they are."""
    headers = case.headers
    key = None if headers is None else headers.get("Idempotency-Key")
    if headers is not None and isinstance(key, str):
        try:
            check_idempotency_key([key])
        except InvalidValue:
            return
        headers["Idempotency-Key"] = uuid.uuid4().hex


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_documented(case: Case[Any], live_psp: LivePsp) -> None:
    _fresh_idempotency_key(case)
    label = f"{case.method.upper()} {case.path}"
    refusals = SEMANTIC_REFUSALS.get(label)
    excluded: list[Any] = list(EXCLUDED.get(label, []))
    if refusals:
        excluded.append(positive_data_acceptance)
    response = case.call_and_validate(
        base_url=live_psp.url,
        headers=_auth(case, live_psp),
        timeout=10,
        excluded_checks=excluded,
    )
    positive = case.meta is None or not case.meta.generation.mode.is_negative
    if refusals and positive and response.status_code == 422:
        assert response.json()["error"]["code"] in refusals, response.text


# The terminal's parsers and handler.

MERCHANT = "mer_0123456789abcdef0123"
TERMINAL = "lane-1"
PSP_URL = "HTTP://127.0.0.1:9"

VALID: list[dict[str, Any]] = [
    {
        "type": "show_qr",
        "checkout_id": "co_0123456789abcdef0123",
        "qr_url": f"{PSP_URL}/Q/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        "amount": 1234,
        "currency": "EUR",
        "expires_at": "2030-01-01T00:00:00.000Z",
        "order_id": "A-1",
        "display_ticket": {"alg": "Ed25519", "kid": "k1", "sig": "AAAA", "ticket": {}},
    },
    {"type": "status", "checkout_id": "co_0123456789abcdef0123", "status": "paid"},
    {"type": "idle"},
]
SNAPSHOT: dict[str, Any] = {
    "id": "co_0123456789abcdef0123",
    "order_id": "A-1",
    "amount": 1234,
    "currency": "EUR",
    "status": "paid",
    "qr_url": f"{PSP_URL}/Q/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "expires_at": "2030-01-01T00:05:00.000Z",
    "terminal_id": TERMINAL,
    "created_at": "2030-01-01T00:00:00.000Z",
    "description": "2 coffees",
}
EVENT: dict[str, Any] = {
    "event_id": "evt_0123456789abcdef0123",
    "seq": 1,
    "type": "checkout.paid",
    "merchant_id": MERCHANT,
    "checkout": SNAPSHOT,
    "created_at": "2030-01-01T00:01:00.000Z",
}

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "💥", "paid", "show_qr", "EUR", "A" * 5000]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], form: str | None = None) -> bytes:
    """A valid object with fields deleted, added and changed, then perhaps
    encoded oddly or with bytes flipped."""
    obj = dict(base)
    keys = sorted(base)
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)) if keys else []:
        action = draw(st.sampled_from(["delete", "change"]))
        if action == "delete":
            del obj[key]
        elif isinstance(base[key], dict) and draw(st.booleans()):
            obj[key] = json.loads(draw(mutated(base[key], form="plain")))
        else:
            obj[key] = draw(ODD_VALUES)
    if draw(st.booleans()):
        obj[draw(st.text(max_size=8))] = draw(ODD_VALUES)
    try:
        raw = json.dumps(obj).encode()  # NaN and Infinity too: JSON parsers see them
    except (TypeError, ValueError):
        raw = json.dumps(repr(obj)).encode()
    if form is None:
        form = draw(st.sampled_from(["plain", "flip", "truncate", "wrap", "utf16"]))
    if form == "flip" and raw:
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        raw = bytes(data)
    elif form == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif form == "wrap":
        raw = b"[" + raw + b"]"
    elif form == "utf16":
        raw = raw.decode("utf-8", errors="replace").encode("utf-16")
    return raw


DEEP = b"[" * 10_000 + b"]" * 10_000  # deeper than the JSON parser's recursion
WIDE = b'{"type":"show_qr"' + b', "a":1' * 5000 + b"}"
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    st.sampled_from(VALID).flatmap(mutated),
    mutated(EVENT),
    st.just(f"{PSP_URL}/Q/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".encode()),
    st.just(DEEP),
    st.just(WIDE),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS)
@example(DEEP)
@example(WIDE)
@example(b"\xff\xfe")
@example(b'{"type":"show_qr","amount":1e400}')
def test_the_display_command_parser_raises_only_invalid_value(raw: bytes) -> None:
    for parse in (parse_display_command, CheckoutEvent.from_json):
        with contextlib.suppress(InvalidValue):
            parse(raw)


@pytest.fixture(scope="module", params=["without keys", "with the PSP's key"])
def daemon_loop(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[TerminalDaemon, asyncio.AbstractEventLoop]]:
    """A terminal daemon that is never run: its handler is called directly,
    in a loop of its own (lookups it starts are tasks). With a key, every
    message also goes through terminal.trust's checks."""
    loop = asyncio.new_event_loop()
    keys = (SigningKey.generate().public,) if request.param != "without keys" else ()
    config = TerminalConfig(
        mqtt=MqttTarget.parse("mqtt://127.0.0.1:9"),
        merchant_id=MERCHANT,
        terminal_id=TERMINAL,
        psp_url=PSP_URL,
        psp_public_keys=keys,
    )
    daemon = TerminalDaemon(config, DummyDisplay(geometry=None))
    yield daemon, loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    topic=st.sampled_from(["display", "events", "terminal_events", "other"]),
    payload=PAYLOADS,
)
@example(topic="display", payload=DEEP)
@example(topic="events", payload=DEEP)
@example(topic="display", payload=f"  {PSP_URL}/Q/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567\n".encode())
# A lone surrogate in a field's name, which the terminal names in its log: it
# once crashed an xdist worker that could not encode the captured log.
@example(topic="display", payload=b'{"type": "show_qr", "\\ud867": 0}')
@example(topic="events", payload=b'{"type": "checkout.paid", "\\ud867": 0}')
def test_the_terminal_handles_any_message_without_raising(
    daemon_loop: tuple[TerminalDaemon, asyncio.AbstractEventLoop], topic: str, payload: bytes
) -> None:
    daemon, loop = daemon_loop
    topic_name = {
        "display": daemon.display_topic,
        "events": daemon.events_topic,
        "terminal_events": daemon.terminal_events_topic,
        "other": f"scan2pay/v1/m/{MERCHANT}/t/other/display",
    }[topic]

    async def handle() -> None:
        daemon.handle_message(topic_name, payload)
        for task in list(daemon._lookups):  # a bare QR URL starts a lookup: not awaited here
            task.cancel()
        await asyncio.sleep(0)

    loop.run_until_complete(handle())


def test_the_payloads_strategy_reaches_every_valid_kind(tmp_path: Path) -> None:
    """The unmutated payloads parse: the fuzzing starts from real inputs."""
    for obj in VALID:
        assert parse_display_command(json.dumps(obj).encode()).to_dict()["type"] == obj["type"]
    assert CheckoutEvent.from_json(json.dumps(EVENT).encode()).seq == 1
