"""The auditor's view: entries, checkpoints and proofs; receipts; access records; no content."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge import crypto
from bridge.client import BridgeClient, Refused
from bridge.log import merkle
from harness import Bridge, audit_entries, driegesprek, picked_up, query, state_is


async def auditor(bridge: Bridge) -> tuple[BridgeClient, str]:
    client = BridgeClient(bridge.url)
    bridge.clients.append(client)
    return client, await bridge.token("auditor")


async def proves_inclusion(
    client: BridgeClient, token: str, index: int, checkpoint: dict[str, Any], leaf: bytes
) -> dict[str, Any]:
    """Fetch the inclusion proof of entry ``index`` in ``checkpoint``'s tree and verify that it
    leads from ``leaf`` to the checkpoint's root; return the proof."""
    size = checkpoint["size"]
    path = f"/api/v1/audit/proof/inclusion?index={index}&size={size}"
    proof: dict[str, Any] = await client.request("GET", path, token=token)
    nodes = [crypto.b64u_decode(node) for node in proof["path"]]
    merkle.verify_inclusion(index, size, leaf, nodes, crypto.b64u_decode(checkpoint["root"]))
    return proof


def log_rows(bridge: Bridge) -> list[str]:
    return [
        entry for (entry,) in query(bridge.data_dir, "SELECT entry FROM log_entries ORDER BY idx")
    ]


