"""What migrations that replace a function need: an earlier migration's SQL text, edited.

A migration that changes a function derives the new body from the text an earlier migration
executed, so each change reads as its edits and the earlier version stays where it was made.
"""

from __future__ import annotations


def or_replace(body: str, name: str) -> str:
    """`CREATE FUNCTION name` -> `CREATE OR REPLACE FUNCTION name` (keeps its grants)."""
    replaced = body.replace(f"CREATE FUNCTION {name}", f"CREATE OR REPLACE FUNCTION {name}", 1)
    assert replaced != body, name
    return replaced


def edited(text: str, edits: list[tuple[str, str]]) -> str:
    """`text` with each (before, after) applied; every `before` must occur exactly once."""
    for before, after in edits:
        assert text.count(before) == 1, before
        text = text.replace(before, after)
    return text
