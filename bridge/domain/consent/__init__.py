"""Consent: the state machine of a bridge request, its requests, invites, expiry and texts."""
