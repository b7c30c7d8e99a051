"""open_clip models (``pip install -e '.[open_clip]'``): ``--model open_clip:ARCH --pretrained FILE``.

Built and loaded by open_clip itself (``create_model_and_transforms`` with
the checkpoint file, its evaluation preprocessing, ``get_tokenizer``), so a
checkpoint ranks here exactly as it does in open_clip. ``ARCH`` is an
architecture open_clip knows (``open_clip.list_models()``, e.g.
``xlm-roberta-base-ViT-B-32``), the path of a model-config JSON of one's own
(registered under its file stem, as ``open_clip.add_model_config`` does), or
open_clip's ``local-dir:DIR`` (``open_clip_config.json`` and weights in one
folder; ``--pretrained`` is then not used). Nothing is downloaded: an
architecture whose text tower is a Hugging Face model (the XLM-R ones) needs
that model's config and tokenizer in the local Hugging Face cache.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ccrk.evaluation.adapters.base import RetrievalModel, encode_image_features, encode_text_features
from ccrk.evaluation.encode import ImageEncoding, TextEncoding
from ccrk.provenance import config_hash

#: open_clip's prefix for a folder holding its config and weights.
LOCAL_DIR = "local-dir:"
INSTALL = "pip install -e '.[open_clip]' (the open_clip_torch package)"


def import_open_clip() -> Any:
    """The ``open_clip`` module; a missing optional extra is bad input (a one-line error saying how to install it)."""
    try:
        import open_clip
    except ImportError as err:
        raise ValueError(f"--model open_clip:... needs open_clip: {INSTALL} ({err})") from None
    return open_clip


def fetch_hint(arch: str) -> str:
    return (f"on a machine with network: python -c \"import open_clip; open_clip.create_model_and_transforms("
            f"'{arch}', pretrained='<tag from open_clip.list_pretrained()>', cache_dir='ckpt')\", then pass the "
            f"downloaded file as --pretrained")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class OpenClipModel(RetrievalModel):
    """An open_clip ``CLIP``/``CustomTextCLIP`` from a local checkpoint (a dual encoder: no matching head)."""

    kind = "open_clip"

    def __init__(self, arch: str, pretrained: str | os.PathLike[str] | None, device: torch.device) -> None:
        super().__init__(device)
        open_clip = import_open_clip()
        self.arch = register_architecture(arch)
        self.pretrained = None if pretrained is None else Path(pretrained)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.arch, pretrained=None if self.pretrained is None else str(self.pretrained), device=device
            )
            tokenizer = open_clip.get_tokenizer(self.arch)
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            tower = _hf_text_tower(open_clip, self.arch)
            needs = (f"its text tower {tower!r} must be in the local Hugging Face cache (on a machine with "
                     f"network: huggingface-cli download {tower}, then copy the cache)" if tower
                     else fetch_hint(self.arch))
            raise ValueError(
                f"open_clip cannot build {self.arch!r} from {self.pretrained or 'its folder'} offline: {reason} "
                f"({needs})"
            ) from err
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.config = open_clip.get_model_config(self.arch) if not self.arch.startswith(LOCAL_DIR) else \
            json.loads((Path(self.arch[len(LOCAL_DIR):]) / "open_clip_config.json").read_text(encoding="utf-8"))

    def encode_images(self, paths: Sequence[Path], batch_size: int, num_workers: int = 0) -> ImageEncoding:
        return encode_image_features(paths, self.preprocess, self.model.encode_image, batch_size, self.device,
                                     num_workers)

    def encode_texts(self, texts: Sequence[str], batch_size: int) -> TextEncoding:
        return encode_text_features(texts, lambda batch: {"text": self.tokenizer(batch)}, self.model.encode_text,
                                    batch_size, self.device)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "arch": self.arch,
                               "path": None if self.pretrained is None else str(self.pretrained),
                               "config_hash": config_hash(self.config or {})}
        if self.pretrained is not None:
            out["sha256"] = file_sha256(self.pretrained)
        return out

    @property
    def tokenizer_label(self) -> str:
        return f"open_clip.get_tokenizer({self.arch!r})"


def _hf_text_tower(open_clip: Any, arch: str) -> str | None:
    """The Hugging Face model an architecture's text tower is built from (XLM-R, RoBERTa), if any."""
    config = open_clip.get_model_config(arch) if not arch.startswith(LOCAL_DIR) else None
    text = (config or {}).get("text_cfg", {})
    return text.get("hf_model_name") or text.get("hf_tokenizer_name")


def register_architecture(arch: str) -> str:
    """The name open_clip knows ``arch`` by: a model-config JSON is registered under its file stem first."""
    if arch.startswith(LOCAL_DIR) or not arch.endswith(".json"):
        return arch
    path = Path(arch)
    if not path.is_file():
        raise FileNotFoundError(f"open_clip model config {path} does not exist (a JSON with embed_dim, vision_cfg "
                                f"and text_cfg, as in open_clip/model_configs/)")
    import_open_clip().add_model_config(path)
    return path.stem
