"""Caption grammars for Russian, Turkish, Indonesian, Japanese and Chinese.

Hand-written sentences pin the grammar (agreement, case, suffix harmony,
word order, measure words); the enumeration tests pin the contract every
grammar shares: any description renders, a template never maps two
descriptions to one string, and swapping the LEFT_RIGHT forms equals
captioning the mirrored description.
"""
from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace

import pytest

from ccrk.synth.languages import get_language
from ccrk.synth.scene import COLOURS, POSITIONS, SHAPES, SIZES, Description, Obj

CODES = ("ru", "tr", "id", "ja", "zh")
SPACED = ("ru", "tr", "id")
TURKISH_ALPHABET = "abcçdefgğhıijklmnoöprsştuüvyz"
TURKISH_LETTERS = set(TURKISH_ALPHABET) | set("ABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZ")

C = Obj("circle", "red", "large", "left")
THREE = Description(
    (Obj("triangle", "yellow", None, "bottom"), Obj("cross", None, "small"), Obj("heart", "orange", "large", "right"))
)
S = Obj("star", "blue", "small", "top")
TWO = Description((C, S))


def d(*objs: Obj) -> Description:
    return Description(tuple(objs))


# --- hand-checked sentences --------------------------------------------------

EXPECTED: list[tuple[str, Description, int, str]] = [
    # Russian: gender agreement, accusative after a verb, participle agreement.
    ("ru", TWO, 2, "Слева — большой красный круг, а вверху — маленькая синяя звезда."),
    ("ru", TWO, 4, "Мы видим большой красный круг слева и маленькую синюю звезду вверху."),
    ("ru", TWO, 3, "На рисунке изображены большой красный круг слева и маленькая синяя звезда вверху."),
    ("ru", d(Obj("heart", "blue", "small")), 3, "На рисунке изображено маленькое синее сердце."),
    ("ru", d(Obj("star", "green", None, "center")), 3, "На рисунке изображена зелёная звезда в центре."),
    ("ru", d(Obj("star", "red", "large", "right")), 4, "Мы видим большую красную звезду справа."),
    (
        "ru",
        d(
            Obj("triangle", "yellow", None, "bottom"),
            Obj("star", None, "small"),
            Obj("diamond", "brown", "large", "right"),
        ),
        0,
        "На картинке жёлтый треугольник внизу, маленькая звезда и большой коричневый ромб справа.",
    ),
    ("ru", d(Obj("heart", "pink", None, "center"), Obj("cross")), 2, "В центре — розовое сердце, а также крест."),
    ("ru", d(Obj("square", "purple")), 1, "Фиолетовый квадрат."),
    # Turkish: "bir" after the adjectives, harmonised locative/accusative/"de".
    ("tr", TWO, 0, "Resimde solda büyük kırmızı bir daire ve üstte küçük mavi bir yıldız var."),
    ("tr", TWO, 3, "Bu resim soldaki büyük kırmızı daireyi ve üstteki küçük mavi yıldızı gösteriyor."),
    (
        "tr",
        d(
            Obj("triangle", "green", None, "bottom"),
            Obj("cross", None, "large"),
            Obj("heart", "yellow", "small", "right"),
        ),
        2,
        "Altta yeşil bir üçgen var. Büyük bir haç var. Sağda küçük sarı bir kalp var.",
    ),
    ("tr", d(Obj("square", "purple", None, "center"), Obj("star")), 4, "Mor kare ortada ve bir yıldız da var."),
    ("tr", d(Obj("square"), Obj("heart", "brown")), 4, "Bir kare var ve kahverengi bir kalp de var."),
    ("tr", d(Obj("diamond", "orange", "small", "left")), 1, "Soldaki küçük turuncu bir eşkenar dörtgen."),
    ("tr", d(Obj("heart", None, None, "center")), 3, "Bu resim ortadaki kalbi gösteriyor."),
    # Indonesian: noun first, "sebuah", serial comma before "dan".
    ("id", TWO, 0, "Ada sebuah lingkaran merah besar di sebelah kiri dan sebuah bintang biru kecil di bagian atas."),
    ("id", d(Obj("diamond", "pink", None, "right")), 1, "Belah ketupat merah muda di kanan."),
    (
        "id",
        d(Obj("square", "green", "small", "bottom"), Obj("cross"), Obj("triangle", "brown", "large", "center")),
        2,
        "Di bagian bawah ada sebuah persegi hijau kecil, ada juga sebuah salib, "
        "dan di tengah ada sebuah segitiga cokelat besar.",
    ),
    ("id", d(Obj("heart", None, "large")), 4, "Ada sebuah hati besar."),
    ("id", d(Obj("star", "yellow", None, "top")), 3, "Gambar ini menunjukkan sebuah bintang kuning di bagian atas."),
    # Japanese: no spaces, modifiers before the noun, 一つ, polite -ます.
    ("ja", TWO, 0, "左に大きな赤い円が一つあり、上に小さな青い星が一つあります。"),
    (
        "ja",
        THREE,
        1,
        "下の黄色い三角形と小さな十字と右の大きなオレンジ色のハートの絵。",
    ),
    ("ja", d(Obj("diamond", "purple")), 2, "絵には紫のひし形が描かれています。"),
    ("ja", d(Obj("square", "brown", "small", "center")), 4, "小さな茶色の正方形が真ん中にあります。"),
    ("ja", d(Obj("circle"), Obj("circle")), 3, "見えるのは、円と円です。"),
    # Chinese: no spaces, 一个, 的 after the colour, positions as nouns.
    ("zh", TWO, 0, "左边有一个红色的大圆形，上面有一个蓝色的小星形。"),
    (
        "zh",
        THREE,
        1,
        "下面的黄色三角形、小十字形和右边的橙色大心形。",
    ),
    ("zh", d(Obj("diamond", "purple"), Obj("square", None, None, "center")), 3, "有一个紫色的菱形，正方形在中间。"),
    ("zh", d(Obj("star", "pink", "small")), 4, "图中有一个粉色的小星形。"),
    ("zh", d(Obj("circle", "green", "large", "left"), Obj("cross")), 2, "这张图片显示了左边的绿色大圆形和一个十字形。"),
]


