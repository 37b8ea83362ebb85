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
    tokens: 1 for one drift run  a healthy callback, but the drift check reports one wrongly
                                 invalid token at one of its runs (a random one), 0 at the others
    tokens: 81 from then on      81 wrongly invalid tokens from a random drift run to the end
    run: waits within it        a 2 s run before the window, probed by 5 replicas: each login
                                 during it waits for the migration's locks up to the run's end
                                 (uniform over what is left of it), then answers as healthy
    run: 2.5 s past it           the same run probed by 10 replicas, its logins answered 2.5 s
                                 after the run would let them: more than its locks explain

The token half of users_can_authenticate goes through the daemon's own path: the drift check
reports once a minute (its default interval), each probe is recorded with the latest report
around it (monitor.observe.probelog.Observed), the live view's ProbeWindow keeps the highest
any probe saw, and the observation takes the higher of that and the latest report
(monitor.judge.live). In every other scenario the drift check reports 0 throughout.

For each scenario and interval it prints the share of runs in which each callback criterion
(users_can_authenticate, latency_within_10pct, error_rate_within_baseline) fails, is
inconclusive, or passes; then the targets at the 4 s interval (bench/targets.py): a healthy
rollout (both spreads; the drift check reporting 0) fails each criterion in at most 0.5% of
runs, and so does a healthy run's lock waits; latency +30% (sigma 0.35) fails
latency_within_10pct in at least 95%, and so do a run's logins 2.5 s past it; errors 3x fails
error_rate_within_baseline in at least 95%; a wrongly invalid token reported in the window fails
users_can_authenticate in every run (both token scenarios). Exit status 0 when every target is
met, 1 otherwise. Deterministic for a seed: every scenario and interval has its own
random.Random, seeded from --seed, the scenario and the interval, so a scenario's figures do not
depend on which others run. The defaults (2000 runs, 4 s and 15 s) take about 28 s on the
reference machine (2 vCPUs). Prints to stdout only.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for folder in (BENCH.parent, BENCH):  # the repository (monitor) and bench/ (targets)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from targets import Targets  # noqa: E402

from monitor.judge.criteria import decide  # noqa: E402
from monitor.judge.live import highest  # noqa: E402
from monitor.judge.observation import BaselineView, Observation, Result, Thresholds  # noqa: E402
from monitor.judge.probewindow import ProbeWindow  # noqa: E402
from monitor.judge.stats import Latencies  # noqa: E402
from monitor.observe.metrics import PROBE_BUCKETS  # noqa: E402
from monitor.observe.probelog import Around, Observed  # noqa: E402

HOUR = 3600.0
MEDIAN_SECONDS = 0.045
SIGMA = 0.35  # a realistic spread
WIDE_SIGMA = 0.6
HEALTHY_ERRORS = 0.001  # share of a healthy callback's probes that time out
CALLBACK_CRITERIA = ("users_can_authenticate", "latency_within_10pct", "error_rate_within_baseline")
TARGET_INTERVAL = 4.0
HEALTHY_FAILS_AT_MOST = 0.005
DETECTED_AT_LEAST = 0.95
DRIFT_INTERVAL = 60.0  # the drift check's default interval (monitor/config/schema.py)
DEFAULT_RUNS = 2000

# Per criterion, how many runs ended in each result.
Tally = dict[str, Counter[Result]]


@dataclass(frozen=True)
class Scenario:
    """A rollout: the callback's latency spread, and its slowdown and errors after migrating."""

    name: str
    sigma: float = SIGMA
    slowdown: float = 1.0  # every latency after the migration, times this
    errors: float = HEALTHY_ERRORS  # share of the probes after the migration that time out
    wrongly_invalid: float = 0.0  # what the drift check reports at its runs with the fault
    reported_runs: int | None = None  # how many runs report it, from a random one; None: to the end
    run_seconds: float = 0.0  # the migration's run, before the window (0: applied at once)
    run_replicas: int = 1  # monitors probing during the run, each every interval
    run_late: float = 0.0  # seconds a run's login answers after its wait for the locks ends


