"""Caption grammars, one module a language.

Every language renders the same :class:`~ccrk.synth.scene.Description` with
its own lexicon, word order, script and agreement; ``template`` picks one of
its paraphrase patterns. The registry maps ISO 639-1 codes to modules that
expose ``CODE``, ``N_TEMPLATES``, ``describe(desc, template) -> str`` and
``LEFT_RIGHT`` (the word forms for "left"/"right" the grammar can emit, used
to mirror captions when an image is flipped).
"""
from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Protocol

from ccrk.synth.scene import Description

#: Order matters: English first, then the K=6 set, then the K=10 additions.
LANGUAGE_CODES: tuple[str, ...] = ("en", "de", "fr", "cs", "zh", "ja", "es", "id", "ru", "tr")


class Language(Protocol):
    CODE: str
    N_TEMPLATES: int
    LEFT_RIGHT: tuple[tuple[str, str], ...]

    def describe(self, desc: Description, template: int) -> str: ...


def get_language(code: str) -> ModuleType:
    """The grammar module for ``code``; a clear error for codes we lack."""
    if code not in LANGUAGE_CODES:
        raise ValueError(f"no synthetic grammar for language {code!r}; available: {', '.join(LANGUAGE_CODES)}")
    return import_module(f"ccrk.synth.languages.{code}")
