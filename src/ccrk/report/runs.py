"""Find and load the evaluation outputs the tables and figures are made from.

The inputs are a fixed directory layout (what the workflow's ``evaluate`` and
``compare`` rules write; :mod:`ccrk.layout` names its parts)::

    <metrics_dir>/<dataset>/<setting>/<objective>/seed<seed>/metrics.json   ccrk evaluate
    <metrics_dir>/<dataset>/<setting>/<objective>/seed<seed>/ranks.npz      (beside it)
    <metrics_dir>/<dataset>/<setting>/compare/seed<seed>/<a>-vs-<b>.json    ccrk compare --out
    <metrics_dir>/<dataset>/external/<name>/{metrics.json,ranks.npz}         ccrk evaluate --model open_clip:/hf:

The pre-training logs are read by :mod:`ccrk.report.logs`.

- ``dataset``: ``xflickrco``, ``wit``, ``multi30k``, ``mscoco`` (the paper's) or
  ``synth`` (the embedded synthetic benchmark).
- ``setting``: ``zero_shot``, ``all_languages``, ``single_language.<lang>`` or
  ``few_shot.<lang>.<shots>``.
- ``objective``: ``one_to_k``, ``cross_lingual``, ``cross_modal``; the
  comparison files are named ``one_to_k-vs-<baseline>.json``.
- ``external/<name>``: a model trained elsewhere (``workflow``'s
  ``external_models``), evaluated as it is; it becomes a :class:`Run` with
  the setting ``external``, its name as objective and no seed, kept apart in
  :attr:`Results.external` (the per-language and MRV tables show it).

Only what is found is used. Names starting with ``.`` (hidden files, the
temporary directories of :mod:`ccrk.atomic`) are skipped; any other entry
that does not fit the layout, a run directory without both of its files, or
a file that is not what its name says is an error naming the path, raised
before anything is written. Other files inside a run directory (a log, the
pre-training ``model/``) are ignored.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccrk.evaluation.rankset import RankSet
from ccrk.layout import (
    COMPARE_DIR,
    DATASETS,
    EXTERNAL_DIR,
    EXTERNAL_NAME_PATTERN,
    METRICS_FILE,
    OBJECTIVES,
    RANKS_FILE,
    Setting,
    SettingError,
    parse_compare_name,
)
from ccrk.layout import parse_setting as _parse_setting_name

DIRECTIONS: tuple[str, ...] = ("t2i", "i2t")
DIRECTION_LABELS: dict[str, str] = {"t2i": "text→image (IR)", "i2t": "image→text (TR)", "mean": "mean of both"}
METRICS_FORMAT = "ccrk.metrics/1"
COMPARE_FORMAT = "ccrk.compare/1"

LAYOUT = (
    "<metrics_dir>/<dataset>/<setting>/<objective>/seed<seed>/{metrics.json,ranks.npz}, "
    "<metrics_dir>/<dataset>/<setting>/compare/seed<seed>/one_to_k-vs-<baseline>.json and "
    "<metrics_dir>/<dataset>/external/<name>/{metrics.json,ranks.npz}"
)

_SEED = re.compile(r"seed([0-9]+)")
_EXTERNAL_NAME = re.compile(EXTERNAL_NAME_PATTERN)

#: The setting of an external model's rows: evaluated as it is, not fine-tuned by ccrk.
EXTERNAL_SETTING = Setting(EXTERNAL_DIR, EXTERNAL_DIR)


class ResultsError(ValueError):
    """An input that does not fit the layout or its format; the message names the path."""


def parse_setting(name: str, path: Path | None = None) -> Setting:
    """The setting a directory is named after; a :class:`ResultsError` naming ``path`` for any other name."""
    try:
        return _parse_setting_name(name)
    except SettingError as err:
        where = f"{path}: " if path is not None else ""
        raise ResultsError(f"{where}{err} (layout: {LAYOUT})") from None


@dataclass(frozen=True)
class Run:
    """One ``ccrk evaluate`` run directory and its loaded ``metrics.json``.

    An external model's run has :data:`EXTERNAL_SETTING`, its name as ``objective`` and ``seed`` ``None``.
    """

    dataset: str
    setting: Setting
    objective: str
    seed: int | None
    directory: Path
    metrics: dict[str, Any] = field(repr=False, compare=False)

    @property
    def metrics_path(self) -> Path:
        return self.directory / METRICS_FILE

    @property
    def ranks_path(self) -> Path:
        return self.directory / RANKS_FILE

    @property
    def languages(self) -> list[str]:
        return list(self.metrics["languages"])

    @property
    def mrv_languages(self) -> list[str]:
        mrv = self.metrics["mrv"]
        return list(mrv["languages"]) if mrv else []

    @property
    def alpha(self) -> float:
        return float(self.metrics["bootstrap"]["alpha"])

    def stat(self, *key: str) -> dict[str, float]:
        """``{"value", "low", "high"}`` at ``key`` of ``metrics.json`` (validated on load)."""
        node: Any = self.metrics
        for part in key:
            node = node[part]
        return node

    def rankset(self) -> RankSet:
        """The per-instance ranks of ``ranks.npz`` (loaded on demand: tables do not need them)."""
        rs = RankSet.load(self.ranks_path)
        if list(rs.languages) != self.languages:
            raise ResultsError(
                f"{self.ranks_path}: ranks languages {rs.languages} differ from {self.metrics_path}'s {self.languages}"
            )
        return rs


@dataclass(frozen=True)
class Comparison:
    """One ``ccrk compare --out`` JSON: objective ``a`` minus objective ``b`` on the same test set."""

    dataset: str
    setting: Setting
    seed: int
    a: str
    b: str
    path: Path
    doc: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Results:
    metrics_dir: Path
    runs: list[Run]
    comparisons: list[Comparison]
    #: Models trained elsewhere (``<dataset>/external/<name>``), apart from ``runs`` so that what reads
    #: objectives and seeds (Table 1, significance, figures) never meets them.
    external: list[Run] = field(default_factory=list)

    @property
    def datasets(self) -> list[str]:
        found = {r.dataset for r in (*self.runs, *self.external)}
        return [d for d in DATASETS if d in found]

    @property
    def objectives(self) -> list[str]:
        found = {r.objective for r in self.runs}
        return [o for o in OBJECTIVES if o in found]

    @property
    def alphas(self) -> list[float]:
        return sorted({r.alpha for r in (*self.runs, *self.external)})


def entries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing ({what})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path}: not UTF-8 text ({err}); expected {what}") from err
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                           f"expected {what}") from err


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_real(x: Any) -> bool:
    """A number, NaN included (a diverged training step logs one)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_stat(tree: Any, key: tuple[str, ...], path: Path) -> None:
    node = tree
    for n, part in enumerate(key):
        if not isinstance(node, dict) or part not in node:
            raise ResultsError(f"{path}: missing {'.'.join(key[: n + 1])} (not a complete ccrk evaluate metrics.json)")
        node = node[part]
    for bound in ("value", "low", "high"):
        if not isinstance(node, dict) or not is_number(node.get(bound)):
            raise ResultsError(f"{path}: {'.'.join(key)}.{bound} is missing or not a finite number")


