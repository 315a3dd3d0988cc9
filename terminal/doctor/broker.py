"""Can this terminal log in to its broker, and may it read its topics?

It logs in as the daemon does (``scan2pay_common.mqtt_client``: TLS for
``mqtts://``, with ``SCAN2PAY_MQTT_CA``), under a client id of its own so
that a daemon running meanwhile keeps its session, and subscribes to the
topics the daemon reads. A broker that refuses a subscription says so in
its SUBACK (0x80 in MQTT 3.1.1, a code from 0x80 up in MQTT 5).

mosquitto's ACL file grants every SUBSCRIBE and filters each message as it
delivers it instead, so a SUBACK there proves nothing. Two more signs are
read: a retained display command (a cashier leaves one) that arrives proves
the read; and an account named as ``psp-server terminal create`` names them,
``{merchant}/{terminal}``, has rights on that terminal's topics only
(examples/mosquitto/acl), so one that names another terminal cannot read
this one's display.
"""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id
from scan2pay_common.mqtt_client import CA_ENV, mqtt_client
from scan2pay_common.topics import display_topic, events_topic, terminal_events_topic

from ..config import TerminalConfig
from .report import Check

BROKER_SECONDS = 4.0
RETAINED_SECONDS = 0.5  # a retained message follows the SUBACK at once
SUBACK_REFUSED = 0x80  # MQTT 3.1.1's failure code; MQTT 5's reason codes for failures start there

LOGIN_HINT = (
    "use the username and password `psp-server terminal create` printed (in the URL the / of"
    " the username is %2F), and reload the broker after making the account (SIGHUP)"
)
TLS_HINT = f"the broker's certificate is not trusted here: set {CA_ENV} to its CA's PEM file"
REACH_HINT = (
    "check the broker's host and port; a terminal on the LAN uses mqtts:// on 8883"
    " (examples/mosquitto)"
)
ACL_HINT = (
    "the account's ACL must let it read its display and events topics: make the account with"
    " `psp-server terminal create --merchant MERCHANT --terminal TERMINAL`"
)


async def checks(config: TerminalConfig) -> list[Check]:
    """The ``broker`` and ``acl`` checks."""
    target = config.mqtt
    topics = {
        "display": display_topic(config.merchant_id, config.terminal_id),
        "terminal events": terminal_events_topic(config.merchant_id, config.terminal_id),
        "merchant events": events_topic(config.merchant_id),
    }
    logged_in = False
    try:
        async with asyncio.timeout(BROKER_SECONDS):
            async with mqtt_client(
                target,
                identifier=f"scan2pay-doctor-{uuid.uuid4().hex[:16]}",
                ca_file=config.mqtt_ca,  # as the daemon connects
                keepalive=int(BROKER_SECONDS),
                timeout=BROKER_SECONDS,
            ) as client:
                logged_in = True
                codes = await client.subscribe([(topic, 1) for topic in topics.values()])
                heard = await _retained(client, topics["display"])
    except MqttConnectError as error:
        return [
            Check.fail("broker", f"{target} refused the login: {error}", LOGIN_HINT),
            Check.skip("acl", "not logged in"),
        ]
    except (aiomqtt.MqttError, TimeoutError) as error:
        if logged_in:
            detail = f"{target}: no SUBACK ({str(error) or 'no answer in time'})"
            return [Check.ok("broker", f"{target}: logged in"), Check.fail("acl", detail, ACL_HINT)]
        reason = str(error) or f"no answer within {BROKER_SECONDS:.0f} s"
        hint = TLS_HINT if "CERTIFICATE_VERIFY_FAILED" in reason else REACH_HINT
        return [
            Check.fail("broker", f"cannot connect to {target}: {reason}", hint),
            Check.skip("acl", "not logged in"),
        ]
    security = "TLS" if target.tls else "no TLS: the password crosses the network in clear"
    return [
        Check.ok("broker", f"{target} ({security}): logged in"),
        _acl(config, topics, list(codes), heard),
    ]


def _acl(config: TerminalConfig, topics: dict[str, str], codes: list[object], heard: bool) -> Check:
    refused = [name for name, code in zip(topics, codes, strict=False) if _refused(code)]
    if refused:
        detail = f"the broker refused to subscribe to its {', '.join(refused)} topic"
        return Check.fail("acl", detail + ("s" if len(refused) > 1 else ""), ACL_HINT)
    mismatch = account_mismatch(config.mqtt.username, config.merchant_id, config.terminal_id)
    if mismatch is not None:
        return Check.fail("acl", mismatch, ACL_HINT)
    read = "; a retained display command arrived" if heard else ""
    return Check.ok("acl", f"may subscribe to its {', '.join(topics)} topics{read}")


def _refused(code: object) -> bool:
    value = getattr(code, "value", code)  # paho's ReasonCode, or a granted QoS
    return isinstance(value, int) and value >= SUBACK_REFUSED


def account_mismatch(username: str | None, merchant_id: str, terminal_id: str) -> str | None:
    """Why an account named the way psp-server names them cannot read this
    terminal's topics; None for this terminal's own account, or a name of
    the operator's own making (the broker's ACL is then the only word)."""
    own = f"{merchant_id}/{terminal_id}"  # psp_server.mqtt.accounts.terminal_username
    if username is None or username == own:
        return None
    if username == merchant_id:
        return f"the broker account {username} is the merchant's cashiers', not a terminal's"
    if username == "psp":  # psp_server.mqtt.accounts.PSP_USERNAME
        return "the broker account psp is the PSP's, not a terminal's"
    head, slash, tail = username.partition("/")
    if slash and _is_id(head) and _is_id(tail):
        return f"the broker account {username} is terminal {tail} of {head}; this terminal is {own}"
    return None


async def _retained(client: aiomqtt.Client, topic: str) -> bool:
    try:
        async with asyncio.timeout(RETAINED_SECONDS):
            async for message in client.messages:
                if str(message.topic) == topic:
                    return True
    except TimeoutError:
        return False
    return False


def _is_id(text: str) -> bool:
    try:
        check_merchant_id(text)  # terminal ids follow the same rule
    except InvalidValue:
        return False
    return True
