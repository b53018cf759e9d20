"""Who may act on which conversation: the checks every conversation event starts with.

Order follows PROTOCOL.md ("Validation order"): ``not_found`` and ``forbidden`` come before
``wrong_state`` and ``no_consent``. An officer that never joined a conversation is
``forbidden``; one that was removed gets ``no_consent`` until it accepts an invite under a new
grant (DESIGN.md principle 7).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.auth import Principal
from bridge.domain.machine import ACTIVE, ConversationState
from bridge.domain.roles import Role
from bridge.errors import Forbidden, NoConsent, NotFound, WrongState
from bridge.store import conversations, participants
from bridge.store.models import BridgeRequest, Conversation, Participant

__all__ = [
    "Caller",
    "ConversationContext",
    "check_access",
    "checked_context",
    "in_force",
    "load_context",
]


@dataclass(frozen=True)
class Caller:
    """A connected party: its principal and the device registered on its socket."""

    principal: Principal
    device_id: str | None

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def actor(self) -> dict[str, object]:
        """How a log entry names this caller: staff by account, the victim by role alone."""
        if self.role == Role.VICTIM:
            return {"role": Role.VICTIM.value}
        return {"role": self.role, "user_id": self.principal.account_id}


@dataclass
class ConversationContext:
    conversation: Conversation
    request: BridgeRequest | None
    officer: Participant | None
    # The bridge request in force, else the conversation's latest one (None if it had none).
    last: BridgeRequest | None

    @property
    def bridge_state(self) -> str:
        """The state the audience rules of the policy speak of ("none" without a bridge)."""
        return "none" if self.request is None else self.request.state


async def load_context(
    session: AsyncSession, caller: Caller, conversation_id: str, *, allow_closed: bool = False
) -> ConversationContext:
    """The conversation as ``caller`` may act on it, or the protocol error that says why not."""
    found = await conversations.locked_with_bridge(session, conversation_id)
    if found is None:
        raise NotFound("no such conversation")
    conversation, last = found
    return await checked_context(session, caller, conversation, last, allow_closed=allow_closed)


async def checked_context(
    session: AsyncSession,
    caller: Caller,
    conversation: Conversation,
    last: BridgeRequest | None,
    *,
    allow_closed: bool = False,
) -> ConversationContext:
    """The context of a conversation the transaction has locked and read with its latest
    bridge request (``conversations.locked_with_bridge``), or the protocol error that says why
    ``caller`` may not act on it."""
    officer: Participant | None = None
    if caller.role == Role.OFFICER:
        officer = await participants.latest_officer(
            session, conversation.id, caller.principal.account_id
        )
    check_access(
        caller.principal,
        conversation.id,
        conversation.state,
        conversation.counsellor_account_id,
        None if officer is None else officer.ended_at is not None,
        allow_closed=allow_closed,
    )
    return ConversationContext(conversation, in_force(last), officer, last)


def in_force(last: BridgeRequest | None) -> BridgeRequest | None:
    """The conversation's bridge in force, given its latest request (the one in force, if any:
    a bridge is proposed only while none is)."""
    return last if last is not None and last.state in ACTIVE else None


def check_access(
    principal: Principal,
    conversation_id: str,
    state: str,
    counsellor_account_id: str | None,
    officer_ended: bool | None,
    *,
    allow_closed: bool = False,
) -> None:
    """Raise the protocol error for ``principal`` acting on this conversation, if there is one.

    ``officer_ended`` is whether an officer's latest participation has ended (None: it never
    joined)."""
    if principal.role == Role.VICTIM:
        if principal.conversation_id != conversation_id:
            raise Forbidden("this is not your conversation")
    elif principal.role == Role.COUNSELLOR:
        if counsellor_account_id != principal.account_id:
            raise Forbidden("another counsellor holds this conversation")
    elif principal.role == Role.OFFICER:
        if officer_ended is None:
            raise Forbidden("you never joined this conversation")
        if officer_ended:
            raise NoConsent("the victim's consent for you to read along has ended")
    else:
        raise Forbidden(f"a {principal.role} takes no part in conversations")
    if state == ConversationState.CLOSED and not allow_closed:
        raise WrongState("the conversation is closed")
