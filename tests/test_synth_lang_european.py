"""Caption grammars for en, de, fr, es, cs.

The hand-written sentences were checked as a native reader would write them;
the property tests cover every attribute combination, injectivity per
template (the benchmark's captions must keep descriptions apart), mirroring
by word swap (used when images are flipped), and that non-English captions
are not English words with a language tag.
"""
from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace

import pytest

from ccrk.synth.languages import get_language
from ccrk.synth.scene import COLOURS, POSITIONS, SHAPES, SIZES, Description, Obj

CODES = ("en", "de", "fr", "es", "cs")

# --------------------------------------------------------------------------- data


def _single_objects() -> list[Description]:
    """Every single-object description, omitted attributes included."""
    return [
        Description((Obj(shape, colour, size, position),))
        for shape, colour, size, position in itertools.product(
            SHAPES, (None, *COLOURS), (None, *SIZES), (None, *POSITIONS)
        )
    ]


def _random_obj(rng: random.Random) -> Obj:
    def maybe(values: tuple[str, ...]) -> str | None:
        return None if rng.random() < 0.25 else rng.choice(values)

    return Obj(rng.choice(SHAPES), maybe(COLOURS), maybe(SIZES), maybe(POSITIONS))


def _random_descriptions(n: int, seed: int = 0) -> list[Description]:
    """Distinct 2-3 object descriptions; repeats of shape, colour and position happen."""
    rng = random.Random(seed)
    seen: dict[Description, None] = {}
    while len(seen) < n:
        d = Description(tuple(_random_obj(rng) for _ in range(rng.choice((2, 3)))))
        seen[d] = None
    return list(seen)


SINGLES = _single_objects()
SAMPLE = _random_descriptions(3000)
# Descriptions where two objects coincide in everything but order-relevant detail.
TWINS = [
    Description((Obj("circle"), Obj("circle"))),
    Description((Obj("circle", "red", "large", "left"), Obj("circle", "red", "large", "left"))),
    Description((Obj("star", position="top"), Obj("heart", position="top"), Obj("star", position="top"))),
]
ALL = SINGLES + SAMPLE + TWINS

TWO = Description((Obj("circle", "red", "large", "left"), Obj("star", "blue", "small", "top")))
THREE_MIXED = Description(
    (Obj("heart", "pink", "small", "center"), Obj("star", None, "large", None), Obj("cross", "purple", None, "right"))
)


def _one(shape: str, colour: str | None = None, size: str | None = None, position: str | None = None) -> Description:
    return Description((Obj(shape, colour, size, position),))


# --------------------------------------------------------------------------- hand-checked sentences