HEALTHY = Scenario("healthy")
HEALTHY_WIDE = Scenario("healthy wide", sigma=WIDE_SIGMA)
LATENCY_BOUNDARY = Scenario("latency +10%", slowdown=1.10)
LATENCY_30 = Scenario("latency +30%", slowdown=1.30)
LATENCY_30_WIDE = Scenario("latency +30% wide", sigma=WIDE_SIGMA, slowdown=1.30)
ERRORS_BUDGET = Scenario("errors 1% (budget)", errors=0.01)
ERRORS_2X = Scenario("errors 2% (2x)", errors=0.02)
ERRORS_3X = Scenario("errors 3% (3x)", errors=0.03)
TOKEN_ONCE = Scenario("tokens: 1 for one drift run", wrongly_invalid=1.0, reported_runs=1)
TOKENS_ON = Scenario("tokens: 81 from then on", wrongly_invalid=81.0)
TOKEN_SCENARIOS = (TOKEN_ONCE, TOKENS_ON)
RUN_HEALTHY = Scenario("run: waits within it", run_seconds=2.0, run_replicas=5)
RUN_LATE = Scenario("run: 2.5 s past it", run_seconds=2.0, run_replicas=10, run_late=2.5)
SCENARIOS = (
    HEALTHY,
    HEALTHY_WIDE,
    LATENCY_BOUNDARY,
    LATENCY_30,
    LATENCY_30_WIDE,
    ERRORS_BUDGET,
    ERRORS_2X,
    ERRORS_3X,
    *TOKEN_SCENARIOS,
    RUN_HEALTHY,
    RUN_LATE,
)


@dataclass(frozen=True)
class Hour:
    """An hour of probes: how many, how many were answered, and the answers by latency bucket."""

    probes: int
    successes: int
    latencies: Latencies


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


def drift_reports(rng: random.Random, scenario: Scenario) -> list[float]:
    """What the drift check reports at each of its runs in the hour after the migration."""
    runs = round(HOUR / DRIFT_INTERVAL)
    if not scenario.wrongly_invalid:
        return [0.0] * runs
    first = rng.randrange(runs)
    last = runs if scenario.reported_runs is None else first + scenario.reported_runs
    return [scenario.wrongly_invalid if first <= run < last else 0.0 for run in range(runs)]


