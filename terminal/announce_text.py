"""What the terminal says for a payment, as words, with no I/O: "Received
twelve euros thirty-four", in the terminal's language.

An announcement is a few parts (the phrase, the number of whole units, the
currency's name, the number of minor units), each spoken and cached on its
own (``terminal.speech``), as hardware soundboxes build theirs from
recorded words. Amounts follow ISO 4217's minor units
(``scan2pay_common.money``): JPY has none, KWD three ("one Kuwaiti dinar
five hundred").

Numbers in English, German, French, Spanish and Portuguese are num2words'
(a well-kept library with these languages' irregular tens and hundreds);
it has no Hindi, whose numbers below a hundred are each a word of their
own, so Hindi's are a table here. A number before a currency's name agrees
with it: "un euro", "una rupia", "duzentas libras", "ein Euro", "veintiún
euros".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scan2pay_common.money import exponent

Kind = Literal["received", "refunded", "received_late"]
KINDS: tuple[Kind, ...] = ("received", "refunded", "received_late")
Gender = Literal["m", "f"]

LANGUAGES = ("en", "de", "fr", "es", "pt", "hi")


@dataclass(frozen=True, slots=True)
class Unit:
    """A currency's (or its minor unit's) name in one language."""

    one: str
    many: str
    gender: Gender = "m"


@dataclass(frozen=True, slots=True)
class Wording:
    """How one language says an announcement: the phrase before the amount
    (and, in Hindi, the verb after it), and what joins whole and minor units."""

    before: dict[Kind, str]
    after: dict[Kind, str]
    joiner: str = ""
    # Whether the minor units are named ("fifty paise"); otherwise only when
    # there are no whole units ("thirty-four cents").
    names_minor: bool = False


WORDINGS: dict[str, Wording] = {
    "en": Wording(
        {"received": "Received", "refunded": "Refunded", "received_late": "Received earlier:"}, {}
    ),
    "de": Wording(
        {"received": "Erhalten:", "refunded": "Erstattet:", "received_late": "Zuvor erhalten:"},
        {},
    ),
    "fr": Wording(
        {"received": "Reçu", "refunded": "Remboursé", "received_late": "Reçu plus tôt :"}, {}
    ),
    "es": Wording(
        {"received": "Recibido", "refunded": "Reembolsado", "received_late": "Recibido antes:"},
        {},
        joiner="con",
    ),
    "pt": Wording(
        {"received": "Recebido", "refunded": "Reembolsado", "received_late": "Recebido antes:"},
        {},
        joiner="e",
    ),
    # Hindi puts the verb last: "दो सौ चालीस रुपये प्राप्त हुए".
    "hi": Wording(
        {},
        {
            "received": "प्राप्त हुए",
            "refunded": "वापस किए गए",
            "received_late": "पहले प्राप्त हुए",
        },
        names_minor=True,
    ),
}

# ISO 4217 code -> language -> (whole units, minor units or None).
CURRENCIES: dict[str, dict[str, tuple[Unit, Unit | None]]] = {
    "EUR": {
        "en": (Unit("euro", "euros"), Unit("cent", "cents")),
        "de": (Unit("Euro", "Euro"), Unit("Cent", "Cent")),
        "fr": (Unit("euro", "euros"), Unit("centime", "centimes")),
        "es": (Unit("euro", "euros"), Unit("céntimo", "céntimos")),
        "pt": (Unit("euro", "euros"), Unit("cêntimo", "cêntimos")),
        "hi": (Unit("यूरो", "यूरो"), Unit("सेंट", "सेंट")),
    },
    "USD": {
        "en": (Unit("dollar", "dollars"), Unit("cent", "cents")),
        "de": (Unit("Dollar", "Dollar"), Unit("Cent", "Cent")),
        "fr": (Unit("dollar", "dollars"), Unit("cent", "cents")),
        "es": (Unit("dólar", "dólares"), Unit("centavo", "centavos")),
        "pt": (Unit("dólar", "dólares"), Unit("centavo", "centavos")),
        "hi": (Unit("डॉलर", "डॉलर"), Unit("सेंट", "सेंट")),
    },
    "GBP": {
        "en": (Unit("pound", "pounds"), Unit("penny", "pence")),
        "de": (Unit("Pfund", "Pfund"), Unit("Penny", "Pence")),
        "fr": (Unit("livre", "livres", "f"), Unit("penny", "pence")),
        "es": (Unit("libra", "libras", "f"), Unit("penique", "peniques")),
        "pt": (Unit("libra", "libras", "f"), Unit("péni", "pence")),
        "hi": (Unit("पाउंड", "पाउंड"), Unit("पेन्स", "पेन्स")),
    },
    "INR": {
        "en": (Unit("rupee", "rupees"), Unit("paisa", "paise")),
        "de": (Unit("Rupie", "Rupien", "f"), Unit("Paisa", "Paise")),
        "fr": (Unit("roupie", "roupies", "f"), Unit("paisa", "paisas")),
        "es": (Unit("rupia", "rupias", "f"), Unit("paisa", "paisas")),
        "pt": (Unit("rupia", "rupias", "f"), Unit("paisa", "paisas")),
        "hi": (Unit("रुपया", "रुपये"), Unit("पैसा", "पैसे")),
    },
    "JPY": {
        "en": (Unit("yen", "yen"), None),
        "de": (Unit("Yen", "Yen"), None),
        "fr": (Unit("yen", "yens"), None),
        "es": (Unit("yen", "yenes"), None),
        "pt": (Unit("iene", "ienes"), None),
        "hi": (Unit("येन", "येन"), None),
    },
    "KWD": {
        "en": (Unit("Kuwaiti dinar", "Kuwaiti dinars"), Unit("fils", "fils")),
        "de": (Unit("Kuwait-Dinar", "Kuwait-Dinar"), Unit("Fils", "Fils")),
        "fr": (Unit("dinar koweïtien", "dinars koweïtiens"), Unit("fils", "fils")),
        "es": (Unit("dinar kuwaití", "dinares kuwaitíes"), Unit("fils", "fils")),
        "pt": (Unit("dinar kuwaitiano", "dinares kuwaitianos"), Unit("fils", "fils")),
        "hi": (Unit("कुवैती दीनार", "कुवैती दीनार"), Unit("फ़िल्स", "फ़िल्स")),
    },
}


@dataclass(frozen=True, slots=True)
class Announcement:
    """The parts to speak, in order; ``text`` is what a listener hears."""

    language: str
    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def announcement(kind: Kind, amount: int, currency: str, language: str) -> Announcement:
    """``amount`` in ``currency``'s minor units, said in ``language``."""
    if language not in WORDINGS:
        raise ValueError(f"no announcements in {language!r}; there are {', '.join(LANGUAGES)}")
    if amount < 0:
        raise ValueError("an amount to announce is not negative")
    wording = WORDINGS[language]
    whole, minor = divmod(amount, 10 ** exponent(currency))
    major_unit, minor_unit = _units(currency, language)
    parts: list[str] = []
    if kind in wording.before:
        parts.append(wording.before[kind])
    if whole or not minor or minor_unit is None:
        parts += _counted(whole, major_unit, language)
        if minor:
            if wording.joiner:
                parts.append(wording.joiner)
            if wording.names_minor and minor_unit is not None:
                parts += _counted(minor, minor_unit, language)
            else:
                parts.append(number_words(minor, language))
    else:  # only minor units: "thirty-four cents"
        parts += _counted(minor, minor_unit, language)
    if kind in wording.after:
        parts.append(wording.after[kind])
    return Announcement(language, tuple(parts))