EXPECTED: list[tuple[str, Description, int, str]] = [
    # English
    ("en", TWO, 0, "There are two shapes: a large red circle on the left and a small blue star at the top."),
    ("en", _one("diamond", "green", "small", "bottom"), 0, "There is a small green diamond at the bottom."),
    ("en", _one("star", "orange", None, "center"), 1, "An orange star in the middle."),
    ("en", THREE_MIXED, 2,
     "In the middle is a small pink heart, there is also a large star and on the right is a purple cross."),
    ("en", TWO, 3, "The picture shows a large red circle on the left and a small blue star at the top."),
    ("en", _one("square"), 4, "A square is in the picture."),
    # German: gender x case on article and adjectives, invariable lila/rosa
    ("de", TWO, 0, "Im Bild gibt es links einen großen roten Kreis und oben einen kleinen blauen Stern."),
    ("de", _one("circle", "brown", "small", "right"), 1, "Ein kleiner brauner Kreis rechts."),
    ("de", THREE_MIXED, 2,
     "In der Mitte befindet sich ein kleines rosa Herz, außerdem gibt es einen großen Stern "
     "und rechts befindet sich ein lila Kreuz."),
    ("de", Description((Obj("star"), Obj("heart", "green", None, "left"))), 2,
     "Es gibt einen Stern und links befindet sich ein grünes Herz."),
    ("de", TWO, 3, "Das Bild zeigt einen großen roten Kreis links und einen kleinen blauen Stern oben."),
    ("de", _one("triangle", "orange", "large"), 3, "Das Bild zeigt ein großes orangefarbenes Dreieck."),
    ("de", _one("diamond", "yellow", "small", "bottom"), 4, "Zu sehen ist eine Form: eine kleine gelbe Raute unten."),
    # French: size before, colour after the noun; marron/orange/rose invariable
    ("fr", _one("heart", "brown", "large"), 0, "Il y a un grand cœur marron."),
    ("fr", TWO, 1, "Un grand cercle rouge à gauche et une petite étoile bleue en haut."),
    ("fr", Description((Obj("star", "purple"), Obj("circle", "orange", "small", "top"))), 2,
     "Il y a une étoile violette et en haut se trouve un petit cercle orange."),
    ("fr", _one("star", "pink", "large", "right"), 3, "L'image montre une grande étoile rose à droite."),
    ("fr", Description((Obj("cross", "green", "small", "left"), Obj("square", "purple", None, "center"),
                        Obj("diamond", "blue", "large", "bottom"))), 4,
     "Trois formes sont visibles : une petite croix verte à gauche, un carré violet au centre "
     "et un grand losange bleu en bas."),
    ("fr", _one("triangle"), 4, "Une forme est visible : un triangle."),
    # Spanish: noun, colour, size; -o/-a agreement
    ("es", TWO, 0, "Hay un círculo rojo grande a la izquierda y una estrella azul pequeña arriba."),
    ("es", _one("star", "red", "large"), 1, "Una estrella roja grande."),
    ("es", Description((Obj("cross", "yellow", "small", "bottom"), Obj("diamond", "purple"),
                        Obj("square", None, "large", "right"))), 2,
     "Abajo hay una cruz amarilla pequeña, también hay un rombo morado y a la derecha hay un cuadrado grande."),
    ("es", _one("heart", "brown", None, "center"), 3, "La imagen muestra un corazón marrón en el centro."),
    ("es", _one("triangle", "pink", "small", "left"), 4,
     "Se ve una forma: un triángulo rosa pequeño a la izquierda."),
    ("es", TWO, 4, "Se ven dos formas: un círculo rojo grande a la izquierda y una estrella azul pequeña arriba."),
    # Czech: no articles, nominative vs accusative endings, plural verb for coordinated subjects
    ("cs", TWO, 0, "Na obrázku jsou velký červený kruh vlevo a malá modrá hvězda nahoře."),
    ("cs", _one("square", "green", None, "right"), 0, "Na obrázku je zelený čtverec vpravo."),
    ("cs", _one("heart", "red", "small", "center"), 1, "Malé červené srdce uprostřed."),
    ("cs", Description((Obj("diamond", "orange"), Obj("circle", "pink", "large", "top"))), 2,
     "Na obrázku je oranžový kosočtverec a nahoře je velký růžový kruh."),
    ("cs", _one("star", "red", "small"), 3, "Obrázek ukazuje malou červenou hvězdu."),
    ("cs", Description((Obj("star", "yellow", "large", "left"), Obj("heart", "brown", None, "bottom"),
                        Obj("cross", None, "small"))), 4,
     "Vidíme tři tvary: velkou žlutou hvězdu vlevo, hnědé srdce dole a malý kříž."),
]

