"""Spanish caption grammar.

Spanish puts both adjectives after the noun, colour first ("una estrella roja
grande"), agrees -o/-a adjectives in gender and leaves "verde", "azul",
"grande", "naranja", "rosa", "marrón" unchanged. Word order differs from
English and French in the noun phrase itself, which is what the benchmark
wants a multilingual encoder to cope with.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list, sentence
from ccrk.synth.scene import Description, Obj

CODE = "es"

#: Always inside "a la izquierda"/"a la derecha", never sentence-initial.
LEFT_RIGHT: tuple[tuple[str, str], ...] = (("izquierda", "derecha"),)

_NOUN: dict[str, tuple[str, str]] = {
    "circle": ("círculo", "m"),
    "square": ("cuadrado", "m"),
    "triangle": ("triángulo", "m"),
    "star": ("estrella", "f"),
    "cross": ("cruz", "f"),
    "heart": ("corazón", "m"),
    "diamond": ("rombo", "m"),
}
_SIZE = {"small": {"m": "pequeño", "f": "pequeña"}, "large": {"m": "grande", "f": "grande"}}
_COLOUR = {
    "red": {"m": "rojo", "f": "roja"},
    "green": {"m": "verde", "f": "verde"},
    "blue": {"m": "azul", "f": "azul"},
    "yellow": {"m": "amarillo", "f": "amarilla"},
    "purple": {"m": "morado", "f": "morada"},
    "orange": {"m": "naranja", "f": "naranja"},
    "pink": {"m": "rosa", "f": "rosa"},
    "brown": {"m": "marrón", "f": "marrón"},
}
_ARTICLE = {"m": "un", "f": "una"}
#: No position phrase begins with an i-sound, so "y" never has to become "e".
_POSITION = {
    "left": "a la izquierda",
    "right": "a la derecha",
    "top": "arriba",
    "bottom": "abajo",
    "center": "en el centro",
}
_SHAPES_COUNTED = {1: "se ve una forma", 2: "se ven dos formas", 3: "se ven tres formas"}


def _np(o: Obj) -> str:
    noun, gender = _NOUN[o.shape]
    words = [_ARTICLE[gender], noun]
    if o.colour is not None:
        words.append(_COLOUR[o.colour][gender])
    if o.size is not None:
        words.append(_SIZE[o.size][gender])
    return " ".join(words)


def _located(o: Obj) -> str:
    return _np(o) if o.position is None else f"{_np(o)} {_POSITION[o.position]}"


def _join(items: list[str]) -> str:
    return join_list(items, " y ")


def _hay(desc: Description) -> str:
    return "hay " + _join([_located(o) for o in desc.objects])


def _noun_phrases(desc: Description) -> str:
    return _join([_located(o) for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    clauses = []
    for i, o in enumerate(desc.objects):
        if o.position is not None:
            clauses.append(f"{_POSITION[o.position]} hay {_np(o)}")
        else:
            clauses.append(f"{'también ' if i else ''}hay {_np(o)}")
    return _join(clauses)


def _picture_shows(desc: Description) -> str:
    return "la imagen muestra " + _join([_located(o) for o in desc.objects])


def _counted(desc: Description) -> str:
    parts = [_located(o) for o in desc.objects]
    return f"{_SHAPES_COUNTED[len(parts)]}: {_join(parts)}"


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _hay,
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
