"""German caption grammar.

German marks gender and case on the article and (mixed declension after
"ein") on every attributive adjective, so the same object reads "ein großer
roter Kreis" as a subject and "einen großen roten Kreis" after "es gibt" or
"zeigt". A model that only learned English word identities would not see
these forms; that is the point of rendering real grammar.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list, sentence
from ccrk.synth.scene import Description, Obj

CODE = "de"

#: Position adverbs can open a sentence ("Links befindet sich ..."), hence the
#: capitalised pair.
LEFT_RIGHT: tuple[tuple[str, str], ...] = (("links", "rechts"), ("Links", "Rechts"))

_NOUN: dict[str, tuple[str, str]] = {
    "circle": ("Kreis", "m"),
    "square": ("Quadrat", "n"),
    "triangle": ("Dreieck", "n"),
    "star": ("Stern", "m"),
    "cross": ("Kreuz", "n"),
    "heart": ("Herz", "n"),
    "diamond": ("Raute", "f"),
}
_SIZE = {"small": "klein", "large": "groß"}
#: "lila" and "rosa" stay uninflected in the standard language; "orange" is
#: rendered as the inflectable "orangefarben" rather than colloquial "oranger".
_COLOUR = {
    "red": "rot",
    "green": "grün",
    "blue": "blau",
    "yellow": "gelb",
    "purple": "lila",
    "orange": "orangefarben",
    "pink": "rosa",
    "brown": "braun",
}
_INVARIABLE = frozenset({"lila", "rosa"})
_ARTICLE = {
    ("nom", "m"): "ein", ("nom", "n"): "ein", ("nom", "f"): "eine",
    ("acc", "m"): "einen", ("acc", "n"): "ein", ("acc", "f"): "eine",
}
#: Mixed-declension endings (adjective after the indefinite article).
_ENDING = {
    ("nom", "m"): "er", ("nom", "n"): "es", ("nom", "f"): "e",
    ("acc", "m"): "en", ("acc", "n"): "es", ("acc", "f"): "e",
}
_POSITION = {"left": "links", "right": "rechts", "top": "oben", "bottom": "unten", "center": "in der Mitte"}
_SHAPES_COUNTED = {1: "ist eine Form", 2: "sind zwei Formen", 3: "sind drei Formen"}


def _np(o: Obj, case: str) -> str:
    noun, gender = _NOUN[o.shape]
    ending = _ENDING[case, gender]
    adjectives = [_SIZE[o.size]] if o.size is not None else []
    if o.colour is not None:
        adjectives.append(_COLOUR[o.colour])
    inflected = [a if a in _INVARIABLE else a + ending for a in adjectives]
    return " ".join([_ARTICLE[case, gender], *inflected, noun])


def _np_then_position(o: Obj, case: str) -> str:
    return _np(o, case) if o.position is None else f"{_np(o, case)} {_POSITION[o.position]}"


def _position_then_np(o: Obj, case: str) -> str:
    return _np(o, case) if o.position is None else f"{_POSITION[o.position]} {_np(o, case)}"


def _join(items: list[str]) -> str:
    return join_list(items, " und ")


def _es_gibt(desc: Description) -> str:
    # "es gibt" governs the accusative and is number-invariant.
    return "im Bild gibt es " + _join([_position_then_np(o, "acc") for o in desc.objects])


def _noun_phrases(desc: Description) -> str:
    return _join([_np_then_position(o, "nom") for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    clauses = []
    for i, o in enumerate(desc.objects):
        if o.position is not None:
            clauses.append(f"{_POSITION[o.position]} befindet sich {_np(o, 'nom')}")
        else:
            # Verb-second: "es gibt ...", but "außerdem gibt es ..." once fronted.
            clauses.append(f"außerdem gibt es {_np(o, 'acc')}" if i else f"es gibt {_np(o, 'acc')}")
    return _join(clauses)


def _picture_shows(desc: Description) -> str:
    return "das Bild zeigt " + _join([_np_then_position(o, "acc") for o in desc.objects])


def _counted(desc: Description) -> str:
    parts = [_np_then_position(o, "nom") for o in desc.objects]
    return f"zu sehen {_SHAPES_COUNTED[len(parts)]}: {_join(parts)}"


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _es_gibt,
    _noun_phrases,
    _position_fronted,
    _picture_shows,
    _counted,
)
N_TEMPLATES = len(_TEMPLATES)


def describe(desc: Description, template: int) -> str:
    """Caption ``desc`` with paraphrase pattern ``template`` (0 .. N_TEMPLATES-1)."""
    check_template(CODE, template, N_TEMPLATES)
    return sentence(_TEMPLATES[template](desc))