#: Every noun's gender in the case each template family uses.
GENDER_TABLES: list[tuple[str, int, str, str, dict[str, str]]] = [
    ("de", 1, "green", "large", {
        "circle": "Ein großer grüner Kreis.", "square": "Ein großes grünes Quadrat.",
        "triangle": "Ein großes grünes Dreieck.", "star": "Ein großer grüner Stern.",
        "cross": "Ein großes grünes Kreuz.", "heart": "Ein großes grünes Herz.",
        "diamond": "Eine große grüne Raute.",
    }),
    ("de", 3, "green", "large", {
        "circle": "Das Bild zeigt einen großen grünen Kreis.",
        "square": "Das Bild zeigt ein großes grünes Quadrat.",
        "triangle": "Das Bild zeigt ein großes grünes Dreieck.",
        "star": "Das Bild zeigt einen großen grünen Stern.",
        "cross": "Das Bild zeigt ein großes grünes Kreuz.", "heart": "Das Bild zeigt ein großes grünes Herz.",
        "diamond": "Das Bild zeigt eine große grüne Raute.",
    }),
    ("fr", 1, "green", "small", {
        "circle": "Un petit cercle vert.", "square": "Un petit carré vert.", "triangle": "Un petit triangle vert.",
        "star": "Une petite étoile verte.", "cross": "Une petite croix verte.", "heart": "Un petit cœur vert.",
        "diamond": "Un petit losange vert.",
    }),
    ("es", 1, "yellow", "small", {
        "circle": "Un círculo amarillo pequeño.", "square": "Un cuadrado amarillo pequeño.",
        "triangle": "Un triángulo amarillo pequeño.", "star": "Una estrella amarilla pequeña.",
        "cross": "Una cruz amarilla pequeña.", "heart": "Un corazón amarillo pequeño.",
        "diamond": "Un rombo amarillo pequeño.",
    }),
    ("cs", 1, "yellow", "small", {
        "circle": "Malý žlutý kruh.", "square": "Malý žlutý čtverec.",
        "triangle": "Malý žlutý trojúhelník.",
        "star": "Malá žlutá hvězda.", "cross": "Malý žlutý kříž.", "heart": "Malé žluté srdce.",
        "diamond": "Malý žlutý kosočtverec.",
    }),
    ("cs", 3, "yellow", "small", {
        "circle": "Obrázek ukazuje malý žlutý kruh.", "square": "Obrázek ukazuje malý žlutý čtverec.",
        "triangle": "Obrázek ukazuje malý žlutý trojúhelník.", "star": "Obrázek ukazuje malou žlutou hvězdu.",
        "cross": "Obrázek ukazuje malý žlutý kříž.", "heart": "Obrázek ukazuje malé žluté srdce.",
        "diamond": "Obrázek ukazuje malý žlutý kosočtverec.",
    }),
]

#: (template, caption prefix for 1, 2, 3 objects): templates that state a count.
COUNTED: dict[str, list[tuple[int, tuple[str, str, str]]]] = {
    "en": [(0, ("There is a", "There are two shapes: ", "There are three shapes: "))],
    "de": [(4, ("Zu sehen ist eine Form: ", "Zu sehen sind zwei Formen: ", "Zu sehen sind drei Formen: "))],
    "fr": [(4, ("Une forme est visible : ", "Deux formes sont visibles : ", "Trois formes sont visibles : "))],
    "es": [(4, ("Se ve una forma: ", "Se ven dos formas: ", "Se ven tres formas: "))],
    "cs": [
        (0, ("Na obrázku je ", "Na obrázku jsou ", "Na obrázku jsou ")),
        (4, ("Vidíme jeden tvar: ", "Vidíme dva tvary: ", "Vidíme tři tvary: ")),
    ],
}


# --------------------------------------------------------------------------- reference lexicons


def _forms(stems: dict[str, str], endings: tuple[str, ...]) -> dict[str, str]:
    return {stem + e: value for value, stem in stems.items() for e in endings}


#: Surface word (lower case) -> (attribute, value): a reader's dictionary, written
#: independently of the grammar modules, to read a caption's content back.
LEXICON: dict[str, dict[str, tuple[str, str]]] = {}


def _lex(code: str, **attrs: dict[str, str]) -> None:
    LEXICON[code] = {form: (attr, value) for attr, forms in attrs.items() for form, value in forms.items()}


