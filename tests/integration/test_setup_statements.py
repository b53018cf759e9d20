"""What setting a driegesprek up costs the database: the SQL statements of each step, through the
real protocol (docs/performance.md, "Many conversations at once").

Each step reads what it decides on in as few statements as it can and writes what it changes
once: no ORM object read back after the transaction wrote it, no query per invite. The bounds
include the log's own statements (its head read under lock, the entries and the new head written)
wherever a step appends an entry, and leave out ``BEGIN`` and the background loops' reads (the
expiry loop looks the earliest deadline up again when a new one is made).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bridge.client import CounsellorClient, OfficerClient, VictimClient
from bridge.edges.app import CORE
from harness import Bridge, backend, state_is

# The bridge's own loops, by the names app.py gives their tasks.
BACKGROUND = frozenset(
    {"bridge-expiry", "bridge-sessions", "bridge-checkpoints", "bridge-queue", "bridge-policy"}
)
# A conversation is locked and read with its bridge request in one statement on SQLite, in two on
# PostgreSQL (store/conversations.py, ``locked_with_bridge``).
LOCKED_WITH_BRIDGE = 2 if backend.POSTGRES else 1


class Statements:
    """The statements the bridge sends on behalf of the calls it answers."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        task = asyncio.current_task()
        if statement.startswith("BEGIN") or (task is not None and task.get_name() in BACKGROUND):
            return
        self.seen.append(statement)

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


@contextmanager
def counted(bridge: Bridge) -> Iterator[Statements]:
    engines = [engine.sync_engine for engine in bridge.app[CORE].db.engines]
    statements = Statements()
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statements)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", statements)


def within(statements: Statements, bound: int) -> list[str]:
    taken = statements.take()
    assert len(taken) <= bound, "\n".join(taken)
    return taken


@pytest.mark.settings(session_check_seconds=3600)
async def test_each_set_up_step_sends_no_more_statements_than_it_needs(bridge: Bridge) -> None:
    with counted(bridge) as statements:
        officer = await OfficerClient.login(bridge.url, "officer", bridge.passwords["officer"])
        bridge.clients.append(officer)
        # The account, read before Argon2id; read again under the lock; the new token.
        within(statements, 3)
        await officer.org_key("avim")
        within(statements, 1)
        await officer.unlock(bridge.passphrases["avim"])
        # The public key again; then the token, the key and the entry that logs the fetch.
        within(statements, 1 + 5)
        await officer.connect()
        within(statements, 1)  # the token with its account
        await officer.register_device()
        within(statements, 6)  # the keys looked up, the device, its entry, the waiting invites

        victim = await VictimClient.create(bridge.url)
        bridge.clients.append(victim)
        # The fier key; the fier key again, device, conversation, its entry, the victim's
        # participation and token; the token on connect; the join: the conversation with its
        # bridge, the participants with their keys. (The count of waiting conversations is the
        # queue loop's read.)
        within(statements, 1 + 8 + 1 + LOCKED_WITH_BRIDGE + 1)

        counsellor = await CounsellorClient.login(
            bridge.url, "counsellor", bridge.passwords["counsellor"]
        )
        bridge.clients.append(counsellor)
        await counsellor.unlock(bridge.passphrases["fier"])
        await counsellor.connect()
        await counsellor.register_device()
        statements.take()
        cid = victim.conversation_id
        await counsellor.join(cid)
        # The conversation with its bridge, the pick-up, the participants, the counsellor's
        # device keys and its participation.
        within(statements, LOCKED_WITH_BRIDGE + 4)

        await counsellor.propose(cid)
        await victim.next_event("consent.prompt")
        within(statements, LOCKED_WITH_BRIDGE + 4)  # the conversation; the request, its entry
        await victim.grant()
        # The conversation with the request, the avim key, the victim's key; the request, the
        # epoch, the invite, their entries, the receipt's checkpoint.
        within(statements, LOCKED_WITH_BRIDGE + 10)
        invite = await officer.next_event("invite")
        await officer.accept(invite["invite_id"])
        # The conversation, the invite with its request and epoch; invite, request, the
        # officer's participation, their entries; the participants with their keys.
        within(statements, 10)
        for party in (victim, counsellor):
            await party.next_event("bridge.state", where=state_is("joined"))


@pytest.mark.settings(session_check_seconds=3600)
async def test_an_officer_coming_on_duty_reads_its_waiting_invites_in_one_query(
    bridge: Bridge,
) -> None:
    counsellor = await bridge.counsellor()
    requests = []
    for _ in range(3):
        victim = await bridge.victim()
        await counsellor.join(victim.conversation_id)
        requests.append(await counsellor.propose(victim.conversation_id))
        await victim.next_event("consent.prompt")
        await victim.grant()  # nobody on duty: the invite waits
    with counted(bridge) as statements:
        officer = await OfficerClient.login(bridge.url, "officer", bridge.passwords["officer"])
        bridge.clients.append(officer)
        await officer.unlock(bridge.passphrases["avim"])
        await officer.connect()
        statements.take()
        await officer.register_device()
        taken = within(statements, 6)
    assert sum("FROM invites" in statement for statement in taken) == 1
    shown = [await officer.next_event("invite") for _ in requests]
    assert len({invite["invite_id"] for invite in shown}) == len(requests)
