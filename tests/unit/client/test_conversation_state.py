"""What a client knows of a conversation: join answers and server events update it, and
``seen_seq`` (where a resume fetches from) moves only over what the client holds."""

from __future__ import annotations

from typing import Any

from bridge.client.conversation import Conversation, DecryptedMessage

EPOCH = {"epoch_id": "e1", "public": "pub-e1"}


def _message(seq: int) -> DecryptedMessage:
    return DecryptedMessage(
        seq=seq,
        sender_role="victim",
        sender_device_id="dv",
        kind="message",
        audience=["care"],
        epoch_id=None,
        text="hi",
        sent_at=None,
        server_time="2024-01-01T00:00:00Z",
        verified=True,
        conversation_id="c1",
        envelope={},
    )


def test_join_answer_gives_keys_epoch_and_participants() -> None:
    conv = Conversation("c1")
    victim = {"device_id": "dv", "ed25519": "sig-v", "x25519": "box-v"}
    counsellor = {"role": "counsellor", "device_id": "dc", "ed25519": "sig-c"}
    conv.apply_join(
        {
            "state": "active",
            "last_seq": 7,
            "care_scope": {"public": "pub-care", "sealed_private": "sealed-care"},
            "epoch": {**EPOCH, "sealed_private": "sealed-e1"},
            "bridge": {"request_id": "r1", "state": "joined"},
            "victim_device": victim,
            "participants": [counsellor],
        }
    )
    assert (conv.state, conv.last_seq, conv.care_public) == ("active", 7, "pub-care")
    assert conv.epoch == EPOCH  # the public part only
    assert conv.sealed == {"care": "sealed-care", "e1": "sealed-e1"}
    assert conv.participants == {"dv": {"role": "victim", **victim}, "dc": counsellor}


def test_join_answer_without_a_field_keeps_what_was_known() -> None:
    conv = Conversation("c1")
    conv.apply_join({"state": "active", "care_scope": {"public": "pub-care"}, "epoch": EPOCH})
    conv.apply_join({"last_seq": 3})
    assert (conv.state, conv.care_public, conv.epoch) == ("active", "pub-care", EPOCH)


def test_bridge_state_of_the_same_request_keeps_its_epoch() -> None:
    conv = Conversation("c1")
    conv.apply_event(
        "bridge.state",
        {"conversation_id": "c1", "request_id": "r1", "state": "joined", "epoch": EPOCH},
    )
    conv.apply_event(
        "bridge.state", {"conversation_id": "c1", "request_id": "r1", "state": "paused"}
    )
    assert conv.bridge == {"request_id": "r1", "state": "paused", "epoch": EPOCH}
    conv.apply_event(
        "bridge.state", {"conversation_id": "c1", "request_id": "r2", "state": "asked"}
    )
    assert conv.bridge == {"request_id": "r2", "state": "asked"}


def test_participant_and_closed_events_update_the_conversation() -> None:
    conv = Conversation("c1", state="active")
    officer: dict[str, Any] = {"role": "officer", "device_id": "do", "ed25519": "sig-o"}
    conv.apply_event("participant", {"conversation_id": "c1", "participant": officer})
    conv.apply_event("queue", {"conversation_id": "c1"})
    assert (conv.participants, conv.state) == ({"do": officer}, "active")
    conv.apply_event("conversation.closed", {"conversation_id": "c1"})
    assert conv.state == "closed"


def test_seen_seq_stops_at_a_gap_for_a_reader_of_every_seq() -> None:
    conv = Conversation("c1", seen_seq=2)
    for seq in (3, 5):
        conv.store(_message(seq), reads_every_seq=True)
    assert conv.seen_seq == 3  # 4 is missing: a resume fetches from there
    conv.store(_message(4), reads_every_seq=True)
    assert conv.seen_seq == 5


def test_seen_seq_jumps_to_the_highest_for_an_officer() -> None:
    conv = Conversation("c1", seen_seq=2)
    conv.store(_message(9), reads_every_seq=False)
    conv.store(_message(4), reads_every_seq=False)
    assert (conv.seen_seq, sorted(conv.messages)) == (9, [4, 9])
