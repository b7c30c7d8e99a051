"""Czech caption grammar.

Czech has no articles and marks gender and case on the adjective endings
instead: nominative "malá červená hvězda", accusative "malou červenou
hvězdu"; masculine inanimate and neuter nouns keep their nominative form in
the accusative. Every colour and size word here is a hard -ý adjective, so
one ending table covers them all.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list, sentence
from ccrk.synth.scene import Description, Obj

CODE = "cs"

#: Position adverbs can open a sentence ("Vlevo je ..."), hence the
#: capitalised pair.
LEFT_RIGHT: tuple[tuple[str, str], ...] = (("vlevo", "vpravo"), ("Vlevo", "Vpravo"))

#: Noun: (nominative, accusative, gender); the masculines are all inanimate.
_NOUN: dict[str, tuple[str, str, str]] = {
    "circle": ("kruh", "kruh", "m"),
    "square": ("čtverec", "čtverec", "m"),
    "triangle": ("trojúhelník", "trojúhelník", "m"),
    "star": ("hvězda", "hvězdu", "f"),
    "cross": ("kříž", "kříž", "m"),
    "heart": ("srdce", "srdce", "n"),
    "diamond": ("kosočtverec", "kosočtverec", "m"),
}
#: Adjective stems without the hard-declension ending.
_SIZE = {"small": "mal", "large": "velk"}
_COLOUR = {
    "red": "červen",
    "green": "zelen",
    "blue": "modr",
    "yellow": "žlut",
    "purple": "fialov",
    "orange": "oranžov",
    "pink": "růžov",
    "brown": "hněd",
}
_ENDING = {
    ("nom", "m"): "ý", ("nom", "f"): "á", ("nom", "n"): "é",
    ("acc", "m"): "ý", ("acc", "f"): "ou", ("acc", "n"): "é",
}
_POSITION = {"left": "vlevo", "right": "vpravo", "top": "nahoře", "bottom": "dole", "center": "uprostřed"}
#: Numeral + noun agreement: 1 takes the singular, 2-4 the nominative plural.
_SHAPES_COUNTED = {1: "jeden tvar", 2: "dva tvary", 3: "tři tvary"}


def _np(o: Obj, case: str) -> str:
    nom, acc, gender = _NOUN[o.shape]
    ending = _ENDING[case, gender]
    stems = [_SIZE[o.size]] if o.size is not None else []
    if o.colour is not None:
        stems.append(_COLOUR[o.colour])
    return " ".join([*(s + ending for s in stems), nom if case == "nom" else acc])


def _located(o: Obj, case: str) -> str:
    return _np(o, case) if o.position is None else f"{_np(o, case)} {_POSITION[o.position]}"


def _join(items: list[str]) -> str:
    return join_list(items, " a ")


def _na_obrazku(desc: Description) -> str:
    # Coordinated subjects take the plural verb.
    verb = "je" if len(desc.objects) == 1 else "jsou"
    return f"na obrázku {verb} " + _join([_located(o, "nom") for o in desc.objects])


def _noun_phrases(desc: Description) -> str:
    return _join([_located(o, "nom") for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    clauses = []
    for i, o in enumerate(desc.objects):
        if o.position is not None:
            clauses.append(f"{_POSITION[o.position]} je {_np(o, 'nom')}")
        else:
            clauses.append(f"na obrázku je {'také ' if i else ''}{_np(o, 'nom')}")
    return _join(clauses)


def _picture_shows(desc: Description) -> str:
    return "obrázek ukazuje " + _join([_located(o, "acc") for o in desc.objects])


def _counted(desc: Description) -> str:
    # The list after the colon is in apposition to the accusative object.
    parts = [_located(o, "acc") for o in desc.objects]
    return f"vidíme {_SHAPES_COUNTED[len(parts)]}: {_join(parts)}"


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _na_obrazku,
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
