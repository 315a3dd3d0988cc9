"""The payloads that travel over MQTT, as frozen dataclasses that check themselves.

Each has ``to_json()`` giving bytes and ``from_json(bytes)`` that raises
``InvalidValue`` on anything off-contract. docs/mqtt.md documents them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from . import emv
from . import jsonfields as jf
from .errors import InvalidValue
from .identifiers import check_checkout_id, check_merchant_id, check_order_id, check_terminal_id
from .money import check_currency
from .static_codes import SOURCES, Source, check_static_code_id

# The status and event words are statuses'; re-exported where the messages
# that carry them are.
from .statuses import CHECKOUT_STATUSES as CHECKOUT_STATUSES
from .statuses import EVENT_FOR_STATUS as EVENT_FOR_STATUS
from .statuses import EVENT_TYPES as EVENT_TYPES
from .statuses import FINAL_STATUSES as FINAL_STATUSES
from .statuses import STATUS_FOR_EVENT as STATUS_FOR_EVENT
from .statuses import CheckoutStatus as CheckoutStatus
from .statuses import EventType as EventType
from .statuses import FinalStatus as FinalStatus
from .statuses import is_checkout_status as is_checkout_status
from .timefmt import from_rfc3339


def _check_timestamp(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue("invalid_type", f"{field} must be an RFC 3339 string", field=field)
    from_rfc3339(value)
    return value


def _check_type(value: object, expected: str) -> None:
    if value != expected:
        raise InvalidValue("invalid_command", f"type must be {expected!r}", field="type")


def _check_optional_object(value: object, field: str) -> None:
    if value is not None and not isinstance(value, dict):
        raise InvalidValue("invalid_type", f"{field} must be an object", field=field)


def check_qr_payload(payload: object, qr_url: str) -> None:
    """An EMV payload whose CRC and structure hold and whose payment URL is
    ``qr_url``: a payload can never send a customer anywhere else."""
    if payload is None:
        return
    try:
        inside = emv.url_of_payload(payload)  # type: ignore[arg-type]  # checked there
    except emv.EmvError as exc:
        raise InvalidValue("invalid_qr_payload", f"qr_payload: {exc.message}") from None
    if not emv.same_url(inside, qr_url):
        raise InvalidValue("invalid_qr_payload", "qr_payload must carry qr_url")


def _check_optional_str(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidValue("invalid_type", f"{field} must be a string or null", field=field)
    return value


@dataclass(frozen=True, slots=True)
class CheckoutSnapshot:
    """A checkout as the API returns it and as events carry it."""

    id: str
    order_id: str
    amount: int
    currency: str
    status: CheckoutStatus
    qr_url: str
    expires_at: str
    terminal_id: str | None
    created_at: str
    description: str | None = None
    # How much of a paid checkout went back to the wallet, in minor units.
    # Optional on the wire so that payloads from before refunds still read.
    refunded_amount: int = 0
    # How the checkout came in: "static" when a customer typed its amount at
    # a printed till code (``static_code_id`` names it), else "dynamic".
    # Written only for static ones, so that every other checkout's bytes,
    # and the readers from before, stay as they were (docs/mqtt.md).
    source: Source = "dynamic"
    static_code_id: str | None = None

    _REQUIRED = frozenset(
        {
            "id",
            "order_id",
            "amount",
            "currency",
            "status",
            "qr_url",
            "expires_at",
            "terminal_id",
            "created_at",
        }
    )
    _OPTIONAL = frozenset({"description", "refunded_amount", "source", "static_code_id"})

    def __post_init__(self) -> None:
        check_checkout_id(self.id)
        check_order_id(self.order_id)
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise InvalidValue("invalid_amount", "amount must be a positive integer")
        check_currency(self.currency)
        if self.status not in CHECKOUT_STATUSES:
            raise InvalidValue("invalid_status", f"unknown checkout status {self.status!r}")
        if not isinstance(self.qr_url, str) or "/Q/" not in self.qr_url:
            raise InvalidValue("invalid_qr_url", "qr_url must be a URL with /Q/{CODE}")
        _check_timestamp(self.expires_at, "expires_at")
        _check_timestamp(self.created_at, "created_at")
        if self.terminal_id is not None:
            check_terminal_id(self.terminal_id)
        # Not the free-text rule (scan2pay_common.free_text): that is for what
        # comes in. A snapshot is also made of rows stored before the rule,
        # and a PSP that refused its own rows could expire and show none.
        _check_optional_str(self.description, "description")
        self._check_refunded_amount()
        self._check_source()

    def _check_source(self) -> None:
        if self.source not in SOURCES:
            raise InvalidValue("invalid_source", f"unknown checkout source {self.source!r}")
        if (self.source == "static") != (self.static_code_id is not None):
            raise InvalidValue(
                "invalid_source", "static_code_id is given exactly when source is static"
            )
        if self.static_code_id is not None:
            check_static_code_id(self.static_code_id)

    def _check_refunded_amount(self) -> None:
        refunded = self.refunded_amount
        if isinstance(refunded, bool) or not isinstance(refunded, int) or refunded < 0:
            raise InvalidValue("invalid_amount", "refunded_amount must be an integer of at least 0")
        if refunded > self.amount:
            raise InvalidValue("invalid_amount", "refunded_amount cannot exceed amount")
        if refunded and self.status != "paid":
            raise InvalidValue("invalid_amount", "only a paid checkout has a refunded_amount")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "order_id": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "qr_url": self.qr_url,
            "expires_at": self.expires_at,
            "terminal_id": self.terminal_id,
            "created_at": self.created_at,
            "description": self.description,
            "refunded_amount": self.refunded_amount,
        }
        if self.static_code_id is not None:
            out["source"] = self.source
            out["static_code_id"] = self.static_code_id
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> CheckoutSnapshot:
        if not isinstance(obj, dict):
            raise InvalidValue("invalid_type", "checkout must be an object", field="checkout")
        jf.check_fields(obj, required=cls._REQUIRED, optional=cls._OPTIONAL)
        return cls(**{k: obj[k] for k in obj})


@dataclass(frozen=True, slots=True)
class CheckoutEvent:
    """What the PSP publishes on ``scan2pay/v1/m/{merchant_id}/events``.

    ``seq`` counts a merchant's events from 1 with no gaps; ``event_id`` is
    unique, so that a consumer can drop a duplicate delivery. The checkout's
    status is the one ``STATUS_FOR_EVENT`` names for ``type``; a
    ``checkout.refunded`` event carries a paid checkout whose
    ``refunded_amount`` is the total refunded so far; a ``checkout.created``
    event carries a pending checkout a customer typed at a printed till code
    (``source`` static), and no other.

    ``signature`` is the PSP's Ed25519 signature over the rest of the event
    (``scan2pay_common.signing``, docs/signing.md); events written before
    signing existed have none. Its shape is checked here, its validity by
    whoever holds the PSP's public key.
    """

    event_id: str
    seq: int
    type: EventType
    merchant_id: str
    checkout: CheckoutSnapshot
    created_at: str
    signature: dict[str, Any] | None = field(default=None, hash=False)

    _FIELDS = frozenset({"event_id", "seq", "type", "merchant_id", "checkout", "created_at"})

    def __post_init__(self) -> None:
        if not isinstance(self.event_id, str) or not self.event_id:
            raise InvalidValue("invalid_type", "event_id must be a non-empty string")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise InvalidValue("invalid_type", "seq must be an integer of at least 1")
        if self.type not in EVENT_TYPES:
            raise InvalidValue("invalid_event_type", f"unknown event type {self.type!r}")
        check_merchant_id(self.merchant_id)
        if STATUS_FOR_EVENT[self.type] != self.checkout.status:
            raise InvalidValue(
                "invalid_event_type",
                f"a {self.type} event cannot carry a {self.checkout.status} checkout",
            )
        if self.type == "checkout.refunded" and self.checkout.refunded_amount < 1:
            raise InvalidValue(
                "invalid_event_type", "a checkout.refunded event carries a refunded_amount"
            )
        if self.type == "checkout.created" and self.checkout.source != "static":
            raise InvalidValue(
                "invalid_event_type",
                "a checkout.created event is only of a checkout typed at a printed till code",
            )
        _check_timestamp(self.created_at, "created_at")
        _check_optional_object(self.signature, "signature")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "seq": self.seq,
            "type": self.type,
            "merchant_id": self.merchant_id,
            "checkout": self.checkout.to_dict(),
            "created_at": self.created_at,
        }
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    def to_json(self) -> bytes:
        return jf.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> CheckoutEvent:
        return cls.from_dict(jf.load_object(raw, what="event"))

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> CheckoutEvent:
        """From the JSON object already read (``jsonfields.load_object``):
        a reader that looked at it first need not parse it again."""
        jf.check_fields(obj, required=cls._FIELDS, optional=frozenset({"signature"}))
        return cls(
            event_id=jf.string(obj, "event_id"),
            seq=jf.integer(obj, "seq"),
            type=jf.string(obj, "type"),  # type: ignore[arg-type]  # checked in __post_init__
            merchant_id=jf.string(obj, "merchant_id"),
            checkout=CheckoutSnapshot.from_dict(obj["checkout"]),
            created_at=jf.string(obj, "created_at"),
            signature=obj.get("signature"),
        )


@dataclass(frozen=True, slots=True)
class DisplayTicket:
    """The PSP's word that a QR may be shown: which checkout, whose (the
    merchant's id), which URL, how much, on which terminal, until when. The
    PSP signs it (``signature``, checked by whoever holds its public key);
    the cashier forwards it in ``show_qr`` and the terminal shows the QR
    only if it verifies, names the terminal's own merchant and terminal, and
    matches the command. Terminal ids are unique only within a merchant:
    without ``merchant_id`` one merchant's ticket for its "lane-1" would be
    good on every other merchant's "lane-1"."""

    checkout_id: str
    merchant_id: str
    qr_url: str
    amount: int
    currency: str
    terminal_id: str | None
    expires_at: str
    signature: dict[str, Any] | None = field(default=None, hash=False)
    # The EMV payload the QR encodes instead of qr_url (docs/emv.md); absent
    # for merchants whose codes are bare URLs, so that their tickets read
    # the same to terminals from before it.
    qr_payload: str | None = None

    _REQUIRED = frozenset(
        {"checkout_id", "merchant_id", "qr_url", "amount", "currency", "terminal_id", "expires_at"}
    )

    def __post_init__(self) -> None:
        check_checkout_id(self.checkout_id)
        check_merchant_id(self.merchant_id)
        if not isinstance(self.qr_url, str) or not self.qr_url:
            raise InvalidValue("invalid_qr_url", "qr_url must be a non-empty string")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise InvalidValue("invalid_amount", "amount must be a positive integer")
        check_currency(self.currency)
        if self.terminal_id is not None:
            check_terminal_id(self.terminal_id)
        _check_timestamp(self.expires_at, "expires_at")
        _check_optional_object(self.signature, "signature")
        check_qr_payload(self.qr_payload, self.qr_url)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "checkout_id": self.checkout_id,
            "merchant_id": self.merchant_id,
            "qr_url": self.qr_url,
            "amount": self.amount,
            "currency": self.currency,
            "terminal_id": self.terminal_id,
            "expires_at": self.expires_at,
        }
        if self.qr_payload is not None:
            out["qr_payload"] = self.qr_payload
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> DisplayTicket:
        if not isinstance(obj, dict):
            raise InvalidValue("invalid_type", "display_ticket must be an object")
        jf.check_fields(
            obj, required=cls._REQUIRED, optional=frozenset({"signature", "qr_payload"})
        )
        return cls(**obj)


