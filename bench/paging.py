"""How often RolloutLoginsFailing pages a healthy callback, and how surely it pages a failing one.

    .venv/bin/python bench/paging.py [--onsets 2000] [--seed 1] [--interval 1,2,3,4,...]

No database, no network: the binomial model of the rule in alerting.rules.yml. Each replica
probes every `interval` seconds; a probe fails independently with probability p. Prometheus
scrapes every 15 s and evaluates every 15 s; `increase()` extrapolates to the window's edges.
The rule starts a page when, over the window its band of probe intervals uses (BANDS below,
mirroring the rule's arms), the failed probes are at least k and more than 4x the 1% budget of
the probes, and at least one probe failed within the band's guard (2, 6 or 12 minutes); it then
stays firing while one did (keep_firing_for 1m30s on top).

For each probe interval it prints:

    false pages a month    a healthy callback failing 0.1% and 0.5% of probes: the rate at which
                           the window's count reaches the threshold (a new failure arriving while
                           the others already hold k-1 or more: an upper bound on page onsets,
                           the binomial, exact in p)
    pages within D         8% of probes failing from a random onset: the share of onsets paged
                           within the band's detection time D (10 minutes up to 5 s; 30 minutes
                           up to 15 s; an hour up to 30 s), drawn --onsets times (the 15 s lag
                           of evaluation included; the rule waits a minute after each moment
                           RolloutCallbackDown was pending, and a minute of that pending pages
                           as RolloutCallbackDown)
    a dip every            8% failing: the mean time between two quiet spells (no failure over the
                           guard plus keep_firing_for), when an ongoing page would resolve

Targets (bench/targets.py), at every interval a band judges: at most one false page a month at
0.5%, at least 90% of 8% onsets paged within the band's detection time. Intervals above the last
band (30 s) page only on a callback that is down (RolloutCallbackDown); the docs say so.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from common import Report  # noqa: E402
from targets import Targets  # noqa: E402

MONTH = 30 * 86400
SCRAPE = 15.0
KEEP = 90.0  # keep_firing_for of RolloutLoginsFailing
DOWN_SUPPRESSES = 60.0  # RolloutLoginsFailing waits a minute after RolloutCallbackDown pending
DOWN_FOR = 4  # evaluations after the first: RolloutCallbackDown's `for: 1m`
RATIO = 0.04  # 4x the 1% error budget
HEALTHY = (0.001, 0.005)
FAILING = 0.08
FALSE_PAGES_AT_MOST = 1.0
DETECTED_AT_LEAST = 0.90
DEFAULT_ONSETS = 2000
DEFAULT_INTERVALS = "1,2,3,4,5,6,8,10,12,15,20,30"


@dataclass(frozen=True)
class Band:
    """One arm of the rule: probe intervals up to `up_to` s judged over `window` s, k failures,
    still failing while one failed over the last `guard` s."""

    up_to: float
    window: float
    k: int
    guard: float

    @property
    def detection(self) -> float:
        """How long after an onset the page is promised: the window itself."""
        return self.window


BANDS = (
    Band(5.0, 600.0, 7, 120.0),
    Band(15.0, 1800.0, 7, 360.0),
    Band(30.0, 3600.0, 7, 720.0),
)


def band_for(interval: float) -> Band | None:
    """The arm that judges this probe interval (the first that covers it), or none."""
    return next((band for band in BANDS if interval <= band.up_to), None)


def threshold(band: Band, probes: float) -> int:
    """Failures needed over the window: k, and more than 4x the budget of the probes."""
    return max(band.k, math.floor(RATIO * probes) + 1)


def pmf(n: int, k: int, p: float) -> float:
    """Binomial probability of exactly k in n."""
    return math.comb(n, k) * p**k * (1 - p) ** (n - k) if 0 <= k <= n else 0.0


def at_least(n: int, k: int, p: float) -> float:
    """Binomial probability of k or more in n."""
    return max(0.0, 1.0 - sum(pmf(n, i, p) for i in range(max(k, 0))))


def false_pages_a_month(interval: float, band: Band, p: float) -> float:
    """Onsets a month: a new failure while the window's other probes already hold T-1."""
    probes = int(band.window / interval)
    needed = threshold(band, probes)
    return (MONTH / interval) * p * at_least(probes - 1, needed - 1, p)


def extrapolated(count: int, span: float, window: float) -> float:
    """increase() over the window from samples span seconds apart (edges within a scrape)."""
    return count * window / span if span > 0 else 0.0