def load_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``metrics.json`` of ``ccrk evaluate``, checked for every number the tables read."""
    path = Path(path)
    doc = _read_json(path, "the metrics.json of ccrk evaluate")
    if not isinstance(doc, dict) or doc.get("format") != METRICS_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(
            f"{path}: format is {found!r}, expected {METRICS_FORMAT!r} (the metrics.json of ccrk evaluate)"
        )
    languages = doc.get("languages")
    if not isinstance(languages, list) or not languages or not all(isinstance(x, str) for x in languages):
        raise ResultsError(f"{path}: 'languages' must be a non-empty list of language codes")
    boot = doc.get("bootstrap")
    if not isinstance(boot, dict) or not is_number(boot.get("alpha")) or not 0 < boot["alpha"] < 1:
        raise ResultsError(f"{path}: 'bootstrap.alpha' is missing or not in (0, 1)")
    for lang in languages:
        for d in DIRECTIONS:
            _check_stat(doc, ("per_language", lang, d, "R@1"), path)
        _check_stat(doc, ("per_language", lang, "mR"), path)
    for d in DIRECTIONS:
        _check_stat(doc, ("average", d, "R@1"), path)
        for spread in ("max_minus_min", "std"):
            _check_stat(doc, ("recall_spread", d, "R@1", spread), path)
    _check_stat(doc, ("average", "mR"), path)
    if "mrv" not in doc:
        raise ResultsError(f"{path}: missing 'mrv' (null when the run computed no MRV)")
    mrv = doc["mrv"]
    if mrv is not None:
        langs = mrv.get("languages") if isinstance(mrv, dict) else None
        if not isinstance(langs, list) or len(langs) < 2 or not set(langs) <= set(languages):
            raise ResultsError(f"{path}: mrv.languages must list 2 or more of the run's languages {languages}")
        for d in (*DIRECTIONS, "mean"):
            _check_stat(doc, ("mrv", d), path)
    return doc


_COMPARE_KEYS = ("metric", "key", "a", "b", "diff", "low", "high", "p_value")


def load_comparison(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``ccrk compare --out`` JSON, checked for every field the significance table reads."""
    path = Path(path)
    doc = _read_json(path, "the JSON of ccrk compare --out")
    if not isinstance(doc, dict) or doc.get("format") != COMPARE_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ResultsError(f"{path}: format is {found!r}, expected {COMPARE_FORMAT!r} (the JSON of ccrk compare --out)")
    rows = doc.get("metrics")
    if not isinstance(rows, list) or not rows:
        raise ResultsError(f"{path}: 'metrics' must be a non-empty list")
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or any(k not in row for k in _COMPARE_KEYS):
            raise ResultsError(f"{path}: metrics[{n}] lacks one of {list(_COMPARE_KEYS)}")
        if not all(is_number(row[k]) for k in ("a", "b", "diff", "low", "high", "p_value")):
            raise ResultsError(f"{path}: metrics[{n}] ({row['metric']}) holds a value that is not a finite number")
    boot = doc.get("bootstrap")
    if not isinstance(boot, dict) or not is_number(boot.get("alpha")):
        raise ResultsError(f"{path}: 'bootstrap.alpha' is missing")
    return doc