def wrongly_seen(reports: list[float], probes: int) -> float | None:
    """The most wrongly invalid tokens the daemon holds for the window: each probe recorded
    with the latest report around it, the highest any of them saw (the live view's
    ProbeWindow), or the latest report if higher (monitor.judge.live.LiveView.observation)."""
    if not any(reports):  # every report 0: so is every probe's, and the highest
        return highest([reports[-1]])
    interval = HOUR / probes
    arounds = [Around(wrongly_invalid=value) for value in reports]
    window = ProbeWindow()
    for probe in range(1, probes + 1):
        at = probe * interval
        around = arounds[min(int(at // DRIFT_INTERVAL), len(reports) - 1)]
        window.add(Observed(at, "success", answered=MEDIAN_SECONDS, around=around))
    return highest([reports[-1], window.counted(0.0).highest_wrongly_invalid])


def run_latencies(
    rng: random.Random, scenario: Scenario, interval: float
) -> tuple[int, Latencies] | None:
    """The run's probes, answered after waiting for its locks (and `run_late` more)."""
    if scenario.run_seconds <= 0:
        return None
    mu, answers = math.log(MEDIAN_SECONDS), []
    for _ in range(scenario.run_replicas):
        at = rng.uniform(0, interval)  # each replica's probes on its own offset
        while at < scenario.run_seconds:
            wait = scenario.run_seconds - at + scenario.run_late
            answers.append(wait + math.exp(rng.gauss(mu, scenario.sigma)))
            at += interval
    return len(answers), Latencies.of(answers, PROBE_BUCKETS)


def observation(
    before: Hour,
    after: Hour,
    wrongly_invalid: float | None,
    run: tuple[int, Latencies] | None = None,
    run_seconds: float = 0.0,
) -> Observation:
    """What the daemon observes an hour after an otherwise flawless migration (its run, when
    there is one, before the hour: its probes answered, judged apart)."""
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
        wrongly_invalid=wrongly_invalid,
        logins=10.0,
        logins_missing_field=0.0,
        probes=after.probes + (0 if run is None else run[0]),
        successes=after.successes + (0 if run is None else run[0]),
        latencies=after.latencies if run is None else after.latencies.plus(run[1]),
        baseline=baseline,
        window_complete=True,
        run_probes=0 if run is None else run[0],
        run_seconds=run_seconds,
        run_latencies=None if run is None else run[1],
        post_latencies=None if run is None else after.latencies,
    )


def judge(rng: random.Random, scenario: Scenario, probes: int) -> dict[str, Result]:
    """One rollout of this scenario, decided: each callback criterion's result."""
    before = probe_hour(rng, probes, scenario.sigma, 1.0, HEALTHY_ERRORS)
    after = probe_hour(rng, probes, scenario.sigma, scenario.slowdown, scenario.errors)
    wrongly = wrongly_seen(drift_reports(rng, scenario), probes)
    run = run_latencies(rng, scenario, HOUR / probes)
    observed = observation(before, after, wrongly, run, scenario.run_seconds)
    results = {d.criterion: d.result for d in decide(observed, Thresholds())}
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


def judge_targets(targets: Targets, tallies: dict[str, Tally]) -> None:
    """The targets, judged on the tallies of the target interval (shares in percent)."""

    def failed(scenario: Scenario, name: str) -> float:
        """The percentage of runs of the scenario in which the criterion failed."""
        return 100 * share(tallies[scenario.name][name], "fail")

    for scenario in (HEALTHY, HEALTHY_WIDE, RUN_HEALTHY):
        for name in CALLBACK_CRITERIA:
            what = f"{scenario.name}: {name} fails"
            targets.at_most(
                what, failed(scenario, name), 100 * HEALTHY_FAILS_AT_MOST, "%", digits=1
            )
    for scenario, name in (
        (LATENCY_30, "latency_within_10pct"),
        (ERRORS_3X, "error_rate_within_baseline"),
        (RUN_LATE, "latency_within_10pct"),
    ):
        what = f"{scenario.name}: {name} fails"
        targets.at_least(what, failed(scenario, name), 100 * DETECTED_AT_LEAST, "%", digits=1)
    for scenario in TOKEN_SCENARIOS:
        what = f"{scenario.name}: users_can_authenticate fails"
        targets.equal(what, failed(scenario, "users_can_authenticate"), 100.0, "%", digits=1)


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
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"rollouts per scenario and interval ({DEFAULT_RUNS})",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of every generator (1)")
    parser.add_argument(
        "--interval", type=intervals, default="4,15", help="probe intervals, s (4,15)"
    )
    args = parser.parse_args()
    targets = Targets()
    started = time.perf_counter()
    by_interval: dict[float, dict[str, Tally]] = {}
    for interval in args.interval:
        by_interval[interval] = {
            s.name: tally(s, interval, args.runs, args.seed) for s in SCENARIOS
        }
        print("\n".join(table(interval, by_interval[interval])), end="\n\n")
    elapsed = time.perf_counter() - started
    print(f"{args.runs} runs per scenario and interval, seed {args.seed}, {elapsed:.1f} s\n")
    if TARGET_INTERVAL in by_interval:
        judge_targets(targets, by_interval[TARGET_INTERVAL])
    else:  # judged at 4 s only: without it, nothing is judged, which the summary counts missed
        print(f"No targets: they are judged at {TARGET_INTERVAL:g} s, which did not run.")
    return targets.finish(title=f"Targets (probe every {TARGET_INTERVAL:g} s)")


if __name__ == "__main__":
    raise SystemExit(main())
