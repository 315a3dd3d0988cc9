"""Starting, approving, collecting and unpairing: the rules of pairing that
the API, the board and the command line share (docs/pairing.md).

Approving is three steps, so that the broker's files are never written
inside a database transaction: ``claim`` reserves the terminal id for the
pending code (refusing a wrong, expired or used code, an unknown merchant
or a terminal id that is taken), the broker account is made, and
``complete`` stores its password for the device. If the account cannot be
made, ``release`` undoes the claim: nothing is left changed. Unpairing
drops the account first and forgets the terminal second, so that a
failure in between leaves a terminal that can do nothing, never one that
looks unpaired and still works.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from psp_server.core import credentials
from psp_server.core.errors import StorageError
from psp_server.mqtt.accounts import AccountError, terminal_username
from psp_server.pairing.broker import Broker
from psp_server.pairing.store import (
    Collected,
    PairingRefused,
    PairingStore,
    Polled,
    code_used,
    terminal_taken,
)
from psp_server.storage import Storage
from scan2pay_common import pairing_codes
from scan2pay_common.clock import Clock
from scan2pay_common.errors import InvalidValue
from scan2pay_common.identifiers import check_merchant_id, check_terminal_id
from scan2pay_common.logtext import loggable
from scan2pay_common.signing import ALG
from scan2pay_common.timefmt import to_rfc3339

log = logging.getLogger(__name__)

# How long a code waits for a merchant, and an approved account for its device.
PAIRING_TTL_MS = 10 * 60 * 1000
# How often a waiting terminal asks.
POLL_INTERVAL_S = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DEVICE_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")
_CODE_ATTEMPTS = 5


def unavailable() -> PairingRefused:
    return PairingRefused(
        "pairing_unavailable",
        "this PSP pairs no terminals: its operator has not set terminal_mqtt and mosquitto_dir",
        503,
    )


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def hash_device_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def check_secret_hash(value: object) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidValue(
            "invalid_device_secret_hash",
            "device_secret_hash must be the SHA-256 of the device secret, 64 lower-case hex digits",
            field="device_secret_hash",
        )
    return value


def check_device_secret(value: object) -> str:
    if not isinstance(value, str) or not _DEVICE_SECRET.fullmatch(value):
        raise InvalidValue(
            "invalid_device_secret",
            "device_secret must be 43 to 128 URL-safe base64 characters",
            field="device_secret",
        )
    return value


@dataclass(frozen=True, slots=True)
class Started:
    pairing_id: str
    code: str  # grouped, as people read it
    url: str  # the board's pairing page with the code filled in
    expires_at: int


@dataclass(frozen=True, slots=True)
class Approval:
    merchant_id: str
    terminal_id: str
    # None once the broker reloaded; else what the operator must do.
    reload_problem: str | None


@dataclass(frozen=True, slots=True)
class Unpairing:
    merchant_id: str
    terminal_id: str
    was_paired: bool  # by a pairing (else only a hand-made broker account went)
    reload_problem: str | None


@dataclass(frozen=True, slots=True)
class Handover:
    """What the terminal collects, once."""

    settings: dict[str, Any] = field(repr=False)


class Pairing:
    def __init__(
        self, storage: Storage, broker: Broker | None, public_url: str, clock: Clock
    ) -> None:
        self.storage = storage
        self.store = PairingStore.of(storage)
        self.broker = broker
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    def _broker(self) -> Broker:
        if self.broker is None:
            raise unavailable()
        return self.broker

    async def start(self, secret_hash: str) -> Started:
        self._broker()
        now = self.clock.now_ms()
        pairing_id = credentials.new_id("pair")
        for _ in range(_CODE_ATTEMPTS):
            code = pairing_codes.new_code()
            stored = await self.store.start(
                pairing_id,
                hash_code(code),
                secret_hash,
                now=now,
                expires_at=now + PAIRING_TTL_MS,
            )
            if stored:
                url = f"{self.public_url}/merchant/pair?code={code}"
                return Started(pairing_id, pairing_codes.grouped(code), url, now + PAIRING_TTL_MS)
        raise RuntimeError("no free pairing code after several draws")  # pragma: no cover

    async def approve(self, code_text: object, merchant_id: str, terminal_text: object) -> Approval:
        """Raises InvalidValue for a malformed code or terminal id, and
        PairingRefused for the rest; either way nothing was changed."""
        broker = self._broker()
        code = pairing_codes.parse_code(code_text)
        merchant_id = check_merchant_id(merchant_id)
        terminal_id = check_terminal_id(terminal_text)
        pairing_id = await self.store.claim(
            hash_code(code), merchant_id, terminal_id, now=self.clock.now_ms()
        )
        try:
            password = await self._make_account(broker, merchant_id, terminal_id)
        except BaseException:
            # Whatever went wrong (the broker's files, a cancelled request),
            # the code and the terminal id are free again: nothing changed.
            await self.store.release(pairing_id)
            raise
        try:
            completed = await self.store.complete(
                pairing_id, password, collect_by=self.clock.now_ms() + PAIRING_TTL_MS
            )
        except BaseException:
            await self._undo_account(broker, merchant_id, terminal_id, pairing_id)
            raise
        if not completed:  # unpaired or expired between the claim and now
            await self._undo_account(broker, merchant_id, terminal_id, pairing_id)
            raise code_used()
        log.info("terminal %s of merchant %s paired", terminal_id, merchant_id)
        return Approval(merchant_id, terminal_id, await broker.reload())

    async def _make_account(self, broker: Broker, merchant_id: str, terminal_id: str) -> str:
        username = terminal_username(merchant_id, terminal_id)
        try:
            if broker.has_account(username):
                # Made by hand (psp-server terminal create), or left by a crash.
                raise PairingRefused(
                    "terminal_taken",
                    f"the broker already has an account for terminal {terminal_id};"
                    " revoke it first (psp-server terminal revoke) or choose another id",
                    409,
                )
            return await broker.create_terminal(merchant_id, terminal_id)
        except (AccountError, OSError, ValueError) as exc:
            if isinstance(exc, AccountError) and _has_account(broker, username):
                raise terminal_taken(terminal_id) from exc
            log.error("terminal account not made: %s", loggable(exc))
            raise PairingRefused(
                "broker_account_failed",
                f"the broker account could not be made ({exc}); nothing was changed",
                503,
            ) from exc

    async def _undo_account(
        self, broker: Broker, merchant_id: str, terminal_id: str, pairing_id: str
    ) -> None:
        """The account was made but the pairing could not be marked approved:
        an account nobody will ever collect must not stay on the broker."""
        with contextlib.suppress(AccountError, OSError, ValueError):
            await broker.drop_terminal(merchant_id, terminal_id)
        with contextlib.suppress(StorageError):
            await self.store.release(pairing_id)

    async def poll(self, pairing_id: str, device_secret: str) -> Polled | Handover:
        # Everything the handover needs is at hand before the pairing is
        # marked delivered (and its password forgotten): a failure after
        # that commit would leave a paired terminal without its settings.
        broker = self._broker()
        keys = await self.storage.signing_keys()
        polled = await self.store.poll(
            pairing_id, hash_device_secret(device_secret), now=self.clock.now_ms()
        )
        if not isinstance(polled, Collected):
            return polled
        try:
            merchant = await self.storage.merchant_with_key_hash(polled.merchant_id)
        except StorageError:
            merchant = None  # its name is a nicety; the settings must go out
        username = terminal_username(polled.merchant_id, polled.terminal_id)
        return Handover(
            {
                "merchant_id": polled.merchant_id,
                "merchant_name": merchant[0].name if merchant else polled.merchant_id,
                "terminal_id": polled.terminal_id,
                "mqtt_url": broker.url(username, polled.password),
                "mqtt_username": username,
                "mqtt_password": polled.password,
                "mqtt_ca": broker.ca_pem,
                "psp_url": self.public_url,
                "psp_keys": [
                    {
                        "kid": key.kid,
                        "alg": ALG,
                        "public_key": key.public_key,
                        "active": key.active,
                        "created_at": to_rfc3339(key.created_at),
                    }
                    for key in keys
                ],
            }
        )

    async def unpair(self, merchant_id: str, terminal_text: object) -> Unpairing:
        """Drops the terminal's broker account and forgets it; PairingRefused
        ``not_paired`` when the merchant has neither."""
        broker = self._broker()
        merchant_id = check_merchant_id(merchant_id)
        terminal_id = check_terminal_id(terminal_text)
        paired = await self.store.is_paired(merchant_id, terminal_id)
        had_account = broker.has_account(terminal_username(merchant_id, terminal_id))
        if not paired and not had_account:
            raise PairingRefused(
                "not_paired", f"no terminal {terminal_id} is paired with this merchant", 404
            )
        try:
            await broker.drop_terminal(merchant_id, terminal_id)
        except AccountError as exc:
            raise PairingRefused(
                "broker_account_failed",
                f"the broker account could not be dropped ({exc}); nothing was changed",
                503,
            ) from exc
        if paired:
            await self.store.unpair(merchant_id, terminal_id, now=self.clock.now_ms())
        log.info("terminal %s of merchant %s unpaired", terminal_id, merchant_id)
        return Unpairing(merchant_id, terminal_id, paired, await broker.reload())


def _has_account(broker: Broker, username: str) -> bool:
    try:
        return broker.has_account(username)
    except (OSError, ValueError):
        return False