# Display commands: cashier -> terminal, retained, QoS 1.


@dataclass(frozen=True, slots=True)
class ShowQr:
    checkout_id: str
    qr_url: str
    amount: int
    currency: str
    expires_at: str
    order_id: str | None = None
    # The PSP's signed DisplayTicket as the create answered it, forwarded
    # untouched; a terminal configured with the PSP's key requires it.
    display_ticket: dict[str, Any] | None = field(default=None, hash=False)
    # What to encode instead of qr_url: the checkout's EMV payload, which
    # carries qr_url inside (docs/emv.md). Absent: encode qr_url.
    qr_payload: str | None = None

    type: Literal["show_qr"] = "show_qr"

    def __post_init__(self) -> None:
        _check_type(self.type, "show_qr")
        check_checkout_id(self.checkout_id)
        if not isinstance(self.qr_url, str) or not self.qr_url:
            raise InvalidValue("invalid_qr_url", "qr_url must be a non-empty string")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise InvalidValue("invalid_amount", "amount must be a positive integer")
        check_currency(self.currency)
        _check_timestamp(self.expires_at, "expires_at")
        if self.order_id is not None:
            check_order_id(self.order_id)
        _check_optional_object(self.display_ticket, "display_ticket")
        check_qr_payload(self.qr_payload, self.qr_url)

    @property
    def encoded(self) -> str:
        """The exact string the QR encodes."""
        return self.qr_payload if self.qr_payload is not None else self.qr_url

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "checkout_id": self.checkout_id,
            "qr_url": self.qr_url,
            "amount": self.amount,
            "currency": self.currency,
            "expires_at": self.expires_at,
        }
        if self.order_id is not None:
            out["order_id"] = self.order_id
        if self.display_ticket is not None:
            out["display_ticket"] = self.display_ticket
        if self.qr_payload is not None:
            out["qr_payload"] = self.qr_payload
        return out


