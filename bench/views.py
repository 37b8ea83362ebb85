"""What the daemon's views since the migration cost it: the live criteria and the status page.

Both are built from memory on every scrape or page load, so their cost grows with the probes
they hold: a day of probes for the live view (rollout_success_criterion), an hour for the page.
This feeds each the probes of a full window, at the default interval (4 s), at 15 s and at one
a second, and reports per call: recording (the probe log, the baseline and the live view: every
probe), collect() (every scrape), render() (every page load), and the memory they hold
(tracemalloc). No database: the views read memory only.

Targets, at every interval (bench/targets.py; medians, so that one preempted call on a shared
machine does not decide): recording a probe at most 0.1 ms, a scrape's collect() at most 1 ms, a
page load at most 25 ms, the memory held at most 16 MiB (a full day at one probe a second, the
most the probe records hold: MAX_PROBES). Exit 0 when every target is met, 1 otherwise.

    .venv/bin/python bench/views.py [--repeat 50]
    .venv/bin/python bench/views.py --repeat 3          # a dry run, about 5 s
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

BENCH = Path(__file__).resolve().parent
for folder in (BENCH.parent, BENCH):  # the repository (monitor) and bench/ (targets)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from targets import Targets  # noqa: E402

from monitor.config.schema import Config  # noqa: E402
from monitor.daemon.memory import Memory  # noqa: E402
from monitor.http.status.history import last_hour  # noqa: E402
from monitor.http.status.now import read_vitals  # noqa: E402
from monitor.http.status.page import StatusPage  # noqa: E402
from monitor.judge.judgement import Judgement  # noqa: E402
from monitor.judge.observation import Thresholds  # noqa: E402
from monitor.judge.rollout import WINDOW_SECONDS  # noqa: E402
from monitor.observe.migration import MigrationView  # noqa: E402
from monitor.observe.probe import ProbeResult  # noqa: E402
from monitor.observe.readings import Backfill, Drift, Readings  # noqa: E402
from monitor.output.redact import Redactor  # noqa: E402

HOUR = 3600.0
START = 1_800_000_000.0
MIB = 2**20
RECORD_MS = 0.1  # per probe recorded
COLLECT_MS = 1.0  # per scrape of rollout_success_criterion
RENDER_MS = 25.0  # per status page load
HELD_MIB = 16.0  # a full day at one probe a second


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


def run(interval: float, repeat: int, targets: Targets) -> None:
    """A live view full of a day of probes and a page full of an hour, at this probe interval;
    its costs judged."""
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
    scrapes = timed(lambda: list(judgement.collect()), repeat)
    print(f"  collect (rollout_success_criterion), per scrape: {milliseconds(scrapes)}")
    loads = timed(page.render, repeat)
    print(f"  render the status page, per load: {milliseconds(loads)}, {len(body) / 1024:.1f} KiB")
    print(f"  memory held by the log and the views: {held_bytes / MIB:.1f} MiB")
    every = f"probe every {interval:g} s"
    ms = statistics.median
    targets.at_most(
        f"{every}: record a probe, median", ms(record_times) * 1000, RECORD_MS, "ms", digits=3
    )
    targets.at_most(
        f"{every}: collect per scrape, median", ms(scrapes) * 1000, COLLECT_MS, "ms", digits=3
    )
    targets.at_most(f"{every}: page load, median", ms(loads) * 1000, RENDER_MS, "ms")
    targets.at_most(f"{every}: memory held", held_bytes / MIB, HELD_MIB, "MiB", digits=1)


def main() -> int:
    """Each interval, one after the other, in one process (compare them, not machines); the
    targets' exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="calls timed per figure")
    args = parser.parse_args()
    targets = Targets()
    for interval in (15.0, 4.0, 1.0):
        run(interval, args.repeat, targets)
    return targets.finish()


if __name__ == "__main__":
    raise SystemExit(main())
