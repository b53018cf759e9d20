"""docs/security.md maps each threat to the tests that show its defences: those tests exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
REFERENCE = re.compile(r"`((?:tests|bench)/[\w/]+\.py)(?:::(\w+))?`")


def references() -> list[tuple[str, str | None]]:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in REFERENCE.finditer(text)]


def test_the_threat_model_names_tests() -> None:
    named = references()
    assert len({path for path, _ in named}) >= 15
    assert sum(1 for _, test in named if test) >= 30


def test_every_named_file_and_test_exists() -> None:
    missing = []
    for path, test in references():
        file = ROOT / path
        if not file.is_file():
            missing.append(path)
        elif test and not re.search(rf"^(async )?def {test}\(", file.read_text(), re.MULTILINE):
            missing.append(f"{path}::{test}")
    assert missing == []
