"""ccrk.layout: the one declaration of the names the library, the workflow and the schema share."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ccrk import layout
from ccrk.layout import Setting, SettingError, parse_compare_name, parse_setting

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_the_schema_enums_are_the_layouts() -> None:
    definitions = SCHEMA["$defs"]
    assert tuple(definitions["objective_name"]["enum"]) == layout.OBJECTIVES
    workflow = SCHEMA["properties"]["workflow"]["properties"]
    assert set(workflow["datasets"]["items"]["enum"]) == set(layout.DATASETS)
    assert set(workflow["baselines"]["items"]["enum"]) == set(layout.OBJECTIVES) - {layout.ONE_TO_K}
    assert workflow["settings"]["items"]["pattern"] == f"^({layout.SETTING_PATTERN})$".replace(r"\d", "[0-9]")
    assert set(SCHEMA["properties"]["benchmarks"]["propertyNames"]["enum"]) == set(layout.DATASETS)
    external = SCHEMA["properties"]["external_models"]
    assert external["propertyNames"]["pattern"] == f"^{layout.EXTERNAL_NAME_PATTERN}$"
    entry = external["additionalProperties"]["properties"]
    assert tuple(entry["kind"]["enum"]) == layout.EXTERNAL_MODEL_KINDS
    assert set(entry["datasets"]["items"]["enum"]) == set(layout.DATASETS)


def test_external_runs_sit_beside_the_settings_and_cannot_be_taken_for_one() -> None:
    run = layout.EXTERNAL_RUN_DIR.format(dataset="xflickrco", model="xlm-roberta-base-ViT-B-32")
    assert run == "xflickrco/external/xlm-roberta-base-ViT-B-32"
    with pytest.raises(SettingError):
        parse_setting(layout.EXTERNAL_DIR)
    assert layout.NATIVE_MODEL_KIND not in layout.EXTERNAL_MODEL_KINDS


@pytest.mark.parametrize(("name", "expected"), [
    ("zero_shot", Setting("zero_shot", "zero_shot")),
    ("all_languages", Setting("all_languages", "all_languages")),
    ("single_language.de", Setting("single_language.de", "single_language", language="de")),
    ("few_shot.ja.25", Setting("few_shot.ja.25", "few_shot", language="ja", shots=25)),
])
def test_settings_parse_to_their_regime_language_and_shots(name: str, expected: Setting) -> None:
    setting = parse_setting(name)
    assert setting == expected
    assert setting.regime in layout.REGIMES
    assert setting.per_language == (expected.language is not None)


@pytest.mark.parametrize("name", ["few_shot", "few_shot.de", "single_language", "single_language.deu",
                                  "zero-shot", "all_languages.de", "few_shot.de.x", ""])
def test_anything_else_is_not_a_setting(name: str) -> None:
    with pytest.raises(SettingError, match="is not a setting"):
        parse_setting(name)


def test_groups_and_table_blocks() -> None:
    assert parse_setting("few_shot.de.5").group == "few_shot.5"
    assert parse_setting("single_language.fr").paper_setting == "few_shot_or_single_language"
    assert parse_setting("zero_shot").paper_setting == "zero_shot"


def test_path_templates_fill_in_as_run_directories_and_comparisons() -> None:
    run = layout.RUN_DIR.format(dataset="synth", setting="zero_shot", objective="cross_modal", seed=1)
    assert run == "synth/zero_shot/cross_modal/seed1"
    compare = layout.COMPARE_FILE.format(dataset="wit", setting="all_languages", seed=0, baseline="cross_modal")
    assert compare == "wit/all_languages/compare/seed0/one_to_k-vs-cross_modal.json"
    assert parse_compare_name(Path(compare).name) == ("one_to_k", "cross_modal")
    assert parse_compare_name(layout.compare_name("cross_lingual", "cross_modal")) == ("cross_lingual", "cross_modal")
    assert parse_compare_name("one_to_k_vs_cross_modal.json") is None


def test_the_module_imports_no_third_party_package() -> None:
    """The Snakefile imports it at start-up: it must stay standard library only."""
    code = ("import sys; import ccrk.layout; "
            "print(sorted(m for m in ('torch', 'numpy', 'yaml', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