def seed_of(path: Path, layout: str) -> int:
    m = _SEED.fullmatch(path.name)
    if m is None or not path.is_dir():
        raise ResultsError(f"{path}: expected a directory seed<N> (layout: {layout})")
    return int(m.group(1))


def check_unique_seeds(seed_dirs: list[Path]) -> None:
    seen: dict[int, Path] = {}
    for p in seed_dirs:
        seed = int(p.name[4:])
        if seed in seen:
            raise ResultsError(f"{p} and {seen[seed]} are the same seed {seed}")
        seen[seed] = p


def _load_run(dataset: str, setting: Setting, objective: str, seed_dir: Path) -> Run:
    seed = None if setting is EXTERNAL_SETTING else seed_of(seed_dir, LAYOUT)
    metrics_path, ranks_path = seed_dir / METRICS_FILE, seed_dir / RANKS_FILE
    for needed in (metrics_path, ranks_path):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{needed} is missing: an evaluation run directory holds metrics.json and ranks.npz "
                f"(written together by ccrk evaluate)"
            )
    metrics = load_metrics(metrics_path)
    if setting.per_language and setting.language not in metrics["languages"]:
        raise ResultsError(
            f"{metrics_path}: setting {setting.name} is for language {setting.language!r}, but the run was "
            f"evaluated on {metrics['languages']}"
        )
    return Run(dataset, setting, objective, seed, seed_dir, metrics)