@pytest.mark.parametrize(("code", "desc", "template", "expected"), EXPECTED)
def test_hand_checked_sentences(code: str, desc: Description, template: int, expected: str) -> None:
    assert get_language(code).describe(desc, template) == expected


@pytest.mark.parametrize(
    ("shape", "nominative", "accusative"),
    [
        ("circle", "Большой красный круг", "маленький синий круг"),
        ("square", "Большой красный квадрат", "маленький синий квадрат"),
        ("triangle", "Большой красный треугольник", "маленький синий треугольник"),
        ("star", "Большая красная звезда", "маленькую синюю звезду"),
        ("cross", "Большой красный крест", "маленький синий крест"),
        ("heart", "Большое красное сердце", "маленькое синее сердце"),
        ("diamond", "Большой красный ромб", "маленький синий ромб"),
    ],
)
def test_russian_agreement_per_noun(shape: str, nominative: str, accusative: str) -> None:
    ru = get_language("ru")
    assert ru.describe(d(Obj(shape, "red", "large")), 1) == nominative + "."
    assert ru.describe(d(Obj(shape, "blue", "small")), 4) == f"Мы видим {accusative}."


@pytest.mark.parametrize(
    ("shape", "accusative", "also"),
    [
        ("circle", "daireyi", "de"),
        ("square", "kareyi", "de"),
        ("triangle", "üçgeni", "de"),
        ("star", "yıldızı", "da"),
        ("cross", "haçı", "da"),
        ("heart", "kalbi", "de"),
        ("diamond", "eşkenar dörtgeni", "de"),
    ],
)
def test_turkish_suffix_harmony_per_noun(shape: str, accusative: str, also: str) -> None:
    tr = get_language("tr")
    assert tr.describe(d(Obj(shape)), 3) == f"Bu resim {accusative} gösteriyor."
    assert tr.describe(d(Obj("circle", None, None, "left"), Obj(shape)), 4).endswith(f" {also} var.")


@pytest.mark.parametrize(
    ("position", "locative"),
    [("left", "solda"), ("right", "sağda"), ("top", "üstte"), ("bottom", "altta"), ("center", "ortada")],
)
def test_turkish_locatives(position: str, locative: str) -> None:
    tr = get_language("tr")
    assert tr.describe(d(Obj("star", None, None, position)), 0) == f"Resimde {locative} bir yıldız var."
    assert tr.describe(d(Obj("star", None, None, position)), 1) == f"{locative.capitalize()}ki bir yıldız."


# --- the shared contract over enumerations -------------------------------------

SINGLE_OBJS = [
    Obj(shape, colour, size, position)
    for shape, colour, size, position in itertools.product(
        SHAPES, (None, *COLOURS), (None, *SIZES), (None, *POSITIONS)
    )
]
assert len(SINGLE_OBJS) == 7 * 9 * 3 * 6

#: A small vocabulary that still holds every noun gender, the multi-word
#: nouns and colours ("belah ketupat", "merah muda") and every kind of
#: omission, so that exhaustive pairs probe the concatenation boundaries.
PAIR_OBJS = [
    Obj(shape, colour, size, position)
    for shape, colour, size, position in itertools.product(
        ("circle", "star", "heart", "diamond"), (None, "red", "pink"), (None, "small"), (None, "left", "center")
    )
]


def _random_descriptions(n: int, seed: int) -> list[Description]:
    rng = random.Random(seed)

    def maybe(values: tuple[str, ...]) -> str | None:
        return None if rng.random() < 0.3 else rng.choice(values)

    out = []
    for _ in range(n):
        k = rng.randint(1, 3)
        objs = (Obj(rng.choice(SHAPES), maybe(COLOURS), maybe(SIZES), maybe(POSITIONS)) for _ in range(k))
        out.append(Description(tuple(objs)))
    return out


RANDOM_DESCS = _random_descriptions(3000, seed=20240625)
ALL_DESCS = list(
    dict.fromkeys(
        [Description((o,)) for o in SINGLE_OBJS]
        + [Description(p) for p in itertools.product(PAIR_OBJS, repeat=2)]
        + RANDOM_DESCS
    )
)


