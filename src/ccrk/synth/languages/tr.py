"""Turkish caption grammar.

Turkish is verb-final and suffixing, so the grammar builds words rather than
picking them: the locative "-DA" harmonises and devoices after a voiceless
consonant (sol-da, üst-te, alt-ta, orta-da), the accusative "-(y)I" takes
four-way harmony with a buffer "y" after vowels (daire-yi, üçgen-i,
yıldız-ı), and the clitic "de/da" ("also") takes two-way harmony. The
indefinite "bir" sits between the adjectives and the noun ("büyük kırmızı
bir daire"), the usual written order.

Left and right only appear as "solda"/"sağda" and the relative forms
"soldaki"/"sağdaki"; both stems take the same back-vowel suffixes, so a
caption mirrors by a whole-word swap.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list
from ccrk.synth.scene import Description, Obj

CODE = "tr"

_NOUNS = {
    "circle": "daire",
    "square": "kare",
    "triangle": "üçgen",
    "star": "yıldız",
    "cross": "haç",
    "heart": "kalp",
    "diamond": "eşkenar dörtgen",
}
_COLOURS = {
    "red": "kırmızı",
    "green": "yeşil",
    "blue": "mavi",
    "yellow": "sarı",
    "purple": "mor",
    "orange": "turuncu",
    "pink": "pembe",
    "brown": "kahverengi",
}
_SIZES = {"small": "küçük", "large": "büyük"}
#: Locative stems: "sol" left, "sağ" right, "üst" top, "alt" bottom, "orta" middle.
_POSITION_STEMS = {"left": "sol", "right": "sağ", "top": "üst", "bottom": "alt", "center": "orta"}

_BACK = set("aıou")
_FRONT = set("eiöü")
_ROUNDED = set("ouöü")
_VOICELESS = set("fstkçşhp")
#: "kalp" (an Arabic loan) takes front suffixes despite its back vowel and
#: voices its final consonant before a vowel: kalbi, kalpte, kalp de.
_FRONT_EXCEPTIONS = {"kalp"}
_VOICED_STEMS = {"kalp": "kalb"}


def _last_vowel(word: str) -> str:
    for ch in reversed(word):
        if ch in _BACK or ch in _FRONT:
            return ch
    raise ValueError(f"Turkish word {word!r} has no vowel")


def _is_front(word: str) -> bool:
    return word in _FRONT_EXCEPTIONS or _last_vowel(word) in _FRONT


def _locative(stem: str) -> str:
    """-DA: d/t by the stem's last sound, a/e by its last vowel."""
    d = "t" if stem[-1] in _VOICELESS else "d"
    return stem + d + ("e" if _is_front(stem) else "a")


def _accusative(phrase: str) -> str:
    """-(y)I on the last word of ``phrase``: ı/i/u/ü by frontness and rounding."""
    *head, word = phrase.split(" ")
    front = _is_front(word)
    rounded = word not in _FRONT_EXCEPTIONS and _last_vowel(word) in _ROUNDED
    vowel = {(False, False): "ı", (True, False): "i", (False, True): "u", (True, True): "ü"}[(front, rounded)]
    stem = _VOICED_STEMS.get(word, word)
    buffer = "y" if stem[-1] in _BACK or stem[-1] in _FRONT else ""
    return " ".join([*head, stem + buffer + vowel])


def _also(phrase: str) -> str:
    """The clitic "de/da" (written apart, never devoiced) after ``phrase``."""
    return "de" if _is_front(phrase.split(" ")[-1]) else "da"


def _adjectives(o: Obj) -> list[str]:
    """Size before colour, the unmarked Turkish order."""
    words = []
    if o.size is not None:
        words.append(_SIZES[o.size])
    if o.colour is not None:
        words.append(_COLOURS[o.colour])
    return words


def _indefinite(o: Obj) -> str:
    return " ".join([*_adjectives(o), "bir", _NOUNS[o.shape]])


def _definite(o: Obj) -> str:
    return " ".join([*_adjectives(o), _NOUNS[o.shape]])


def _loc(o: Obj) -> str:
    assert o.position is not None
    return _locative(_POSITION_STEMS[o.position])


def _join(items: list[str]) -> str:
    return join_list(items, " ve ")


def _capitalise(text: str) -> str:
    # Turkish dotted/dotless i: "i" capitalises to "İ", "ı" to "I".
    first = {"i": "İ", "ı": "I"}.get(text[0], text[0].upper())
    return first + text[1:]


def _located(o: Obj) -> str:
    return _indefinite(o) if o.position is None else f"{_loc(o)} {_indefinite(o)}"


def _relative(o: Obj, noun_phrase: str) -> str:
    # "-ki" turns the locative into an adjective: "soldaki daire".
    return noun_phrase if o.position is None else f"{_loc(o)}ki {noun_phrase}"


def _existential(desc: Description) -> str:
    return "Resimde " + _join([_located(o) for o in desc.objects]) + " var"


def _noun_phrases(desc: Description) -> str:
    return _capitalise(_join([_relative(o, _indefinite(o)) for o in desc.objects]))


def _sentences(desc: Description) -> str:
    # One short existential sentence an object, the location first.
    return ". ".join(_capitalise(_located(o) + " var") for o in desc.objects)


def _picture_shows(desc: Description) -> str:
    objects = [_relative(o, _accusative(_definite(o))) for o in desc.objects]
    return "Bu resim " + _join(objects) + " gösteriyor"


def _predicative(desc: Description) -> str:
    # "Büyük kırmızı daire solda": the location is the predicate. An object
    # without one is asserted to exist, with "de/da" after the first clause.
    clauses = []
    for i, o in enumerate(desc.objects):
        if o.position is not None:
            clauses.append(f"{_definite(o)} {_loc(o)}")
        elif i == 0:
            clauses.append(f"{_indefinite(o)} var")
        else:
            clauses.append(f"{_indefinite(o)} {_also(_NOUNS[o.shape])} var")
    return _capitalise(_join(clauses))


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _existential,
    _noun_phrases,
    _sentences,
    _picture_shows,
    _predicative,
)
N_TEMPLATES = len(_TEMPLATES)

LEFT_RIGHT: tuple[tuple[str, str], ...] = (
    ("solda", "sağda"),
    ("Solda", "Sağda"),
    ("soldaki", "sağdaki"),
    ("Soldaki", "Sağdaki"),
)


def describe(desc: Description, template: int) -> str:
    """Caption ``desc`` with paraphrase pattern ``template`` (0 .. N_TEMPLATES-1)."""
    check_template(CODE, template, N_TEMPLATES)
    return _TEMPLATES[template](desc) + "."