def paged_in_time(rng: random.Random, interval: float, band: Band) -> bool:
    """One onset of 8% failures: paged within the band's detection time, evaluation lag included.
    RolloutLoginsFailing does not start for a minute after RolloutCallbackDown was pending (the
    last probe failed, two in 2 minutes); a minute of that pending fires RolloutCallbackDown."""
    phase, scrape_phase = rng.uniform(0, interval), rng.uniform(0, SCRAPE)
    horizon = band.detection - SCRAPE
    times = [phase + i * interval for i in range(int(horizon / interval) + 1)]
    failed = {t for t in times if rng.random() < FAILING}
    down: list[float] = []  # evaluations at which RolloutCallbackDown was pending
    evaluation = scrape_phase
    while evaluation <= horizon:
        if callback_down(times, failed, evaluation):
            down.append(evaluation)
            if len(down) > DOWN_FOR and down[-DOWN_FOR - 1] == evaluation - DOWN_FOR * SCRAPE:
                return True
        suppressed = any(evaluation - DOWN_SUPPRESSES <= t for t in down)
        if not suppressed and logins_failing(times, failed, evaluation, scrape_phase, band):
            return True
        evaluation += SCRAPE
    return False


def callback_down(times: list[float], failed: set[float], evaluation: float) -> bool:
    """RolloutCallbackDown's condition (one replica): the last probe failed, two in 2 minutes."""
    done = [t for t in times if t <= evaluation]
    recent = sum(evaluation - 120 < t <= evaluation for t in failed)
    return bool(done) and done[-1] in failed and recent >= 2


def logins_failing(
    times: list[float], failed: set[float], evaluation: float, start: float, band: Band
) -> bool:
    """RolloutLoginsFailing's start: k failures and 4x the budget over the window, one recent."""
    first = max(start, evaluation - band.window + SCRAPE)
    span = evaluation - first
    probes = extrapolated(sum(first < t <= evaluation for t in times), span, band.window)
    count = extrapolated(sum(first < t <= evaluation for t in failed), span, band.window)
    recent = any(evaluation - band.guard < t <= evaluation for t in failed)
    return recent and count >= band.k and count > RATIO * probes


def detected(interval: float, band: Band, onsets: int, seed: int) -> float:
    """Share of onsets paged in time."""
    rng = random.Random(f"{seed}-{interval}")  # noqa: S311  # not secrets
    return sum(paged_in_time(rng, interval, band) for _ in range(onsets)) / onsets


def dip_hours(interval: float, band: Band) -> float:
    """Mean hours between quiet spells long enough to resolve an ongoing 8% page."""
    quiet = math.ceil((band.guard + KEEP) / interval)
    per_probe = FAILING * (1 - FAILING) ** quiet
    return interval / per_probe / 3600


HEADERS = (
    "probe interval",
    "window",
    "false/month 0.1%",
    "false/month 0.5%",
    "8% paged",
    "a dip every",
    "failures needed",
)


def row(interval: float, band: Band, false: list[float], paged: float) -> list[str]:
    """One interval's line of the table."""
    return [
        f"{interval:g} s",
        f"{band.window / 60:g} min, k={band.k}",
        *(f"{f:.3f}" for f in false),
        f"{100 * paged:.1f}% in {band.detection / 60:g} min",
        f"{dip_hours(interval, band):.1f} h",
        str(threshold(band, band.window / interval)),
    ]


def intervals(text: str) -> list[float]:
    """Probe intervals in seconds, comma-separated: "1,4,15"."""
    values = [float(part) for part in text.split(",") if part.strip()]
    if not values or any(value < 1 or value > 3600 for value in values):
        raise argparse.ArgumentTypeError(f"intervals between 1 and 3600 s expected: {text!r}")
    return values


def main() -> int:
    """Every interval's figures, then the targets; 0 when every target holds."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--onsets", type=int, default=DEFAULT_ONSETS, help="8%% onsets drawn")
    parser.add_argument("--seed", type=int, default=1, help="seed of every generator (1)")
    parser.add_argument("--interval", type=intervals, default=DEFAULT_INTERVALS)
    args = parser.parse_args()
    targets = Targets()
    report = Report("paging", None)
    started = time.perf_counter()
    rows = []
    for interval in args.interval:
        band = band_for(interval)
        if band is None:
            rows.append([f"{interval:g} s", "none", "-", "-", "-", "-", "-"])
            continue
        false = [false_pages_a_month(interval, band, p) for p in HEALTHY]
        paged = detected(interval, band, args.onsets, args.seed)
        rows.append(row(interval, band, false, paged))
        what = f"{interval:g} s"
        targets.at_most(f"{what}: false pages a month at 0.5%", false[-1], FALSE_PAGES_AT_MOST)
        targets.at_least(
            f"{what}: 8% onsets paged within {band.detection / 60:g} min",
            100 * paged,
            100 * DETECTED_AT_LEAST,
            "%",
            digits=1,
        )
    report.table(
        "RolloutLoginsFailing, one replica",
        HEADERS,
        rows,
    )
    elapsed = time.perf_counter() - started
    report.print(f"{args.onsets} onsets per interval, seed {args.seed}, {elapsed:.1f} s\n")
    code = targets.finish(report)
    report.save()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