def _load_external(dataset: str, model_dir: Path) -> Run:
    """An external model's run directory ``<dataset>/external/<name>``."""
    if not model_dir.is_dir() or _EXTERNAL_NAME.fullmatch(model_dir.name) is None:
        raise ResultsError(f"{model_dir}: expected an external model's directory named {EXTERNAL_NAME_PATTERN} "
                           f"(layout: {LAYOUT})")
    return _load_run(dataset, EXTERNAL_SETTING, model_dir.name, model_dir)


def _objective_pair(name: str) -> tuple[str, str] | None:
    """The two objectives a comparison file is named after, or None when the name is not one."""
    pair = parse_compare_name(name)
    return pair if pair is not None and all(o in OBJECTIVES for o in pair) else None


def _load_comparisons(dataset: str, setting: Setting, compare_dir: Path) -> list[Comparison]:
    out = []
    seed_dirs = entries(compare_dir)
    for seed_dir in seed_dirs:
        seed = seed_of(seed_dir, LAYOUT)
        for path in entries(seed_dir):
            pair = _objective_pair(path.name)
            if pair is None or not path.is_file():
                raise ResultsError(
                    f"{path}: expected a file <objective>-vs-<objective>.json, e.g. one_to_k-vs-cross_modal.json "
                    f"(layout: {LAYOUT})"
                )
            out.append(Comparison(dataset, setting, seed, *pair, path, load_comparison(path)))
    check_unique_seeds(seed_dirs)
    return out


def discover(metrics_dir: str | os.PathLike[str]) -> Results:
    """Every evaluation run and comparison under ``metrics_dir`` (see the module docstring for the layout)."""
    root = Path(metrics_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"metrics directory {root} does not exist (expected {LAYOUT})")
    runs: list[Run] = []
    comparisons: list[Comparison] = []
    external: list[Run] = []
    for ds_dir in entries(root):
        if ds_dir.name not in DATASETS or not ds_dir.is_dir():
            raise ResultsError(f"{ds_dir}: not a dataset directory; expected one of {', '.join(DATASETS)} "
                               f"(layout: {LAYOUT})")
        for st_dir in entries(ds_dir):
            if not st_dir.is_dir():
                raise ResultsError(f"{st_dir}: expected a setting directory (layout: {LAYOUT})")
            if st_dir.name == EXTERNAL_DIR:
                external.extend(_load_external(ds_dir.name, model_dir) for model_dir in entries(st_dir))
                continue
            setting = parse_setting(st_dir.name, st_dir)
            for ob_dir in entries(st_dir):
                if ob_dir.name == COMPARE_DIR and ob_dir.is_dir():
                    comparisons.extend(_load_comparisons(ds_dir.name, setting, ob_dir))
                    continue
                if ob_dir.name not in OBJECTIVES or not ob_dir.is_dir():
                    raise ResultsError(f"{ob_dir}: expected an objective directory ({', '.join(OBJECTIVES)}) or "
                                       f"{COMPARE_DIR}/ (layout: {LAYOUT})")
                seed_dirs = entries(ob_dir)
                for seed_dir in seed_dirs:
                    runs.append(_load_run(ds_dir.name, setting, ob_dir.name, seed_dir))
                check_unique_seeds(seed_dirs)
    if not runs and not external:
        raise ResultsError(f"no evaluation runs under {root} (expected {LAYOUT})")
    return _sorted_results(root, runs, comparisons, external)


