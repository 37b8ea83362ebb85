"""The daemon's judgement of the rollout: the plan's success criteria on the window since the
migration (rollout_success_criterion) and the baseline's health, with this monitor's thresholds."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric

from monitor.judge.criteria import decide
from monitor.judge.live import LiveView
from monitor.judge.observation import (
    BASELINE_HEALTH,
    RESULTS,
    Decision,
    Observation,
    Thresholds,
    judge_baseline,
)
from monitor.judge.report import Verdict
from monitor.judge.rollout import VERDICT_WINDOWS
from monitor.judge.window import Window
from monitor.observe.metrics import labelled_gauge, one_hot

HEALTH_STATES = ("learning", *BASELINE_HEALTH)


class Judgement:
    """A collector of rollout_success_criterion{criterion}, its inconclusive twin and
    rollout_baseline_health; `database_elsewhere` says whether another replica leads (it then
    judges the database, and this one its own pod's callback)."""

    def __init__(
        self,
        live: LiveView,
        thresholds: Thresholds,
        database_elsewhere: Callable[[], bool] = lambda: False,
    ) -> None:
        self._live = live
        self.thresholds = thresholds
        self._elsewhere = database_elsewhere

    def observation(self) -> Observation:
        """What the daemon knows now about the window since the migration."""
        return self._live.observation(database_elsewhere=self._elsewhere())

    def verdict(self, name: str, seconds: float) -> Verdict:
        """The verdict on the window `seconds` after the applied time, from this replica's own
        view: what `rollout-monitor verdict` decides from Prometheus for one replica."""
        at, started_at, applied_at = self._live.moments()
        observation = self._live.observation(database_elsewhere=self._elsewhere(), window=seconds)
        window = Window(name, seconds, at, applied_at, started_at)
        return Verdict(
            window, observation.baseline, self.thresholds, decide(observation, self.thresholds)
        )

    def decisions(self, observation: Observation | None = None) -> list[Decision]:
        """Every criterion's decision on the observation (by default, what is known now)."""
        return decide(self.observation() if observation is None else observation, self.thresholds)

    def baseline_health(self) -> tuple[str, str | None]:
        """The baseline's health and, when it is unusable, why (learning: not frozen yet)."""
        view = self._live.baseline_view()
        if view is None:
            return "learning", None
        return judge_baseline(view, self.thresholds)

    def collect(self) -> Iterator[Metric]:
        """rollout_success_criterion and its companions (prometheus_client's collector API)."""
        decisions = self.decisions()
        yield labelled_gauge(
            "rollout_success_criterion",
            "1 when the plan's success criterion passes, 0 when it fails, absent while"
            " inconclusive (the daemon's own view of the window since the migration).",
            ["criterion"],
            {
                (d.criterion,): float(d.result == "pass")
                for d in decisions
                if d.result != "inconclusive"
            },
        )
        yield labelled_gauge(
            "rollout_success_criterion_inconclusive",
            "1 while the success criterion cannot be decided (no data, too few probes, no"
            " baseline), else 0.",
            ["criterion"],
            {(d.criterion,): float(d.result == "inconclusive") for d in decisions},
        )
        now = {
            name: self.verdict(name, seconds).result for name, seconds in VERDICT_WINDOWS.items()
        }
        yield labelled_gauge(
            "rollout_verdict",
            "1 for the verdict on each window after the migration (1h, 24h) as this replica sees"
            " it (pass, fail or inconclusive), 0 for the other results; always present.",
            ["window", "result"],
            {
                (name, result): float(result == current)
                for name, current in now.items()
                for result in RESULTS
            },
        )
        health, _ = self.baseline_health()
        yield one_hot(
            "rollout_baseline_health",
            "1 for the baseline's health: learning while the migration is pending, then usable,"
            " or unusable as evidence because missing, too_short or unhealthy (its success"
            " below the objective).",
            "health",
            HEALTH_STATES,
            health,
        )

    def describe(self) -> list[Metric]:
        """Nothing: the families change at run time (avoids a collect at registration)."""
        return []
