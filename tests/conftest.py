"""Shared fixtures. Tests never reach the network: hubs are forced offline."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from pathlib import Path

import pytest

#: Real annotation files of xFlickr&CO, Flickr30k and Multi30K, byte for byte as upstream publishes
#: them (provenance in tests/fixtures/README.md); kept in the repository so that CI exercises the
#: parsers on the real formats even where no shared checkout sits beside the clone.
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Real annotation files of xFlickr&CO and Multi30K (see tests/fixtures/README.md)."""
    if not (FIXTURES / "iglue").is_dir():
        raise FileNotFoundError(f"annotation fixtures missing under {FIXTURES}; restore them from git")
    return FIXTURES


@pytest.fixture(scope="module")
def one_torch_thread():
    """A module's model work on one intra-op thread (as the workflow runs it), restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
