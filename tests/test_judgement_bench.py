"""bench/judgement.py on simulated rollouts: the callback criteria judge them right.

A fixed seed at the 4 s interval (900 probes an hour), so every figure is exact. The bounds that
the true rates make near-certain for any seed are asserted on 300 runs; the bench's own targets
(at least 95% of regressions caught) on the bench's own 2000 runs, since errors at 3x the budget
are caught in about 95.2% of runs: 300 runs cannot tell that from 95% (seed 1 catches 94.0%).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

# bench/ is type-checked on its own (make lint), its scripts as top-level modules.
import judgement  # type: ignore[import-not-found]

RUNS = 300
TARGET_RUNS: int = judgement.DEFAULT_RUNS
SEED = 1
INTERVAL = 4.0


def fails(scenario: Any, criterion: str, runs: int = RUNS) -> int:
    """In how many of `runs` seeded rollouts of the scenario the criterion fails."""
    count: int = judgement.tally(scenario, INTERVAL, runs, SEED)[criterion]["fail"]
    return count


def test_a_healthy_rollout_never_fails_the_error_criteria() -> None:
    counts = judgement.tally(judgement.HEALTHY, INTERVAL, RUNS, SEED)
    assert counts["users_can_authenticate"]["fail"] == 0
    assert counts["error_rate_within_baseline"]["fail"] == 0


def test_a_healthy_rollout_fails_latency_within_10pct_in_at_most_1pct_of_runs() -> None:
    # Not never: about 0.2% of healthy rollouts fail it (0.5 expected in 300 runs; 1 here).
    counts = judgement.tally(judgement.HEALTHY, INTERVAL, RUNS, SEED)
    assert counts["latency_within_10pct"]["fail"] <= 0.01 * RUNS


def test_latency_30pct_up_fails_latency_within_10pct_in_at_least_95pct_of_runs() -> None:
    failed = fails(judgement.LATENCY_30, "latency_within_10pct", TARGET_RUNS)
    assert failed >= 0.95 * TARGET_RUNS


def test_errors_at_3x_the_budget_fail_error_rate_within_baseline_in_95pct_of_runs() -> None:
    failed = fails(judgement.ERRORS_3X, "error_rate_within_baseline", TARGET_RUNS)
    assert failed >= 0.95 * TARGET_RUNS


def test_a_wrongly_invalid_token_reported_once_fails_users_can_authenticate_every_time() -> None:
    assert fails(judgement.TOKEN_ONCE, "users_can_authenticate") == RUNS


def test_wrongly_invalid_tokens_from_a_minute_on_fail_users_can_authenticate_every_time() -> None:
    assert fails(judgement.TOKENS_ON, "users_can_authenticate") == RUNS


def test_the_token_scenarios_leave_the_other_callback_criteria_alone() -> None:
    counts = judgement.tally(judgement.TOKENS_ON, INTERVAL, RUNS, SEED)
    assert counts["error_rate_within_baseline"]["fail"] == 0


def test_the_window_holds_the_highest_report_any_probe_saw() -> None:
    reports = [0.0] * 60
    reports[30] = 3.0  # one drift run reports 3; the latest reports 0
    assert judgement.wrongly_seen(reports, 900) == 3.0
    assert judgement.wrongly_seen([0.0] * 60, 900) == 0.0


def test_every_run_is_counted_once_per_criterion() -> None:
    counts = judgement.tally(judgement.ERRORS_BUDGET, INTERVAL, 50, SEED)
    assert {name: counts[name].total() for name in judgement.CALLBACK_CRITERIA} == dict.fromkeys(
        judgement.CALLBACK_CRITERIA, 50
    )


def test_the_same_seed_draws_the_same_rollouts_and_another_seed_others() -> None:
    def tallies(seed: int) -> list[judgement.Tally]:
        return [judgement.tally(s, INTERVAL, 30, seed) for s in judgement.SCENARIOS]

    assert tallies(SEED) == tallies(SEED)
    assert tallies(SEED) != tallies(SEED + 1)