_lex(
    "en",
    shape={s: s for s in SHAPES}, colour={c: c for c in COLOURS}, size={s: s for s in SIZES},
    position={"left": "left", "right": "right", "top": "top", "bottom": "bottom", "middle": "center"},
)
_lex(
    "de",
    shape={"kreis": "circle", "quadrat": "square", "dreieck": "triangle", "stern": "star", "kreuz": "cross",
           "herz": "heart", "raute": "diamond"},
    colour={**_forms({"red": "rot", "green": "grün", "blue": "blau", "yellow": "gelb", "orange": "orangefarben",
                      "brown": "braun"}, ("e", "er", "es", "en")), "lila": "purple", "rosa": "pink"},
    size=_forms({"small": "klein", "large": "groß"}, ("e", "er", "es", "en")),
    position={"links": "left", "rechts": "right", "oben": "top", "unten": "bottom", "mitte": "center"},
)
_lex(
    "fr",
    shape={"cercle": "circle", "carré": "square", "triangle": "triangle", "étoile": "star", "croix": "cross",
           "cœur": "heart", "losange": "diamond"},
    colour={"rouge": "red", "vert": "green", "verte": "green", "bleu": "blue", "bleue": "blue", "jaune": "yellow",
            "violet": "purple", "violette": "purple", "orange": "orange", "rose": "pink", "marron": "brown"},
    size={"petit": "small", "petite": "small", "grand": "large", "grande": "large"},
    position={"gauche": "left", "droite": "right", "haut": "top", "bas": "bottom", "centre": "center"},
)
_lex(
    "es",
    shape={"círculo": "circle", "cuadrado": "square", "triángulo": "triangle", "estrella": "star", "cruz": "cross",
           "corazón": "heart", "rombo": "diamond"},
    colour={"rojo": "red", "roja": "red", "verde": "green", "azul": "blue", "amarillo": "yellow",
            "amarilla": "yellow", "morado": "purple", "morada": "purple", "naranja": "orange", "rosa": "pink",
            "marrón": "brown"},
    size={"pequeño": "small", "pequeña": "small", "grande": "large"},
    position={"izquierda": "left", "derecha": "right", "arriba": "top", "abajo": "bottom", "centro": "center"},
)
_lex(
    "cs",
    shape={"kruh": "circle", "čtverec": "square", "trojúhelník": "triangle", "hvězda": "star", "hvězdu": "star",
           "kříž": "cross", "srdce": "heart", "kosočtverec": "diamond"},
    colour=_forms({"red": "červen", "green": "zelen", "blue": "modr", "yellow": "žlut", "purple": "fialov",
                   "orange": "oranžov", "pink": "růžov", "brown": "hněd"}, ("ý", "á", "é", "ou")),
    size=_forms({"small": "mal", "large": "velk"}, ("ý", "á", "é", "ou")),
    position={"vlevo": "left", "vpravo": "right", "nahoře": "top", "dole": "bottom", "uprostřed": "center"},
)

#: English words a non-English caption may legitimately contain (true cognates
#: or homographs of that language's own words).
SHARED_WITH_ENGLISH = {"de": {"in"}, "fr": {"triangle", "orange", "a"}, "es": {"a"}, "cs": {"a"}}


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W\d_]+", text.lower())


def _swap_left_right(text: str, pairs: tuple[tuple[str, str], ...]) -> str:
    mapping = {**{l: r for l, r in pairs}, **{r: l for l, r in pairs}}
    pattern = r"\b(" + "|".join(re.escape(w) for w in sorted(mapping, key=len, reverse=True)) + r")\b"
    return re.sub(pattern, lambda m: mapping[m.group(0)], text)


def _mirror(d: Description) -> Description:
    swap = {"left": "right", "right": "left"}
    return Description(tuple(replace(o, position=swap.get(o.position, o.position)) for o in d.objects))


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("code", CODES)
def test_module_contract(code: str) -> None:
    m = get_language(code)
    assert m.CODE == code
    assert isinstance(m.N_TEMPLATES, int) and m.N_TEMPLATES >= 4
    assert m.LEFT_RIGHT and all(len(p) == 2 and p[0] != p[1] for p in m.LEFT_RIGHT)


@pytest.mark.parametrize(("code", "desc", "template", "expected"), EXPECTED)
def test_hand_checked_sentences(code: str, desc: Description, template: int, expected: str) -> None:
    assert get_language(code).describe(desc, template) == expected


