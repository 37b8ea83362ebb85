"""The callback's latency and success before the migration: learned while pending, then frozen."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import structlog
from prometheus_client.metrics_core import Metric
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from monitor.config import BaselineSettings
from monitor.metrics import PROBE_BUCKETS, gauge, labelled_gauge
from monitor.migration import MigrationTracker
from monitor.probe import ProbeResult

QUANTILES = ("0.5", "0.95", "0.99")
STATE_VERSION = 1
SAVE_EVERY_SECONDS = 60.0
MAX_PROBES = 100_000

log = structlog.get_logger("monitor.baseline")


class Record(BaseModel):
    """Strict, immutable, and the same in memory as in the state file."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Probe(Record):
    """One callback probe: when (Unix time), its outcome, and its duration if it got an answer."""

    at: float
    outcome: str
    duration_seconds: float | None


class Summary(Record):
    """What a set of probes says: how many, the share of successes, latency quantiles."""

    probes: int
    success_ratio: float | None
    duration_seconds: dict[str, float]


class SavedState(Record):
    """The state file: a learning window's probes, or the frozen summary."""

    version: Literal[1]
    migration: str
    frozen: bool
    confirmed_until: float | None
    probes: tuple[Probe, ...] = ()
    baseline: Summary | None = None

    @model_validator(mode="after")
    def _frozen_has_summary(self) -> SavedState:
        if self.frozen != (self.baseline is not None):
            raise ValueError("a frozen state holds a baseline, a learning one does not")
        return self


def bucket_quantile(q: float, bounds: Sequence[float], values: Sequence[float]) -> float | None:
    """The q-quantile of values in buckets with these upper bounds, as histogram_quantile does."""
    if not values:
        return None
    counts = [sum(1 for v in values if v <= bound) for bound in bounds]
    rank = q * len(values)
    found = next((i for i, count in enumerate(counts) if count >= rank), None)
    if found is None:  # in the +Inf bucket: Prometheus answers the highest finite bound
        return bounds[-1]
    start, below = (bounds[found - 1], counts[found - 1]) if found else (0.0, 0)
    return start + (bounds[found] - start) * ((rank - below) / (counts[found] - below))


def summarize(probes: Sequence[Probe], bounds: Sequence[float] = PROBE_BUCKETS) -> Summary:
    """The summary of these probes; latency from the answered ones only, like the histogram."""
    answered = [p.duration_seconds for p in probes if p.duration_seconds is not None]
    successes = sum(1 for p in probes if p.outcome == "success")
    quantiles = {q: bucket_quantile(float(q), bounds, answered) for q in QUANTILES}
    return Summary(
        probes=len(probes),
        success_ratio=successes / len(probes) if probes else None,
        duration_seconds={q: v for q, v in quantiles.items() if v is not None},
    )


def families(summary: Summary, frozen: bool, min_probes: int) -> list[Metric]:
    """The baseline gauges; the values only once enough probes are behind them."""
    result: list[Metric] = [
        gauge(
            "rollout_baseline_frozen",
            "1 once the migration left pending and the baseline is fixed, 0 while learning.",
            float(frozen),
        ),
        gauge(
            "rollout_baseline_auth_callback_probes",
            "Callback probes behind the baseline.",
            summary.probes,
        ),
    ]
    if summary.probes < min_probes:
        return result
    if summary.success_ratio is not None:
        result.append(
            gauge(
                "rollout_baseline_auth_callback_success_ratio",
                "Share of callback probes with outcome success before the migration.",
                summary.success_ratio,
            )
        )
    if summary.duration_seconds:
        result.append(
            labelled_gauge(
                "rollout_baseline_auth_callback_duration_seconds",
                "Callback probe latency before the migration, from the histogram's buckets.",
                ["quantile"],
                {(q,): v for q, v in summary.duration_seconds.items()},
            )
        )
    return result


