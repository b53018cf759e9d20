"""The staff clients: a logged-in counsellor or officer with a registered device, reading the
scopes its org keys open."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self
from urllib.parse import quote

from nacl.public import PrivateKey

from bridge import crypto
from bridge.client import writing
from bridge.client.base import BridgeClient
from bridge.client.conversation import Conversation, DecryptedMessage
from bridge.client.network import Network
from bridge.client.wire import JSON

__all__ = ["CounsellorClient", "OfficerClient", "StaffClient"]


class StaffClient(BridgeClient):
    """A logged-in staff member: bearer token, org keys (after ``unlock``) and one device key for
    the client's life, so registering again yields the same ``device_id``."""

    def __init__(
        self, base_url: str, *, ack_timeout: float = 10.0, network: Network | None = None
    ) -> None:
        super().__init__(base_url, ack_timeout=ack_timeout, network=network)
        self.session: JSON = {}

    @classmethod
    async def login(
        cls,
        base_url: str,
        username: str,
        password: str,
        *,
        ack_timeout: float = 10.0,
        network: Network | None = None,
    ) -> Self:
        """``POST /api/v1/session``; ``session`` keeps its answer (token, user_id, role, org)."""
        client = cls(base_url, ack_timeout=ack_timeout, network=network)
        try:
            body = {"username": username, "password": password}
            client.session = await client.request("POST", "/api/v1/session", body)
        except BaseException:
            await client.aclose()
            raise
        client.token = client.session["token"]
        return client

    @property
    def org(self) -> str:
        return str(self.session["org"])

    async def unlock(self, passphrase: str) -> list[str]:
        """Open every version of the org key that ``passphrase`` opens (each fetched sealed,
        opened with Argon2id in a worker thread). Each version has a passphrase of its own,
        maybe the same: returns the key ids still locked, to call again with theirs.
        ``DecryptionError`` if it opens none of them."""
        org = await self.request("GET", f"/api/v1/orgs/{self.org}/key")
        locked = [v["key_id"] for v in org["versions"] if v["key_id"] not in self.org_keys]
        for key_id in locked:
            path = f"/api/v1/orgs/{self.org}/sealed-key?key_id={quote(key_id)}"
            sealed = await self.request("GET", path, token=self.token)
            with contextlib.suppress(crypto.DecryptionError):
                opened = await asyncio.to_thread(crypto.open_org_key, sealed, passphrase.encode())
                self.org_keys[key_id] = opened
        still = [key_id for key_id in locked if key_id not in self.org_keys]
        if locked and still == locked:
            raise crypto.DecryptionError("the passphrase opens no version of the org key")
        return still

    async def register_device(self) -> str:
        """``device.register`` with this client's device keys; returns the ``device_id``."""
        ack = await self.call("device.register", self.keys.registration())
        self.device_id = str(ack["device_id"])
        return self.device_id

    async def _register_again(self) -> None:
        if self.device_id is not None:
            await self.register_device()

    async def history(
        self, conversation_id: str, after_seq: int = 0, limit: int | None = None
    ) -> list[DecryptedMessage]:
        """One ``history.fetch`` (logged as a transcript read); also stored in ``messages``."""
        return await self._history(conversation_id, after_seq, limit)

    async def end(self, conversation_id: str) -> JSON:
        """``bridge.end``: for the counsellor, removes the officer; for the officer, leaves."""
        return await self.call("bridge.end", {"conversation_id": conversation_id})


