"""The in-memory limiters on a clock the test turns by hand."""

from __future__ import annotations

from bridge.limits import Backoff, Keyed, WindowLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_limit_allows_its_count_then_refuses_until_the_window_passes() -> None:
    clock = Clock()
    limit = WindowLimit(2, 60.0, clock)
    key = Keyed()("address", "192.0.2.1")
    assert [limit.take(key) for _ in range(3)] == [True, True, False]
    assert limit.take(Keyed()("address", "192.0.2.2"))
    clock.now += 60.0
    assert limit.take(key)


def test_a_window_limit_forgets_keys_whose_window_passed() -> None:
    clock = Clock()
    limit = WindowLimit(1, 60.0, clock)
    for n in range(100):
        limit.take(n.to_bytes(2))
    clock.now += 61.0
    limit.take(b"new")
    assert len(limit._counts) == 1


def test_backoff_locks_out_after_the_allowed_failures_and_doubles() -> None:
    clock = Clock()
    backoff = Backoff(3, 30.0, 900.0, clock)
    key = b"user"
    assert [backoff.attempt(key) for _ in range(4)] == [True, True, True, False]
    clock.now += 29.0
    assert backoff.locked(key)
    clock.now += 1.0
    assert not backoff.locked(key)
    assert backoff.attempt(key)  # a fourth failure: locked twice as long
    clock.now += 59.0
    assert backoff.locked(key)
    clock.now += 1.0
    assert not backoff.locked(key)


def test_backoff_is_capped_and_forgets_a_quiet_key() -> None:
    clock = Clock()
    backoff = Backoff(1, 30.0, 100.0, clock)
    for lockout in (30.0, 60.0, 100.0, 100.0):
        assert backoff.attempt(b"k")
        clock.now += lockout - 1.0
        assert backoff.locked(b"k")
        clock.now += 1.0
        assert not backoff.locked(b"k")
    clock.now += 99.0
    assert b"k" in backoff._failures
    clock.now += 1.0
    assert not backoff.locked(b"k")
    assert b"k" not in backoff._failures


def test_a_success_is_forgiven_and_a_reset_forgets() -> None:
    backoff = Backoff(2, 30.0, 900.0, Clock())
    assert backoff.attempt(b"k")
    backoff.forgive(b"k")
    assert backoff.attempt(b"k")
    assert backoff.attempt(b"k")
    assert backoff.locked(b"k")
    backoff.reset(b"k")
    assert not backoff.locked(b"k")


def test_keys_name_nobody_and_differ_per_process() -> None:
    one, other = Keyed(), Keyed()
    assert b"192.0.2.1" not in one("address", "192.0.2.1")
    assert one("address", "192.0.2.1") == one("address", "192.0.2.1")
    assert one("address", "192.0.2.1") != other("address", "192.0.2.1")
    assert one("address", "x") != one("user", "x")
