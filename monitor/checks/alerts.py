"""The alerts firing for the rollout, asked of Alertmanager (what pages: its state tells an
inhibited or silenced alert from one that pages) or of Prometheus (its rules' alerts firing),
for the status page to show beside the daemon's own judgment (`checks.alerts.url`).

Only the rollout's own alerts are kept (names starting with Rollout, as alerts/ names them),
counted by name: N replicas firing the same alert are one line. The answer is read up to
MAX_BYTES and at most MAX_ALERTS are looked at: a server answering garbage costs a bounded
amount of memory, and says so."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client.metrics_core import Metric

from monitor.checks.base import Check, CheckFailed
from monitor.checks.registry import Parts, register
from monitor.config.checks import AlertsSettings
from monitor.config.durations import format_duration
from monitor.observe.metrics import gauge
from monitor.observe.probe import describe
from monitor.observe.readings import Alerts, FiredAlert, Readings
from monitor.output.redact import redact_url

MAX_BYTES = 1024 * 1024
MAX_ALERTS = 10_000
ROLLOUT_ALERT = re.compile(r"Rollout[A-Za-z0-9_]{1,80}")
PATHS = {
    # Active alerts, inhibited and silenced ones too (their state says so).
    "alertmanager": "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=false",
    "prometheus": "/api/v1/alerts",
}


class AnswerProblem(Exception):
    """The server answered, but not with the alerts (the message says how)."""


class AlertsCheck:
    """Asks for the alerts firing and publishes them as the `alerts` reading."""

    name = "alerts"

    def __init__(self, settings: AlertsSettings, readings: Readings) -> None:
        assert settings.url is not None  # built only with one (AlertsSettings.wanted)
        self._settings = settings
        self._url = settings.url.rstrip("/") + PATHS[settings.api]
        api = "Alertmanager" if settings.api == "alertmanager" else "Prometheus"
        self.source = f"{api} at {redact_url(settings.url)}"
        self._readings = readings

    @property
    def interval(self) -> float:
        """Seconds between asks."""
        return self._settings.interval

    def run(self) -> Sequence[Metric]:
        """Ask, publish what fires, and say whether the server answered."""
        try:
            firing = self._ask()
        except AnswerProblem as problem:
            self._readings.publish(self.name, Alerts(self.source, error=str(problem)))
            raise CheckFailed(f"{self.source}: {problem}", [answered(False)]) from None
        self._readings.publish(self.name, Alerts(self.source, firing))
        return [answered(True)]

    def _ask(self) -> tuple[FiredAlert, ...]:
        import httpx  # noqa: PLC0415  # loaded when first asked, as the probe's

        timeout = self._settings.timeout
        deadline = time.monotonic() + timeout  # httpx's timeout bounds each read, not the whole
        try:
            with (
                httpx.Client(timeout=timeout, trust_env=False) as client,
                client.stream("GET", self._url, headers={"Accept": "application/json"}) as reply,
            ):
                body = bytearray()
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise AnswerProblem(f"an answer over {MAX_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise AnswerProblem(f"no whole answer within {format_duration(timeout)}")
                status = reply.status_code
        except httpx.HTTPError as error:
            raise AnswerProblem(describe(error)) from None
        if status != 200:
            raise AnswerProblem(f"HTTP {status}")
        try:
            document = json.loads(bytes(body))
        except (ValueError, RecursionError):  # 1 MiB of "[" is nested past the interpreter's limit
            raise AnswerProblem("an answer that is not JSON") from None
        return fired(alerts_in(document, self._settings.api))


def alerts_in(document: Any, api: str) -> list[tuple[str, bool]]:
    """(name, pages) of each alert firing in an Alertmanager v2 or Prometheus answer."""
    if api == "prometheus":
        data = document.get("data") if isinstance(document, dict) else None
        listed = data.get("alerts") if isinstance(data, dict) else None
    else:
        listed = document
    if not isinstance(listed, list):
        raise AnswerProblem("an answer without a list of alerts")
    found = []
    for alert in listed[:MAX_ALERTS]:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        name = labels.get("alertname") if isinstance(labels, dict) else None
        if not isinstance(name, str) or not ROLLOUT_ALERT.fullmatch(name):
            continue
        if api == "prometheus":
            if alert.get("state") == "firing":
                found.append((name, True))
        else:
            status = alert.get("status")
            state = status.get("state") if isinstance(status, dict) else None
            found.append((name, state == "active"))
    return found


def fired(alerts: list[tuple[str, bool]]) -> tuple[FiredAlert, ...]:
    """The alerts by name, in name order."""
    names = sorted({name for name, _ in alerts})
    return tuple(
        FiredAlert(
            name,
            sum(1 for n, _ in alerts if n == name),
            any(pages for n, pages in alerts if n == name),
        )
        for name in names
    )


def answered(up: bool) -> Metric:
    """rollout_alerts_source_up."""
    return gauge(
        "rollout_alerts_source_up",
        "1 when the last ask of Alertmanager (or Prometheus) for the rollout's alerts firing"
        " was answered, else 0.",
        float(up),
    )


@register("alerts", order=95)
def build(settings: AlertsSettings, parts: Parts) -> Check:
    """The alerts check of `checks.alerts`."""
    return AlertsCheck(settings, parts.readings)
