"""Fier bridge: the consent-gated, end-to-end encrypted bridge for the driegesprek of Chat met
Fier."""
