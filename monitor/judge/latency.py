"""The plan's "No performance degradation >10%": p95 after the migration against the baseline's,
and the run's own probes against what its locks explain.

The run's lock waits are expected: Prisma runs the file as one transaction, so every lock it
takes is held to the run's end, and a login during the run may wait for all of it. Judged with
the others, a few seconds of such waits decide a short window's p95 (issue 19's finding: a
healthy rollout failed at 3.4x); judged apart, they fail only when more of the run's probes than
chance allows took longer than the whole run plus the baseline p95.
"""

from __future__ import annotations

from monitor.judge.observation import (
    BaselineView,
    Decision,
    Observation,
    Thresholds,
    baseline_problem,
    failing,
    passing,
    undecided,
)
from monitor.judge.stats import Latencies, errors_exceed, quantile_ratio

WITHIN_CHANCE = "but not beyond chance yet"


def latency_within_10pct(o: Observation, t: Thresholds) -> Decision:
    """After the migration, p95 is not above the tolerance (1.1) times the baseline's beyond
    chance. The run's probes are judged apart: its lock waits are expected (every lock is held
    to the run's end), so they only fail it when more of them than chance allows took longer
    than the whole run plus the baseline p95, more than those locks explain."""
    name = "latency_within_10pct"
    b = o.baseline
    problem = baseline_problem(b, t)
    if b is None or problem is not None or b.p95_seconds is None:
        why = problem or "no baseline latency"
        return undecided(name, f"baseline unusable ({why})", baseline_probes=probes_of(b))
    if (waited := run_waited_too_long(o, b.p95_seconds, t)) is not None:
        return waited
    after = o.after_run
    answered = 0 if after is None else after.total
    run = _run_latency(o, b.p95_seconds)
    if after is None or answered < t.min_probes:
        reason = f"{answered} probes answered after the migration, fewer than {t.min_probes}"
        return undecided(name, reason + run, probes_after=answered)
    return against_baseline(after, b, t, run)


def against_baseline(after: Latencies, b: BaselineView, t: Thresholds, run: str) -> Decision:
    """The p95 after the migration over the baseline's: within the tolerance passes, above it
    beyond chance fails, above it within chance is not decided yet."""
    name = "latency_within_10pct"
    base = b.latencies if b.latencies is not None else b.p95_seconds
    ratio = None if base is None else quantile_ratio(after, base, 0.95, t.latency_alpha)
    p95 = after.quantile(0.95)
    numbers: dict[str, float | None] = {
        "p95_seconds": p95,
        "baseline_p95_seconds": b.p95_seconds,
        "probes_after": after.total,
    }
    if ratio is None or p95 is None:
        return undecided(name, "no probe got an answer after the migration", **numbers)
    numbers["ratio_lower_bound"] = ratio.lower
    text = (
        f"p95 {p95 * 1000:.1f} ms after the migration, {ratio.estimate:.2f}x the baseline"
        f" {(b.p95_seconds or 0.0) * 1000:.1f} ms"
    )
    if round(ratio.estimate, 9) <= t.latency_tolerance:
        return passing(name, text + run, **numbers)
    if ratio.lower > 1.0:
        reason = f"{text}, above {t.latency_tolerance:.2f}x beyond chance{run}"
        return failing(name, reason, **numbers)
    return undecided(
        name, f"{text}: above {t.latency_tolerance:.2f}x, {WITHIN_CHANCE}{run}", **numbers
    )


# A healthy probe is slower than the baseline's p95 one time in 20; one that waited the whole
# run for the migration's locks, slower than the run plus that, no more often.
RUN_TAIL = 0.05


def run_waited_too_long(o: Observation, baseline_p95: float, t: Thresholds) -> Decision | None:
    """A failure when more of the run's probes than chance allows took longer than the whole
    run plus the baseline p95 (exact binomial test, as for errors); else None."""
    run = o.run_latencies
    if run is None or run.total == 0:
        return None
    bound = o.run_seconds + baseline_p95
    slow = run.slower_than(bound)
    if not errors_exceed(slow, run.total, RUN_TAIL, t.errors_alpha):
        return None
    reason = (
        f"{slow} of the {run.total} probes answered during the migration's"
        f" {o.run_seconds:.1f} s run took over {bound:.2f} s (the run plus the baseline p95):"
        " longer than its locks explain"
    )
    return failing("latency_within_10pct", reason, run_probes=run.total, run_slower=slow)


def _run_latency(o: Observation, baseline_p95: float) -> str:
    """The run, when the window has one: judged apart, and how many of its answers took longer
    than it plus the baseline p95."""
    if o.run_seconds <= 0:
        return ""
    run = o.run_latencies
    slow = 0 if run is None else run.slower_than(o.run_seconds + baseline_p95)
    return (
        f"; the {o.run_seconds:.1f} s run judged apart ({slow} answers slower than it plus the"
        " baseline p95)"
    )


def probes_of(baseline: BaselineView | None) -> int:
    return 0 if baseline is None else baseline.probes
