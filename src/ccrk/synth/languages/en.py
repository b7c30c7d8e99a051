"""English caption grammar.

English is the pivot language (gold captions, never noised), so its
templates set the semantic bar the other grammars match: every attribute the
description holds is stated, every omitted one is simply absent, and objects
appear in description order so a caption can be mirrored by swapping words.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list, sentence
from ccrk.synth.scene import Description, Obj

CODE = "en"

#: "left"/"right" only ever occur inside "on the left"/"on the right", so a
#: bare word swap mirrors a caption.
LEFT_RIGHT: tuple[tuple[str, str], ...] = (("left", "right"),)

_POSITION = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the middle",
}
_NUMBER = {1: "one", 2: "two", 3: "three"}


def _np(o: Obj) -> str:
    """Indefinite noun phrase; "an" only before a vowel sound ("an orange star")."""
    words = [w for w in (o.size, o.colour, o.shape) if w is not None]
    article = "an" if words[0][0] in "aeio" else "a"
    return " ".join([article, *words])


def _located(o: Obj) -> str:
    return _np(o) if o.position is None else f"{_np(o)} {_POSITION[o.position]}"


def _join(items: list[str]) -> str:
    return join_list(items, " and ")


def _there_is(desc: Description) -> str:
    # A lone object reads best without a count; several are announced by
    # number so the verb agrees ("There are two shapes: ...").
    parts = [_located(o) for o in desc.objects]
    if len(parts) == 1:
        return f"there is {parts[0]}"
    return f"there are {_NUMBER[len(parts)]} shapes: {_join(parts)}"


def _noun_phrases(desc: Description) -> str:
    return _join([_located(o) for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    # Locative inversion ("on the left is a ..."); an object without a
    # position gets an existential clause instead, "also" after the first.
    clauses = []
    for i, o in enumerate(desc.objects):
        if o.position is not None:
            clauses.append(f"{_POSITION[o.position]} is {_np(o)}")
        else:
            clauses.append(f"there is {'also ' if i else ''}{_np(o)}")
    return _join(clauses)


def _picture_shows(desc: Description) -> str:
    return f"the picture shows {_noun_phrases(desc)}"


def _predicative(desc: Description) -> str:
    clauses = []
    for o in desc.objects:
        where = "in the picture" if o.position is None else _POSITION[o.position]
        clauses.append(f"{_np(o)} is {where}")
    return _join(clauses)


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _there_is,
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