async def test_the_audit_routes_are_for_auditors_only(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    for path in (
        "/api/v1/audit/entries",
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/checkpoints",
        "/api/v1/audit/proof/inclusion?index=0&size=1",
        "/api/v1/audit/proof/consistency?first=1&second=1",
    ):
        with pytest.raises(Refused) as missing:
            await victim.request("GET", path)
        assert (missing.value.status, missing.value.code) == (401, "unauthenticated")
        for token in (victim.token, counsellor.token):
            with pytest.raises(Refused) as refused:
                await victim.request("GET", path, token=token)
            assert (refused.value.status, refused.value.code) == (403, "forbidden")
    key = await victim.request("GET", "/api/v1/audit/log-key")
    assert set(key) == {"key_id", "ed25519", "origin"}


@pytest.mark.parametrize(
    "route",
    [
        "proof/inclusion?index=5&size=5",
        "proof/inclusion?index=0&size=0",
        "proof/inclusion?index=-1&size=2",
        "proof/inclusion?index=0&size=999999",
        "proof/inclusion?index=x&size=2",
        "proof/inclusion?size=2",
        "proof/consistency?first=0&second=1",
        "proof/consistency?first=3&second=2",
        "proof/consistency?first=1&second=999999",
        "entries?start=0&count=0",
        "entries?start=0&count=1001",
    ],
)
async def test_bad_ranges_are_invalid(bridge: Bridge, route: str) -> None:
    client, token = await auditor(bridge)
    with pytest.raises(Refused) as info:
        await client.request("GET", f"/api/v1/audit/{route}", token=token)
    assert (info.value.status, info.value.code) == (400, "invalid")


async def test_checkpoint_and_proofs_verify_against_the_log_key(bridge: Bridge) -> None:
    await driegesprek(bridge)
    client, token = await auditor(bridge)
    key = await client.request("GET", "/api/v1/audit/log-key")
    checkpoint = await client.request("GET", "/api/v1/audit/checkpoint", token=token)
    crypto.verify_object(checkpoint, checkpoint["sig"], key["ed25519"])
    entries = await audit_entries(bridge, token)
    assert checkpoint["size"] == len(entries)
    leaves = [merkle.leaf_hash(crypto.jcs(entry)) for entry in entries]
    assert crypto.b64u_decode(checkpoint["root"]) == merkle.root(leaves)
    size = checkpoint["size"]
    for index in range(size):
        proof = await proves_inclusion(client, token, index, checkpoint, leaves[index])
        assert crypto.b64u_decode(proof["leaf_hash"]) == leaves[index]
    checkpoints = (await client.request("GET", "/api/v1/audit/checkpoints", token=token))[
        "checkpoints"
    ]
    for older in checkpoints:
        crypto.verify_object(older, older["sig"], key["ed25519"])
        if older["size"] == 0:
            continue
        proof = await client.request(
            "GET",
            f"/api/v1/audit/proof/consistency?first={older['size']}&second={size}",
            token=token,
        )
        merkle.verify_consistency(
            older["size"],
            size,
            crypto.b64u_decode(older["root"]),
            crypto.b64u_decode(checkpoint["root"]),
            [crypto.b64u_decode(node) for node in proof["path"]],
        )


async def test_every_entry_names_the_latest_checkpoint(bridge: Bridge) -> None:
    await driegesprek(bridge)
    client, token = await auditor(bridge)
    await client.request("GET", "/api/v1/audit/checkpoint", token=token)
    entries = await audit_entries(bridge, token)
    checkpoints = (await client.request("GET", "/api/v1/audit/checkpoints", token=token))[
        "checkpoints"
    ]
    for index, entry in enumerate(entries):
        before = [c for c in checkpoints if c["size"] <= index]
        expected = None if not before else {"size": before[-1]["size"], "root": before[-1]["root"]}
        assert entry["prev_checkpoint"] == expected


async def test_consent_receipt_proves_the_signed_grant(bridge: Bridge) -> None:
    victim, counsellor = await picked_up(bridge)
    await counsellor.propose(victim.conversation_id)
    await victim.next_event("consent.prompt")
    ack = await victim.grant(retain_for_case_file=True)
    receipt = ack["receipt"]
    checkpoint = receipt["checkpoint"]
    key = await victim.request("GET", "/api/v1/audit/log-key")
    crypto.verify_object(checkpoint, checkpoint["sig"], key["ed25519"])
    assert checkpoint["size"] > receipt["index"]

    client, token = await auditor(bridge)
    entries = await audit_entries(bridge, token)
    grant_entry = entries[receipt["index"]]
    assert grant_entry["kind"] == "consent.granted"
    leaf = merkle.leaf_hash(crypto.jcs(grant_entry))
    await proves_inclusion(client, token, receipt["index"], checkpoint, leaf)
    started = next(
        e
        for e in entries
        if e["kind"] == "conversation.started" and e["conversation"] == victim.conversation_id
    )
    crypto.verify_object(
        grant_entry["grant"], grant_entry["sig"], started["victim_device"]["ed25519"]
    )
    assert grant_entry["grant"]["choices"] == {
        "retain_for_case_file": True,
        "share_needs_note": True,
    }


async def test_reads_exports_and_key_fetches_are_access_records(bridge: Bridge) -> None:
    officer = await bridge.officer()
    victim, counsellor = await picked_up(bridge)
    cid = victim.conversation_id
    await counsellor.propose(cid)
    await victim.next_event("consent.prompt")
    await victim.grant(retain_for_case_file=True)
    invite = await officer.next_event("invite")
    await officer.accept(invite["invite_id"])
    await victim.next_event("bridge.state", where=state_is("joined"))
    seq = await victim.send("Voor het dossier.")
    await officer.history(cid)
    exported = await officer.request(
        "GET", f"/api/v1/conversations/{cid}/transcript", token=officer.token
    )
    assert [m["seq"] for m in exported["messages"]] == [seq]

    kinds = [json.loads(row) for row in log_rows(bridge)]
    reads = [e for e in kinds if e["kind"] == "transcript.read" and e["actor"]["role"] == "officer"]
    assert reads and reads[-1]["scope"] == "investigation"
    assert (reads[-1]["first_seq"], reads[-1]["last_seq"]) == (seq, seq)
    exports = [e for e in kinds if e["kind"] == "transcript.exported"]
    assert [(e["scope"], e["first_seq"], e["last_seq"]) for e in exports] == [
        ("investigation", seq, seq)
    ]
    fetched = [e for e in kinds if e["kind"] == "org_key.fetched"]
    assert {e["org"] for e in fetched} == {"fier", "avim"}


async def test_officer_may_not_export_without_the_victims_leave(bridge: Bridge) -> None:
    victim, _, officer = await driegesprek(bridge)
    await victim.send("Niet voor een dossier.")
    with pytest.raises(Refused) as info:
        await officer.request(
            "GET", f"/api/v1/conversations/{victim.conversation_id}/transcript", token=officer.token
        )
    assert (info.value.status, info.value.code) == (403, "forbidden")
    assert not [r for r in log_rows(bridge) if '"transcript.exported"' in r]


async def test_the_log_holds_no_content_keys_or_tokens(bridge: Bridge) -> None:
    texts = ["Ik werk in een huis waar ik niet weg mag.", "Alleen voor jou.", "AVIM hier."]
    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    await victim.send(texts[0])
    await victim.send(texts[1], care_only=True)
    await officer.send(cid, texts[2])
    await counsellor.send(cid, "Eenvoudige taal.", kind="needs_note")
    await officer.history(cid)
    await victim.withdraw()
    log = "\n".join(log_rows(bridge))

    secrets: list[str] = [*texts, "Eenvoudige taal."]
    for party in (victim, counsellor, officer):
        assert party.token is not None
        secrets.append(party.token)
        secrets.append(crypto.b64u_encode(bytes(party.keys.signing)))
        secrets.append(crypto.b64u_encode(bytes(party.keys.box)))
    for org in ("fier", "avim"):
        secrets.append(bridge.passphrases[org])
    org_keys = [*counsellor.org_keys.values(), *officer.org_keys.values()]
    assert len(org_keys) == 2
    secrets += [crypto.b64u_encode(bytes(key)) for key in org_keys]
    for envelope in victim.sent.values():
        secrets += [str(envelope["ciphertext"]), *map(str, dict(envelope["keys"]).values())]
    conversation = victim.conversation
    secrets += [str(sealed) for sealed in conversation.sealed.values()]
    for secret in secrets:
        assert secret not in log, secret[:12]
    for word in ("huis", "paspoort", "Alleen voor jou", "AVIM hier"):
        assert word not in log