@dataclass(frozen=True, slots=True)
class ShowStatus:
    checkout_id: str
    status: FinalStatus

    type: Literal["status"] = "status"

    def __post_init__(self) -> None:
        _check_type(self.type, "status")
        check_checkout_id(self.checkout_id)
        if self.status not in FINAL_STATUSES:
            raise InvalidValue("invalid_status", f"unknown display status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "checkout_id": self.checkout_id, "status": self.status}


@dataclass(frozen=True, slots=True)
class ShowIdle:
    type: Literal["idle"] = "idle"

    def __post_init__(self) -> None:
        _check_type(self.type, "idle")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type}


DisplayCommand = ShowQr | ShowStatus | ShowIdle


def display_command_to_json(command: DisplayCommand) -> bytes:
    return jf.dumps(command.to_dict())


def parse_display_command(raw: bytes | str) -> DisplayCommand:
    obj = jf.load_object(raw, what="display command")
    kind = obj.get("type")
    if kind == "show_qr":
        jf.check_fields(
            obj,
            required=frozenset(
                {"type", "checkout_id", "qr_url", "amount", "currency", "expires_at"}
            ),
            optional=frozenset({"order_id", "display_ticket", "qr_payload"}),
        )
        order_id = obj.get("order_id")
        qr_payload = obj.get("qr_payload")
        return ShowQr(
            checkout_id=jf.string(obj, "checkout_id"),
            qr_url=jf.string(obj, "qr_url", maximum=2048),
            amount=jf.integer(obj, "amount"),
            currency=jf.string(obj, "currency"),
            expires_at=jf.string(obj, "expires_at"),
            order_id=None if order_id is None else jf.string(obj, "order_id"),
            display_ticket=obj.get("display_ticket"),
            qr_payload=None
            if qr_payload is None
            else jf.string(obj, "qr_payload", maximum=emv.MAX_PAYLOAD),
        )
    if kind == "status":
        jf.check_fields(obj, required=frozenset({"type", "checkout_id", "status"}))
        return ShowStatus(
            checkout_id=jf.string(obj, "checkout_id"),
            status=jf.string(obj, "status"),  # type: ignore[arg-type]  # checked in __post_init__
        )
    if kind == "idle":
        jf.check_fields(obj, required=frozenset({"type"}))
        return ShowIdle()
    raise InvalidValue("invalid_command", f"unknown display command type {kind!r}", field="type")