def _mirror(desc: Description) -> Description:
    swap = {"left": "right", "right": "left"}
    return Description(tuple(replace(o, position=swap.get(o.position, o.position)) for o in desc.objects))


def _contains(text: str, form: str, code: str) -> bool:
    if code in SPACED:
        return re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text) is not None
    return form in text


def _swap(text: str, code: str) -> str:
    """Independent reference of the caption flip: one simultaneous pass."""
    mapping: dict[str, str] = {}
    for left, right in get_language(code).LEFT_RIGHT:
        mapping[left], mapping[right] = right, left
    alternatives = "|".join(re.escape(w) for w in sorted(mapping, key=len, reverse=True))
    pattern = rf"(?<!\w)(?:{alternatives})(?!\w)" if code in SPACED else alternatives
    return re.sub(pattern, lambda m: mapping[m.group(0)], text)


@pytest.mark.parametrize("code", CODES)
def test_module_contract(code: str) -> None:
    lang = get_language(code)
    assert lang.CODE == code
    assert isinstance(lang.N_TEMPLATES, int) and lang.N_TEMPLATES >= 4
    assert lang.LEFT_RIGHT and all(len(pair) == 2 and pair[0] != pair[1] for pair in lang.LEFT_RIGHT)


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("bad", [-1, 99, 1.0, "0", True, None])
def test_bad_template_raises(code: str, bad: object) -> None:
    lang = get_language(code)
    with pytest.raises(ValueError, match="template"):
        lang.describe(TWO, bad)
    with pytest.raises(ValueError, match="template"):
        lang.describe(TWO, lang.N_TEMPLATES)


def _check_form(code: str, text: str) -> None:
    if code in SPACED:
        assert text == text.strip() and "  " not in text, text
        assert text[0].isupper() and text.endswith(".") and not text.endswith(".."), text
        assert " ," not in text and " ." not in text, text
        # Every sentence of a multi-sentence caption starts with a capital.
        assert all(s[0].isupper() for s in text[:-1].split(". ")), text
    else:
        assert not any(ch.isspace() for ch in text), text
        assert text.endswith("。") and text.count("。") == 1, text
        assert not re.search(r"[A-Za-z0-9]", text), text
    if code == "ru":
        assert all("\u0400" <= ch <= "\u04ff" for ch in text if ch.isalpha()), text
    elif code == "tr":
        assert {ch for ch in text if ch.isalpha()} <= TURKISH_LETTERS, text
    elif code == "id":
        assert re.fullmatch(r"[A-Za-z ,.]+", text), text
    elif code == "ja":
        assert re.search(r"[\u3040-\u30ff]", text), text
    elif code == "zh":
        assert re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"[\u3040-\u30ff]", text), text


@pytest.mark.parametrize("code", CODES)
def test_every_description_renders_well_formed(code: str) -> None:
    lang = get_language(code)
    chars: set[str] = set()
    for template in range(lang.N_TEMPLATES):
        for desc in [Description((o,)) for o in SINGLE_OBJS] + RANDOM_DESCS[:1000]:
            text = lang.describe(desc, template)
            assert lang.describe(desc, template) == text  # deterministic
            _check_form(code, text)
            chars.update(text)
    if code == "tr":
        assert set("ışğüöç") <= chars


@pytest.mark.parametrize("code", CODES)
def test_injective_per_template(code: str) -> None:
    lang = get_language(code)
    for template in range(lang.N_TEMPLATES):
        seen: dict[str, Description] = {}
        for desc in ALL_DESCS:
            text = lang.describe(desc, template)
            assert seen.setdefault(text, desc) == desc, (template, text, seen[text], desc)


@pytest.mark.parametrize("code", CODES)
def test_left_right_swap_equals_mirrored_caption(code: str) -> None:
    lang = get_language(code)
    emitted: set[str] = set()
    forms = {w for pair in lang.LEFT_RIGHT for w in pair}
    for template in range(lang.N_TEMPLATES):
        for desc in [Description((o,)) for o in SINGLE_OBJS] + RANDOM_DESCS:
            text = lang.describe(desc, template)
            assert _swap(text, code) == lang.describe(_mirror(desc), template), (template, text)
            emitted.update(w for w in forms if _contains(text, w, code))
    # No dead entries: every listed form is one the grammar actually emits.
    assert emitted == forms


def test_object_order_follows_description() -> None:
    # Reversing the objects must reverse where their nouns appear.
    nouns = {
        "ru": ("круг", "звезд"),
        "tr": ("daire", "yıldız"),
        "id": ("lingkaran", "bintang"),
        "ja": ("円", "星"),
        "zh": ("圆形", "星形"),
    }
    for code, (circle, star) in nouns.items():
        lang = get_language(code)
        for template in range(lang.N_TEMPLATES):
            forward = lang.describe(TWO, template).lower()
            backward = lang.describe(Description((S, C)), template).lower()
            assert forward.index(circle) < forward.index(star), (code, template, forward)
            assert backward.index(star) < backward.index(circle), (code, template, backward)
