"""Language codes and the left/right lexicon that keeps flipped captions true.

A horizontal flip is a cheap, label-preserving augmentation for most captions,
but not for "a dog on the left of the car": after the flip the image shows the
dog on the right. Training on the flipped image with the original caption
teaches the model the wrong grounding, and it does so in every language at
once. So the flip is paired with a text edit that swaps left and right, and a
language this lexicon does not know is never flipped (see
:mod:`ccrk.data.transforms`): a missing augmentation costs little, a wrong
caption costs accuracy.
"""
from __future__ import annotations

import functools
import re

#: Every ISO 639-1 two-letter code (184, including the collective ``bh``).
#: Manifests key captions by these; anything else is a typo or a 639-2/3 code.
ISO_639_1: frozenset[str] = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch
    co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga
    gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja
    jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv
    mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or
    os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr
    ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi
    vo wa wo xh yi yo za zh zu
    """.split()
)


def is_iso639_1(code: object) -> bool:
    """True for a lower-case ISO 639-1 code (``"EN"`` and ``"eng"`` are not)."""
    return isinstance(code, str) and code in ISO_639_1


#: Scripts written without spaces between words: a whole-word match is
#: impossible there, so the swap works on substrings (左边 -> 右边).
#: Korean is spaced, but particles attach to nouns (왼쪽에), so it is matched
#: as substrings too, using only unambiguous compounds.
SUBSTRING_LANGUAGES: frozenset[str] = frozenset({"zh", "ja", "ko"})

# Base (lower-case) forms; capitalised and upper-case variants are derived for
# cased scripts below. Where one "left" form has several "right" forms
# (French gauche -> droite/droit), the first pair decides left -> right and
# every pair maps its right form back; multi-word phrases carry the context
# that picks the grammatical form (côté gauche -> côté droit).
_BASE: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (("left", "right"), ("leftmost", "rightmost"), ("lefthand", "righthand")),
    "de": (
        ("links", "rechts"), ("linke", "rechte"), ("linken", "rechten"), ("linker", "rechter"),
        ("linkes", "rechtes"), ("linkem", "rechtem"), ("linksseitig", "rechtsseitig"),
        ("linksseitige", "rechtsseitige"), ("linksseitigen", "rechtsseitigen"),
        ("nach links", "nach rechts"), ("von links", "von rechts"),
    ),
    "fr": (
        ("gauche", "droite"), ("gauches", "droites"),
        ("côté gauche", "côté droit"), ("coin gauche", "coin droit"), ("bras gauche", "bras droit"),
        ("pied gauche", "pied droit"), ("œil gauche", "œil droit"), ("bord gauche", "bord droit"),
        ("gauche", "droit"), ("gauches", "droits"),
    ),
    "es": (
        ("izquierda", "derecha"), ("izquierdo", "derecho"), ("izquierdas", "derechas"),
        ("izquierdos", "derechos"),
    ),
    "it": (
        ("sinistra", "destra"), ("sinistro", "destro"), ("sinistre", "destre"), ("sinistri", "destri"),
    ),
    "pt": (
        ("esquerda", "direita"), ("esquerdo", "direito"), ("esquerdas", "direitas"),
        ("esquerdos", "direitos"),
    ),
    "nl": (
        ("links", "rechts"), ("linker", "rechter"), ("linkse", "rechtse"), ("linkerkant", "rechterkant"),
        ("linkerhand", "rechterhand"),
    ),
    "sv": (
        ("vänster", "höger"), ("vänstra", "högra"), ("till vänster", "till höger"),
    ),
    "cs": (
        ("levý", "pravý"), ("levá", "pravá"), ("levé", "pravé"), ("levého", "pravého"),
        ("levému", "pravému"), ("levém", "pravém"), ("levým", "pravým"), ("levou", "pravou"),
        ("levých", "pravých"), ("levými", "pravými"), ("leví", "praví"),
        ("vlevo", "vpravo"), ("nalevo", "napravo"), ("zleva", "zprava"), ("doleva", "doprava"),
        ("levice", "pravice"), ("levici", "pravici"),
    ),
    "ru": (
        ("левый", "правый"), ("левая", "правая"), ("левое", "правое"), ("левые", "правые"),
        ("левого", "правого"), ("левому", "правому"), ("левом", "правом"), ("левым", "правым"),
        ("левой", "правой"), ("левую", "правую"), ("левых", "правых"), ("левыми", "правыми"),
        ("слева", "справа"), ("налево", "направо"), ("влево", "вправо"), ("левее", "правее"),
    ),
    "el": (
        ("αριστερά", "δεξιά"), ("αριστερός", "δεξιός"), ("αριστερή", "δεξιά"), ("αριστερό", "δεξί"),
        ("αριστερού", "δεξιού"), ("αριστερής", "δεξιάς"), ("αριστερούς", "δεξιούς"),
        ("αριστερές", "δεξιές"), ("αριστεροί", "δεξιοί"),
    ),
    "tr": (
        ("sol", "sağ"), ("solda", "sağda"), ("sola", "sağa"), ("soldan", "sağdan"),
        ("solunda", "sağında"), ("soluna", "sağına"), ("solundan", "sağından"), ("solu", "sağı"),
        ("soldaki", "sağdaki"), ("solundaki", "sağındaki"), ("soldakiler", "sağdakiler"),
    ),
    "id": (
        ("kiri", "kanan"), ("kirinya", "kanannya"), ("sebelah kiri", "sebelah kanan"),
    ),
    "zh": (("左", "右"),),
    "ja": (("左", "右"), ("ひだり", "みぎ"), ("ヒダリ", "ミギ")),
    "ko": (
        ("왼쪽", "오른쪽"), ("왼편", "오른편"), ("왼손", "오른손"), ("왼발", "오른발"), ("좌측", "우측"),
    ),
}

#: Tokens that contain a left/right form but must stay as they are:
#: 左右 is "left and right" / "about" and reads the same after a flip.
_FIXED: dict[str, tuple[str, ...]] = {"zh": ("左右",), "ja": ("左右",)}


def _case_variants(word: str) -> tuple[str, ...]:
    # ``capitalize`` would lower-case the rest ("iPhone"), so only the first
    # character is touched; dict.fromkeys drops duplicates, keeping order.
    return tuple(dict.fromkeys((word, word[:1].upper() + word[1:], word.upper())))


def _expand(lang: str, pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if lang in SUBSTRING_LANGUAGES:
        return pairs
    out: list[tuple[str, str]] = []
    for left, right in pairs:
        out.extend(zip(_case_variants(left), _case_variants(right)))
    return tuple(dict.fromkeys(out))


#: Surface forms of (left, right) by ISO 639-1 code, case variants included.
LEFT_RIGHT_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    lang: _expand(lang, pairs) for lang, pairs in _BASE.items()
}


def can_swap(lang: str) -> bool:
    """Whether captions in ``lang`` can be mirrored; flip only when this holds."""
    return lang in LEFT_RIGHT_WORDS


@functools.lru_cache(maxsize=None)
def _swapper(lang: str) -> tuple[re.Pattern[str], dict[str, str]]:
    mapping: dict[str, str] = {}
    for left, right in LEFT_RIGHT_WORDS[lang]:
        mapping.setdefault(left, right)
        mapping.setdefault(right, left)
    for token in _FIXED.get(lang, ()):
        mapping[token] = token
    # Longest first, so "côté gauche" wins over "gauche" and 左右 over 左.
    alternatives = "|".join(re.escape(w) for w in sorted(mapping, key=len, reverse=True))
    if lang in SUBSTRING_LANGUAGES:
        pattern = re.compile(alternatives)
    else:
        # Look-arounds instead of \b: phrases may start or end with
        # non-word characters, and \w is Unicode-aware for é, ğ, Cyrillic.
        pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    return pattern, mapping


def swap_left_right(text: str, lang: str) -> str:
    """Mirror ``text``: every left form becomes right and vice versa, in one pass.

    One regex pass makes the swap simultaneous ("left to right" becomes
    "right to left", not "left to left"). Languages outside
    :data:`LEFT_RIGHT_WORDS` come back unchanged; callers must check
    :func:`can_swap` before flipping the image. Known limits: English "left"
    as the past of "leave" is swapped too, and compounds such as German
    "Linkskurve" are not.
    """
    if not can_swap(lang):
        return text
    pattern, mapping = _swapper(lang)
    return pattern.sub(lambda m: mapping[m.group(0)], text)
