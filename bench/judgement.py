"""How often the callback criteria judge simulated rollouts right: false alarms and misses.

    .venv/bin/python bench/judgement.py [--runs 2000] [--seed 1] [--interval 4,15]

No database, no network: it draws rollouts and hands them to monitor.judge.criteria.decide
exactly as the daemon would. A baseline is one hour of callback probes before the migration, a
window one hour after it, both at the probe interval (4 s: 900 probes an hour; 15 s: 240). A
probe either times out (an error, no latency) or is answered after a lognormal latency, median
45 ms, sigma 0.35 (a realistic spread; p95 about 80 ms) or 0.6 (a wide one; p95 about 120 ms).
Answered latencies reach the criteria only by PROBE_BUCKETS bucket, as Prometheus holds them. A
healthy callback times out on 0.1% of probes: about one an hour at the 4 s interval (3.6 at
one a second). Each scenario draws its baseline and its window independently, afresh on every run:

    healthy, healthy wide        no change (sigma 0.35; 0.6)
    latency +10%                 every latency after the migration 1.1x: the criterion's boundary
    latency +30%, +30% wide      1.3x (sigma 0.35; 0.6)
    errors 1% / 2% / 3%          timeouts after the migration at the 1% budget, twice it, 3x it

For each scenario and interval it prints the share of runs in which each callback criterion
(users_can_authenticate, latency_within_10pct, error_rate_within_baseline) fails, is
inconclusive, or passes; then targets at the 4 s interval: a healthy rollout (both spreads) fails
each criterion in under 0.5% of runs, latency +30% (sigma 0.35) fails latency_within_10pct in
over 95%, errors 3x fails error_rate_within_baseline in over 95%. Exit status 0 when every target
holds, 1 otherwise. Deterministic for a seed: every scenario and interval has its own
random.Random, seeded from --seed, the scenario and the interval, so a scenario's figures do not
depend on which others run. The defaults (2000 runs, 4 s and 15 s) take about 17 s on the
reference machine (2 vCPUs). Prints to stdout only.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.judge.criteria import decide
from monitor.judge.observation import BaselineView, Observation, Result, Thresholds
from monitor.judge.stats import Latencies
from monitor.observe.metrics import PROBE_BUCKETS

HOUR = 3600.0
MEDIAN_SECONDS = 0.045
SIGMA = 0.35  # a realistic spread
WIDE_SIGMA = 0.6
HEALTHY_ERRORS = 0.001  # share of a healthy callback's probes that time out
CALLBACK_CRITERIA = ("users_can_authenticate", "latency_within_10pct", "error_rate_within_baseline")
TARGET_INTERVAL = 4.0
HEALTHY_FAILS_BELOW = 0.005
DETECTED_ABOVE = 0.95

# Per criterion, how many runs ended in each result.
Tally = dict[str, Counter[Result]]


@dataclass(frozen=True)
class Scenario:
    """A rollout: the callback's latency spread, and its slowdown and errors after migrating."""

    name: str
    sigma: float = SIGMA
    slowdown: float = 1.0  # every latency after the migration, times this
    errors: float = HEALTHY_ERRORS  # share of the probes after the migration that time out


HEALTHY = Scenario("healthy")
HEALTHY_WIDE = Scenario("healthy wide", sigma=WIDE_SIGMA)
LATENCY_BOUNDARY = Scenario("latency +10%", slowdown=1.10)
LATENCY_30 = Scenario("latency +30%", slowdown=1.30)
LATENCY_30_WIDE = Scenario("latency +30% wide", sigma=WIDE_SIGMA, slowdown=1.30)
ERRORS_BUDGET = Scenario("errors 1% (budget)", errors=0.01)
ERRORS_2X = Scenario("errors 2% (2x)", errors=0.02)
ERRORS_3X = Scenario("errors 3% (3x)", errors=0.03)
SCENARIOS = (
    HEALTHY,
    HEALTHY_WIDE,
    LATENCY_BOUNDARY,
    LATENCY_30,
    LATENCY_30_WIDE,
    ERRORS_BUDGET,
    ERRORS_2X,
    ERRORS_3X,
)


@dataclass(frozen=True)
class Hour:
    """An hour of probes: how many, how many were answered, and the answers by latency bucket."""

    probes: int
    successes: int
    latencies: Latencies


@dataclass(frozen=True)
class Target:
    """One target: what it asks, whether it holds, and the measured share."""

    text: str
    held: bool
    share: float


def probes_per_hour(interval: float) -> int:
    """Callback probes in an hour at this interval, in seconds."""
    return round(HOUR / interval)


def probe_hour(
    rng: random.Random, probes: int, sigma: float, slowdown: float, errors: float
) -> Hour:
    """An hour of probes: each times out with probability `errors`, else answers lognormally."""
    mu = math.log(MEDIAN_SECONDS * slowdown)
    durations = [math.exp(rng.gauss(mu, sigma)) for _ in range(probes) if rng.random() >= errors]
    return Hour(probes, len(durations), Latencies.of(durations, PROBE_BUCKETS))


def observation(before: Hour, after: Hour) -> Observation:
    """What the daemon observes an hour after an otherwise flawless migration."""
    baseline = BaselineView(
        probes=before.probes,
        success_ratio=before.successes / before.probes,
        p95_seconds=before.latencies.quantile(0.95),
        source="monitor",
        latencies=before.latencies,
    )
    return Observation(
        state="applied",
        stayed_applied=True,
        indexes_valid=True,
        trigger_enabled=True,
        wrongly_invalid=0.0,
        logins=10.0,
        logins_missing_field=0.0,
        probes=after.probes,
        successes=after.successes,
        latencies=after.latencies,
        baseline=baseline,
        window_complete=True,
    )


