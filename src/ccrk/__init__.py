"""ccrk: cross-lingual cross-modal retrieval with 1-to-K contrastive learning.

A library (no Snakemake inside) behind the ``ccrk`` command; the workflow in
``workflow/`` calls that command.
"""
from __future__ import annotations

__version__ = "0.1.0"
