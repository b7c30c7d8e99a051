"""Models ``ccrk evaluate`` can rank with: ccrk's own, open_clip's and Hugging Face dual encoders.

``--model`` names one (:meth:`ModelSpec.parse`):

- ``DIR``: a ccrk model directory (``--tokenizer`` required), the only kind
  with a matching head, so the only one re-ranked at ``k_test``;
- ``open_clip:ARCH`` with ``--pretrained FILE`` (:mod:`.openclip`);
- ``hf:DIR``, a ``save_pretrained`` directory (:mod:`.huggingface`).

A :class:`ModelSpec` is checked before any data is read (paths exist, the
optional package is installed); :meth:`ModelSpec.load` builds the
:class:`RetrievalModel`. Torch and the model libraries are imported only
then, so parsing a spec is cheap.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ccrk.layout import EXTERNAL_MODEL_KINDS, NATIVE_MODEL_KIND

if TYPE_CHECKING:
    import torch

    from ccrk.evaluation.adapters.base import RetrievalModel

#: ``k_test_source`` of a model ranked by its similarities alone.
NO_MATCHING_HEAD = "no matching head: ranked by similarity alone"

__all__ = ["ModelSpec", "NO_MATCHING_HEAD", "RetrievalModel", "load_retrieval_model"]


def __getattr__(name: str):  # RetrievalModel without importing torch for a spec
    if name == "RetrievalModel":
        from ccrk.evaluation.adapters.base import RetrievalModel

        return RetrievalModel
    raise AttributeError(f"module 'ccrk.evaluation.adapters' has no attribute {name!r}")


@dataclass(frozen=True)
class ModelSpec:
    """What ``--model`` (with ``--tokenizer`` / ``--pretrained``) names; ``target`` is a path or an architecture."""

    kind: str
    target: str
    tokenizer: str | None = None
    pretrained: str | None = None

    @classmethod
    def parse(cls, value: str | os.PathLike[str], *, tokenizer: str | os.PathLike[str] | None = None,
              pretrained: str | os.PathLike[str] | None = None) -> ModelSpec:
        """``open_clip:ARCH``, ``hf:DIR`` or a ccrk model directory; a flag that kind does not use is an error."""
        text = os.fspath(value)
        kind, sep, rest = text.partition(":")
        if not sep or kind not in EXTERNAL_MODEL_KINDS:
            kind, rest = NATIVE_MODEL_KIND, text
        if not rest:
            raise ValueError(f"--model {text!r} names no model (expected DIR, open_clip:ARCH or hf:DIR)")
        tok = None if tokenizer is None else os.fspath(tokenizer)
        ckpt = None if pretrained is None else os.fspath(pretrained)
        if kind == NATIVE_MODEL_KIND and tok is None:
            raise ValueError(f"--model {text}: a ccrk model directory needs --tokenizer (the tokenizer it was "
                             f"trained with)")
        if kind != NATIVE_MODEL_KIND and tok is not None:
            raise ValueError(f"--tokenizer is for ccrk models; {kind} models bring their own (--model {text})")
        if kind != "open_clip" and ckpt is not None:
            raise ValueError(f"--pretrained is for open_clip:ARCH models, not --model {text}")
        return cls(kind, rest, tok, ckpt)

    @property
    def has_matching_head(self) -> bool:
        return self.kind == NATIVE_MODEL_KIND

    def check(self) -> None:
        """What can be checked before any data is read or model built: paths exist, packages are installed."""
        if self.kind == NATIVE_MODEL_KIND:
            from ccrk.evaluation.adapters.native import read_model_meta

            read_model_meta(Path(self.target))
        elif self.kind == "hf":
            from ccrk.evaluation.adapters.huggingface import fetch_hint

            directory = Path(self.target)
            if not (directory / "config.json").is_file():
                what = "does not exist" if not directory.exists() else "has no config.json"
                raise FileNotFoundError(f"Hugging Face model directory {directory} {what} ({fetch_hint(directory)})")
        else:
            from ccrk.evaluation.adapters.openclip import LOCAL_DIR, fetch_hint, import_open_clip

            import_open_clip()
            if self.target.startswith(LOCAL_DIR):
                if self.pretrained is not None:
                    raise ValueError(f"--pretrained is not used with open_clip:{self.target} (the folder holds "
                                     f"the weights)")
                folder = Path(self.target[len(LOCAL_DIR):])
                if not (folder / "open_clip_config.json").is_file():
                    raise FileNotFoundError(f"open_clip folder {folder} has no open_clip_config.json (open_clip's "
                                            f"local-dir: holds it and the weights)")
                return
            if self.pretrained is None:
                raise ValueError(f"open_clip:{self.target} needs --pretrained, a local checkpoint file "
                                 f"({fetch_hint(self.target)})")
            if not Path(self.pretrained).is_file():
                raise FileNotFoundError(f"open_clip checkpoint {self.pretrained} does not exist "
                                        f"({fetch_hint(self.target)})")

    def resolve_k_test(self, requested: int | str) -> tuple[int, str]:
        """The ``k_test`` to rank with and its source; a model without a matching head is ranked at 1."""
        if not self.has_matching_head:
            return 1, NO_MATCHING_HEAD
        from ccrk.evaluation.ktest import resolve_k_test

        return resolve_k_test(requested, self.target)

    def load(self, device: torch.device) -> RetrievalModel:
        if self.kind == NATIVE_MODEL_KIND:
            from ccrk.evaluation.adapters.native import NativeModel

            assert self.tokenizer is not None  # parse() requires it
            return NativeModel(self.target, self.tokenizer, device)
        if self.kind == "hf":
            from ccrk.evaluation.adapters.huggingface import HFDualEncoder

            return HFDualEncoder(self.target, device)
        from ccrk.evaluation.adapters.openclip import OpenClipModel

        return OpenClipModel(self.target, self.pretrained, device)

    def __str__(self) -> str:
        return self.target if self.kind == NATIVE_MODEL_KIND else f"{self.kind}:{self.target}"


def load_retrieval_model(value: str | os.PathLike[str], device: torch.device, *,
                         tokenizer: str | os.PathLike[str] | None = None,
                         pretrained: str | os.PathLike[str] | None = None) -> RetrievalModel:
    """Parse, check and build in one call (the library entry point; ``ccrk evaluate`` does the steps apart)."""
    spec = ModelSpec.parse(value, tokenizer=tokenizer, pretrained=pretrained)
    spec.check()
    return spec.load(device)