def judge(rng: random.Random, scenario: Scenario, probes: int) -> dict[str, Result]:
    """One rollout of this scenario, decided: each callback criterion's result."""
    before = probe_hour(rng, probes, scenario.sigma, 1.0, HEALTHY_ERRORS)
    after = probe_hour(rng, probes, scenario.sigma, scenario.slowdown, scenario.errors)
    results = {d.criterion: d.result for d in decide(observation(before, after), Thresholds())}
    return {name: results[name] for name in CALLBACK_CRITERIA}


def scenario_rng(seed: int, scenario: Scenario, interval: float) -> random.Random:
    """The generator of one scenario at one interval, from the seed alone."""
    return random.Random(f"{seed}/{scenario.name}/{interval:g}")  # noqa: S311  # not secrets


def tally(scenario: Scenario, interval: float, runs: int, seed: int) -> Tally:
    """How many of `runs` rollouts of this scenario end in each result, per callback criterion."""
    rng, probes = scenario_rng(seed, scenario, interval), probes_per_hour(interval)
    counts: Tally = {name: Counter() for name in CALLBACK_CRITERIA}
    for _ in range(runs):
        for name, result in judge(rng, scenario, probes).items():
            counts[name][result] += 1
    return counts


def share(counts: Counter[Result], result: Result) -> float:
    """The share of runs that ended in this result."""
    return counts[result] / max(1, counts.total())


def shares(counts: Counter[Result]) -> str:
    """fail / inconclusive / pass, in percent."""
    order: tuple[Result, ...] = ("fail", "inconclusive", "pass")
    return " / ".join(f"{100 * share(counts, result):.1f}" for result in order)


def table(interval: float, tallies: dict[str, Tally]) -> list[str]:
    """A Markdown table of every scenario's shares at one interval."""
    lines = [
        f"### Probe every {interval:g} s: {probes_per_hour(interval)} probes an hour, each side",
        "",
        "fail / inconclusive / pass, % of runs",
        "",
        "| scenario | " + " | ".join(CALLBACK_CRITERIA) + " |",
        "|---" * (len(CALLBACK_CRITERIA) + 1) + "|",
    ]
    for name, counts in tallies.items():
        cells = [name, *(shares(counts[criterion]) for criterion in CALLBACK_CRITERIA)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(tallies: dict[str, Tally]) -> list[Target]:
    """The targets, judged on the tallies of the target interval."""
    found = [
        Target(
            f"{scenario.name}: {name} fails < {100 * HEALTHY_FAILS_BELOW:g}%",
            share(tallies[scenario.name][name], "fail") < HEALTHY_FAILS_BELOW,
            share(tallies[scenario.name][name], "fail"),
        )
        for scenario in (HEALTHY, HEALTHY_WIDE)
        for name in CALLBACK_CRITERIA
    ]
    for scenario, name in (
        (LATENCY_30, "latency_within_10pct"),
        (ERRORS_3X, "error_rate_within_baseline"),
    ):
        failed = share(tallies[scenario.name][name], "fail")
        text = f"{scenario.name}: {name} fails > {100 * DETECTED_ABOVE:g}%"
        found.append(Target(text, failed > DETECTED_ABOVE, failed))
    return found


def target_lines(found: Sequence[Target]) -> list[str]:
    """A Markdown table of the targets."""
    lines = [
        f"### Targets (probe every {TARGET_INTERVAL:g} s)",
        "",
        "| held | target | measured |",
        "|---|---|---|",
    ]
    for target in found:
        held = "yes" if target.held else "no"
        lines.append(f"| {held} | {target.text} | {100 * target.share:.1f}% |")
    return lines


def intervals(text: str) -> list[float]:
    """Probe intervals in seconds, comma-separated: "4,15"."""
    values = [float(part) for part in text.split(",") if part.strip()]
    if not values or any(value <= 0 or value > HOUR for value in values):
        raise argparse.ArgumentTypeError(f"intervals between 0 and 3600 s expected: {text!r}")
    return values


def main() -> int:
    """Every scenario at every interval, then the targets; 0 when every target holds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=2000, help="rollouts per scenario and interval (2000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of every generator (1)")
    parser.add_argument(
        "--interval", type=intervals, default="4,15", help="probe intervals, s (4,15)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    by_interval: dict[float, dict[str, Tally]] = {}
    for interval in args.interval:
        by_interval[interval] = {
            s.name: tally(s, interval, args.runs, args.seed) for s in SCENARIOS
        }
        print("\n".join(table(interval, by_interval[interval])), end="\n\n")
    elapsed = time.perf_counter() - started
    print(f"{args.runs} runs per scenario and interval, seed {args.seed}, {elapsed:.1f} s\n")
    if TARGET_INTERVAL not in by_interval:
        print(f"No targets: they are judged at {TARGET_INTERVAL:g} s, which did not run.")
        return 1
    found = targets(by_interval[TARGET_INTERVAL])
    print("\n".join(target_lines(found)))
    return 0 if all(target.held for target in found) else 1


if __name__ == "__main__":
    raise SystemExit(main())
