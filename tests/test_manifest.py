"""read_manifest validation, round trip, ISO codes and the left/right lexicon."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from ccrk.data.languages import (
    ISO_639_1,
    LEFT_RIGHT_WORDS,
    SUBSTRING_LANGUAGES,
    can_swap,
    is_iso639_1,
    swap_left_right,
)
from ccrk.data.manifest import ManifestError, Record, read_manifest, write_manifest


def _png(path: Path, colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), colour).save(path)


def _good(i: int) -> dict:
    return {"image_id": str(i), "image": f"img/{i}.png", "captions": {"en": [f"a dot {i}"], "de": [f"ein Punkt {i}"]}}


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for i in range(4):
        _png(tmp_path / "img" / f"{i}.png")
    return tmp_path


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _raises(path: Path, line: int, *fragments: str, **kwargs) -> str:
    with pytest.raises(ManifestError) as info:
        read_manifest(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# (bad third line, fragments the message must contain)
BAD_RECORDS = [
    ('{"image_id": "2", "image": "img/2.png", "captions": {"en": ["x"]}', ["malformed JSON"]),
    ('["2", "img/2.png"]', ["JSON object", "array"]),
    ('{"image": "img/2.png", "captions": {"en": ["x"]}}', ["'image_id'", "missing"]),
    ('{"image_id": "2", "captions": {"en": ["x"]}}', ["'image'", "missing"]),
    ('{"image_id": "2", "image": "img/2.png"}', ["'captions'", "missing"]),
    ('{"image_id": 2, "image": "img/2.png", "captions": {"en": ["x"]}}', ["'image_id'", "string", "int", '"2"']),
    ('{"image_id": "", "image": "img/2.png", "captions": {"en": ["x"]}}', ["'image_id'", "empty"]),
    ('{"image_id": "2", "image": "", "captions": {"en": ["x"]}}', ["'image'", "non-empty string"]),
    ('{"image_id": "2", "image": 7, "captions": {"en": ["x"]}}', ["'image'", "int"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": ["x"]}', ["'captions'", "object"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"en": "x"}}', ["captions['en']", "list"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"en": ["x", 3]}}', ["captions['en'][1]", "string"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"eng": ["x"]}}', ["'eng'", "ISO 639-1"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"EN": ["x"]}}', ["'EN'", "'en'"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"en": ["x"], "de": ["ok", "  \\t"]}}',
     ["captions['de'][1]", "empty"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"en": [""]}}', ["captions['en'][0]", "empty"]),
    ('{"image_id": "2", "image": "img/2.png", "captions": {"en": ["x"]}, "split": "train"}', ["'split'", "unknown"]),
]


@pytest.mark.parametrize("bad,fragments", BAD_RECORDS)
def test_bad_record_names_file_line_and_key(root: Path, bad: str, fragments: list[str]) -> None:
    path = _write_lines(root / "m.jsonl", [json.dumps(_good(0)), json.dumps(_good(1)), bad, json.dumps(_good(3))])
    _raises(path, 3, *fragments)


def test_duplicate_image_id_names_both_lines(root: Path) -> None:
    dup = dict(_good(2), image_id="0")
    path = _write_lines(root / "m.jsonl", [json.dumps(_good(0)), json.dumps(_good(1)), "", json.dumps(dup)])
    message = _raises(path, 4, "duplicate image_id '0'")
    assert re.search(r"line 1\b", message), message


def test_missing_image_names_resolved_path(root: Path) -> None:
    path = _write_lines(root / "m.jsonl", [json.dumps(_good(0)), json.dumps(dict(_good(1), image="img/nope.png"))])
    _raises(path, 2, "not found", str(root / "img" / "nope.png"))
    # Without image checks the same file reads fine.
    assert len(read_manifest(path, check_images=False)) == 2


def test_unreadable_image_names_resolved_path(root: Path) -> None:
    (root / "img" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    path = _write_lines(root / "m.jsonl", [json.dumps(dict(_good(0), image="img/bad.png"))])
    _raises(path, 1, "unreadable image", str(root / "img" / "bad.png"))


def test_image_root_overrides_manifest_directory(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("manifests")
    path = _write_lines(elsewhere / "m.jsonl", [json.dumps(_good(0))])
    _raises(path, 1, "not found", str(elsewhere / "img" / "0.png"))
    assert read_manifest(path, image_root=root)[0].image_id == "0"


def test_require_languages_names_image_and_language(root: Path) -> None:
    rec = _good(1)
    rec["captions"] = {"en": ["x"], "de": []}
    path = _write_lines(root / "m.jsonl", [json.dumps(_good(0)), json.dumps(rec)])
    _raises(path, 2, "image_id '1'", "'de'", require_languages=["en", "de"])
    assert len(read_manifest(path, require_languages=["en"])) == 2


def test_empty_file_and_bad_utf8(root: Path) -> None:
    empty = root / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    _raises(empty, 1, "empty")
    binary = root / "bin.jsonl"
    binary.write_bytes(json.dumps(_good(0)).encode() + b"\n\xff\xfe{}\n")
    _raises(binary, 2, "UTF-8")


def test_bad_language_arguments_are_caller_errors(root: Path) -> None:
    path = _write_lines(root / "m.jsonl", [json.dumps(_good(0))])
    with pytest.raises(ValueError, match="'english'"):
        read_manifest(path, languages=["english"])
    with pytest.raises(ValueError, match="filtered out"):
        read_manifest(path, languages=["en"], require_languages=["de"])


def test_round_trip_and_language_filter(root: Path) -> None:
    records = [
        Record("0", "img/0.png", {"en": ["A dog.", "Ein Hund?"], "de": ["Ein Hund."], "ja": ["犬。"]}),
        Record("001", "img/1.png", {"de": ["Zwei"], "en": ["Two \"quoted\" cats"]}),
        Record("2", "img/2.png", {}),
    ]
    assert write_manifest(root / "m.jsonl", records) == 3
    assert read_manifest(root / "m.jsonl") == records
    # json written by write_manifest keeps non-ASCII text readable
    assert "犬" in (root / "m.jsonl").read_text(encoding="utf-8")
    filtered = read_manifest(root / "m.jsonl", languages=["ja", "en"])
    assert [list(r.captions) for r in filtered] == [["ja", "en"], ["en"], []]
    assert filtered[1].captions["en"] == ["Two \"quoted\" cats"]


def test_iso_639_1_list() -> None:
    assert len(ISO_639_1) == 184
    assert all(len(c) == 2 and c.isascii() and c.islower() for c in ISO_639_1)
    for code in ("en", "de", "fr", "cs", "zh", "ja", "es", "id", "ru", "tr", "ar", "bg", "da", "el", "et", "ko", "vi"):
        assert is_iso639_1(code)
    for code in ("EN", "eng", "xx", "zz", "", 1, None):
        assert not is_iso639_1(code)


SWAPS = {
    "en": ("The dog on the left looks right at the Left sign, LEFT of the leftmost car.",
           "The dog on the right looks left at the Right sign, RIGHT of the rightmost car."),
    "de": ("Links steht ein Hund, rechts eine Katze mit der linken Pfote am rechten Rand.",
           "Rechts steht ein Hund, links eine Katze mit der rechten Pfote am linken Rand."),
    "fr": ("Un chien à gauche, un chat à droite, le côté gauche est vide.",
           "Un chien à droite, un chat à gauche, le côté droit est vide."),
    "cs": ("Vlevo je pes, vpravo kočka, na levé straně strom.",
           "Vpravo je pes, vlevo kočka, na pravé straně strom."),
    "zh": ("左边有一只狗，右边有一只猫，左右各有一棵树。", "右边有一只狗，左边有一只猫，左右各有一棵树。"),
    "ja": ("左に犬、右に猫、ひだりの木。", "右に犬、左に猫、みぎの木。"),
    "es": ("Un perro a la izquierda y un gato a la derecha, con el brazo izquierdo.",
           "Un perro a la derecha y un gato a la izquierda, con el brazo derecho."),
    "id": ("Anjing di sebelah kiri, kucing di kanan. Kiri!",
           "Anjing di sebelah kanan, kucing di kiri. Kanan!"),
    "ru": ("Слева собака, справа кошка, в левом углу дерево и правая рука.",
           "Справа собака, слева кошка, в правом углу дерево и левая рука."),
    "tr": ("Solda bir köpek, sağda bir kedi; masanın solundaki sandalye.",
           "Sağda bir köpek, solda bir kedi; masanın sağındaki sandalye."),
}


@pytest.mark.parametrize("lang", sorted(SWAPS))
def test_swap_left_right_sentences(lang: str) -> None:
    before, after = SWAPS[lang]
    assert can_swap(lang)
    assert swap_left_right(before, lang) == after
    assert swap_left_right(after, lang) == before


def test_swap_is_whole_word_for_spaced_scripts() -> None:
    # Substrings of other words are untouched: "lefty", "Leftover", German "Linksverkehr", Turkish "solmak".
    assert swap_left_right("a lefty with leftovers; copyright", "en") == "a lefty with leftovers; copyright"
    assert swap_left_right("Linksverkehr links", "de") == "Linksverkehr rechts"
    assert swap_left_right("çiçek solmak üzere, sol elinde", "tr") == "çiçek solmak üzere, sağ elinde"
    # Punctuation and string boundaries still count as word boundaries.
    assert swap_left_right("left,right.(left)", "en") == "right,left.(right)"


def test_swap_unknown_language_unchanged() -> None:
    assert not can_swap("vi") and not can_swap("xx")
    assert swap_left_right("bên trái left", "vi") == "bên trái left"


def test_lexicon_pairs_swap_each_other() -> None:
    for lang in ("en", "de", "fr", "cs", "zh", "ja", "es", "id", "ru", "tr"):
        assert lang in LEFT_RIGHT_WORDS and LEFT_RIGHT_WORDS[lang]
    for lang, pairs in LEFT_RIGHT_WORDS.items():
        assert is_iso639_1(lang)
        for left, right in pairs:
            assert left != right
            # every right form turns into some left form of the lexicon and vice versa
            assert swap_left_right(right, lang) in {lft for lft, r in pairs if r == right}
            assert swap_left_right(left, lang) in {r for lft, r in pairs if lft == left}
    assert {"zh", "ja"} <= SUBSTRING_LANGUAGES
    assert ("Left", "Right") in LEFT_RIGHT_WORDS["en"]
    assert ("linken", "rechten") in LEFT_RIGHT_WORDS["de"]


def test_swap_mirrors_every_synthetic_caption() -> None:
    """Swapping a synthetic caption must give the caption of the mirrored scene, in every grammar and template.

    This is the property the paired flip relies on; it also catches colour or
    shape words that happen to contain a left/right form.
    """
    import itertools

    synth = pytest.importorskip("ccrk.synth.languages")
    from ccrk.synth.scene import COLOURS, POSITIONS, SHAPES, SIZES, Obj, Scene

    scenes = [Scene((Obj(s, c, z, p),)) for s, c, z, p in itertools.product(SHAPES, COLOURS, SIZES, POSITIONS)]
    scenes += [
        Scene((Obj(SHAPES[i % 7], COLOURS[i % 8], SIZES[i % 2], p), Obj(SHAPES[(i + 3) % 7], COLOURS[(i + 5) % 8],
              SIZES[(i + 1) % 2], q)))
        for i, (p, q) in enumerate(itertools.permutations(POSITIONS, 2))
    ]
    scenes.append(Scene((Obj("star", "red", "small", "left"), Obj("heart", "blue", "large", "center"),
                         Obj("cross", "green", "small", "right"))))
    checked = 0
    for code in synth.LANGUAGE_CODES:
        try:
            grammar = synth.get_language(code)
        except ModuleNotFoundError:
            continue
        assert can_swap(code), code
        for scene, template in itertools.product(scenes, range(grammar.N_TEMPLATES)):
            caption = grammar.describe(scene.description(), template)
            mirrored = grammar.describe(scene.mirrored().description(), template)
            assert swap_left_right(caption, code) == mirrored, (code, template, caption, mirrored)
        checked += 1
    if checked == 0:
        pytest.skip("no synthetic grammar modules yet")
