"""Pieces every caption grammar would otherwise write again.

Only logic that is the same in every language that uses it lives here; word
order, agreement, lexicons and the templates themselves stay in the language
modules. Grammars with their own rule keep their own code: Indonesian writes
the serial comma ("A, B, dan C"), Turkish capitalises the dotted/dotless i,
and Japanese and Chinese end their sentences in "。" inside the templates.
"""
from __future__ import annotations

from collections.abc import Sequence


def check_template(code: str, template: object, n_templates: int) -> None:
    """Reject anything but an int in ``range(n_templates)`` with an error naming the language.

    ``bool`` is refused although it is an ``int`` subclass: ``describe(d, True)``
    is a caller's mistake, and silently rendering template 1 would hide it. The
    language code in the message tells which grammar of a multilingual run
    was called wrongly.
    """
    if isinstance(template, bool) or not isinstance(template, int) or not 0 <= template < n_templates:
        raise ValueError(f"language {code!r}: template must be an int in range({n_templates}), got {template!r}")


def join_list(items: Sequence[str], conjunction: str, separator: str = ", ") -> str:
    """"A", "A and B", "A, B and C": ``separator`` between items, ``conjunction`` before the last.

    No serial comma, as every grammar but Indonesian writes lists. Both glue
    strings carry their own spacing so that unspaced scripts (Chinese "、"/"和")
    use the same rule.
    """
    if len(items) == 1:
        return items[0]
    return separator.join(items[:-1]) + conjunction + items[-1]


def sentence(text: str) -> str:
    """Upper-case the first letter and add the full stop.

    Done once on the finished clause rather than per template, so a template
    may start with any word (a position adverb, an article, a verb) and still
    yield a well-formed sentence. Only the first character changes: proper
    capitals inside (German nouns) are already in the lexicon.
    """
    return text[0].upper() + text[1:] + "."
