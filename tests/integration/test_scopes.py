"""Scopes are keys: the officer never gets what it may not read, and could not open it anyway."""

from __future__ import annotations

import json

import pytest
from nacl.public import PrivateKey

from bridge import crypto
from harness import Bridge, picked_up, query, state_is


def stored_envelope(bridge: Bridge, conversation_id: str, seq: int) -> dict[str, object]:
    """The envelope as the server keeps it, read straight from its database."""
    [(raw,)] = query(
        bridge.data_dir,
        "SELECT envelope FROM messages WHERE conversation_id = ? AND seq = ?",
        conversation_id,
        seq,
    )
    envelope: dict[str, object] = json.loads(raw)
    return envelope


async def test_officer_never_receives_pre_join_or_care_only_messages(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id
    pre_join = [
        await victim.send("Wat er gebeurd is, vertel ik eerst aan jou."),
        await counsellor.send(cid, "Dank je dat je het vertelt."),
    ]
    await counsellor.propose(cid)
    await victim.next_event("consent.prompt")
    await victim.grant()
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    await counsellor.next_event("bridge.state", where=state_is("joined"))
    await victim.next_event("bridge.state", where=state_is("joined"))
    care_only = [
        await victim.send("Alleen voor jou.", care_only=True),
        await counsellor.send(cid, "Alleen voor jou terug.", care_only=True),
    ]
    shared = await victim.send("Voor iedereen.")
    await officer.next_event("message", where=lambda e: e["seq"] == shared)

    received_live = {event["seq"] for name, event in officer.received if name == "message"}
    assert received_live == {shared}
    fetched = {m.seq for m in await officer.history(cid, after_seq=0)}
    assert fetched == {shared}
    for seq in pre_join + care_only:
        assert seq not in officer.conversations[cid].messages


async def test_avim_keys_cannot_open_pre_join_or_care_only_envelopes(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id
    pre_join = await victim.send("Wat er gebeurd is, vertel ik eerst aan jou.")
    await counsellor.propose(cid)
    await victim.next_event("consent.prompt")
    await victim.grant()
    invite = await officer.next_event("invite")
    accepted = await officer.accept(invite["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))
    care_only = await victim.send("Alleen voor mijn hulpverlener.", care_only=True)

    avim_key = officer.org_keys[accepted["epoch"]["key_id"]]
    epoch_key = crypto.open_scope_key(accepted["epoch"]["sealed_private"], avim_key)
    avim_keys: list[PrivateKey] = [avim_key, epoch_key, officer.keys.box]
    for seq in (pre_join, care_only):
        envelope = stored_envelope(bridge, cid, seq)
        assert envelope["audience"] == ["care"]
        assert set(envelope["keys"]) == {"victim", "care"}  # type: ignore[call-overload]
        assert crypto.open_envelope(envelope, "victim", victim.keys.box)["text"]
        for name in ("victim", "care"):
            for key in avim_keys:
                with pytest.raises(crypto.DecryptionError):
                    crypto.open_envelope(envelope, name, key)
