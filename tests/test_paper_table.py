"""The paper's Table 1 ships with the package and reads back as published."""
from __future__ import annotations

import pandas as pd

from ccrk.report.paper import COLUMNS, load_table1, table1_long


def test_table1_matches_the_shared_transcription(fixtures_dir) -> None:
    shipped = load_table1()
    shared = pd.read_csv(fixtures_dir / "paper" / "table1.csv")
    pd.testing.assert_frame_equal(shipped.reset_index(drop=True), shared, check_dtype=False)


def test_known_cells_and_long_form() -> None:
    table = load_table1()
    row = table[(table.setting == "zero_shot") & (table.model == "CCR10-E")].iloc[0]
    assert row.xfc_ir_r1 == 73.30 and row.xfc_mrv4 == 7.89 and row.m30k_mrv4 == 2.53
    long = table1_long()
    assert set(long.column) <= set(COLUMNS)
    assert not long.value.isna().any()
    xu = long[(long.model == "xUNITER") & (long.setting == "zero_shot")]
    assert set(xu.dataset) == {"xflickrco", "wit"}  # the paper reports nothing else for xUNITER
    assert len(long) == int(table[list(COLUMNS)].notna().sum().sum())
