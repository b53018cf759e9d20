"""What every core service needs, built once by the application."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bridge.domain.consent.texts import ConsentTexts
from bridge.domain.delivery import Presence
from bridge.domain.policies import PolicyInForce
from bridge.log.writer import Log
from bridge.policy import Policy
from bridge.store.db import Database

__all__ = ["Core"]


@dataclass(frozen=True)
class Core:
    db: Database
    log: Log
    policies: PolicyInForce
    texts: ConsentTexts
    presence: Presence
    clock: Callable[[], datetime]

    @property
    def policy(self) -> Policy:
        """The werkafspraken in force now (a newer signed policy replaces it on every node)."""
        return self.policies.current
