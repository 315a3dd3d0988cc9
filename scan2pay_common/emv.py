"""EMVCo merchant-presented mode (MPM) QR payloads: built, parsed and checked.

The format (EMV QR Code Specification for Payment Systems, merchant-presented
mode) is a string of data objects, each an id of two digits, a length of two
digits and that many characters; templates hold data objects of their own.
What scan2pay writes, in this order:

====  =========================================================================
id    value
====  =========================================================================
00    payload format indicator, "01"
01    point of initiation: "12" dynamic (one payment), "11" static (many)
26    merchant account information: 00 the profile's globally unique
      identifier (GUI), then our payment URL in the profile's sub-tag
52    merchant category code (ISO 18245), 4 digits
53    transaction currency, ISO 4217 numeric
54    amount in major units with the currency's minor digits (dynamic only)
58    country, ISO 3166-1 alpha-2
59    merchant name, at most 25 characters
60    merchant city, at most 15 characters
62    additional data: 05 reference label, 07 terminal label
63    CRC-16/CCITT-FALSE of everything before it, "6304" included, as 4
      upper-case hex digits
====  =========================================================================

Text goes in the standard's common character set, printable ASCII: names
and cities are transliterated (``é`` -> ``e``; what has no ASCII form is
dropped).

Profiles
--------
A profile says which template id carries the URL, its default GUI, the
sub-tag of the URL, and whether the scheme (``https://``) is left out, as
PIX's location URL is. ``scan2pay`` (GUI ``org.scan2pay``, URL in 01) and
``pix`` (GUI ``br.gov.bcb.pix``, URL in 25 without its scheme) are built in;
a national scheme plugs in with ``register_profile(Profile(...))`` at start
(docs/emv.md). Parsing knows every registered profile, so that
``url_of_payload`` finds our URL in any of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

from iso4217 import Currency as _Iso4217

from .errors import InvalidValue
from .money import check_currency, format_major

PAYLOAD_FORMAT = "01"
DYNAMIC = "12"
STATIC = "11"
MAX_PAYLOAD = 512  # characters: the standard's bound on a whole payload
MAX_VALUE = 99  # a length has two digits
MAX_NAME = 25
MAX_CITY = 15
MAX_LABEL = 25  # reference and terminal labels in template 62
MAX_AMOUNT = 13
ACCOUNT_TEMPLATES = range(26, 52)  # merchant account information, 26..51
_TEMPLATE_IDS = frozenset(
    {f"{i:02d}" for i in ACCOUNT_TEMPLATES} | {"62"} | {f"{i:02d}" for i in range(80, 100)}
)
_ID = re.compile(r"[0-9]{2}")
_MCC = re.compile(r"[0-9]{4}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_GUI = re.compile(r"[\x21-\x7e]{1,32}")
_HEX4 = re.compile(r"[0-9A-F]{4}")

# ISO 4217 numeric codes of the currencies money.py accepts.
NUMERIC_CURRENCY: dict[str, str] = {
    c.code: f"{c.number:03d}" for c in _Iso4217 if c.exponent is not None
}
_CURRENCY_BY_NUMBER = {number: code for code, number in NUMERIC_CURRENCY.items()}


class EmvError(InvalidValue):
    """A payload that is not a well-formed EMV MPM payload, or a value that
    cannot go in one. ``code`` is ``invalid_emv`` unless a field is named."""

    def __init__(self, message: str, *, code: str = "invalid_emv", field: str | None = None):
        super().__init__(code, message, field=field)


# --- the CRC ------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
    xor) of ``data``'s UTF-8 bytes as 4 upper-case hex digits:
    ``crc16("123456789") == "29B1"``."""
    crc = 0xFFFF
    for byte in data.encode("utf-8"):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return f"{crc:04X}"


# --- text ---------------------------------------------------------------------


# Latin letters that NFKD leaves whole, in their usual ASCII spelling.
_LETTERS = str.maketrans(
    {"ß": "ss", "ẞ": "SS", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Ø": "O", "ø": "o",
     "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Þ": "Th", "þ": "th", "\u0131": "i"}
)  # fmt: skip


