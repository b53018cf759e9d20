"""bridge/web/src/merkle.js against tests/vectors/rfc6962/ and the ``merkle`` answers of
tests/vectors/crypto.json, in headless Chromium.

The same known answers and published mutations as tests/unit/log/test_merkle.py runs against
bridge/log/merkle.py, so the audit page and the server agree byte for byte: every happy path
verifies, every mutation (``wantErr``) fails. The page runs under the pages' CSP (conftest.CSP).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from browser_support import VectorSuite, assert_group_passed

RFC6962 = Path(__file__).parents[1] / "vectors" / "rfc6962"
# Every group the runner (tests/browser/support/merkle_checks.js) reports.
GROUPS = ["hasher", "reference_tree", "inclusion", "consistency", "shared"]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(kind: str) -> list[str]:
    """The case files of ``kind``, as the runner names them (``1/wrong-leaf``)."""
    folder = RFC6962 / kind
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.glob("*/*.json"))


@pytest.mark.parametrize("group", GROUPS)
async def test_merkle_group_passes_in_browser(vector_suite: VectorSuite, group: str) -> None:
    assert_group_passed(await vector_suite("merkle"), group)


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
async def test_every_published_case_ran_and_passed(vector_suite: VectorSuite, kind: str) -> None:
    """Each file of tests/vectors/rfc6962/{kind}/, happy path and mutation alike, passed."""
    outcome = (await vector_suite("merkle")).results["groups"][kind]
    assert sorted(outcome["passed"]) == _cases(kind)
    wanted = [_load(RFC6962 / kind / f"{case}.json")["wantErr"] for case in _cases(kind)]
    assert True in wanted and False in wanted


async def test_every_reference_answer_ran(vector_suite: VectorSuite) -> None:
    reference = _load(RFC6962 / "reference-tree.json")
    hasher = _load(RFC6962 / "hasher.json")
    groups = (await vector_suite("merkle")).results["groups"]
    roots, levels = reference["root_hashes"], reference["node_hashes"]
    assert (
        isinstance(roots, list) and isinstance(levels, list) and isinstance(hasher["cases"], list)
    )
    subtrees = sum(len(level) for level in levels)
    assert len(groups["reference_tree"]["passed"]) == len(roots) + subtrees
    assert sorted(groups["hasher"]["passed"]) == sorted(case["desc"] for case in hasher["cases"])


async def test_merkle_page_reports_known_groups_and_logs_no_errors(
    vector_suite: VectorSuite,
) -> None:
    run = await vector_suite("merkle")
    assert sorted(run.results["groups"]) == sorted(GROUPS)
    assert run.log.console_errors == []
    assert run.log.page_errors == []
    assert run.results["violations"] == []