def _sorted_results(root: Path, runs: list[Run], comparisons: list[Comparison],
                    external: list[Run] | None = None) -> Results:
    order = {d: n for n, d in enumerate(DATASETS)}
    obj = {o: n for n, o in enumerate(OBJECTIVES)}
    runs.sort(key=lambda r: (order[r.dataset], r.setting.name, obj[r.objective], r.seed))
    comparisons.sort(key=lambda c: (order[c.dataset], c.setting.name, c.seed, obj[c.b]))
    external = sorted(external or [], key=lambda r: (order[r.dataset], r.objective))
    return Results(root, runs, comparisons, external)


def _named(path: Path, what: str, names: tuple[str, ...]) -> str:
    if path.name not in names:
        raise ResultsError(f"{path}: expected {what} directory ({', '.join(names)}) (layout: {LAYOUT})")
    return path.name


def collect(metrics_files: Sequence[str | os.PathLike[str]],
            compare_files: Sequence[str | os.PathLike[str]] = (),
            external_files: Sequence[str | os.PathLike[str]] = ()) -> Results:
    """Exactly the runs, comparisons and external models' runs named (what the workflow's rules declare).

    Walking ``metrics_dir`` (:func:`discover`) also finds the runs of an
    earlier configuration (a dropped seed or objective) still on disk and
    averages them into the tables; the workflow passes the files it built
    instead. Each path must sit in the layout (``LAYOUT``), which says its
    dataset, setting, objective and seed.
    """
    runs: list[Run] = []
    seen: dict[tuple[str, str, str, int], Path] = {}
    for given in metrics_files:
        path = Path(given)
        if path.name != METRICS_FILE:
            raise ResultsError(f"{path}: expected a {METRICS_FILE} of ccrk evaluate (layout: {LAYOUT})")
        seed_dir = path.parent
        objective = _named(seed_dir.parent, "an objective", OBJECTIVES)
        dataset = _named(seed_dir.parent.parent.parent, "a dataset", DATASETS)
        run = _load_run(dataset, parse_setting(seed_dir.parent.parent.name, seed_dir.parent.parent), objective,
                        seed_dir)
        key = (run.dataset, run.setting.name, run.objective, run.seed)
        if key in seen:
            raise ResultsError(f"{path} and {seen[key]} are the same run {key}")
        seen[key] = path
        runs.append(run)
    external: list[Run] = []
    for given in external_files:
        path = Path(given)
        if path.name != METRICS_FILE or path.parent.parent.name != EXTERNAL_DIR:
            raise ResultsError(f"{path}: expected <dataset>/{EXTERNAL_DIR}/<name>/{METRICS_FILE} (layout: {LAYOUT})")
        run = _load_external(_named(path.parent.parent.parent, "a dataset", DATASETS), path.parent)
        key = (run.dataset, EXTERNAL_DIR, run.objective, 0)
        if key in seen:
            raise ResultsError(f"{path} and {seen[key]} are the same external model on the same dataset")
        seen[key] = path
        external.append(run)
    if not runs and not external:
        raise ResultsError(f"no evaluation runs given (expected files like {LAYOUT})")
    comparisons: list[Comparison] = []
    for given in compare_files:
        path = Path(given)
        pair = _objective_pair(path.name)
        compare_dir = path.parent.parent
        if pair is None or compare_dir.name != COMPARE_DIR:
            raise ResultsError(f"{path}: expected <dataset>/<setting>/{COMPARE_DIR}/seed<seed>/<a>-vs-<b>.json "
                               f"(layout: {LAYOUT})")
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (ccrk compare --out writes it)")
        dataset = _named(compare_dir.parent.parent, "a dataset", DATASETS)
        setting = parse_setting(compare_dir.parent.name, compare_dir.parent)
        comparisons.append(Comparison(dataset, setting, seed_of(path.parent, LAYOUT), *pair, path,
                                      load_comparison(path)))
    roots = [Path(p).parent.parent.parent.parent for p in metrics_files]
    roots += [Path(p).parent.parent.parent.parent for p in external_files]
    root = Path(os.path.commonpath([str(r) for r in roots]))
    return _sorted_results(root, runs, comparisons, external)
