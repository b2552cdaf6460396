"""Tell a legacy single-byte encoding from the text it decodes to.

charset-normalizer guesses cp1250 for many cp1252 files (``Fläche_m²`` becomes ``Fläche_m˛``):
on a short sample both decode without chaos and it takes the first. Western files are the
common case, so cp1252 wins unless the text it gives is odd where cp1250's is not; a file in
another script is left to charset-normalizer when its guess is clearly coherent, or when
neither Windows code page gives plausible text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

WESTERN, CENTRAL = "cp1252", "cp1250"
CENTRAL_PAGES = (CENTRAL, "iso8859_2")  # Windows' and ISO's Central European code pages

# The non-ASCII lowercase letters of each language's alphabet. A word whose accented letters
# fit no one alphabet of the family ("Jiøí", "cz³owiek") is read in the wrong code page.
_WESTERN_ALPHABETS = [set(a) for a in (
    "äöüß", "àâæçéèêëîïôœùûüÿ", "áéíñóúü", "áâãàçéêíóôõúü", "àèéìíîòóùú", "àèéíïòóúüç",
    "éèëïöüáóúíàâêîôû", "æøåéèóô", "åäöéü", "åäöšž", "äöõüšž", "áéíóúýþæöð", "çë",
)]
_CENTRAL_ALPHABETS = [set(a) for a in (
    "ąćęłńóśźż", "áčďéěíňóřšťúůýž", "áäčďéíĺľňóôŕšťúýž", "áéíóöőúüű", "čćđšž", "ăâîşţșț",
    "äöüß", "çë",
)]
_ANY_FAMILY = set("µªº")  # letters used as symbols (micro, ordinals) in every language
_IN_WORDS = set("’‘´–—·")  # apostrophes, dashes, the Catalan middle dot: at home in words
# words are letters, digits and anything non-ASCII, between ASCII spaces and punctuation
_BETWEEN_WORDS = re.compile(r"[\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+")
CLEAR_COHERENCE = 0.2  # charset-normalizer's language coherence that decides by itself
# Latin-script code pages outside Western/Central Europe, trusted when their language is seen
_TURKISH, _BALTIC = frozenset({"Turkish"}), frozenset({"Lithuanian", "Latvian", "Estonian"})
_OTHER_LATIN = {
    **dict.fromkeys(("cp1254", "iso8859_9", "cp857", "mac_turkish"), _TURKISH),
    **dict.fromkeys(("cp1257", "iso8859_13", "iso8859_4", "cp775"), _BALTIC),
}


def legacy_encoding(raw: bytes) -> str | None:
    """The encoding of text that is not UTF-8; None when nothing reads it."""
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    legacy = western_or_central(raw)
    if best is None:
        return legacy.encoding if legacy is not None and legacy.plausible else None
    clear = best.coherence >= CLEAR_COHERENCE and best.language != "Unknown"
    if clear and best.language in _OTHER_LATIN.get(best.encoding, ()):
        return best.encoding  # Turkish, Baltic: their letters read as Icelandic in cp1252
    if clear and non_latin_text(str(best)) and (legacy is None or legacy.odd > 0):
        return best.encoding  # Cyrillic, Greek, Japanese… in a language it recognises
    if legacy is not None and (legacy.plausible or best.encoding in (WESTERN, *CENTRAL_PAGES)):
        return legacy.encoding
    return best.encoding


@dataclass(frozen=True)
class Reading:
    """A code page's text, and how many of its words with non-ASCII letters look wrong."""

    encoding: str
    words: int
    odd: int

    @property
    def plausible(self) -> bool:
        return self.odd <= max(1, self.words // 5)


def read_as(raw: bytes, encoding: str) -> Reading | None:
    """The sample read in ``encoding``; None when it has bytes the code page leaves undefined."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    if encoding == "iso8859_2" and re.search("[\x80-\x9f]", text):
        return None  # C1 control characters: what ISO-8859-2 makes of any other code page
    alphabets = _CENTRAL_ALPHABETS if encoding in CENTRAL_PAGES else _WESTERN_ALPHABETS
    words = odd = 0
    for word in _BETWEEN_WORDS.split(text):
        if not word.isascii():
            words += 1
            odd += _odd_word(word, alphabets)
    return Reading(encoding, words, odd)


def _odd_word(word: str, alphabets: list[set[str]]) -> bool:
    letters: set[str] = set()
    for i, c in enumerate(word):
        if ord(c) < 128:
            continue
        category = unicodedata.category(c)
        if category.startswith("Z") or c in _IN_WORDS:
            continue  # a no-break space, "don’t": the same in both code pages
        if category == "Sk" or category.startswith("C"):
            return True  # a spacing accent (˛ ˇ ¯) or a control character is never data
        before = word[i - 1] if i else ""
        after = word[i + 1] if i + 1 < len(word) else ""
        if not category.startswith("L"):
            if before.isalpha() and after.isalpha():
                return True  # a symbol inside a word: "cz³owiek", "mo¿e"
            continue
        if c.isupper() and before.islower():
            return True  # "£ódŸ": capitals inside words are ASCII names at most
        if c not in _ANY_FAMILY:
            letters.add(c.lower())
    return bool(letters) and not any(letters <= a for a in alphabets)


def western_or_central(raw: bytes) -> Reading | None:
    """cp1252, unless a Central European page (cp1250, else ISO-8859-2) reads clearly better
    or cp1252 cannot read the bytes; None when none reads them."""
    west = read_as(raw, WESTERN)
    readings = [r for r in (read_as(raw, page) for page in CENTRAL_PAGES) if r is not None]
    central = min(readings, key=lambda r: r.odd) if readings else None  # a tie: cp1250
    if west is None or central is None:
        return west or central
    # "Clearly": several odd words in cp1252 and few in cp1250; a tie is cp1252's.
    if west.odd >= 2 and central.odd * 3 <= west.odd:
        return central
    return west


def non_latin_text(text: str) -> bool:
    """Most of the non-ASCII letters are of another script than Latin (Cyrillic, Greek, CJK)."""
    letters = [c for c in text if ord(c) > 127 and c.isalpha()]
    other = sum(not unicodedata.name(c, "LATIN").startswith("LATIN") for c in letters)
    return bool(letters) and other * 2 > len(letters)
