"""Node's socket.io-client as the victim: ``tests/node/victim.mjs`` plays her part of a whole
driegesprek with the victim page's own modules, over socket.io-client's default transports
(long-polling, upgraded to a websocket) and over long-polling alone. These tests drive it one
command at a time and check what every party got.

Node is required: without it these tests fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge import crypto
from bridge.client import Refused
from harness import (
    BOTH,
    CARE,
    JSON,
    Bridge,
    audit_entries,
    db_rows,
    error_code,
    events_seen,
    histories,
    state_is,
)

NODE_VICTIM = Path(__file__).parents[1] / "node" / "victim.mjs"
NODE_INSTALL = "apt-get install -y nodejs npm"
WAIT = 10.0  # seconds for an answer or an event


class NodeVictim:
    """The Node program as seen from here: commands out on its stdin, answers and events in from
    its stdout (the line format is described in ``tests/node/victim.mjs``)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.received: list[tuple[str, JSON]] = []
        self.stderr = b""
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[JSON]] = {}
        self._queues: dict[str, asyncio.Queue[JSON | None]] = {}
        self._ended = False
        self._reader = asyncio.create_task(self._read())
        self._errors = asyncio.create_task(self._read_stderr())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = json.loads(raw)
            if "id" in line:
                self._answers.pop(line["id"]).set_result(line)
            else:
                self.received.append((line["event"], line["data"]))
                self._queue(line["event"]).put_nowait(line["data"])
        await self._errors  # what it said before it ended, for the failure
        self._ended = True
        for answer in self._answers.values():
            answer.set_exception(AssertionError(self._gone()))
        for queue in self._queues.values():
            queue.put_nowait(None)

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = await self.proc.stderr.read()

    def _gone(self) -> str:
        return f"the Node victim ended: {self.stderr.decode(errors='replace')}"

    def _queue(self, name: str) -> asyncio.Queue[JSON | None]:
        return self._queues.setdefault(name, asyncio.Queue())

    async def do(self, command: str, **args: Any) -> JSON:
        """Run one command; its answer, which must be ``ok``."""
        assert self.proc.stdin is not None
        assert not self._ended, self._gone()
        number = next(self._ids)
        answer: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._answers[number] = answer
        self.proc.stdin.write(json.dumps({"id": number, "do": command, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        done = await asyncio.wait_for(answer, WAIT)
        assert done["ok"] is True, done
        return done

    async def next_event(self, name: str, *, where: Callable[[JSON], bool] | None = None) -> JSON:
        """The next event ``name`` for which ``where`` holds (others of that name are passed)."""
        queue = self._queue(name)
        async with asyncio.timeout(WAIT):
            while True:
                if self._ended and queue.empty():
                    raise AssertionError(self._gone())
                event = await queue.get()
                if event is None:
                    raise AssertionError(self._gone())
                if where is None or where(event):
                    return event

    async def call(self, event: str, payload: object) -> Any:
        """The raw ack of ``event`` with ``payload``, sent by the Node victim's socket."""
        return (await self.do("call", event=event, payload=payload))["ack"]

    async def history(self, conversation_id: str) -> Any:
        return await self.call(
            "history.fetch", {"conversation_id": conversation_id, "after_seq": 0}
        )

    async def end(self) -> None:
        """Close its stdin: it leaves the chat and must exit cleanly."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        status = await asyncio.wait_for(self.proc.wait(), WAIT)
        await asyncio.wait_for(asyncio.gather(self._reader, self._errors), WAIT)
        assert status == 0, self._gone()

    async def kill(self) -> None:
        """Stop it if it still runs (a test that failed half-way), and its readers."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(self._reader, self._errors, return_exceptions=True)


@contextlib.asynccontextmanager
async def node_victim(url: str, *flags: str) -> AsyncIterator[NodeVictim]:
    """``tests/node/victim.mjs`` against the bridge at ``url``; killed on the way out if the test
    did not end it."""
    node = shutil.which("node")
    assert node is not None, f"node is missing: install Node.js ({NODE_INSTALL})"
    proc = await asyncio.create_subprocess_exec(
        node,
        str(NODE_VICTIM),
        url,
        *flags,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1 << 20,  # a consent question, text and all, is one line
    )
    victim = NodeVictim(proc)
    try:
        yield victim
    finally:
        await victim.kill()


def joined_by(role: str) -> Callable[[JSON], bool]:
    return lambda e: e["event"] == "joined" and e["participant"]["role"] == role


def left_by(role: str) -> Callable[[JSON], bool]:
    return lambda e: e["event"] == "left" and e["participant"]["role"] == role


def seq_is(seq: int) -> Callable[[JSON], bool]:
    return lambda e: e["seq"] == seq


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "ends_on"),
    [((), "websocket"), (("--polling-only",), "polling")],
    ids=["default-transports", "polling-only"],
)
async def test_a_node_victim_holds_a_whole_driegesprek(
    bridge: Bridge, flags: tuple[str, ...], ends_on: str
) -> None:
    officer = await bridge.officer()
    counsellor = await bridge.counsellor()
    async with node_victim(bridge.url, *flags) as victim:
        # She starts her chat over HTTP, as the protocol says, and waits in the queue.
        started = await victim.do("start", lang="nl")
        assert started["status"] == 201
        assert started["first_transport"] == "polling"  # socket.io-client always opens so
        cid = started["conversation_id"]
        assert cid in [w["conversation_id"] for w in await counsellor.queue()]

        await counsellor.join(cid)
        await victim.next_event("participant", where=joined_by("counsellor"))
        request_id = await counsellor.propose(cid, "informational")
        prompt = await victim.next_event("consent.prompt")
        assert prompt["request_id"] == request_id

        choices = {"retain_for_case_file": False, "share_needs_note": True}
        granted = await victim.do("grant", choices=choices)
        invite = await officer.next_event("invite")
        accepted = await officer.accept(invite["invite_id"])
        await victim.next_event("bridge.state", where=state_is("joined"))
        await victim.next_event("participant", where=joined_by("officer"))

        # The grant she signed is in the log and verifies against her device key; the scope key
        # she made for the officer opens with AVIM's org key.
        entries = await audit_entries(bridge)
        grant_entry = entries[granted["receipt"]["index"]]
        assert grant_entry["kind"] == "consent.granted"
        assert grant_entry["grant"]["choices"] == choices
        assert grant_entry["grant"]["investigation_public"] == granted["investigation_public"]
        begun = next(
            e for e in entries if e["kind"] == "conversation.started" and e["conversation"] == cid
        )
        crypto.verify_object(
            grant_entry["grant"], grant_entry["sig"], begun["victim_device"]["ed25519"]
        )
        avim_key = officer.org_keys[accepted["epoch"]["key_id"]]
        scope = crypto.open_scope_key(accepted["epoch"]["sealed_private"], avim_key)
        assert crypto.b64u_encode(bytes(scope.public_key)) == granted["investigation_public"]

        sent: dict[int, tuple[str, list[str], str]] = {}

        async def from_victim(text: str, care_only: bool = False) -> int:
            seq = int((await victim.do("send", text=text, care_only=care_only))["seq"])
            sent[seq] = ("victim", CARE if care_only else BOTH, text)
            return seq

        async def from_counsellor(text: str, care_only: bool = False) -> int:
            seq = await counsellor.send(cid, text, care_only=care_only)
            sent[seq] = ("counsellor", CARE if care_only else BOTH, text)
            return seq

        to_all = await from_victim("Ik wil praten.")
        care_from_victim = await from_victim("Alleen voor jou.", care_only=True)
        care_from_counsellor = await from_counsellor("Dit leest de politie niet.", care_only=True)
        welcome = await from_counsellor("Welkom, de agent leest mee.")
        from_officer = await officer.send(cid, "Hallo, ik ben van AVIM.")
        sent[from_officer] = ("officer", BOTH, "Hallo, ik ben van AVIM.")

        # The victim reads everything, each message verified and opened with her device key.
        for seq, (role, audience, text) in sent.items():
            got = await victim.next_event("message", where=seq_is(seq))
            assert got == {
                "seq": seq,
                "role": role,
                "kind": "message",
                "audience": audience,
                "text": text,
            }
        # The counsellor reads everything with the care scope.
        for seq, (role, audience, text) in sent.items():
            got = await counsellor.next_event("message", where=seq_is(seq))
            assert (got["sender_role"], got["audience"], got["text"]) == (role, audience, text)
            assert got["verified"] is True
        # The officer reads what was sent to both scopes, and never a care-only message: its own
        # message came after them on the same socket, so they would have come before it.
        for seq in (to_all, welcome, from_officer):
            got = await officer.next_event("message", where=seq_is(seq))
            assert got["verified"] is True and got["text"] == sent[seq][2]
        officer_seqs = [e["seq"] for name, e in officer.received if name == "message"]
        assert officer_seqs == [to_all, welcome, from_officer]
        assert care_from_victim not in officer.conversations[cid].messages
        assert care_from_counsellor not in officer.conversations[cid].messages
        assert [m.seq for m in await officer.history(cid)] == [to_all, welcome, from_officer]

        # She withdraws: the officer is removed at once and can no longer write.
        await victim.do("withdraw")
        await officer.next_event("bridge.state", where=state_is("ended", "withdrawn"))
        await victim.next_event("bridge.state", where=state_is("ended", "withdrawn"))
        removed = await victim.next_event("participant", where=lambda e: e["event"] == "removed")
        assert removed["participant"]["role"] == "officer"
        with pytest.raises(Refused) as refused:
            await officer.send(cid, "Ben je er nog?")
        assert refused.value.code == "no_consent"
        after = await from_victim("Nu weer alleen wij.")
        got = await counsellor.next_event("message", where=seq_is(after))
        assert got["audience"] == CARE and got["text"] == "Nu weer alleen wij."

        # Which transport she ended on: upgraded by default, never with polling alone.
        if ends_on == "websocket":
            await victim.next_event("engine.upgrade")
        upgrades = [e["transport"] for name, e in victim.received if name == "engine.upgrade"]
        assert upgrades == (["websocket"] if ends_on == "websocket" else [])
        assert (await victim.do("transport"))["transport"] == ends_on
        await victim.end()
        await counsellor.next_event("participant", where=left_by("victim"))


@pytest.mark.slow
async def test_bad_input_from_a_node_victim_over_long_polling_is_invalid_and_changes_nothing(
    bridge: Bridge,
) -> None:
    counsellor = await bridge.counsellor()
    async with node_victim(bridge.url, "--polling-only") as victim:
        cid = (await victim.do("start", lang="nl"))["conversation_id"]
        await counsellor.join(cid)
        await victim.next_event("participant", where=joined_by("counsellor"))
        seq = (await victim.do("send", text="Hallo?"))["seq"]
        await counsellor.next_event("message", where=seq_is(seq))
        envelope = (await victim.do("envelope", text="Nog een vraag."))["envelope"]

        bad = [
            ("conversation.join", {"conversation_id": 42}),
            ("conversation.join", {"conversation_id": cid, "extra": True}),
            ("message.send", {"envelope": {**envelope, "seq": 7}}),  # signed, plus a field
            ("message.send", {"envelope": {**envelope, "audience": "care"}}),
            ("history.fetch", {"conversation_id": cid, "after_seq": -1}),
        ]
        # Staff reads are logged: histories first, then the rows, as harness.World does.
        theirs = await victim.history(cid)
        counsellors = await histories([(counsellor, cid)])
        events = (len(victim.received), events_seen([counsellor]))
        rows = db_rows(bridge)
        answers = [await victim.call(event, payload) for event, payload in bad]
        assert [error_code(answer) for answer in answers] == ["invalid"] * len(bad)
        assert db_rows(bridge) == rows
        assert await victim.history(cid) == theirs
        assert await histories([(counsellor, cid)]) == counsellors
        assert (len(victim.received), events_seen([counsellor])) == events

        # Still connected, still answered, still on long-polling.
        assert (await victim.call("conversation.join", {"conversation_id": cid}))["ok"] is True
        assert (await victim.do("transport"))["transport"] == "polling"
        await victim.end()
        await counsellor.next_event("participant", where=left_by("victim"))