def _units(currency: str, language: str) -> tuple[Unit, Unit | None]:
    named = CURRENCIES.get(currency)
    if named is not None:
        return named[language]
    # A currency without names here is spelled out: "S E K".
    spelled = " ".join(currency)
    return Unit(spelled, spelled), None


def _counted(count: int, unit: Unit, language: str) -> list[str]:
    """``count`` and ``unit``'s name, agreeing: [number, name]."""
    words = number_words(count, language, gender=unit.gender, before_noun=True)
    singular = count == 1 or (language == "fr" and count == 0)
    name = unit.one if singular else unit.many
    if language in ("es", "pt", "fr") and words.split()[-1] in _MILLIONS:
        # "un millón de euros", "deux millions d'euros"
        name = f"d'{name}" if language == "fr" and name[0] in "aeiouyéè" else f"de {name}"
    return [words, name]


_MILLIONS = frozenset({"millón", "millones", "milhão", "milhões", "million", "millions"})


def number_words(
    number: int, language: str, *, gender: Gender = "m", before_noun: bool = False
) -> str:
    """``number`` in words; ``before_noun``: as it stands before a noun of
    ``gender`` (German "ein Euro", Spanish "veintiún euros")."""
    if language == "hi":
        return hindi_number(number)
    # Imported when first needed: num2words loads all its languages, which
    # a terminal without sound need not hold.
    from num2words import num2words

    words = str(num2words(number, lang=language))
    if language == "es":
        return _spanish(words, gender, before_noun)
    if language == "pt" and gender == "f":
        return " ".join(
            _PORTUGUESE_FEMININE.get(word, _ending(word, "entos", "entas"))
            for word in words.split()
        )
    if language == "fr" and gender == "f":
        tokens = words.split()
        # "un" and "vingt et un" agree; "un million" does not.
        if tokens[-1] == "un":
            tokens[-1] = "une"
        elif tokens[-1].endswith("-un"):
            tokens[-1] = tokens[-1][:-3] + "-une"
        return " ".join(tokens)
    if language == "de" and before_noun and words.endswith("eins"):
        return words[:-4] + ("eine" if gender == "f" else "ein")
    return words


