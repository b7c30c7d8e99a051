"""French caption grammar.

French splits the adjectives around the noun (size before, colour after:
"une petite étoile bleue") and agrees both in gender, except the colours that
come from nouns ("orange", "marron") and those already ending in -e. The
count template also agrees the verb and predicate in number.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list, sentence
from ccrk.synth.scene import Description, Obj

CODE = "fr"

#: Always preceded by "à", so the capitalised sentence-initial form is "À"
#: and the swapped words themselves stay lower case.
LEFT_RIGHT: tuple[tuple[str, str], ...] = (("gauche", "droite"),)

_NOUN: dict[str, tuple[str, str]] = {
    "circle": ("cercle", "m"),
    "square": ("carré", "m"),
    "triangle": ("triangle", "m"),
    "star": ("étoile", "f"),
    "cross": ("croix", "f"),
    "heart": ("cœur", "m"),
    "diamond": ("losange", "m"),
}
_SIZE = {"small": {"m": "petit", "f": "petite"}, "large": {"m": "grand", "f": "grande"}}
_COLOUR = {
    "red": {"m": "rouge", "f": "rouge"},
    "green": {"m": "vert", "f": "verte"},
    "blue": {"m": "bleu", "f": "bleue"},
    "yellow": {"m": "jaune", "f": "jaune"},
    "purple": {"m": "violet", "f": "violette"},
    "orange": {"m": "orange", "f": "orange"},
    "pink": {"m": "rose", "f": "rose"},
    "brown": {"m": "marron", "f": "marron"},
}
_ARTICLE = {"m": "un", "f": "une"}
_POSITION = {"left": "à gauche", "right": "à droite", "top": "en haut", "bottom": "en bas", "center": "au centre"}
_SHAPES_COUNTED = {1: "une forme est visible", 2: "deux formes sont visibles", 3: "trois formes sont visibles"}


def _np(o: Obj) -> str:
    noun, gender = _NOUN[o.shape]
    words = [_ARTICLE[gender]]
    if o.size is not None:
        words.append(_SIZE[o.size][gender])
    words.append(noun)
    if o.colour is not None:
        words.append(_COLOUR[o.colour][gender])
    return " ".join(words)


def _located(o: Obj) -> str:
    return _np(o) if o.position is None else f"{_np(o)} {_POSITION[o.position]}"


def _join(items: list[str]) -> str:
    return join_list(items, " et ")


def _il_y_a(desc: Description) -> str:
    return "il y a " + _join([_located(o) for o in desc.objects])


def _noun_phrases(desc: Description) -> str:
    return _join([_located(o) for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    clauses = []
    for i, o in enumerate(desc.objects):
        if o.position is not None:
            clauses.append(f"{_POSITION[o.position]} se trouve {_np(o)}")
        else:
            clauses.append(f"il y a {'aussi ' if i else ''}{_np(o)}")
    return _join(clauses)


def _picture_shows(desc: Description) -> str:
    return "l'image montre " + _join([_located(o) for o in desc.objects])


def _counted(desc: Description) -> str:
    # French typography puts a space before the colon.
    parts = [_located(o) for o in desc.objects]
    return f"{_SHAPES_COUNTED[len(parts)]} : {_join(parts)}"


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _il_y_a,
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
