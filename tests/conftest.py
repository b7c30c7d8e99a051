"""Shared fixtures. Tests never reach the network: hubs are forced offline."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Real annotation files of xFlickr&CO and Multi30K (see shared/fixtures/README.md)."""
    path = SHARED / "fixtures"
    if not path.is_dir():
        pytest.skip(f"shared fixtures not found at {path}")
    return path
