"""The near-duplicate ground truth of the synthetic test split: each image's partner and what differs.

``ccrk synth`` writes it as ``scenes/<split>.jsonl`` (``near_duplicate_of``,
``changed``); every test image has exactly one partner that differs in one
attribute of one object. A record that breaks this is an error naming the file
and line.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ccrk.evaluation.data import EvalData

#: What a near-duplicate pair can differ in (``ccrk.synth.generate.near_duplicate``).
ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "size", "position")


@dataclass(frozen=True)
class Pairing:
    """Per test image (``EvalData.image_ids`` order): its near-duplicate partner and what differs."""

    partner: np.ndarray  # [I] int64, index of the partner image
    attribute: np.ndarray  # [I] int64, index into ATTRIBUTES

    @property
    def pair(self) -> np.ndarray:
        """``[I]`` id of each image's pair (the smaller of the two indices): the bootstrap unit."""
        return np.minimum(np.arange(len(self.partner)), self.partner)

    @property
    def n_pairs(self) -> int:
        return int(np.unique(self.pair).size)


def read_pairing(scenes: str | os.PathLike[str], data: EvalData) -> Pairing:
    """Read the near-duplicate ground truth of ``data``'s images from a ``scenes/<split>.jsonl`` file.

    Refused, with the file and line (or image id): a missing file, a line
    that is not a scene record, an image id twice or not in the manifest, an
    image without a partner or with a partner that is not in the file, not in
    the manifest or does not name it back, partners that disagree on what
    differs, and a manifest image the file has no scene for.
    """
    path = Path(scenes)
    manifest = data.manifest
    if not path.is_file():
        raise FileNotFoundError(
            f"scenes file {path} does not exist (the ground truth ccrk synth writes as scenes/<split>.jsonl "
            f"beside the manifests)"
        )
    index = {image_id: n for n, image_id in enumerate(data.image_ids)}
    rows: dict[str, tuple[int, str | None, int | None]] = {}  # image_id -> (line, partner id, attribute)
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}: not valid UTF-8 at byte {err.start}") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: malformed JSON at column {err.colno}: {err.msg}") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("image_id"), str):
                raise ValueError(f"{where}: expected a scene record with a string 'image_id'")
            image_id = obj["image_id"]
            if image_id in rows:
                raise ValueError(f"{where}: duplicate image_id {image_id!r} (first on line {rows[image_id][0]})")
            if image_id not in index:
                raise ValueError(f"{where}: image_id {image_id!r} is not in the manifest {manifest}")
            partner = obj.get("near_duplicate_of")
            if partner is not None and not isinstance(partner, str):
                raise ValueError(f"{where}: 'near_duplicate_of' of {image_id!r} must be an image id, got {partner!r}")
            changed = obj.get("changed")
            attribute = None
            if partner is not None:
                ok = (isinstance(changed, list) and len(changed) == 2 and isinstance(changed[0], int)
                      and not isinstance(changed[0], bool) and changed[1] in ATTRIBUTES)
                if not ok:
                    raise ValueError(
                        f"{where}: 'changed' of {image_id!r} must be [object index, attribute] with attribute one "
                        f"of {', '.join(ATTRIBUTES)}; got {changed!r}"
                    )
                attribute = ATTRIBUTES.index(changed[1])
            rows[image_id] = (lineno, partner, attribute)

    for image_id, (lineno, partner, attribute) in rows.items():
        where = f"{path}:{lineno}"
        if partner is None:
            raise ValueError(
                f"{where}: image_id {image_id!r} has no near-duplicate partner (near_duplicate_of is null); "
                "the diagnostic needs a split of near-duplicate pairs (the synthetic test or val split)"
            )
        if partner not in index:
            raise ValueError(f"{where}: partner {partner!r} of image_id {image_id!r} is not in the manifest {manifest}")
        if partner not in rows:
            raise ValueError(f"{where}: partner {partner!r} of image_id {image_id!r} has no scene in {path}")
        back_line, back, back_attribute = rows[partner]
        if back != image_id:
            raise ValueError(
                f"{where}: image_id {image_id!r} names partner {partner!r}, but line {back_line} gives "
                f"{partner!r} the partner {back!r}"
            )
        if back_attribute != attribute:
            raise ValueError(
                f"{where}: image_id {image_id!r} and its partner {partner!r} (line {back_line}) disagree on the "
                "attribute that differs"
            )
    missing = [image_id for image_id in data.image_ids if image_id not in rows]
    if missing:
        raise ValueError(
            f"{manifest}: image_id {missing[0]!r} has no scene in {path}"
            + (f" ({len(missing) - 1} more missing)" if len(missing) > 1 else "")
            + "; were the manifest and the scenes file written by the same ccrk synth run?"
        )
    partner_index = np.array([index[rows[i][1]] for i in data.image_ids], dtype=np.int64)  # type: ignore[index]
    attributes = np.array([rows[i][2] for i in data.image_ids], dtype=np.int64)
    return Pairing(partner=partner_index, attribute=attributes)
