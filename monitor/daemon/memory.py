"""What the daemon remembers of the rollout, and what a reload keeps of it.

The probe log, the checks' readings, the migration's view, the baseline and the window since the
migration are made together here, and wired once: the schema check publishes the migration's view
to the tracker, which tells the baseline and the live view; the callback check hands each probe to
the log, which tells them too. Nothing else writes them; scrapes and pages only read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from monitor.config.schema import Config
from monitor.judge.baseline import Baseline
from monitor.judge.history import history_fetch
from monitor.judge.live import LiveView
from monitor.judge.window_state import window_path
from monitor.observe.answers import ExpectedAnswers
from monitor.observe.migration import MigrationTracker
from monitor.observe.probelog import Observed, ProbeLog
from monitor.observe.readings import Readings


class Memory:
    """The records one migration's rollout is judged by, built from one configuration."""

    def __init__(
        self,
        config: Config,
        kept: Iterable[Observed] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings = config.baseline
        self.migration = config.migration
        self.pinned = config.checks.callback.expected_answers  # the app's answers, configured
        self.baseline_settings = settings
        self.readings = Readings()
        self.tracker = MigrationTracker()
        self.expected_answers = ExpectedAnswers(config.checks.callback.expected_answers)
        self.log = ProbeLog(
            self.readings, self.tracker.quiet, clock, span=settings.window, kept=kept
        )
        self.baseline = Baseline(
            settings,
            config.checks.callback.interval,
            self.log,
            config.migration.name,
            clock,
            fetch=history_fetch(settings),
            expected=self.expected_answers,
        )
        self.live = LiveView(
            self.log,
            self.readings,
            self.tracker,
            self.baseline,
            clock,
            state_path=window_path(settings.state_file),
            migration=config.migration.name,
            longest_probe=config.checks.callback.timeout,
        )
        self.tracker.subscribe(self.baseline.follow, self.live.follow)
        self.log.subscribe(self.baseline.observe, self.live.observe)

    @classmethod
    def carried(cls, config: Config, previous: Memory | None) -> Memory:
        """The memory for this configuration after a reload: the previous one whole when it
        watches the same migration with the same baseline settings; a new one keeping the
        previous probes when only the baseline changed; a new one otherwise."""
        if previous is None or previous.migration != config.migration:
            return cls(config)
        pinned = config.checks.callback.expected_answers
        if previous.baseline_settings == config.baseline and previous.pinned == pinned:
            return previous
        return cls(config, kept=previous.log.entries())

    def close(self) -> None:
        """Persist the baseline and the window since the migration (the monitor is stopping)."""
        self.baseline.close()
        self.live.close()
