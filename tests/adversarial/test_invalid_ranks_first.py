"""The validation order, cell by cell: every client event x every kind of sender x every field
missing, retyped, oversized, nested too deep or joined by an unknown one is ``invalid`` (or
``too_large``, for an envelope over 16 KiB), never a later code.

PROTOCOL.md, "Validation order": ``invalid``/``too_large`` first, then ``forbidden``/``not_found``,
then ``wrong_state``/``no_consent``, then ``bad_signature``/``bad_keys``, then ``conflict``. So a
malformed payload is ``invalid`` even from a role that may not send the event at all (a victim's
``bridge.propose``), from staff that has not registered its device, and from an auditor, in a
conversation where the well-formed payload would be refused for its state or accepted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from adversary import TALLY
from malformed import (
    EVENT_NAMES,
    JSON,
    NULLABLE,
    Path_,
    expected_code,
    field_of,
    paths,
    removable,
    replace,
    report_at_the_end,
    tried,
    valid_payloads,
)

from bridge.client import BridgeClient, CounsellorClient, StaffClient
from harness import Bridge, db_rows, error_code, unregistered

# Another type for each JSON type (null is a value of the nullable fields, so never null).
OTHER: dict[type, Any] = {str: 7, bool: "true", int: "1", float: "1.5", list: {}, dict: []}
HUGE = 20_000  # past every field's limit and, inside an envelope, past the 16 KiB limit


def _retyped(path: Path_, node: Any) -> Any:
    if node is None:
        return 7
    return OTHER[type(node)]


def _oversized(path: Path_, node: Any) -> Any:
    """A value of the field's type past its range, or None for lists and objects."""
    if isinstance(node, bool) or not isinstance(node, int | str):
        return None
    if isinstance(node, int):
        return 2**63  # no seq nor limit; past a 64-bit integer
    return "x" * HUGE


def _nested(node: Any) -> Any:
    for _ in range(20):
        node = [node]
    return node


def mutations(valid: JSON) -> Iterator[tuple[str, Path_, JSON]]:
    """Each field of ``valid`` made wrong in each way that keeps it wrong: (how, where, payload)."""
    for path, node in paths(valid):
        if isinstance(node, dict):
            yield "unknown field", path, replace(valid, path, {**node, "unexpected": 1})
        if not path:
            continue
        if removable(path):
            yield "missing", path, replace(valid, path, ...)
        if field_of(path) not in NULLABLE or node is not None:
            yield "retyped", path, replace(valid, path, _retyped(path, node))
        big = _oversized(path, node)
        if big is not None:
            yield "oversized", path, replace(valid, path, big)
        yield "nested", path, replace(valid, path, _nested(node))


async def _senders(bridge: Bridge) -> tuple[dict[str, BridgeClient], dict[tuple[str, str], JSON]]:
    """The driegesprek's parties, an auditor and a counsellor without a registered device, and
    a schema-valid payload of every event for each."""
    parties, valid = await valid_payloads(bridge)
    auditor = await StaffClient.login(bridge.url, "auditor", bridge.passwords["auditor"])
    bridge.clients.append(auditor)
    await auditor.connect()
    senders = {
        **parties,
        "auditor": auditor,
        "unregistered counsellor": await unregistered(bridge, CounsellorClient, "counsellor2"),
    }
    for name in ("auditor", "unregistered counsellor"):
        for event in EVENT_NAMES:
            valid[(name, event)] = valid[("counsellor", event)]
    return senders, valid


@pytest.mark.settings(message_rate=1e9, message_burst=10**9, checkpoint_seconds=86400.0)
async def test_a_malformed_payload_is_invalid_whoever_sends_it_whatever_the_state(
    bridge: Bridge, request: pytest.FixtureRequest
) -> None:
    report_at_the_end(request.config)
    senders, valid = await _senders(bridge)
    rows = db_rows(bridge)
    wrong: list[str] = []

    async def cell(sender: str, event: str, how: str, args: tuple[Any, ...]) -> None:
        client = senders[sender]
        got = error_code(await client.call_raw(event, *args))
        want = expected_code(event, args)
        TALLY["validation cells"] += 1
        if got != want:
            wrong.append(f"{sender:24} {event:20} {how:40} expected {want:10} got {got}")
        else:
            tried("validation table", event)

    for sender in senders:
        for event in EVENT_NAMES:
            payload = valid[(sender, event)]
            for how, path, mutant in mutations(payload):
                await cell(sender, event, f"{how} {'.'.join(map(str, path))}", (mutant,))
            await cell(sender, event, "no payload", ())
            await cell(sender, event, "two payloads", (payload, payload))
            await cell(sender, event, "a binary payload", (json.dumps(payload).encode(),))
    assert not wrong, f"{len(wrong)} cells answered after invalid:\n" + "\n".join(wrong)
    assert all(client.sid is not None for client in senders.values())  # no connection dropped
    assert db_rows(bridge) == rows
