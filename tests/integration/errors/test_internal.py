"""``internal``: a database failure is answered without detail, and changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harness import (
    CARE,
    Bridge,
    World,
    chatting,
    error_code,
    execute,
)


def rename_table(bridge: Bridge, old: str, new: str) -> None:
    execute(bridge.data_dir, f'ALTER TABLE "{old}" RENAME TO "{new}"')


INTERNAL: dict[str, tuple[str, Callable[[World], Awaitable[Any]]]] = {
    "message.send without messages": (
        "messages",
        lambda w: w.victim.call_raw(
            "message.send", {"envelope": w.victim.build("x", audience=CARE)}
        ),
    ),
    "bridge.propose without log_entries": (
        "log_entries",
        lambda w: w.counsellor.call_raw(
            "bridge.propose", {"conversation_id": w.cid, "purpose": "report"}
        ),
    ),
    "conversation.close without participants": (
        "participants",
        lambda w: w.victim.call_raw("conversation.close", {"conversation_id": w.cid}),
    ),
}


@pytest.mark.parametrize("case", list(INTERNAL))
async def test_database_failure_is_internal_and_changes_nothing(bridge: Bridge, case: str) -> None:
    world = await chatting(bridge)
    table, action = INTERNAL[case]

    async def broken() -> Any:
        rename_table(bridge, table, f"{table}_away")
        try:
            return await action(world)
        except TimeoutError:
            return "no ack"  # fails error_code below, after the state has been compared
        finally:
            rename_table(bridge, f"{table}_away", table)

    for party in (world.victim, world.counsellor):
        party.ack_timeout = 3.0

    ack = await world.unchanged(broken)
    assert error_code(ack) == "internal"
    assert "Traceback" not in ack["error"]["message"] and table not in ack["error"]["message"]
    # The server is not stuck: with the table back, the same kind of call goes through.
    assert (await action(world))["ok"] is True
