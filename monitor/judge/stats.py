"""The statistics behind the criteria: an exact binomial test for errors, a p95 ratio for latency.

Pure arithmetic on counts, so the daemon (probes in memory) and the verdict (the same counts from
Prometheus) reach the same decision on the same data. Latency is known only by histogram bucket,
as Prometheus knows it: quantiles are interpolated inside a bucket exactly as histogram_quantile
does. The error rates these tests give on realistic rollouts are measured by bench/judgement.py.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

# One-sided false-alarm rates: a rollout exactly at its limit fails a criterion this often at
# most, a healthy one far less. The latency test's error is estimated from bucketed ranks and
# runs a little optimistic, so it asks for more (bench/judgement.py measures both).
ERRORS_ALPHA = 0.005
LATENCY_ALPHA = 0.001


@dataclass(frozen=True)
class Latencies:
    """Answered probes by latency: cumulative counts per finite bucket bound, and all of them."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # probes no slower than each bound
    total: int  # every answered probe, the +Inf bucket's count

    @classmethod
    def of(cls, values: Iterable[float], bounds: Sequence[float]) -> Latencies:
        """The buckets these durations fall in."""
        ordered = sorted(values)
        counts = tuple(bisect.bisect_right(ordered, bound) for bound in bounds)
        return cls(tuple(bounds), counts, len(ordered))

    def quantile(self, q: float) -> float | None:
        """The q-quantile as histogram_quantile computes it; None without an answered probe."""
        return counts_quantile(q, self.bounds, self.cumulative, self.total)

    def minus(self, other: Latencies) -> Latencies:
        """These probes without the other's (a part of them: the same bounds, fewer of each)."""
        counts = tuple(a - b for a, b in zip(self.cumulative, other.cumulative, strict=True))
        return Latencies(self.bounds, counts, self.total - other.total)

    def plus(self, other: Latencies) -> Latencies:
        """These probes and the other's together (the same bounds)."""
        counts = tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True))
        return Latencies(self.bounds, counts, self.total + other.total)

    def slower_than(self, seconds: float) -> int:
        """Probes known to have taken longer than `seconds`: those in buckets whose lower
        bound is at or above it (a bucket straddling it may hold faster ones)."""
        first = bisect.bisect_left(self.bounds, seconds)
        return 0 if first >= len(self.bounds) else self.total - self.cumulative[first]


def counts_quantile(
    q: float, bounds: Sequence[float], counts: Sequence[int], total: int
) -> float | None:
    """The q-quantile from cumulative bucket counts (total counts the +Inf bucket too)."""
    if total == 0:
        return None
    rank = q * total
    found = next((i for i, count in enumerate(counts) if count >= rank), None)
    if found is None:  # in the +Inf bucket: Prometheus answers the highest finite bound
        return bounds[-1]
    start, below = (bounds[found - 1], counts[found - 1]) if found else (0.0, 0)
    return start + (bounds[found] - start) * ((rank - below) / (counts[found] - below))


def binomial_at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly over the shorter side."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0 or p >= 1.0:
        return float(p >= 1.0)
    if k <= n * p:  # at or below the mean: the complement is the short side
        return max(0.0, 1.0 - sum(_binomial_pmf(i, n, p) for i in range(k)))
    total = 0.0
    for i in range(k, n + 1):  # above the mean the terms fall off geometrically
        term = _binomial_pmf(i, n, p)
        total += term
        if term <= total * 1e-17:
            break
    return min(1.0, total)


def _binomial_pmf(i: int, n: int, p: float) -> float:
    log_choose = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
    return math.exp(log_choose + i * math.log(p) + (n - i) * math.log1p(-p))


def errors_exceed(errors: int, probes: int, limit: float, alpha: float = ERRORS_ALPHA) -> bool:
    """Whether this many errors in this many probes is beyond chance for an error rate of limit.

    The exact one-sided binomial test: a rollout whose true error rate is at most the limit
    fails it at most alpha of the time.
    """
    if probes <= 0 or errors <= probes * limit:  # at or below the mean: P >= ~0.5, never
        return False
    return binomial_at_least(errors, probes, limit) < alpha


Side = Literal["low", "high"]


@dataclass(frozen=True)
class Ratio:
    """One quantile of the window over the baseline's: the estimate and a one-sided bound."""

    estimate: float
    lower: float  # the ratio is above this with confidence 1 - alpha


def quantile_log_error(
    latencies: Latencies, q: float, alpha: float = LATENCY_ALPHA, side: Side = "low"
) -> float | None:
    """Standard error of the log of the q-quantile on one side, from its distribution-free
    rank interval.

    The count of probes below the true quantile is Binomial(n, q): the quantile at the rank z
    standard deviations below (side "low") or above ("high") bounds it on that side; its log
    distance from the estimate over z is the error. One side only: a heavy tail of timeouts
    above the quantile says nothing about how low it could be (issue 20: both sides together
    let a window of timeouts never fail).
    """
    n = latencies.total
    if n == 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha)
    spread = z * math.sqrt(q * (1 - q) / n)
    estimate = latencies.quantile(q)
    bound = latencies.quantile(max(0.0, q - spread) if side == "low" else min(1.0, q + spread))
    if estimate is None or bound is None:
        return None
    floor = latencies.bounds[0] / 1000  # interpolation can reach 0 in the first bucket
    return abs(math.log(max(estimate, floor)) - math.log(max(bound, floor))) / z


def quantile_ratio(
    window: Latencies,
    baseline: Latencies | float,
    q: float = 0.95,
    alpha: float = LATENCY_ALPHA,
) -> Ratio | None:
    """The window's q-quantile over the baseline's, with a lower bound at confidence 1 - alpha.

    A baseline given as one number (configured by the operator) is taken as exact. None when
    either side has no answered probe.
    """
    ours = window.quantile(q)
    theirs = baseline if isinstance(baseline, float) else baseline.quantile(q)
    # The ratio's lower bound: how low the window's quantile could be, how high the baseline's.
    our_error = quantile_log_error(window, q, alpha, "low")
    their_error = (
        0.0 if isinstance(baseline, float) else quantile_log_error(baseline, q, alpha, "high")
    )
    if ours is None or theirs is None or our_error is None or their_error is None:
        return None
    floor = window.bounds[0] / 1000
    log_ratio = math.log(max(ours, floor)) - math.log(max(theirs, floor))
    z = NormalDist().inv_cdf(1 - alpha)
    margin = z * math.hypot(our_error, their_error)
    return Ratio(estimate=math.exp(log_ratio), lower=math.exp(log_ratio - margin))
