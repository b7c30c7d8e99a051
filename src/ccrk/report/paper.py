"""The paper's published Table 1, shipped with the package as data.

Reproduced numbers are always shown next to these, never instead of them.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd

#: Table 1 columns: (dataset, metric, language) for every numeric column.
COLUMNS: dict[str, tuple[str, str, str]] = {
    "xfc_ir_r1": ("xflickrco", "t2i_r1", "avg"),
    "xfc_tr_r1": ("xflickrco", "i2t_r1", "avg"),
    "xfc_mrv4": ("xflickrco", "mrv", "en,de,ja,zh"),
    "wit_ir": ("wit", "t2i_r1", "avg"),
    "wit_tr": ("wit", "i2t_r1", "avg"),
    "m30k_en": ("multi30k", "mR", "en"),
    "m30k_de": ("multi30k", "mR", "de"),
    "m30k_fr": ("multi30k", "mR", "fr"),
    "m30k_cs": ("multi30k", "mR", "cs"),
    "m30k_mrv4": ("multi30k", "mrv", "en,de,fr,cs"),
    "coco_en": ("mscoco", "mR", "en"),
    "coco_zh": ("mscoco", "mR", "zh"),
    "coco_ja": ("mscoco", "mR", "ja"),
}

SOURCE = "Nie et al., KDD 2024 (arXiv 2406.18254), Table 1"


def load_table1() -> pd.DataFrame:
    """Table 1 as published, one row per (setting, model)."""
    with resources.files("ccrk.resources.paper").joinpath("table1.csv").open("r", encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype={"setting": str, "model": str, "pretrain_images_texts": str})
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"paper table1.csv lacks columns {sorted(missing)}")
    return table


def table1_long() -> pd.DataFrame:
    """Table 1 in long form: setting, model, dataset, metric, language, value (reported cells only)."""
    table = load_table1()
    long = table.melt(
        id_vars=["setting", "model", "pretrain_images_texts"], value_vars=list(COLUMNS), var_name="column"
    ).dropna(subset=["value"])
    keys = pd.DataFrame.from_dict(COLUMNS, orient="index", columns=["dataset", "metric", "language"])
    return long.join(keys, on="column").reset_index(drop=True)
