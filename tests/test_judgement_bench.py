"""bench/judgement.py on a few hundred simulated rollouts: the callback criteria judge them right.

A fixed seed and 300 runs at the 4 s interval (900 probes an hour), so every figure is exact; the
bounds asserted are ones the true rates make near-certain for any seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import judgement

RUNS = 300
SEED = 1
INTERVAL = 4.0


def test_a_healthy_rollout_never_fails_the_error_criteria() -> None:
    counts = judgement.tally(judgement.HEALTHY, INTERVAL, RUNS, SEED)
    assert counts["users_can_authenticate"]["fail"] == 0
    assert counts["error_rate_within_baseline"]["fail"] == 0


def test_a_healthy_rollout_fails_latency_within_10pct_in_at_most_1pct_of_runs() -> None:
    # Not never: about 0.2% of healthy rollouts fail it (0.5 expected in 300 runs; 1 here).
    counts = judgement.tally(judgement.HEALTHY, INTERVAL, RUNS, SEED)
    assert counts["latency_within_10pct"]["fail"] <= 0.01 * RUNS


def test_latency_30pct_up_fails_latency_within_10pct_in_at_least_95pct_of_runs() -> None:
    counts = judgement.tally(judgement.LATENCY_30, INTERVAL, RUNS, SEED)
    assert counts["latency_within_10pct"]["fail"] >= 0.95 * RUNS


def test_errors_at_3x_the_budget_fail_error_rate_within_baseline_in_90pct_of_runs() -> None:
    counts = judgement.tally(judgement.ERRORS_3X, INTERVAL, RUNS, SEED)
    assert counts["error_rate_within_baseline"]["fail"] >= 0.90 * RUNS


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
