"""``GET /metrics`` scraped over HTTP while a driegesprek runs: the numbers move as it does, and
no label carries anything a client chose."""

from __future__ import annotations

import math

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from harness import Bridge, audit_entries, driegesprek, error_code, http, state_is

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _text(bridge: Bridge) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(bridge.url + "/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


async def scrape(bridge: Bridge) -> Samples:
    """Every sample of the exposition by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await _text(bridge))
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def sockets(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["role"]: v for (name, labels), v in samples.items() if name == "bridge_sockets"
    }


async def test_the_numbers_follow_a_driegesprek(bridge: Bridge) -> None:
    before = await scrape(bridge)
    assert set(sockets(before).values()) == {0.0}
    assert value(before, "bridge_transitions_total", kind="consent.granted") == 0
    assert value(before, "process_resident_memory_bytes") > 0

    victim, counsellor, officer = await driegesprek(bridge)
    cid = victim.conversation_id
    joined = await scrape(bridge)
    assert sockets(joined) == {
        "victim": 1,
        "counsellor": 1,
        "officer": 1,
        "auditor": 0,
        "admin": 0,
        "supervisor": 0,
    }
    for kind in ("conversation.started", "consent.requested", "consent.granted", "officer.joined"):
        assert value(joined, "bridge_transitions_total", kind=kind) == 1, kind
    assert value(joined, "bridge_transitions_total", kind="consent.withdrawn") == 0

    await victim.send("Ik wil praten.")
    await counsellor.send(cid, "Welkom.")
    await officer.send(cid, "Hallo, ik ben van AVIM.")
    invalid = await victim.call_raw("message.send", {"envelope": "not an envelope"})
    assert error_code(invalid) == "invalid"
    status, _ = await http(bridge, "GET", "/api/v1/consent-texts/informational?lang=fr")
    assert status == 400
    sent = await scrape(bridge)
    assert value(sent, "bridge_messages_accepted_total") == 3
    # Each message is one event to its rooms, the sender's included, before its ack.
    assert value(sent, "bridge_deliveries_total", event="message") == 3
    assert value(sent, "bridge_ack_seconds_count", event="message.send") == 4
    assert value(sent, "bridge_ack_seconds_bucket", event="message.send", le="+Inf") == 4
    assert value(sent, "bridge_ack_seconds_bucket", event="message.send", le="10.0") == 4
    assert value(sent, "bridge_ack_seconds_sum", event="message.send") > 0
    assert value(sent, "bridge_events_total", event="message.send", outcome="invalid") == 1
    # One refused event and one HTTP error body.
    invalid_before = value(joined, "bridge_errors_total", code="invalid")
    assert value(sent, "bridge_errors_total", code="invalid") == invalid_before + 2

    # The counsellor's socket goes: the police part pauses until they are back.
    await counsellor.aclose()
    await victim.next_event("bridge.state", where=state_is("paused"))
    away = await scrape(bridge)
    assert sockets(away)["counsellor"] == 0
    assert sockets(away)["victim"] == 1 and sockets(away)["officer"] == 1
    assert value(away, "bridge_transitions_total", kind="bridge.paused") == 1

    await victim.withdraw()
    again = await victim.call_raw("consent.withdraw", {"conversation_id": cid})
    assert error_code(again) == "wrong_state"
    withdrawn = await scrape(bridge)
    # The refused second withdrawal moved nothing, so it is not counted.
    assert value(withdrawn, "bridge_transitions_total", kind="consent.withdrawn") == 1
    assert value(withdrawn, "bridge_errors_total", code="wrong_state") == (
        value(away, "bridge_errors_total", code="wrong_state") + 1
    )

    token = await bridge.token("auditor")
    log = await scrape(bridge)
    assert value(log, "bridge_log_entries") == len(await audit_entries(bridge, token))
    age = value(log, "bridge_checkpoint_age_seconds")
    assert not math.isnan(age)  # the grant's receipt is a signed checkpoint
    assert 0 <= age < 600


async def test_labels_carry_no_name_a_client_chose(bridge: Bridge) -> None:
    victim = await bridge.victim()
    name = "event-of-person-4fd1c2"
    assert error_code(await victim.call_raw(name, {})) == "invalid"
    # Answered before any handler: counted as an error, no event of its own.
    assert error_code(await victim.call_raw("connect", {"token": "x"})) == "invalid"
    status, _ = await http(bridge, "GET", f"/api/v1/{name}")
    assert status == 404
    text = await _text(bridge)
    assert name not in text and victim.conversation_id not in text
    samples = await scrape(bridge)
    assert value(samples, "bridge_events_total", event="unknown", outcome="invalid") == 1
    events = {dict(labels)["event"] for name, labels in samples if name == "bridge_events_total"}
    assert "connect" not in events
    assert value(samples, "bridge_errors_total", code="invalid") == 2
    assert value(samples, "bridge_errors_total", code="not_found") == 1
