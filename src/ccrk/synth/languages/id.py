"""Indonesian caption grammar.

Indonesian modifiers follow the noun ("lingkaran merah besar", "bintang biru
kecil"), nothing inflects, and an indefinite countable object takes the
classifier "sebuah". Locations are prepositional phrases: the fuller "di
sebelah kiri", "di bagian atas" in running prose and the short "di kiri",
"di atas" in the terse noun-phrase caption. "kiri"/"kanan" occur only in
those phrases and never start a sentence, so mirroring swaps one word pair.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, sentence
from ccrk.synth.scene import Description, Obj

CODE = "id"

LEFT_RIGHT: tuple[tuple[str, str], ...] = (("kiri", "kanan"),)

_NOUNS = {
    "circle": "lingkaran",
    "square": "persegi",
    "triangle": "segitiga",
    "star": "bintang",
    "cross": "salib",
    "heart": "hati",
    "diamond": "belah ketupat",
}
_COLOURS = {
    "red": "merah",
    "green": "hijau",
    "blue": "biru",
    "yellow": "kuning",
    "purple": "ungu",
    "orange": "oranye",
    "pink": "merah muda",
    "brown": "cokelat",
}
_SIZES = {"small": "kecil", "large": "besar"}
_POSITION_LONG = {
    "left": "di sebelah kiri",
    "right": "di sebelah kanan",
    "top": "di bagian atas",
    "bottom": "di bagian bawah",
    "center": "di tengah",
}
_POSITION_SHORT = {
    "left": "di kiri",
    "right": "di kanan",
    "top": "di atas",
    "bottom": "di bawah",
    "center": "di tengah",
}


def _np(o: Obj) -> str:
    """Noun, colour, size: head first, then modifiers."""
    words = [_NOUNS[o.shape]]
    if o.colour is not None:
        words.append(_COLOURS[o.colour])
    if o.size is not None:
        words.append(_SIZES[o.size])
    return " ".join(words)


def _located(o: Obj, positions: dict[str, str], classifier: bool) -> str:
    phrase = f"sebuah {_np(o)}" if classifier else _np(o)
    return phrase if o.position is None else f"{phrase} {positions[o.position]}"


def _join(items: list[str]) -> str:
    """"A dan B", "A, B, dan C" (the serial comma of standard written Indonesian)."""
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} dan {items[1]}"
    return ", ".join(items[:-1]) + ", dan " + items[-1]


def _unlocated(o: Obj, i: int) -> str:
    # An object without a location is introduced existentially; "juga"
    # ("also") once something has already been mentioned.
    return f"ada juga sebuah {_np(o)}" if i else f"ada sebuah {_np(o)}"


def _existential(desc: Description) -> str:
    return "ada " + _join([_located(o, _POSITION_LONG, True) for o in desc.objects])


def _noun_phrases(desc: Description) -> str:
    return _join([_located(o, _POSITION_SHORT, False) for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    clauses = [
        f"{_POSITION_LONG[o.position]} ada sebuah {_np(o)}" if o.position is not None else _unlocated(o, i)
        for i, o in enumerate(desc.objects)
    ]
    return _join(clauses)


def _picture_shows(desc: Description) -> str:
    return "gambar ini menunjukkan " + _join([_located(o, _POSITION_LONG, True) for o in desc.objects])


def _predicative(desc: Description) -> str:
    clauses = [
        f"{_np(o)} berada {_POSITION_LONG[o.position]}" if o.position is not None else _unlocated(o, i)
        for i, o in enumerate(desc.objects)
    ]
    return _join(clauses)


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _existential,
    _noun_phrases,
    _position_fronted,
    _picture_shows,
    _predicative,
)
N_TEMPLATES = len(_TEMPLATES)


def describe(desc: Description, template: int) -> str:
    """Caption ``desc`` with paraphrase pattern ``template`` (0 .. N_TEMPLATES-1)."""
    check_template(CODE, template, N_TEMPLATES)
    return sentence(_TEMPLATES[template](desc))