def to_common_charset(text: str) -> str:
    """``text`` in the standard's character set (printable ASCII): accents
    taken off by compatibility decomposition (NFKD: ``Müller`` -> ``Muller``,
    ``ﬁ`` -> ``fi``), a few letters spelt out (``ß`` -> ``ss``), other
    non-ASCII characters dropped, runs of space made one."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    kept = "".join(ch for ch in decomposed if " " <= ch <= "~" or ch.isspace())
    return " ".join(kept.split())


def _tlv(tag: str, value: str) -> str:
    if len(value) > MAX_VALUE:
        raise EmvError(
            f"EMV data object {tag} would be {len(value)} characters long; at most {MAX_VALUE} fit",
            field=tag,
        )
    return f"{tag}{len(value):02d}{value}"


def _printable(value: str, what: str, maximum: int) -> str:
    if not value or len(value) > maximum or not all(" " <= ch <= "~" for ch in value):
        raise EmvError(
            f"{what} must be 1 to {maximum} printable ASCII characters", field=what.split()[0]
        )
    return value


# --- profiles -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """How one scheme carries our URL in a merchant account template:
    ``template`` (26..51), the default ``gui`` (sub-tag 00), the URL's
    ``url_tag``, and ``implied_scheme``, the scheme left out of the stored
    URL (PIX stores ``pix.example.com/...`` and means ``https://``)."""

    name: str
    gui: str
    url_tag: str
    template: str = "26"
    implied_scheme: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise EmvError(f"profile name {self.name!r} must be a word like 'pix'")
        _check_gui(self.gui)
        if not _ID.fullmatch(self.url_tag) or self.url_tag == "00":
            raise EmvError(f"profile {self.name}: url_tag must be two digits other than 00")
        if not _ID.fullmatch(self.template) or int(self.template) not in ACCOUNT_TEMPLATES:
            raise EmvError(f"profile {self.name}: template must be an id from 26 to 51")
        scheme = self.implied_scheme
        if scheme is not None and (scheme != scheme.lower() or not scheme.endswith("://")):
            raise EmvError(f"profile {self.name}: implied_scheme is like 'https://'")

    def store_url(self, url: str) -> str:
        if self.implied_scheme is None:
            return url
        if not url.lower().startswith(self.implied_scheme):  # implied_scheme is lower case
            # The scheme alone: the rest of a payment URL holds its code.
            raise EmvError(
                f"the {self.name} profile carries {self.implied_scheme} URLs only; got"
                f" {url.partition(':')[0][:10]!r}",
                field="url",
            )
        return url[len(self.implied_scheme) :]

    def read_url(self, stored: str) -> str:
        return stored if self.implied_scheme is None else self.implied_scheme + stored


def _check_gui(gui: object) -> str:
    if not isinstance(gui, str) or not _GUI.fullmatch(gui):
        raise EmvError(
            "the globally unique identifier must be 1 to 32 printable ASCII characters"
            " without spaces, like a reverse domain name (org.example.pay)",
            field="emv_gui",
        )
    return gui


SCAN2PAY = Profile(
    "scan2pay",
    gui="org.scan2pay",
    url_tag="01",
    description="scan2pay's own template: the payment URL as it is",
)
PIX = Profile(
    "pix",
    gui="br.gov.bcb.pix",
    url_tag="25",
    implied_scheme="https://",
    description="Brazil's PIX dynamic code: the location URL without https://",
)

_PROFILES: dict[str, Profile] = {p.name: p for p in (SCAN2PAY, PIX)}


def register_profile(profile: Profile) -> None:
    """Adds a scheme's profile, by its name; a name is registered once."""
    if profile.name in _PROFILES and _PROFILES[profile.name] != profile:
        raise EmvError(f"an EMV profile named {profile.name!r} is already registered")
    _PROFILES[profile.name] = profile


def profile_named(name: object) -> Profile:
    if not isinstance(name, str) or name not in _PROFILES:
        known = ", ".join(sorted(_PROFILES))
        raise EmvError(f"unknown EMV profile {name!r}; known: {known}", code="invalid_emv_profile")
    return _PROFILES[name]


def profiles() -> tuple[Profile, ...]:
    return tuple(_PROFILES.values())


def check_mcc(mcc: object) -> str:
    if not isinstance(mcc, str) or not _MCC.fullmatch(mcc):
        raise EmvError(
            "mcc must be the 4-digit merchant category code (ISO 18245), like 5814",
            code="invalid_mcc",
            field="mcc",
        )
    return mcc


def check_country(country: object) -> str:
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise EmvError(
            "country must be the two upper-case letters of ISO 3166-1, like DE",
            code="invalid_country",
            field="country",
        )
    return country


def check_city(city: object) -> str:
    """``city`` if it is 1 to 15 characters once transliterated."""
    if isinstance(city, str) and 0 < len(to_common_charset(city)) <= MAX_CITY:
        return city
    written = to_common_charset(city) if isinstance(city, str) else ""
    raise EmvError(
        f"city must be 1 to {MAX_CITY} characters once written in ASCII ({written!r})",
        code="invalid_city",
        field="city",
    )


def check_gui(gui: object) -> str:
    return _check_gui(gui)


# --- building -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MerchantInfo:
    """What a payload says of the merchant. ``name`` is transliterated and
    cut to 25 characters (a merchant's name is what it is); ``city`` must fit
    in 15 once transliterated (it is set for this purpose, so a long one is
    refused rather than cut). ``gui`` None: the profile's own."""

    name: str
    mcc: str
    country: str
    city: str
    profile: str = "scan2pay"
    gui: str | None = None

    def __post_init__(self) -> None:
        check_mcc(self.mcc)
        check_country(self.country)
        if not isinstance(self.name, str) or not to_common_charset(self.name):
            raise EmvError(
                "the merchant name has no letters that an EMV payload can carry",
                code="invalid_merchant_name",
                field="name",
            )
        check_city(self.city)
        profile_named(self.profile)
        if self.gui is not None:
            _check_gui(self.gui)

    @property
    def payload_name(self) -> str:
        return to_common_charset(self.name)[:MAX_NAME].rstrip()

    @property
    def payload_city(self) -> str:
        return to_common_charset(self.city)

    @property
    def payload_gui(self) -> str:
        return self.gui if self.gui is not None else profile_named(self.profile).gui


@dataclass(frozen=True, slots=True)
class EmvCode:
    """One payload to build: a ``dynamic`` one carries the amount (minor
    units) and is good for one payment; a static one has none. ``reference``
    and ``terminal_label`` go in template 62 when given."""

    url: str
    merchant: MerchantInfo
    currency: str
    amount: int | None
    dynamic: bool
    reference: str | None = None
    terminal_label: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.lower().startswith(
            ("https://", "http://")
        ):
            raise EmvError("url must be an http(s) URL", field="url")
        check_currency(self.currency)
        if self.dynamic:
            if isinstance(self.amount, bool) or not isinstance(self.amount, int):
                raise EmvError("a dynamic code carries its amount", field="amount")
            if self.amount <= 0:
                raise EmvError("amount must be greater than zero", field="amount")
        elif self.amount is not None:
            raise EmvError("a static code carries no amount", field="amount")
        if self.reference is not None:
            _printable(self.reference, "reference label", MAX_LABEL)
        if self.terminal_label is not None:
            _printable(self.terminal_label, "terminal label", MAX_LABEL)

    def data_objects(self) -> Iterator[str]:
        merchant = self.merchant
        profile = profile_named(merchant.profile)
        yield _tlv("00", PAYLOAD_FORMAT)
        yield _tlv("01", DYNAMIC if self.dynamic else STATIC)
        account = _tlv("00", merchant.payload_gui) + _tlv(
            profile.url_tag, profile.store_url(self.url)
        )
        yield _tlv(profile.template, account)
        yield _tlv("52", merchant.mcc)
        yield _tlv("53", NUMERIC_CURRENCY[self.currency])
        if self.amount is not None:
            amount = format_major(self.amount, self.currency)
            if len(amount) > MAX_AMOUNT:
                raise EmvError(
                    f"the amount {amount} is longer than the {MAX_AMOUNT} characters an EMV"
                    " payload holds",
                    code="amount_too_large",
                    field="amount",
                )
            yield _tlv("54", amount)
        yield _tlv("58", merchant.country)
        yield _tlv("59", merchant.payload_name)
        yield _tlv("60", merchant.payload_city)
        extra = ""
        if self.reference is not None:
            extra += _tlv("05", self.reference)
        if self.terminal_label is not None:
            extra += _tlv("07", self.terminal_label)
        if extra:
            yield _tlv("62", extra)

    def payload(self) -> str:
        body = "".join(self.data_objects()) + "6304"
        text = body + crc16(body)
        if len(text) > MAX_PAYLOAD:
            raise EmvError(f"the payload would be {len(text)} characters; at most {MAX_PAYLOAD}")
        return text


def dynamic_payload(
    url: str,
    merchant: MerchantInfo,
    *,
    amount: int,
    currency: str,
    reference: str | None = None,
    terminal_label: str | None = None,
) -> str:
    """The payload of one payment (point of initiation 12) for ``url``."""
    return EmvCode(url, merchant, currency, amount, True, reference, terminal_label).payload()


def static_payload(
    url: str,
    merchant: MerchantInfo,
    *,
    currency: str,
    reference: str | None = None,
    terminal_label: str | None = None,
) -> str:
    """The payload of a printed code (point of initiation 11, no amount),
    such as a static till code's ``{public_url}/S/{CODE}``."""
    return EmvCode(url, merchant, currency, None, False, reference, terminal_label).payload()


# --- parsing ------------------------------------------------------------------


def _objects(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    at = 0
    while at < len(text):
        tag, length = text[at : at + 2], text[at + 2 : at + 4]
        if not _ID.fullmatch(tag) or not _ID.fullmatch(length):
            raise EmvError(f"{where}: no id and length at character {at}")
        end = at + 4 + int(length)
        if end > len(text):
            raise EmvError(f"{where}: data object {tag} runs past the end")
        if tag in out:
            raise EmvError(f"{where}: data object {tag} appears twice")
        out[tag] = text[at + 4 : end]
        at = end
    return out


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    """A checked payload: ``objects`` the top-level data objects by id (the
    CRC's included), ``templates`` the sub-objects of every template."""

    objects: dict[str, str]
    templates: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def dynamic(self) -> bool:
        return self.objects.get("01") == DYNAMIC

    @property
    def currency(self) -> str | None:
        number = self.objects.get("53")
        return None if number is None else _CURRENCY_BY_NUMBER.get(number)

    @property
    def amount(self) -> str | None:
        return self.objects.get("54")

    @property
    def merchant_name(self) -> str | None:
        return self.objects.get("59")

    @property
    def merchant_city(self) -> str | None:
        return self.objects.get("60")

    @property
    def reference(self) -> str | None:
        return self.templates.get("62", {}).get("05")

    @property
    def terminal_label(self) -> str | None:
        return self.templates.get("62", {}).get("07")

    def url(self) -> str:
        """Our payment URL, from the first merchant account template that a
        registered profile reads; ``EmvError`` when there is none."""
        for tag in sorted(self.templates):
            if int(tag) not in ACCOUNT_TEMPLATES:
                continue
            sub = self.templates[tag]
            profile = _profile_of(tag, sub.get("00"))
            if profile is None or profile.url_tag not in sub:
                continue
            url = profile.read_url(sub[profile.url_tag])
            if url.lower().startswith(("https://", "http://")):
                return url
        raise EmvError("the payload names no payment URL of a scheme this system knows")


def _profile_of(template: str, gui: str | None) -> Profile | None:
    """The profile that reads a template: the one whose GUI it carries, else
    scan2pay's, whose GUI a merchant may set to its own. Another scheme's
    template (a PIX key in its 01, say) is never read as scan2pay's."""
    if gui is None:
        return None
    for profile in _PROFILES.values():
        if profile.template == template and gui.lower() == profile.gui.lower():
            return profile
    if SCAN2PAY.template == template and not any(
        gui.lower() == p.gui.lower() for p in _PROFILES.values()
    ):
        return SCAN2PAY
    return None


def parse_payload(payload: object) -> ParsedPayload:
    """Checks a payload's CRC, structure and mandatory objects, and returns
    its data objects; ``EmvError`` says what is wrong."""
    if not isinstance(payload, str):
        raise EmvError("an EMV payload must be a string")
    if len(payload) > MAX_PAYLOAD:
        raise EmvError(f"longer than {MAX_PAYLOAD} characters")
    if not payload.startswith("000201"):
        raise EmvError("an EMV payload starts with 000201")
    if len(payload) < 8 or payload[-8:-4] != "6304" or not _HEX4.fullmatch(payload[-4:]):
        raise EmvError("an EMV payload ends with its CRC: 6304 and 4 hex digits")
    expected = crc16(payload[:-4])
    if payload[-4:] != expected:
        raise EmvError(f"CRC mismatch: the payload says {payload[-4:]}, its data give {expected}")
    objects = _objects(payload, "payload")
    if list(objects)[-1] != "63":
        raise EmvError("the CRC must be the last data object")
    for tag in ("52", "53", "58", "59", "60"):
        if tag not in objects:
            raise EmvError(f"data object {tag} is missing")
    if objects.get("01", STATIC) not in (STATIC, DYNAMIC):
        raise EmvError("the point of initiation (01) must be 11 or 12")
    templates = {t: _objects(v, f"template {t}") for t, v in objects.items() if t in _TEMPLATE_IDS}
    if not any(int(t) in ACCOUNT_TEMPLATES or t in ("02", "03", "04") for t in objects):
        raise EmvError("no merchant account information (ids 02 to 51)")
    return ParsedPayload(objects, templates)


def url_of_payload(payload: str) -> str:
    """Our payment URL out of an EMV payload, checked: what a wallet opens."""
    return parse_payload(payload).url()


def same_url(a: str, b: str) -> bool:
    """Whether two URLs are one, their schemes compared without case (a
    profile with an implied scheme gives it back in lower case)."""
    scheme_a, _, rest_a = a.partition("://")
    scheme_b, _, rest_b = b.partition("://")
    return scheme_a.lower() == scheme_b.lower() and rest_a == rest_b


def payment_url(scanned: str) -> str:
    """What a wallet opens for what it scanned: a payment URL as it is, or
    the URL out of an EMV payload whose CRC and structure hold. Anything
    else is refused with ``EmvError`` saying why."""
    if looks_like_emv(scanned):
        return url_of_payload(scanned)
    if scanned.lower().startswith(("https://", "http://")):
        return scanned
    raise EmvError("neither a payment URL nor an EMV payload (which starts with 000201)")


def looks_like_emv(text: str) -> bool:
    """Whether ``text`` is meant as an EMV payload (a URL never starts so)."""
    return text.startswith("000201")
