"""Chinese caption grammar.

Chinese is written without spaces; every shape noun ends in 形 and takes the
measure word 个 ("一个红色的大圆形"). Monosyllabic 大/小 attach directly to
the noun while the two-syllable colour takes 的 ("红色的大圆形"); after a
location modifier that already carries 的 the colour goes without it ("左边的红色
大圆形") so a phrase never stacks three 的. Lists use 和 for two items and
"、…和" for three; clauses are separated by "，"; sentences end in "。".

Injectivity holds because every slot has its own closed vocabulary (colours
end in 色, shapes in 形, positions are 左边/右边/上面/下面/中间) and slots
are delimited by fixed words. 左/右 appear only in 左边/右边, so a substring
swap mirrors a caption.
"""
from __future__ import annotations

from collections.abc import Callable

from ccrk.synth.languages._common import check_template, join_list
from ccrk.synth.scene import Description, Obj

CODE = "zh"

LEFT_RIGHT: tuple[tuple[str, str], ...] = (("左边", "右边"),)

_NOUNS = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "star": "星形",
    "cross": "十字形",
    "heart": "心形",
    "diamond": "菱形",
}
_COLOURS = {
    "red": "红色",
    "green": "绿色",
    "blue": "蓝色",
    "yellow": "黄色",
    "purple": "紫色",
    "orange": "橙色",
    "pink": "粉色",
    "brown": "棕色",
}
_SIZES = {"small": "小", "large": "大"}
_POSITIONS = {"left": "左边", "right": "右边", "top": "上面", "bottom": "下面", "center": "中间"}


def _np(o: Obj, de: bool) -> str:
    """Colour (with 的 when ``de``), size, noun."""
    colour = "" if o.colour is None else _COLOURS[o.colour] + ("的" if de else "")
    size = "" if o.size is None else _SIZES[o.size]
    return colour + size + _NOUNS[o.shape]


def _join(items: list[str]) -> str:
    return join_list(items, "和", separator="、")


def _attributive(o: Obj) -> str:
    return _np(o, de=True) if o.position is None else f"{_POSITIONS[o.position]}的{_np(o, de=False)}"


def _unlocated(o: Obj, i: int) -> str:
    # An object without a location is introduced by 有, 还有 after the first.
    return ("还有" if i else "有") + "一个" + _np(o, de=True)


def _existential(desc: Description) -> str:
    # "左边有一个红色的大圆形，上面有一个蓝色的小星形。"
    clauses = [
        f"{_POSITIONS[o.position]}有一个{_np(o, de=True)}" if o.position is not None else _unlocated(o, i)
        for i, o in enumerate(desc.objects)
    ]
    return "，".join(clauses) + "。"


def _noun_phrases(desc: Description) -> str:
    return _join([_attributive(o) for o in desc.objects]) + "。"


def _picture_shows(desc: Description) -> str:
    # A located object is definite ("左边的…"); an unlocated one is counted
    # ("一个…"), as a bare noun after 显示了 would read clipped.
    items = [_attributive(o) if o.position is not None else "一个" + _np(o, de=True) for o in desc.objects]
    return "这张图片显示了" + _join(items) + "。"


def _predicative(desc: Description) -> str:
    # "红色的大圆形在左边，…": the location is the predicate.
    clauses = [
        f"{_np(o, de=True)}在{_POSITIONS[o.position]}" if o.position is not None else _unlocated(o, i)
        for i, o in enumerate(desc.objects)
    ]
    return "，".join(clauses) + "。"


def _in_picture(desc: Description) -> str:
    # "图中有一个位于左边的红色大圆形和…": written-register relative clause.
    items = [
        f"一个位于{_POSITIONS[o.position]}的{_np(o, de=False)}" if o.position is not None else f"一个{_np(o, de=True)}"
        for o in desc.objects
    ]
    return "图中有" + _join(items) + "。"


_TEMPLATES: tuple[Callable[[Description], str], ...] = (
    _existential,
    _noun_phrases,
    _picture_shows,
    _predicative,
    _in_picture,
)
N_TEMPLATES = len(_TEMPLATES)


def describe(desc: Description, template: int) -> str:
    """Caption ``desc`` with paraphrase pattern ``template`` (0 .. N_TEMPLATES-1)."""
    check_template(CODE, template, N_TEMPLATES)
    return _TEMPLATES[template](desc)
