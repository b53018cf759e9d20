"""``bridge demo``: a scripted driegesprek against a running bridge, with the Python client.

A victim starts a chat in Dutch, the demo counsellor picks it up and proposes an informational
bridge, the victim consents, the demo officer (on duty beforehand) joins; messages flow, the victim
sends a care-only message, pauses, resumes and withdraws, and the officer is refused from then on.
Then each party's view of the transcript is printed: what it could open and what never reached it.
Exit status 0 if everything went as scripted, 1 (with the reason) otherwise. Only the names,
passwords and passphrases of the demo file are used; no token or key is printed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bridge.client import (
    BridgeClient,
    CounsellorClient,
    DecryptedMessage,
    OfficerClient,
    Refused,
    VictimClient,
)

__all__ = ["run_demo"]

Staff = TypeVar("Staff", CounsellorClient, OfficerClient)

_START_HINT = (
    "start the bridge with `make run` (or `bridge serve --demo`), then run `bridge demo` again"
)


class DemoFailed(Exception):
    """The demo cannot go on; the message says why."""


def _say(text: str) -> None:
    print(text, flush=True)


def _fail(text: str) -> int:
    print(f"\nbridge demo: FAILED: {text}", file=sys.stderr, flush=True)
    return 1


def _load(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    try:
        data = json.loads(path.read_text())
        users = {str(a["role"]): a for a in data["accounts"]}
        return users, {str(k): str(v) for k, v in data["passphrases"].items()}
    except FileNotFoundError:
        raise DemoFailed(f"no demo accounts at {path}: {_START_HINT}, or pass --accounts") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoFailed(f"{path} is not a demo accounts file ({exc})") from None


async def _reachable(url: str) -> None:
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url + "/healthz") as r:
            if r.status != 200:
                raise DemoFailed(f"the bridge at {url} answers /healthz with HTTP {r.status}")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DemoFailed(f"cannot reach the bridge at {url} ({exc}): {_START_HINT}") from None


async def _state(client: BridgeClient, state: str) -> None:
    try:
        await client.next_event("bridge.state", where=lambda e: e["state"] == state)
    except TimeoutError:
        raise DemoFailed(f"the {client.role} was never told the bridge is {state}") from None


class Demo:
    def __init__(self, url: str, users: dict[str, dict[str, Any]], phrases: dict[str, str]):
        self.url, self.users, self.phrases = url, users, phrases
        self.clients: list[BridgeClient] = []
        self.checks: list[tuple[str, bool]] = []
        self.before_join: list[int] = []
        self.care_only: list[int] = []
        self.after_withdraw: list[int] = []
        self.while_joined: list[int] = []
        self.current = ""

    def step(self, text: str) -> None:
        self.current = text
        _say(text)

    def where(self) -> str:
        return f" (during: {self.current})" if self.current else ""

    def check(self, what: str, ok: bool) -> None:
        self.checks.append((what, ok))

    async def staff(self, cls: type[Staff], org: str) -> Staff:
        user = self.users[cls.role]
        try:
            client = await cls.login(self.url, user["username"], user["password"])
        except Refused as exc:
            raise DemoFailed(
                f"{user['username']} cannot log in ({exc}): is this the accounts "
                "file of the running server?"
            ) from None
        self.clients.append(client)
        await client.unlock(self.phrases[org])
        await client.connect()
        await client.register_device()
        return client

    async def run(self) -> None:
        self.step("Victim starts a conversation (nl).")
        victim = await VictimClient.create(self.url, "nl")
        self.clients.append(victim)
        cid = victim.conversation_id
        self.before_join.append(
            await victim.send("Hallo? Ik weet niet goed waar ik moet beginnen.")
        )

        self.step(
            "Counsellor logs in, unlocks the fier key, registers, picks it up from the queue."
        )
        counsellor = await self.staff(CounsellorClient, "fier")
        waiting = [w["conversation_id"] for w in await counsellor.queue()]
        if cid not in waiting:
            raise DemoFailed("the new conversation is not in the counsellor's queue")
        await counsellor.join(cid)
        self.step("Counsellor and victim talk (care).")
        for party, text in [
            (counsellor, "Hoi, fijn dat je er bent. Je mag alles in je eigen tempo vertellen."),
            (victim, "Ik werk in een huis waar ik niet weg mag. Ze houden mijn paspoort."),
            (counsellor, "Dank je dat je dit vertelt. Wil je weten wat de politie kan doen?"),
        ]:
            self.before_join.append(await self._send(party, cid, text))

        self.step("Officer logs in, unlocks the avim key, registers: on duty.")
        officer = await self.staff(OfficerClient, "avim")
        old_invites = {i["invite_id"] for i in await officer.invites()}

        self.step("Counsellor proposes an informational bridge; the victim reads the prompt.")
        await counsellor.propose(cid, "informational")
        prompt = await victim.next_event("consent.prompt")
        title = next((ln for ln in prompt["text"]["body"].splitlines() if ln.startswith("# ")), "")
        _say(f"  consent text {prompt['text']['version']}: {title[2:]!r}")
        self.step("Victim grants (share_needs_note: true).")
        await victim.grant(share_needs_note=True)
        await _state(counsellor, "granted")

        self.step("Officer gets the invite and accepts: the bridge is joined.")
        invite = await officer.next_event(
            "invite", where=lambda e: e["invite_id"] not in old_invites
        )
        await officer.accept(invite["invite_id"])
        for party in (victim, counsellor):
            await _state(party, "joined")

        self.step("Counsellor sends the needs_note; all three talk.")
        note = "Graag eenvoudige taal en een rustig tempo: één vraag tegelijk."
        self.while_joined.append(await counsellor.send(cid, note, kind="needs_note"))
        for party, text in [
            (officer, "Hallo, ik ben van AVIM. Je bepaalt zelf wat je vertelt."),
            (victim, "Kunnen jullie mij helpen zonder dat ik aangifte doe?"),
            (officer, "Ja, dit gesprek is informatief. Je zit nergens aan vast."),
            (counsellor, "Ik blijf erbij, ook als je wilt stoppen."),
        ]:
            self.while_joined.append(await self._send(party, cid, text))
        self.step("Victim sends a message for the counsellor only.")
        self.care_only.append(
            await victim.send("Ik ben bang voor hem, zeg dat niet.", care_only=True)
        )

        self.step("Victim pauses and resumes the police part.")
        await victim.pause()
        await _state(counsellor, "paused")
        await victim.resume()
        for party in (victim, counsellor):
            await _state(party, "joined")
        self.while_joined.append(await victim.send("Oké, ik ben er weer."))
        await asyncio.sleep(0.3)  # let the last live messages land

        self.step("Officer fetches its history.")
        fetched = [m.seq for m in await officer.history(cid)]
        _say(f"  the server returns {_seqs(fetched)}")

        self.step("Victim withdraws consent; the officer tries to send again.")
        await victim.withdraw()
        await _state(officer, "ended")
        try:
            seq = await officer.send(cid, "Mag ik nog iets vragen?")
            self.check(f"the officer's send after withdrawal is refused (it got seq {seq})", False)
        except Refused as exc:
            _say(f"  refused: {exc.code}")
            self.check(
                "the officer's send after withdrawal is refused with no_consent",
                exc.code == "no_consent",
            )

        self.step("Counsellor writes on (care); the victim closes the conversation.")
        self.after_withdraw.append(await counsellor.send(cid, "De agent is weg. Ik ben er nog."))
        await victim.history()
        await counsellor.history(cid)
        await victim.close()
        await asyncio.sleep(0.3)  # anything wrongly sent to the officer would arrive now
        self.report(victim, counsellor, officer, cid)

    async def _send(self, party: BridgeClient, cid: str, text: str) -> int:
        if isinstance(party, VictimClient):
            return await party.send(text)
        assert isinstance(party, CounsellorClient | OfficerClient)
        return await party.send(cid, text)

    def report(self, v: VictimClient, c: CounsellorClient, o: OfficerClient, cid: str) -> None:
        every = sorted(self.before_join + self.while_joined + self.care_only + self.after_withdraw)
        for name, client in (("Victim", v), ("Counsellor", c), ("Officer", o)):
            seen = client.conversations[cid].messages
            _say(f"\n{name} saw {len(seen)} messages:")
            for m in sorted(seen.values(), key=lambda m: m.seq):
                _say(f"  #{m.seq:<3} {m.sender_role:<10} {_aud(m):<32} {_text(m)}")
            opened = all(m.text is not None and m.verified for m in seen.values())
            self.check(f"the {name.lower()} verified and opened every message it got", opened)
            if client is not o:
                self.check(f"the {name.lower()} got every message", sorted(seen) == every)
        kept_out = self.before_join + self.care_only + self.after_withdraw
        _say(
            f"  never reached the officer: {_seqs(self.before_join)} (before it joined), "
            f"{_seqs(self.care_only)} (care-only), {_seqs(self.after_withdraw)} (after withdrawal)"
        )
        got = set(o.conversations[cid].messages)
        self.check(
            "the officer got none of the messages before its join, care-only or after withdrawal",
            not got & set(kept_out),
        )
        self.check("the officer got every message sent to it", got == set(self.while_joined))


def _aud(m: DecryptedMessage) -> str:
    note = " (needs_note)" if m.kind == "needs_note" else ""
    return "+".join(m.audience) + note


def _text(m: DecryptedMessage) -> str:
    return "[cannot open]" if m.text is None else repr(m.text)


def _seqs(seqs: list[int]) -> str:
    return ", ".join(f"#{s}" for s in seqs) or "none"


async def run_demo(url: str, accounts_file: Path) -> int:
    """Run the scripted driegesprek against the bridge at ``url``; return the exit status."""
    url = url.rstrip("/")
    demo: Demo | None = None
    try:
        users, phrases = _load(accounts_file)
        await _reachable(url)
        demo = Demo(url, users, phrases)
        await demo.run()
    except DemoFailed as exc:
        return _fail(f"{exc}{demo.where() if demo else ''}")
    except Refused as exc:
        return _fail(
            f"the server refused a step of the script ({exc}){demo.where() if demo else ''}"
        )
    except TimeoutError:
        return _fail(
            f"an expected answer or event did not come in time{demo.where() if demo else ''}"
        )
    except Exception as exc:
        return _fail(f"{type(exc).__name__}: {exc}{demo.where() if demo else ''}")
    finally:
        for client in reversed(demo.clients if demo else []):
            await client.aclose()
    failed = [what for what, ok in demo.checks if not ok]
    _say("\nChecks:")
    for what, ok in demo.checks:
        _say(f"  [{'ok' if ok else 'FAILED'}] {what}")
    if failed:
        return _fail(f"{len(failed)} check(s) did not hold")
    _say("\nThe driegesprek went as scripted.")
    return 0
