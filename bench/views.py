"""What the daemon's views since the migration cost it: the live criteria and the status page.

Both are built from memory on every scrape or page load, so their cost grows with the probes
they hold: a day of probes for the live view (rollout_success_criterion), an hour for the page.
This feeds each the probes of a full window, at the default interval (4 s), at 15 s and at one
a second, and reports per call: recording (the probe log, the baseline and the live view: every
probe), collect() (every scrape), render() (every page load), and the memory they hold
(tracemalloc). No database: the views read memory only.

    .venv/bin/python bench/views.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.config.schema import Config
from monitor.daemon.memory import Memory
from monitor.http.status.history import last_hour
from monitor.http.status.now import read_vitals
from monitor.http.status.page import StatusPage
from monitor.judge.judgement import Judgement
from monitor.judge.observation import Thresholds
from monitor.judge.rollout import WINDOW_SECONDS
from monitor.observe.migration import MigrationView
from monitor.observe.probe import ProbeResult
from monitor.observe.readings import Backfill, Drift, Readings
from monitor.output.redact import Redactor

HOUR = 3600.0
START = 1_800_000_000.0


class Clock:
    """Time that the benchmark moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def probe(rng: random.Random) -> ProbeResult:
    """A probe like a healthy callback's: 40-80 ms, one in a hundred a 503."""
    if rng.random() < 0.01:
        return ProbeResult("server_error", rng.uniform(0.04, 0.08), 503)
    return ProbeResult("success", rng.uniform(0.04, 0.08), 401)


def report(readings: Readings) -> None:
    """What the drift and backfill checks last reported (kept with every recorded probe)."""
    readings.publish("drift", Drift(4, 0))
    readings.publish("backfill", Backfill({"threadsFullName": 120}))


def milliseconds(samples: list[float]) -> str:
    """Median and 95th percentile, in ms."""
    p95 = statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)
    return f"median {statistics.median(samples) * 1000:.3f} ms, p95 {p95 * 1000:.3f} ms"


def timed(call: object, repeat: int) -> list[float]:
    """Wall time of each of `repeat` calls."""
    assert callable(call)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def run(interval: float, repeat: int) -> None:
    """A live view full of a day of probes and a page full of an hour, at this probe interval."""
    rng, clock = random.Random(1), Clock()  # noqa: S311  # not secrets
    config = Config.model_validate(
        {
            "database": {"url": "postgresql://bench@127.0.0.1/none"},
            "baseline": {"fixed": {"success_ratio": 0.995, "p95": "70ms"}},
            "checks": {"callback": {"interval": f"{interval:g}s", "timeout": "500ms"}},
        }
    )
    memory = Memory(config, clock=clock)
    held = memory.readings
    report(held)
    judgement = Judgement(memory.live, Thresholds())
    applied = datetime.fromtimestamp(START, UTC)
    memory.tracker.publish(MigrationView("applied", True, applied, applied, "prisma"))
    page = StatusPage(
        migration="001",
        tracker=memory.tracker,
        judgement=judgement,
        baseline=memory.baseline,
        log=memory.log,
        vitals=lambda: read_vitals(held, True),
        redact=Redactor(),
        clock=clock,
    )
    probes = int(WINDOW_SECONDS / interval)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    record_times = []
    for _ in range(probes):
        result = probe(rng)
        started = time.perf_counter()
        memory.log.record(result)
        record_times.append(time.perf_counter() - started)
        clock.now += interval
    held_bytes = sum(
        s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename")
    )
    tracemalloc.stop()
    body = page.render()
    print(f"probe every {interval:g}s: {probes} probes in the live window (24 h), ", end="")
    print(f"{len(last_hour(memory.log, clock()))} on the page (1 h)")
    print(
        f"  record (the log, the baseline, the live view), per probe: {milliseconds(record_times)}"
    )
    scrape = milliseconds(timed(lambda: list(judgement.collect()), repeat))
    print(f"  collect (rollout_success_criterion), per scrape: {scrape}")
    load = milliseconds(timed(page.render, repeat))
    print(f"  render the status page, per load: {load}, {len(body) / 1024:.1f} KiB")
    print(f"  memory held by the log and the views: {held_bytes / 2**20:.1f} MiB")


def main() -> None:
    """Each interval, one after the other, in one process (compare them, not machines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="calls timed per figure")
    args = parser.parse_args()
    for interval in (15.0, 4.0, 1.0):
        run(interval, args.repeat)


if __name__ == "__main__":
    main()
