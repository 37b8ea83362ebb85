"""The verdict as a deployment's gate: asked of the daemon over HTTP (/verdict, /gate/promote,
/gate/rollback), decided from Prometheus over every replica when one is configured, as
`rollout-monitor verdict` decides it, else from this replica's own view; the answer says which.

A gate is asked often (an analysis every minute, a webhook per canary step) and may be asked by
many clients at once: an answer is shared by every request for the same window for
FRESH_SECONDS, and at most one is being worked out at a time, so that a flood of gate requests
costs Prometheus one evaluation every few seconds and the daemon one thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from monitor.config.schema import BaselineSettings
from monitor.judge.criteria import decide
from monitor.judge.judgement import Judgement
from monitor.judge.observation import Thresholds
from monitor.judge.report import Verdict, as_document
from monitor.judge.rollout import VERDICT_WINDOWS
from monitor.judge.window import Window, find_window, observe
from monitor.output.redact import Redactor, userinfo_secrets
from monitor.promql.query import Selector

if TYPE_CHECKING:  # httpx is loaded when Prometheus is first asked, not by the daemon's start
    from monitor.promql.api import Prometheus

Source = Literal["prometheus", "replica"]
COULD_NOT_EVALUATE = 4  # the command's exit code when Prometheus cannot be asked
# Per query; a verdict asks Prometheus about twenty of them, one after another.
PROMETHEUS_TIMEOUT_SECONDS = 5.0
FRESH_SECONDS = 5.0


def from_prometheus(
    prom: Prometheus, select: Selector, window: tuple[str, float], at: float, thresholds: Thresholds
) -> Verdict:
    """The verdict on the window (its name and seconds) at Unix time `at`, every replica of the
    selector together: the decision `rollout-monitor verdict` prints."""
    name, seconds = window
    found = find_window(prom, select, name, seconds, at)
    checked_times(found, prom)
    observation = observe(prom, select, found, thresholds)
    return Verdict(found, observation.baseline, thresholds, decide(observation, thresholds))


def checked_times(window: Window, prom: Prometheus) -> None:
    """The migration's times come from Prometheus's answers: each must be one a report can
    print (a date from 1970 to 5138), or PrometheusError."""
    from monitor.promql.api import LATEST_TIME, PrometheusError  # noqa: PLC0415  # loaded by prom

    for what, value in (("applied", window.applied_at), ("started", window.started_at)):
        if value is not None and not 0 <= value <= LATEST_TIME:
            raise PrometheusError(
                f"{prom.where}: the migration's {what} time is out of range ({value:g})"
            )


@dataclass(frozen=True)
class Answer:
    """A verdict, where it was decided, and why it could not be when Prometheus failed."""

    verdict: Verdict
    source: Source
    error: str | None = None

    @property
    def evaluated(self) -> bool:
        """Whether a decision was reached (Prometheus answered, or none was asked)."""
        return self.error is None

    def document(self) -> dict[str, Any]:
        """`verdict --format json`'s document, with `source` (and `error` when not evaluated:
        then the verdict is inconclusive, with the command's exit code 4 and no criteria)."""
        document = as_document(self.verdict)
        document["source"] = self.source
        if self.error is not None:
            document["exit_code"] = COULD_NOT_EVALUATE
            document["error"] = self.error
        return document


class Gate:
    """Answers for the windows of VERDICT_WINDOWS, shared for FRESH_SECONDS."""

    def __init__(
        self,
        judgement: Judgement,
        settings: BaselineSettings,
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._judgement = judgement
        self._url = settings.prometheus_url
        self._select = Selector.parse(settings.prometheus_selector)
        # The URL's own password or token too: an httpx error may quote it decoded.
        secrets = Redactor(userinfo_secrets(self._url or ""))
        self._redact: Callable[[str], str] = lambda text: redact(secrets(text))
        self._clock = clock
        self._working = threading.Lock()  # one answer worked out at a time
        self._kept: dict[str, tuple[float, Answer]] = {}

    @property
    def source(self) -> Source:
        """Where the verdict is decided."""
        return "replica" if self._url is None else "prometheus"

    def answer(self, name: str) -> Answer:
        """The verdict on the window named (a key of VERDICT_WINDOWS)."""
        seconds = VERDICT_WINDOWS[name]
        with self._working:
            kept = self._kept.get(name)
            if kept is not None and time.monotonic() - kept[0] < FRESH_SECONDS:
                return kept[1]
            answer = self._work_out((name, seconds))
            self._kept[name] = (time.monotonic(), answer)
            return answer

    def _work_out(self, window: tuple[str, float]) -> Answer:
        thresholds = self._judgement.thresholds
        if self._url is None:
            return Answer(self._judgement.verdict(*window), "replica")
        from monitor.promql.api import Prometheus, PrometheusError  # noqa: PLC0415  # see above

        at = self._clock()
        try:
            with Prometheus(self._url, PROMETHEUS_TIMEOUT_SECONDS) as prom:
                verdict = from_prometheus(prom, self._select, window, at, thresholds)
        except PrometheusError as error:
            undecided = Verdict(Window(*window, at, None), None, thresholds, ())
            message = f"could not ask Prometheus: {self._redact(str(error))}"
            return Answer(undecided, "prometheus", message)
        return Answer(verdict, "prometheus")
