"""The client's envelopes, without a server: each role seals to exactly the intended readers,
signatures are checked against known participants, and shared history opens for the officer.

A stand-in answers the client's acked calls the way PROTOCOL.md describes them and hands every
reader every message, so what each client can open shows what its keys allow.
"""

from __future__ import annotations

from typing import Any

import pytest
from nacl.public import PrivateKey

from bridge import crypto
from bridge.client import (
    BridgeClient,
    CounsellorClient,
    OfficerClient,
    VictimClient,
)

URL = "http://127.0.0.1:9"  # never contacted


class StandIn:
    """Answers conversation.join, message.send, history.fetch and history.share."""

    def __init__(self) -> None:
        self.fier, self.avim = PrivateKey.generate(), PrivateKey.generate()
        self.care, self.epoch = crypto.ScopeKey.generate(), crypto.ScopeKey.generate()
        self.log: list[dict[str, Any]] = []
        self.shared: dict[int, str] = {}
        self.share_payload: dict[str, Any] = {}
        self.clients: list[BridgeClient] = []

    def _public(self, key: PrivateKey) -> str:
        return crypto.b64u_encode(bytes(key.public_key))

    def _conversation(self, client: BridgeClient) -> dict[str, Any]:
        participants = [
            {
                "role": c.role,
                "device_id": c.device_id,
                "ed25519": c.keys.ed25519,
                "x25519": c.keys.x25519,
                "since": "2024-01-01T00:00:00Z",
            }
            for c in self.clients
        ]
        epoch = {"epoch_id": "e1", "public": self.epoch.public}
        care: dict[str, str] = {"public": self.care.public}
        if client.role != "officer":
            care["sealed_private"] = self.care.sealed_to(self._public(self.fier))
            care["key_id"] = "fier-1"
        return {
            "state": "active",
            "participants": participants,
            "care_scope": care,
            "epoch": (
                {
                    **epoch,
                    "sealed_private": self.epoch.sealed_to(self._public(self.avim)),
                    "key_id": "avim-1",
                }
                if client.role == "officer"
                else epoch
            ),
            "last_seq": len(self.log),
            "victim_device": {k: participants[0][k] for k in ("device_id", "ed25519", "x25519")},
            "bridge": {"request_id": "r1", "purpose": "report", "state": "joined", "epoch": epoch},
        }

    async def call(self, client: BridgeClient, event: str, payload: Any) -> dict[str, Any]:
        if event == "conversation.join":
            return {"ok": True, "conversation": self._conversation(client)}
        if event == "message.send":
            self.log.append(payload["envelope"])
            return {"ok": True, "seq": len(self.log)}
        if event == "history.share":
            self.share_payload = payload
            self.shared.update({item["seq"]: item["key"] for item in payload["items"]})
            return {"ok": True, "shared": len(payload["items"])}
        assert event == "history.fetch"
        messages = []
        for seq, envelope in enumerate(self.log, start=1):
            item = {"seq": seq, "envelope": envelope, "server_time": "2024-01-01T00:00:01Z"}
            if seq in self.shared:
                item["shared_keys"] = self.shared[seq]
            messages.append(item)
        return {"ok": True, "messages": messages}


@pytest.fixture
async def parties(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[StandIn, VictimClient, CounsellorClient, OfficerClient]:
    server = StandIn()
    victim, counsellor, officer = VictimClient(URL), CounsellorClient(URL), OfficerClient(URL)
    victim.conversation_id = "c1"
    for client, device_id in ((victim, "dv"), (counsellor, "dc"), (officer, "do")):
        client.device_id = device_id
        server.clients.append(client)

        async def call(event: str, payload: Any, client: BridgeClient = client) -> dict[str, Any]:
            return await server.call(client, event, payload)

        monkeypatch.setattr(client, "call", call)
    counsellor.org_keys, officer.org_keys = {"fier-1": server.fier}, {"avim-1": server.avim}
    await victim.join()
    await counsellor.join("c1")
    await officer.rejoin("c1")
    return server, victim, counsellor, officer


async def test_each_reader_opens_exactly_its_scopes(
    parties: tuple[StandIn, VictimClient, CounsellorClient, OfficerClient],
) -> None:
    server, victim, counsellor, officer = parties
    await victim.send("v-both")
    await victim.send("v-care", care_only=True)
    await counsellor.send("c1", "c-both")
    await counsellor.send("c1", "c-care", care_only=True)
    await counsellor.send("c1", "note", kind="needs_note")
    await officer.send("c1", "o-both")
    both, care = ["care", "investigation"], ["care"]
    assert [e["audience"] for e in server.log] == [both, care, both, care, both, both]
    assert [e["epoch_id"] for e in server.log] == ["e1", None, "e1", None, "e1", "e1"]
    assert all(set(e["keys"]) == {"victim", *e["audience"]} for e in server.log)

    everything = ["v-both", "v-care", "c-both", "c-care", "note", "o-both"]
    for reader, expected in (
        (victim, everything),
        (counsellor, everything),
        (officer, ["v-both", None, "c-both", None, "note", "o-both"]),
    ):
        if isinstance(reader, VictimClient):
            messages = await reader.history()
        else:
            messages = await reader.history("c1")
        assert [m.text for m in messages] == expected
        assert all(m.verified for m in messages)
        roles = ["victim"] * 2 + ["counsellor"] * 3 + ["officer"]
        assert [m.sender_role for m in messages] == roles
        assert reader.messages[5].kind == "needs_note"


async def test_unknown_sender_and_tampering_are_not_verified(
    parties: tuple[StandIn, VictimClient, CounsellorClient, OfficerClient],
) -> None:
    server, victim, counsellor, _ = parties
    await counsellor.send("c1", "genuine")
    tampered = dict(server.log[0], kind="needs_note")
    server.log.append(tampered)
    stranger = crypto.build_envelope(
        conversation_id="c1",
        client_msg_id="00000000-0000-4000-8000-000000000000",
        sender_role="counsellor",
        device_id="dx",
        kind="message",
        audience=["care"],
        epoch_id=None,
        plaintext={"text": "forged", "sent_at": "2024-01-01T00:00:00Z"},
        recipients={"victim": victim.keys.x25519, "care": server.care.public},
        signing_key=crypto.DeviceKeys.generate().signing,
    )
    server.log.append(stranger)
    genuine, changed, forged = await victim.history()
    assert (genuine.verified, genuine.text) == (True, "genuine")
    assert (changed.verified, changed.text) == (False, None)
    assert (forged.verified, forged.text) == (False, None)


async def test_shared_history_opens_for_the_officer_only_after_sharing(
    parties: tuple[StandIn, VictimClient, CounsellorClient, OfficerClient],
) -> None:
    server, victim, _, officer = parties
    await victim.send("earlier", care_only=True)
    assert (await officer.history("c1"))[0].text is None
    assert await victim.share_history([1]) == 1
    payload = server.share_payload
    assert (payload["conversation_id"], payload["epoch_id"]) == ("c1", "e1")
    crypto.verify_object(payload, payload["sig"], victim.keys.ed25519)
    assert (await officer.history("c1"))[0].text == "earlier"


async def test_resend_repeats_the_same_envelope(
    parties: tuple[StandIn, VictimClient, CounsellorClient, OfficerClient],
) -> None:
    server, victim, _, _ = parties
    await victim.send("once")
    (client_msg_id,) = victim.sent
    assert await victim.resend(client_msg_id) == 2
    assert server.log[0] == server.log[1] == victim.sent[client_msg_id]
