"""Who may act on which conversation: the checks every conversation event starts with.

Order follows PROTOCOL.md ("Validation order"): ``not_found`` and ``forbidden`` come before
``wrong_state`` and ``no_consent``. An officer that never joined a conversation is
``forbidden``; one that was removed gets ``no_consent`` until it accepts an invite under a new
grant (DESIGN.md principle 7).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.domain.auth import Principal
from bridge.domain.consent.machine import ACTIVE
from bridge.errors import Forbidden, NoConsent, NotFound, WrongState
from bridge.store.models import BridgeRequest, Conversation, Participant

__all__ = ["Caller", "ConversationContext", "active_request", "load_context"]


@dataclass(frozen=True)
class Caller:
    """A connected party: its principal and the device registered on its socket."""

    principal: Principal
    device_id: str | None

    @property
    def role(self) -> str:
        return self.principal.role


@dataclass
class ConversationContext:
    conversation: Conversation
    request: BridgeRequest | None
    officer: Participant | None

    @property
    def bridge_state(self) -> str:
        """The state the audience rules of the policy speak of ("none" without a bridge)."""
        return "none" if self.request is None else self.request.state


async def active_request(session: AsyncSession, conversation_id: str) -> BridgeRequest | None:
    return await session.scalar(
        select(BridgeRequest).where(
            BridgeRequest.conversation_id == conversation_id,
            BridgeRequest.state.in_([s.value for s in ACTIVE]),
        )
    )


async def load_context(
    session: AsyncSession, caller: Caller, conversation_id: str, *, allow_closed: bool = False
) -> ConversationContext:
    """The conversation as ``caller`` may act on it, or the protocol error that says why not."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("no such conversation")
    principal = caller.principal
    officer: Participant | None = None
    if principal.role == "victim":
        if principal.conversation_id != conversation.id:
            raise Forbidden("this is not your conversation")
    elif principal.role == "counsellor":
        if conversation.counsellor_account_id != principal.account_id:
            raise Forbidden("another counsellor holds this conversation")
    elif principal.role == "officer":
        officer = await session.scalar(
            select(Participant)
            .where(
                Participant.conversation_id == conversation.id,
                Participant.account_id == principal.account_id,
                Participant.role == "officer",
            )
            .order_by(Participant.id.desc())
            .limit(1)
        )
        if officer is None:
            raise Forbidden("you never joined this conversation")
        if officer.ended_at is not None:
            raise NoConsent("the victim's consent for you to read along has ended")
    else:
        raise Forbidden(f"a {principal.role} takes no part in conversations")
    if conversation.state == "closed" and not allow_closed:
        raise WrongState("the conversation is closed")
    return ConversationContext(
        conversation, await active_request(session, conversation.id), officer
    )
