"""The werkafspraken as data: audience rules, history sharing and expiry times."""

from bridge.policy.loader import Policy, load_policy

__all__ = ["Policy", "load_policy"]