class CounsellorClient(StaffClient):
    """A Fier counsellor: reads the care scope, picks up conversations and proposes bridges."""

    role = "counsellor"

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "care", self._scope_key(conv, "care")

    async def queue(self) -> list[JSON]:
        """``queue.list``: ``[{conversation_id, lang, waiting_since}]``."""
        return list((await self.call("queue.list", {}))["waiting"])

    async def join(self, conversation_id: str) -> JSON:
        """``conversation.join``: learn participants, bridge and the care scope; returns the ack.
        The care scope key opens once the org key is unlocked."""
        return await self._join("conversation.join", {"conversation_id": conversation_id})

    async def send(
        self, conversation_id: str, text: str, care_only: bool = False, kind: str = "message"
    ) -> int:
        """Send to care, plus investigation while the bridge is ``joined`` (unless care_only);
        a ``needs_note`` always goes to care + investigation under the current epoch."""
        audience = writing.audience_for(self.conversations[conversation_id], care_only, kind)
        return await self.send_envelope(
            text, audience=audience, conversation_id=conversation_id, kind=kind
        )

    async def propose(
        self,
        conversation_id: str,
        purpose: str = "informational",
        preferences: JSON | None = None,
    ) -> str:
        """``bridge.propose``; returns the ``request_id``."""
        payload: JSON = {"conversation_id": conversation_id, "purpose": purpose}
        if preferences is not None:
            payload["preferences"] = preferences
        return str((await self.call("bridge.propose", payload))["request_id"])

    async def pause(self, conversation_id: str) -> JSON:
        return await self.call("bridge.pause", {"conversation_id": conversation_id})

    async def resume(self, conversation_id: str) -> JSON:
        return await self.call("bridge.resume", {"conversation_id": conversation_id})

    async def close(self, conversation_id: str) -> JSON:
        return await self.call("conversation.close", {"conversation_id": conversation_id})

    async def request_breakglass(self, conversation_id: str, category: str) -> str:
        """``breakglass.request`` (meldcode); returns the ``breakglass_id``."""
        payload = {"conversation_id": conversation_id, "category": category}
        return str((await self.call("breakglass.request", payload))["breakglass_id"])

    async def record_disclosure(
        self,
        conversation_id: str,
        agency: str,
        basis: str,
        shared: list[str],
        breakglass_id: str | None = None,
    ) -> int:
        """``disclosure.record``; returns the index of its log entry."""
        payload: JSON = {
            "conversation_id": conversation_id,
            "agency": agency,
            "basis": basis,
            "shared": shared,
        }
        if breakglass_id is not None:
            payload["breakglass_id"] = breakglass_id
        return int((await self.call("disclosure.record", payload))["index"])


class OfficerClient(StaffClient):
    """An AVIM officer: accepts invites and reads the investigation scope of its epoch."""

    role = "officer"

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "investigation", self._scope_key(conv, envelope.get("epoch_id"))

    async def invites(self) -> list[JSON]:
        """``invite.list``: ``[{invite_id, purpose, preferences, expires_at}]``."""
        return list((await self.call("invite.list", {}))["invites"])

    async def accept(self, invite_id: str) -> JSON:
        """``invite.accept``: learn the conversation and its epoch key; returns the ack."""
        return await self._join("invite.accept", {"invite_id": invite_id})

    async def rejoin(self, conversation_id: str) -> JSON:
        """``conversation.join`` as the conversation's current officer (after a reconnect)."""
        return await self._join("conversation.join", {"conversation_id": conversation_id})

    async def send(self, conversation_id: str, text: str) -> int:
        """Send to care + investigation under the epoch this officer holds."""
        return await self.send_envelope(
            text, audience=list(writing.BOTH_SCOPES), conversation_id=conversation_id
        )


class SupervisorClient(StaffClient):
    """A Fier supervisor: decides counsellors' break-glass requests; reads no content, so it
    neither unlocks an org key nor registers a device."""

    role = "supervisor"

    def _reader(self, conv: Conversation, envelope: JSON) -> tuple[str, PrivateKey | None]:
        return "none", None  # a supervisor joins no conversation

    async def breakglass_requests(self) -> list[JSON]:
        """``breakglass.list``: the requests that wait, oldest first."""
        return list((await self.call("breakglass.list", {}))["requests"])

    async def approve(self, breakglass_id: str) -> JSON:
        return await self.call("breakglass.approve", {"breakglass_id": breakglass_id})

    async def refuse(self, breakglass_id: str) -> JSON:
        return await self.call("breakglass.refuse", {"breakglass_id": breakglass_id})
