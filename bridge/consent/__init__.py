"""Consent: the state machine of a bridge request, its texts, and the log of every decision."""