@pytest.mark.parametrize(("code", "template", "colour", "size", "expected"), GENDER_TABLES)
def test_gender_and_case_agreement(code: str, template: int, colour: str, size: str, expected: dict) -> None:
    m = get_language(code)
    got = {shape: m.describe(_one(shape, colour, size), template) for shape in SHAPES}
    assert got == expected


@pytest.mark.parametrize("code", CODES)
def test_number_agreement_in_counted_templates(code: str) -> None:
    m = get_language(code)
    for template, prefixes in COUNTED[code]:
        for d in SINGLES[::7] + SAMPLE[:500] + TWINS:
            caption = m.describe(d, template)
            n = len(d.objects)
            assert caption.startswith(prefixes[n - 1]), (caption, n)
            assert not any(caption.startswith(p) for i, p in enumerate(prefixes) if i != n - 1 and p != prefixes[n - 1])


@pytest.mark.parametrize("code", CODES)
def test_every_description_renders_well_formed_and_faithful(code: str) -> None:
    m = get_language(code)
    lexicon = LEXICON[code]
    for template in range(m.N_TEMPLATES):
        for d in ALL:
            caption = m.describe(d, template)
            assert caption[0].isupper() and caption.endswith(".") and not caption.endswith(".."), caption
            assert "  " not in caption and caption == caption.strip() and " ," not in caption, caption
            assert caption[-2].isalpha(), caption
            read = [lexicon[w] for w in _words(caption) if w in lexicon]
            for attr in ("shape", "colour", "size", "position"):
                stated = [getattr(o, attr) for o in d.objects if getattr(o, attr) is not None]
                assert [v for a, v in read if a == attr] == stated, (caption, attr)


@pytest.mark.parametrize("code", CODES)
def test_injective_per_template(code: str) -> None:
    m = get_language(code)
    distinct = list(dict.fromkeys(ALL))
    assert len(distinct) > 4000
    for template in range(m.N_TEMPLATES):
        captions: dict[str, Description] = {}
        for d in distinct:
            caption = m.describe(d, template)
            assert caption not in captions, f"template {template}: {d} and {captions[caption]} both give {caption!r}"
            captions[caption] = d


@pytest.mark.parametrize("code", CODES)
def test_mirroring_by_word_swap(code: str) -> None:
    m = get_language(code)
    with_sides = [d for d in ALL if any(o.position in ("left", "right") for o in d.objects)]
    assert len(with_sides) > 1000
    for template in range(m.N_TEMPLATES):
        for d in ALL:
            assert _swap_left_right(m.describe(d, template), m.LEFT_RIGHT) == m.describe(_mirror(d), template)


def test_mirroring_swap_is_simultaneous() -> None:
    # Both sides in one caption: a sequential replace would turn both into one side.
    d = Description((Obj("circle", position="left"), Obj("star", position="right")))
    for code in CODES:
        m = get_language(code)
        for template in range(m.N_TEMPLATES):
            swapped = _swap_left_right(m.describe(d, template), m.LEFT_RIGHT)
            assert swapped == m.describe(_mirror(d), template) != m.describe(d, template)


@pytest.mark.parametrize("code", ("de", "fr", "es", "cs"))
def test_no_english_words(code: str) -> None:
    en = get_language("en")
    english = {w for d in SINGLES[::5] + SAMPLE[:300] for t in range(en.N_TEMPLATES) for w in _words(en.describe(d, t))}
    english |= set(SHAPES) | set(COLOURS) | set(SIZES) | set(POSITIONS)
    m = get_language(code)
    found = {w for d in ALL[::3] for t in range(m.N_TEMPLATES) for w in _words(m.describe(d, t))}
    assert found & english <= SHARED_WITH_ENGLISH[code], sorted(found & english)


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("bad", [-1, "N", 1.0, True, None])
def test_bad_template_is_value_error(code: str, bad: object) -> None:
    m = get_language(code)
    template = m.N_TEMPLATES if bad == "N" else bad
    with pytest.raises(ValueError, match=rf"{code}.*range\({m.N_TEMPLATES}\)"):
        m.describe(TWO, template)  # type: ignore[arg-type]
