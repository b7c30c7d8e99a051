"""Russian caption grammar.

Russian is the language of the set where a caption that merely translates
English words would be visibly wrong: adjectives agree with the noun in
gender and case ("большая красная звезда", "маленькое синее сердце",
accusative "большую красную звезду" after a verb), and the passive
participle agrees too ("изображена звезда", "изображены" for several).
Positions are adverbs ("слева", "вверху", "в центре") that do not inflect,
so mirroring a caption is a plain word swap.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list, sentence
from ccrk.synth.scene import Description, Obj

CODE = "ru"

#: The only left/right forms emitted are the adverbs; they start a sentence
#: in the position-fronted template, hence the capitalised pair.
LEFT_RIGHT: tuple[tuple[str, str], ...] = (("слева", "справа"), ("Слева", "Справа"))

#: shape -> (gender, nominative, accusative); the nouns are inanimate, so the
#: masculine and neuter accusatives equal the nominative.
_NOUNS: dict[str, tuple[str, str, str]] = {
    "circle": ("m", "круг", "круг"),
    "square": ("m", "квадрат", "квадрат"),
    "triangle": ("m", "треугольник", "треугольник"),
    "star": ("f", "звезда", "звезду"),
    "cross": ("m", "крест", "крест"),
    "heart": ("n", "сердце", "сердце"),
    "diamond": ("m", "ромб", "ромб"),
}

#: adjective -> forms keyed by (gender, case). Spelled out rather than built
#: from stems because the classes differ (hard "красный", soft "синий",
#: velar "маленький", stressed "большой").
_ADJ_FORMS: dict[str, tuple[str, str, str, str]] = {
    # masculine, feminine, neuter (nominative), feminine accusative
    "red": ("красный", "красная", "красное", "красную"),
    "green": ("зелёный", "зелёная", "зелёное", "зелёную"),
    "blue": ("синий", "синяя", "синее", "синюю"),
    "yellow": ("жёлтый", "жёлтая", "жёлтое", "жёлтую"),
    "purple": ("фиолетовый", "фиолетовая", "фиолетовое", "фиолетовую"),
    "orange": ("оранжевый", "оранжевая", "оранжевое", "оранжевую"),
    "pink": ("розовый", "розовая", "розовое", "розовую"),
    "brown": ("коричневый", "коричневая", "коричневое", "коричневую"),
    "small": ("маленький", "маленькая", "маленькое", "маленькую"),
    "large": ("большой", "большая", "большое", "большую"),
}
_SLOT = {("m", "nom"): 0, ("f", "nom"): 1, ("n", "nom"): 2, ("m", "acc"): 0, ("f", "acc"): 3, ("n", "acc"): 2}

_POSITION = {"left": "слева", "right": "справа", "top": "вверху", "bottom": "внизу", "center": "в центре"}

#: "изображён" agrees with a single subject; coordinated subjects take the plural.
_DEPICTED = {"m": "изображён", "f": "изображена", "n": "изображено"}


def _np(o: Obj, case: str) -> str:
    """Size, colour, noun: the neutral Russian order, all agreeing with the noun."""
    gender, nom, acc = _NOUNS[o.shape]
    slot = _SLOT[(gender, case)]
    adjectives = [_ADJ_FORMS[a][slot] for a in (o.size, o.colour) if a is not None]
    return " ".join([*adjectives, nom if case == "nom" else acc])


def _located(o: Obj, case: str) -> str:
    # The adverb follows the noun inside a list ("круг слева"), so it never
    # interrupts the agreement chain.
    return _np(o, case) if o.position is None else f"{_np(o, case)} {_POSITION[o.position]}"


def _join(items: list[str]) -> str:
    return join_list(items, " и ")


def _on_picture(desc: Description) -> str:
    return "На картинке " + _join([_located(o, "nom") for o in desc.objects])


def _noun_phrases(desc: Description) -> str:
    return _join([_located(o, "nom") for o in desc.objects])


def _position_fronted(desc: Description) -> str:
    # Verbless locative clauses take a dash ("Слева — круг"); a contrasting
    # last location is introduced by "а", an unlocated object by "а также".
    clauses: list[str] = []
    n = len(desc.objects)
    for i, o in enumerate(desc.objects):
        located = o.position is not None
        clause = f"{_POSITION[o.position]} — {_np(o, 'nom')}" if located else _np(o, "nom")
        if i == 0:
            clauses.append(clause)
        elif i == n - 1:
            clauses.append((", а " if located else ", а также ") + clause)
        else:
            clauses.append(", " + clause)
    return "".join(clauses)


def _depicted(desc: Description) -> str:
    objs = desc.objects
    verb = _DEPICTED[_NOUNS[objs[0].shape][0]] if len(objs) == 1 else "изображены"
    return f"На рисунке {verb} " + _join([_located(o, "nom") for o in objs])


def _we_see(desc: Description) -> str:
    return "Мы видим " + _join([_located(o, "acc") for o in desc.objects])


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _on_picture,
    _noun_phrases,
    _position_fronted,
    _depicted,
    _we_see,
)
N_TEMPLATES = len(_TEMPLATES)


def describe(desc: Description, template: int) -> str:
    """Caption ``desc`` with paraphrase pattern ``template`` (0 .. N_TEMPLATES-1)."""
    check_template(CODE, template, N_TEMPLATES)
    return sentence(_TEMPLATES[template](desc))