_PORTUGUESE_FEMININE = {"um": "uma", "dois": "duas"}


def _ending(token: str, old: str, new: str) -> str:
    return token[: -len(old)] + new if token.endswith(old) else token


def _spanish(words: str, gender: Gender, before_noun: bool) -> str:
    """ "uno" shortens before a noun and before "mil" ("veintiún mil euros"),
    and agrees with a feminine noun ("una rupia", "doscientas libras")."""
    tokens = words.split()
    out: list[str] = []
    for index, word in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        at_end = following is None and before_noun
        shortens = word.endswith("uno") and (following == "mil" or at_end)
        if gender == "f":
            word = _ending(word, "ientos", "ientas")
            if shortens:
                word = word[:-3] + "una"
        elif shortens:
            word = "veintiún" if word == "veintiuno" else word[:-3] + "un"
        out.append(word)
    return " ".join(out)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Hindi's numbers below a hundred, each a word of its own, ten a line.
_HINDI = _words(
    "शून्य एक दो तीन चार पाँच छह सात आठ नौ "
    "दस ग्यारह बारह तेरह चौदह पंद्रह सोलह सत्रह अठारह उन्नीस "
    "बीस इक्कीस बाईस तेईस चौबीस पच्चीस छब्बीस सत्ताईस अट्ठाईस उनतीस "
    "तीस इकतीस बत्तीस तैंतीस चौंतीस पैंतीस छत्तीस सैंतीस अड़तीस उनतालीस "
    "चालीस इकतालीस बयालीस तैंतालीस चवालीस पैंतालीस छियालीस सैंतालीस अड़तालीस उनचास "
    "पचास इक्यावन बावन तिरपन चौवन पचपन छप्पन सत्तावन अट्ठावन उनसठ "
    "साठ इकसठ बासठ तिरसठ चौंसठ पैंसठ छियासठ सड़सठ अड़सठ उनहत्तर "
    "सत्तर इकहत्तर बहत्तर तिहत्तर चौहत्तर पचहत्तर छिहत्तर सतहत्तर अठहत्तर उन्यासी "
    "अस्सी इक्यासी बयासी तिरासी चौरासी पचासी छियासी सत्तासी अठासी नवासी "
    "नब्बे इक्यानवे बानवे तिरानवे चौरानवे पचानवे छियानवे सत्तानवे अट्ठानवे निन्यानवे"
)
# The Indian grouping: crore (10^7), lakh (10^5), thousand, hundred.
_HINDI_SCALES = ((10_000_000, "करोड़"), (100_000, "लाख"), (1000, "हज़ार"), (100, "सौ"))


def hindi_number(number: int) -> str:
    if number < 100:
        return _HINDI[number]
    words: list[str] = []
    for size, name in _HINDI_SCALES:
        count, number = divmod(number, size)
        if count:
            words += [hindi_number(count), name]
    if number:
        words.append(_HINDI[number])
    return " ".join(words)