class Baseline:
    """A collector of the baseline gauges; records probes while the migration is pending."""

    def __init__(
        self,
        settings: BaselineSettings,
        probe_interval: float,
        tracker: MigrationTracker,
        migration: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._tracker = tracker
        self._migration = migration
        self._clock = clock
        self._lock = threading.Lock()
        capacity = min(MAX_PROBES, math.ceil(settings.window / probe_interval) + 1)
        self._window: deque[Probe] = deque(maxlen=capacity)
        self._confirmed_until: float | None = None
        self._frozen: Summary | None = None
        self._learned_cache: Summary | None = None  # summarizing on every scrape is O(window)
        self._saved_at = -math.inf
        self._load()

    def record(self, result: ProbeResult) -> None:
        """Keep the probe in the window while the schema check says the migration is pending."""
        with self._lock:
            self._settle()
            if self._frozen is not None or self._tracker.known_state() != "pending":
                return
            now = self._clock()
            answered = result.duration if result.status is not None else None
            self._window.append(Probe(at=now, outcome=result.outcome, duration_seconds=answered))
            while self._window[0].at <= now - self._settings.window:
                self._window.popleft()
            self._learned_cache = None
            if now - self._saved_at >= SAVE_EVERY_SECONDS:
                self._save()

    def collect(self) -> Iterator[Metric]:
        """The baseline gauges (prometheus_client's collector interface)."""
        with self._lock:
            self._settle()
            frozen = self._frozen is not None
            summary = self._frozen if self._frozen is not None else self._learned()
        yield from families(summary, frozen, self._settings.min_probes)

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []

    def summary(self) -> Summary | None:
        """The frozen baseline (what the window since the migration is judged against); None
        while it is still being learned."""
        with self._lock:
            self._settle()
            return self._frozen

    @property
    def source(self) -> str:
        """Where summary() comes from: monitor, configuration, prometheus_history or none."""
        with self._lock:
            self._settle()
            return "none" if self._frozen is None else "monitor"

    def close(self) -> None:
        """Persist what was learned (the monitor is stopping)."""
        with self._lock:
            self._settle()
            self._save()

    def _settle(self) -> None:
        """Follow the schema check: confirm probes still pending, freeze once it left pending."""
        if self._frozen is not None:
            return
        pending_at = self._tracker.last_pending_at()
        if pending_at is not None:
            known = self._confirmed_until
            self._confirmed_until = pending_at if known is None else max(known, pending_at)
            if self._confirmed_until != known:
                self._learned_cache = None
        state = self._tracker.known_state()
        if state not in (None, "pending"):
            self._frozen = self._learned()
            self._window.clear()
            log.info("baseline_frozen", state=state, probes=self._frozen.probes)
            self._save()

    def _learned(self) -> Summary:
        """Probes a later schema check confirmed were taken before the migration started."""
        if self._learned_cache is None:
            until = self._confirmed_until
            confirmed = [p for p in self._window if until is not None and p.at <= until]
            self._learned_cache = summarize(confirmed)
        return self._learned_cache

    def _state(self) -> SavedState:
        return SavedState(
            version=STATE_VERSION,
            migration=self._migration,
            frozen=self._frozen is not None,
            confirmed_until=self._confirmed_until,
            probes=() if self._frozen is not None else tuple(self._window),
            baseline=self._frozen,
        )

    def _save(self) -> None:
        path = self._settings.state_file
        if path is None:
            return
        self._saved_at = self._clock()
        try:
            write_atomically(path, self._state().model_dump_json())
        except OSError as error:
            log.warning("baseline_state_not_saved", file=str(path), reason=str(error))

    def _load(self) -> None:
        path = self._settings.state_file
        state = read_state(path, self._migration) if path is not None else None
        if state is not None:
            self._frozen = state.baseline
            self._confirmed_until = state.confirmed_until
            self._window.extend(state.probes)


def read_state(path: Path, migration: str) -> SavedState | None:
    """The saved state, or None (with a warning if the file exists but cannot be used)."""
    try:
        state = SavedState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as error:
        log.warning(
            "baseline_state_unreadable", file=str(path), reason=problem(error), action="relearn"
        )
        return None
    if state.migration != migration:
        log.warning(
            "baseline_state_unreadable",
            file=str(path),
            reason=f"recorded for migration {state.migration!r}",
            action="relearn",
        )
        return None
    return state


def problem(error: OSError | ValidationError) -> str:
    """One line saying what is wrong with the state file."""
    if isinstance(error, OSError):
        return error.strerror or str(error)
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def write_atomically(path: Path, text: str) -> None:
    """Replace the file's content in one step: a crash leaves the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