# Terminal state: terminal -> cashier, retained, QoS 1; the last will sets online false.

# display_error came after the rest: a reader older than it refuses such a
# state as off-contract and keeps the terminal's previous one (docs/mqtt.md).
Screen = Literal[
    "idle", "qr", "paid", "cancelled", "expired", "refunded", "offline", "error", "display_error"
]
SCREENS: tuple[str, ...] = get_args(Screen)


@dataclass(frozen=True, slots=True)
class TerminalState:
    online: bool
    screen: Screen
    checkout_id: str | None
    displayed_at: str | None

    def __post_init__(self) -> None:
        if not isinstance(self.online, bool):
            raise InvalidValue("invalid_type", "online must be true or false")
        if self.screen not in SCREENS:
            raise InvalidValue("invalid_screen", f"unknown screen {self.screen!r}")
        if self.checkout_id is not None:
            check_checkout_id(self.checkout_id)
        if self.displayed_at is not None:
            _check_timestamp(self.displayed_at, "displayed_at")

    def to_json(self) -> bytes:
        return jf.dumps(
            {
                "online": self.online,
                "screen": self.screen,
                "checkout_id": self.checkout_id,
                "displayed_at": self.displayed_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> TerminalState:
        obj = jf.load_object(raw, what="terminal state")
        jf.check_fields(
            obj, required=frozenset({"online", "screen", "checkout_id", "displayed_at"})
        )
        return cls(
            online=jf.boolean(obj, "online"),
            screen=jf.string(obj, "screen"),  # type: ignore[arg-type]  # checked in __post_init__
            checkout_id=_check_optional_str(obj["checkout_id"], "checkout_id"),
            displayed_at=_check_optional_str(obj["displayed_at"], "displayed_at"),
        )
