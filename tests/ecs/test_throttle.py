"""The service throttle's real schedule and the circuit breaker's threshold, as pure functions
(the end-to-end test runs them with the timing shrunk through config)."""
from __future__ import annotations

from berth.ecs.throttle import Backoff, Ended, Streak, breaker_threshold, observe, stable

STABLE = 10.0


def test_the_real_schedule_doubles_from_10_seconds_up_to_15_minutes() -> None:
    backoff = Backoff()         # the defaults berth runs with
    assert [backoff.delay(n) for n in range(0, 12)] == [
        0, 0, 10, 20, 40, 80, 160, 320, 640, 900, 900, 900]
    assert backoff.delay(10_000) == 900            # no overflow, however long it fails


def crash_loop(runtime: float, rounds: int, backoff: Backoff = Backoff()) -> list[float]:
    """Start times of a task that exits `runtime` seconds after starting, replaced whenever
    the throttle allows (the reconciler's loop, with nothing but the pure parts)."""
    streak, now, starts, ended = Streak(), 0.0, [], []
    for _ in range(rounds):
        now = max(now, streak.retry_at)
        starts.append(now)
        now += runtime
        ended.append(Ended("d1", "EssentialContainerExited", starts[-1], now))
        streak = observe(streak, "d1", ended, [], now, STABLE, backoff)
    return starts


def test_a_crash_loop_is_restarted_less_and_less_often_up_to_15_minutes() -> None:
    starts = crash_loop(runtime=5, rounds=14)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Replaced at once after the first failure, then waits growing to 15 minutes (+ the run).
    assert gaps == [5, 15, 25, 45, 85, 165, 325, 645, 905, 905, 905, 905, 905]
    # Within the first 25 s: 3 starts, where berth used to start 5.
    assert sum(1 for s in starts if s < 25) == 3


def test_a_task_that_stays_up_ends_the_streak() -> None:
    s = Streak()
    ended = [Ended("d1", "TaskFailedToStart", None, t) for t in (1.0, 2.0, 3.0)]
    s = observe(s, "d1", ended, [], 3.0, STABLE, Backoff())
    assert (s.failures, s.retry_at) == (3, 3.0 + 20)
    # A replacement started after the last failure, not yet up for long enough: still failing.
    s = observe(s, "d1", ended, [23.0], 30.0, STABLE, Backoff())
    assert s.failures == 3
    # Up for 10 s: the streak is over, and the next start is not held back.
    s = observe(s, "d1", ended, [23.0], 33.0, STABLE, Backoff())
    assert (s.failures, s.retry_at, s.total) == (0, 0.0, 3)
    # One that ran long and then exited starts a new streak at one failure: replaced at once.
    s = observe(s, "d1", [*ended, Ended("d1", "EssentialContainerExited", 23.0, 100.0)], [],
                100.0, STABLE, Backoff())
    assert (s.failures, s.retry_at) == (1, 100.0)


def test_what_does_not_count() -> None:
    s = Streak(deployment_id="d1")
    ended = [Ended("d1", "UserInitiated", 1.0, 2.0),             # StopTask
             Ended("d1", "ServiceSchedulerInitiated", 1.0, 3.0),  # scale in, deployments
             Ended("d1", "TerminationNotice", 1.0, 4.0),          # its instance was lost
             Ended("d0", "EssentialContainerExited", 1.0, 5.0)]   # an older deployment's
    assert observe(s, "d1", ended, [], 5.0, STABLE, Backoff()).failures == 0
    # Each stopped task counts once, however many passes see it.
    one = [Ended("d1", "TaskFailedToStart", None, 6.0)]
    s = observe(s, "d1", one, [], 6.0, STABLE, Backoff())
    assert observe(s, "d1", one, [], 7.0, STABLE, Backoff()).failures == 1


def test_a_new_deployment_starts_unthrottled() -> None:
    ended = [Ended("d1", "TaskFailedToStart", None, t) for t in (1.0, 2.0, 3.0, 4.0)]
    s = observe(Streak(), "d1", ended, [], 4.0, STABLE, Backoff())
    assert s.retry_at == 4.0 + 40
    s = observe(s, "d2", ended, [], 5.0, STABLE, Backoff())
    assert (s.deployment_id, s.failures, s.retry_at, s.impaired) == ("d2", 0, 0.0, False)


def test_stable_means_every_running_task_stayed_up() -> None:
    assert stable([0.0, 5.0], 15.0, STABLE)
    assert not stable([0.0, 5.1], 15.0, STABLE)
    assert stable([], 0.0, STABLE)


def test_circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() -> None:
    assert [breaker_threshold(n) for n in (0, 1, 6, 7, 10, 399, 400, 10_000)] == [
        3, 3, 3, 4, 5, 200, 200, 200]
