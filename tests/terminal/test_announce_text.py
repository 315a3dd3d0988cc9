"""The words of an announcement, exactly, per language and currency: ISO
4217's minor units (EUR 2, JPY 0, KWD 3), numbers agreeing with the
currency's name, Hindi's own numbers and word order."""

from __future__ import annotations

import pytest

from terminal.announce_text import (
    KINDS,
    LANGUAGES,
    Kind,
    announcement,
    hindi_number,
    number_words,
)

# (language, kind, amount in minor units, currency) -> what is said.
SAID: dict[tuple[str, Kind, int, str], str] = {
    ("en", "received", 1234, "EUR"): "Received twelve euros thirty-four",
    ("en", "received", 1200, "JPY"): "Received one thousand, two hundred yen",
    ("en", "received", 1500, "KWD"): "Received one Kuwaiti dinar five hundred",
    ("en", "received", 250, "KWD"): "Received two hundred and fifty fils",
    ("en", "received", 34, "EUR"): "Received thirty-four cents",
    ("en", "received", 100, "EUR"): "Received one euro",
    ("en", "refunded", 500, "EUR"): "Refunded five euros",
    ("en", "received_late", 24050, "INR"): "Received earlier: two hundred and forty rupees fifty",
    ("en", "received", 1234, "SEK"): "Received twelve S E K thirty-four",
    ("de", "received", 1234, "EUR"): "Erhalten: zwölf Euro vierunddreißig",
    ("de", "received", 1200, "JPY"): "Erhalten: eintausendzweihundert Yen",
    ("de", "received", 1500, "KWD"): "Erhalten: ein Kuwait-Dinar fünfhundert",
    ("de", "received", 100, "INR"): "Erhalten: eine Rupie",
    ("de", "refunded", 100, "EUR"): "Erstattet: ein Euro",
    ("de", "received_late", 2100, "EUR"): "Zuvor erhalten: einundzwanzig Euro",
    ("fr", "received", 1234, "EUR"): "Reçu douze euros trente-quatre",
    ("fr", "received", 1200, "JPY"): "Reçu mille deux cents yens",
    ("fr", "received", 1500, "KWD"): "Reçu un dinar koweïtien cinq cents",
    ("fr", "received", 2100, "INR"): "Reçu vingt et une roupies",
    ("fr", "received", 100_000_000, "EUR"): "Reçu un million d'euros",
    ("fr", "refunded", 8000, "EUR"): "Remboursé quatre-vingts euros",
    ("es", "received", 1234, "EUR"): "Recibido doce euros con treinta y cuatro",
    ("es", "received", 1200, "JPY"): "Recibido mil doscientos yenes",
    ("es", "received", 1500, "KWD"): "Recibido un dinar kuwaití con quinientos",
    ("es", "received", 2100, "EUR"): "Recibido veintiún euros",
    ("es", "received", 2100, "INR"): "Recibido veintiuna rupias",
    ("es", "received", 20000, "GBP"): "Recibido doscientas libras",
    ("es", "received", 2_100_000, "EUR"): "Recibido veintiún mil euros",
    ("es", "received", 100_000_000, "EUR"): "Recibido un millón de euros",
    ("pt", "received", 1234, "EUR"): "Recebido doze euros e trinta e quatro",
    ("pt", "received", 1200, "JPY"): "Recebido mil e duzentos ienes",
    ("pt", "received", 1500, "KWD"): "Recebido um dinar kuwaitiano e quinhentos",
    ("pt", "received", 20200, "GBP"): "Recebido duzentas e duas libras",
    ("pt", "received", 100, "INR"): "Recebido uma rupia",
    ("hi", "received", 1234, "EUR"): "बारह यूरो चौंतीस सेंट प्राप्त हुए",
    ("hi", "received", 1200, "JPY"): "एक हज़ार दो सौ येन प्राप्त हुए",
    ("hi", "received", 1500, "KWD"): "एक कुवैती दीनार पाँच सौ फ़िल्स प्राप्त हुए",
    ("hi", "received", 24000, "INR"): "दो सौ चालीस रुपये प्राप्त हुए",
    ("hi", "received", 100, "INR"): "एक रुपया प्राप्त हुए",
    ("hi", "refunded", 5050, "INR"): "पचास रुपये पचास पैसे वापस किए गए",
    ("hi", "received_late", 24050, "INR"): "दो सौ चालीस रुपये पचास पैसे पहले प्राप्त हुए",
}


@pytest.mark.parametrize(("key", "text"), SAID.items(), ids=[" ".join(map(str, k)) for k in SAID])
def test_each_announcement_says_exactly_this(key: tuple[str, Kind, int, str], text: str) -> None:
    language, kind, amount, currency = key
    said = announcement(kind, amount, currency, language)
    assert said.text == text
    assert said.language == language


def test_every_language_says_every_kind_apart() -> None:
    assert set(LANGUAGES) == {"en", "de", "fr", "es", "pt", "hi"}
    for language in LANGUAGES:
        texts = {announcement(kind, 1234, "EUR", language).text for kind in KINDS}
        assert len(texts) == len(KINDS), language


def test_parts_are_what_is_cached_and_spoken_one_by_one() -> None:
    said = announcement("received", 1234, "EUR", "en")
    assert said.parts == ("Received", "twelve", "euros", "thirty-four")


def test_hindi_numbers_follow_the_indian_grouping() -> None:
    assert hindi_number(0) == "शून्य"
    assert hindi_number(99) == "निन्यानवे"
    assert hindi_number(240) == "दो सौ चालीस"
    assert hindi_number(1_05_000) == "एक लाख पाँच हज़ार"
    assert hindi_number(2_00_00_000) == "दो करोड़"
    assert hindi_number(12_34_56_789) == "बारह करोड़ चौंतीस लाख छप्पन हज़ार सात सौ नवासी"


def test_a_number_standing_alone_is_not_shortened() -> None:
    assert number_words(21, "es") == "veintiuno"
    assert number_words(1, "de") == "eins"
    assert number_words(1, "de", before_noun=True) == "ein"


def test_a_language_it_does_not_speak_or_a_negative_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="no announcements in 'it'"):
        announcement("received", 100, "EUR", "it")
    with pytest.raises(ValueError, match="not negative"):
        announcement("received", -1, "EUR", "en")
