"""Japanese caption grammar.

Japanese is written without spaces, modifiers precede the noun (size, then
colour: "大きな赤い円"), colour words are either true adjectives ("赤い",
"青い", "黄色い") or nouns linked by "の" ("緑の", "ピンクの"), and counted
things take the general counter "一つ". Sentences use the polite -ます form
and end in "。"; nouns in a list are joined by "と", clauses by "あり、".

Injectivity without spaces holds because every slot has its own closed,
prefix-free word set and each slot is delimited by a particle or a fixed
word ("に", "の", "が一つ", "と", "あり、"). "左"/"右" occur nowhere else in the
lexicon, so a substring swap mirrors a caption.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template
from ccrk.synth.scene import Description, Obj

CODE = "ja"

LEFT_RIGHT: tuple[tuple[str, str], ...] = (("左", "右"),)

_NOUNS = {
    "circle": "円",
    "square": "正方形",
    "triangle": "三角形",
    "star": "星",
    "cross": "十字",
    "heart": "ハート",
    "diamond": "ひし形",
}
_COLOURS = {
    "red": "赤い",
    "green": "緑の",
    "blue": "青い",
    "yellow": "黄色い",
    "purple": "紫の",
    "orange": "オレンジ色の",
    "pink": "ピンクの",
    "brown": "茶色の",
}
#: The prenominal forms 大きな/小さな throughout (never 大きい/小さい).
_SIZES = {"small": "小さな", "large": "大きな"}
_POSITIONS = {"left": "左", "right": "右", "top": "上", "bottom": "下", "center": "真ん中"}


def _np(o: Obj) -> str:
    size = _SIZES[o.size] if o.size is not None else ""
    colour = _COLOURS[o.colour] if o.colour is not None else ""
    return size + colour + _NOUNS[o.shape]


def _attributive(o: Obj) -> str:
    """Location as a noun modifier: "左の大きな赤い円"."""
    return _np(o) if o.position is None else f"{_POSITIONS[o.position]}の{_np(o)}"


def _existential(desc: Description) -> str:
    # "左に大きな赤い円が一つあり、上に…が一つあります": each object counted
    # and located, clauses chained with the continuative あり.
    clauses = [
        (f"{_POSITIONS[o.position]}に" if o.position is not None else "") + f"{_np(o)}が一つ"
        for o in desc.objects
    ]
    return "あり、".join(clauses) + "あります。"


def _noun_phrases(desc: Description) -> str:
    # A title-like caption, "…の絵" ("a picture of …"); a bare "円。" would
    # not read as a caption.
    return "と".join(_attributive(o) for o in desc.objects) + "の絵。"


def _depicted(desc: Description) -> str:
    return "絵には" + "と".join(_attributive(o) for o in desc.objects) + "が描かれています。"


def _visible(desc: Description) -> str:
    return "見えるのは、" + "と".join(_attributive(o) for o in desc.objects) + "です。"


def _subject_first(desc: Description) -> str:
    # "大きな赤い円が左にあり、…": the object is the subject, its location
    # the complement of ある.
    clauses = [
        f"{_np(o)}が" + (f"{_POSITIONS[o.position]}に" if o.position is not None else "")
        for o in desc.objects
    ]
    return "あり、".join(clauses) + "あります。"


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _existential,
    _noun_phrases,
    _depicted,
    _visible,
    _subject_first,
)
N_TEMPLATES = len(_TEMPLATES)


def describe(desc: Description, template: int) -> str:
    """Caption ``desc`` with paraphrase pattern ``template`` (0 .. N_TEMPLATES-1)."""
    check_template(CODE, template, N_TEMPLATES)
    return _TEMPLATES[template](desc)
