"""Whether a paired terminal was unpaired (docs/pairing.md).

Unpairing drops the terminal's broker account, and mosquitto, once it
rereads its files, disconnects the terminal and refuses it from then on.
A refusal alone proves little (a broker not yet reloaded after pairing
refuses a new account too), so the terminal then asks the PSP about its
pairing, with its device secret: only ``revoked`` (or a PSP that no longer
knows the pairing, or not from this device) sends it back to the pairing
screen. A terminal set up by hand, without a pairing, just retries.
"""

from __future__ import annotations

import logging

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from scan2pay_common.logtext import loggable

from . import pairing_client
from .config import TerminalConfig

log = logging.getLogger(__name__)

# CONNACK codes of a refused login: MQTT 3.1.1's "bad user name or
# password" and "not authorised", and paho's MQTT 5 reason codes for them.
_REFUSED = {4, 5, 134, 135}
# What the PSP says of a pairing it no longer has for this device.
_FORGOTTEN = {"not_found", "wrong_device_secret"}


def refused_login(exc: aiomqtt.MqttError) -> bool:
    if not isinstance(exc, MqttConnectError):
        return False
    rc = exc.rc
    value = rc if isinstance(rc, int) else getattr(rc, "value", None)
    return value in _REFUSED


async def was_unpaired(config: TerminalConfig) -> bool:
    if config.pairing_id is None or config.device_secret is None or config.psp_url is None:
        return False
    try:
        polled = await pairing_client.poll(config.psp_url, config.pairing_id, config.device_secret)
    except pairing_client.PspError as exc:
        if exc.code in _FORGOTTEN:
            return True
        log.info("could not ask the PSP about this terminal's pairing: %s", loggable(exc.message))
        return False
    return isinstance(polled, pairing_client.Unpaired)
