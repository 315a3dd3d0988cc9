"""What a merchant's QR codes encode: the bare payment URL (``url``, the
default) or an EMVCo merchant-presented payload around it (``emv``,
docs/emv.md). The settings, the change a ``PATCH /v1/merchant`` asks for,
and the payload of a checkout, all without I/O."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from scan2pay_common import emv
from scan2pay_common import jsonfields as jf
from scan2pay_common.errors import InvalidValue

if TYPE_CHECKING:
    from psp_server.core.records import Checkout, Merchant

QrFormat = Literal["url", "emv"]
QR_FORMATS: tuple[QrFormat, ...] = ("url", "emv")
EMV_FIELDS = ("mcc", "country", "city")
_COMPACT_ID = re.compile(r"([a-z]+)_([0-9a-f]{28})")


@dataclass(frozen=True, slots=True)
class QrSettings:
    """A merchant's QR settings. ``emv`` needs ``mcc``, ``country`` and
    ``city``; ``emv_gui`` None is the profile's own identifier. Fields may be
    set while the format is still ``url``, so that a merchant can prepare."""

    format: QrFormat = "url"
    mcc: str | None = None
    country: str | None = None
    city: str | None = None
    emv_profile: str = "scan2pay"
    emv_gui: str | None = None

    def __post_init__(self) -> None:
        if self.format not in QR_FORMATS:
            raise InvalidValue(
                "invalid_qr_format", "qr_format must be 'url' or 'emv'", field="qr_format"
            )
        if self.mcc is not None:
            emv.check_mcc(self.mcc)
        if self.country is not None:
            emv.check_country(self.country)
        if self.city is not None:
            emv.check_city(self.city)
        emv.profile_named(self.emv_profile)
        if self.emv_gui is not None:
            emv.check_gui(self.emv_gui)
        if self.format == "emv":
            missing = [name for name in EMV_FIELDS if getattr(self, name) is None]
            if missing:
                raise InvalidValue(
                    "emv_settings_missing",
                    f"qr_format 'emv' needs {', '.join(missing)} as well",
                    field=missing[0],
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "qr_format": self.format,
            "mcc": self.mcc,
            "country": self.country,
            "city": self.city,
            "emv_profile": self.emv_profile,
            "emv_gui": self.emv_gui,
        }


URL_ONLY = QrSettings()


@dataclass(frozen=True, slots=True)
class QrSettingsChange:
    """A ``PATCH /v1/merchant`` body: the fields it names, each replaced
    (``null`` clears an optional one); the others are kept."""

    fields: Mapping[str, Any]

    _NAMES = frozenset({"qr_format", "mcc", "country", "city", "emv_profile", "emv_gui"})
    _NULLABLE = frozenset({"mcc", "country", "city", "emv_gui"})

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> QrSettingsChange:
        jf.check_fields(obj, required=frozenset(), optional=cls._NAMES)
        if not obj:
            raise InvalidValue("invalid_body", "name at least one setting to change")
        for name, value in obj.items():
            if value is None and name in cls._NULLABLE:
                continue
            if not isinstance(value, str):
                raise InvalidValue("invalid_type", f"{name} must be a string", field=name)
        return cls(dict(obj))

    def applied_to(self, current: QrSettings) -> QrSettings:
        """The settings after the change; ``InvalidValue`` if they break a rule."""
        changes = {("format" if k == "qr_format" else k): v for k, v in self.fields.items()}
        return replace(current, **changes)


def emv_reference(checkout_id: str) -> str:
    """The checkout id as an EMV reference label (at most 25 characters):
    ``co_`` and 28 hex digits are 31, so the hex digits go in base32 (23
    characters, reversible); a shorter id goes as it is."""
    if len(checkout_id) <= emv.MAX_LABEL:
        return checkout_id
    match = _COMPACT_ID.fullmatch(checkout_id)
    if match is None:
        raise InvalidValue("invalid_checkout_id", "no EMV reference for this checkout id")
    return base64.b32encode(bytes.fromhex(match.group(2))).decode("ascii").rstrip("=")


def checkout_id_of_reference(reference: str, prefix: str = "co") -> str:
    """``emv_reference``'s inverse, for a reference read from a payload."""
    if len(reference) != 23:
        return reference
    raw = base64.b32decode(reference + "=" * 1)
    return f"{prefix}_{raw.hex()}"


def merchant_info(name: str, settings: QrSettings) -> emv.MerchantInfo:
    if settings.mcc is None or settings.country is None or settings.city is None:
        raise InvalidValue("emv_settings_missing", "the EMV settings are not complete")
    return emv.MerchantInfo(
        name=name,
        mcc=settings.mcc,
        country=settings.country,
        city=settings.city,
        profile=settings.emv_profile,
        gui=settings.emv_gui,
    )


def checkout_payload(
    *,
    merchant_name: str,
    settings: QrSettings,
    checkout_id: str,
    qr_url: str,
    amount: int,
    currency: str,
    terminal_id: str | None,
) -> str | None:
    """The exact string a checkout's QR encodes when it is not its URL:
    None for ``url`` merchants; for ``emv`` ones the dynamic payload with the
    checkout's URL, amount and id, and the terminal's id as its label (cut to
    the 25 characters the standard allows)."""
    if settings.format != "emv":
        return None
    return emv.dynamic_payload(
        qr_url,
        merchant_info(merchant_name, settings),
        amount=amount,
        currency=currency,
        reference=emv_reference(checkout_id),
        terminal_label=None if terminal_id is None else terminal_id[: emv.MAX_LABEL],
    )


def qr_payload(checkout: Checkout, merchant: Merchant) -> str | None:
    """``checkout_payload`` of a checkout of ``merchant``'s."""
    return checkout_payload(
        merchant_name=merchant.name,
        settings=merchant.qr,
        checkout_id=checkout.id,
        qr_url=checkout.qr_url,
        amount=checkout.amount,
        currency=checkout.currency,
        terminal_id=checkout.terminal_id,
    )


def static_code_payload(
    *,
    merchant_name: str,
    settings: QrSettings,
    url: str,
    currency: str | None,
    terminal_id: str,
) -> str | None:
    """The exact string a printed till code's QR encodes when it is not its
    URL: None for ``url`` merchants, and for a code that names no currency
    (one without typed amounts: an EMV payload must name one, tag 53); for
    ``emv`` ones the static payload (point of initiation 11, no amount) with
    the code's URL and the till's id as its terminal label."""
    if settings.format != "emv" or currency is None:
        return None
    return emv.static_payload(
        url,
        merchant_info(merchant_name, settings),
        currency=currency,
        terminal_label=terminal_id[: emv.MAX_LABEL],
    )


def check_buildable(merchant_name: str, settings: QrSettings, public_url: str) -> None:
    """Raises ``InvalidValue`` when the merchant's checkouts could not get an
    EMV payload with these settings (a name with nothing an EMV payload can
    carry, a public URL too long for the template), so that the settings are
    refused when they are set, not at the till."""
    checkout_payload(
        merchant_name=merchant_name,
        settings=settings,
        checkout_id="co_" + "0" * 28,
        qr_url=f"{public_url.rstrip('/')}/Q/" + "A" * 32,
        amount=1,
        currency="EUR",
        terminal_id=None,
    )
