"""Plain-language notices for victims and staff, from the translation files beside this module."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources

__all__ = ["LANGS", "notice"]

LANGS = ("nl", "en")


@cache
def _table(lang: str) -> dict[str, str]:
    raw = resources.files("bridge.i18n").joinpath(f"{lang}.json").read_text("utf-8")
    table: dict[str, str] = json.loads(raw)
    return table


def notice(
    key: str, lang: str = "nl", *, staff: bool = False, values: Mapping[str, str] | None = None
) -> str:
    """The text for ``key``; staff get the ``staff.`` variant where there is one."""
    table = _table(lang if lang in LANGS else "nl")
    text = table.get(f"staff.{key}") if staff else None
    if text is None:
        text = table[key]
    return text.format_map(values) if values else text
