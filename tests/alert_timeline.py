"""Every demo fault at once, from the probes to the pager: the shipped rules run by promtool's rule
manager over a simulated fleet, their alert timeline replayed into a real Alertmanager.

The world: one `job` per fault of monitor/demo/faults.py (and one healthy job), each with two
monitor replicas (`instance` a and b; a is the leader and runs the database checks). Each replica
probes the callback every 4 s at its own phase; a healthy callback times out on 0.3% of probes
(drawn, seeded). Prometheus scrapes each replica every 15 s at its own offset and misses a scrape
now and then (every series of the target goes stale, as Prometheus marks it). The database
checks run on their own intervals (drift 60 s, connections 15 s, migration_run 5 s) and the
scrape sees their last result. Every fault starts at ONSET and is healed at HEAL:

    callback_5xx   every probe answers 503
    slow_callback  the callback answers 0.4 s later: its probes still succeed (the latency
                   histogram, a ticket's matter, is left out), so it must not page
    trigger_bug    the drift check counts unexpired tokens flagged invalid, more every minute
    lock_queue     an app transaction holds users, the migration's ALTER waits for it, sessions
                   queue behind the ALTER and every probe times out (3 s)
    route_404      a release lost the callback's route: a proxy's 404, every probe an
                   unexpected_answer (the app's own answer was learned before the migration)

`promtool test rules` evaluates the rules every 15 s over the whole run (an hour of history
first, so the hour-long windows are full) and reports ALERTS at each evaluation (as failures of
tests expecting none: the only way promtool shows them). The firing alerts are then posted to a
real Alertmanager, run with the example configuration's receivers pointed at a webhook on
127.0.0.1 and its group_wait, group_interval and repeat_interval divided by SCALE, at the wall
times of their evaluations divided by SCALE too, as Prometheus's notifier sends them (each
firing alert again at each evaluation, a resolved one with its end).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor.demo.pager import rewired
from monitor.demo.postgres import free_port
from monitor.demo.processes import Process
from monitor.demo.serving import LocalServer
from monitor.observe.metrics import PROBE_OUTCOMES

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "monitor" / "assets" / "alerts"
# Alertmanager's timers and the replay run this many times faster than life: 27 minutes in
# 81 s, a second of a late replay on a busy machine 20 s of the world's time.
SCALE = 20.0
EVALUATION = 15  # s, as the rules' evaluation_interval
SCRAPE = 15
PROBE = 4.0
PROBE_TIMEOUT = 3.0
HISTORY = 3600 + 10 * 60  # an hour and ten minutes of healthy history before the fault
ONSET = HISTORY
HEAL = ONSET + 12 * 60
END = HEAL + 12 * 60
REPLAY_FROM = ONSET - 60
HEALTHY_TIMEOUTS = 0.003
INSTANCES = {"a:9838": 3, "b:9838": 11}  # instance -> scrape offset in s
LEADER = "a:9838"
MISSED = {("b:9838", ONSET + 3 * 60 + 11), ("a:9838", HEAL + 63), ("b:9838", HEAL + 2 * 60 + 11)}
FAULTS = ("callback_5xx", "slow_callback", "trigger_bug", "lock_queue", "route_404")
JOBS = (*FAULTS, "healthy")
RESEND = 60  # Prometheus's notifier resends a firing alert every minute
Labels = tuple[tuple[str, str], ...]


def faulty(job: str, t: float) -> bool:
    """Whether this job's fault is on at time t."""
    return job in FAULTS and ONSET <= t < HEAL


def outcome(job: str, t: float, rng: random.Random) -> str:
    """The outcome of a probe at time t."""
    if faulty(job, t) and job == "callback_5xx":
        return "server_error"
    if faulty(job, t) and job == "route_404":  # a proxy's 404: not the app's learned answer
        return "unexpected_answer"
    if faulty(job, t) and job == "lock_queue":
        return "timeout"
    return "timeout" if rng.random() < HEALTHY_TIMEOUTS else "success"


def last_run(t: float, interval: float, phase: float) -> float:
    """When a check on this interval and phase last ran at or before t."""
    return phase + ((t - phase) // interval) * interval


def leader_gauges(job: str, t: float) -> dict[str, float]:
    """The database checks' gauges as the leader's last runs of each left them at time t."""
    drift_run = last_run(t, 60, 7)
    queue_run = last_run(t, 15, 2)
    wait_run = last_run(t, 5, 1)
    wrongly = 0.0
    if job == "trigger_bug" and faulty(job, drift_run):
        wrongly = float(3 + 2 * int((drift_run - ONSET) // 60))
    queued = 6.0 if job == "lock_queue" and faulty(job, queue_run) else 0.0
    waited = wait_run - ONSET if job == "lock_queue" and faulty(job, wait_run) else 0.0
    return {
        "rollout_postgres_up": 1.0,
        'rollout_token_validity_drift{kind="wrongly_invalid"}': wrongly,
        'rollout_token_validity_drift{kind="stale_valid"}': 0.0,
        "rollout_db_sessions_blocked_by_ddl": queued,
        "rollout_db_lock_waiting_sessions": queued + (1.0 if queued else 0.0),
        "rollout_migration_lock_wait_seconds": waited,
    }


@dataclass
class Replica:
    """One monitor replica's probes: the counters and the last probe's outcome, at any time."""

    job: str
    instance: str
    probes: list[tuple[float, str]] = field(default_factory=list)

    def draw(self, rng: random.Random) -> None:
        phase = rng.uniform(0, PROBE)
        t = phase
        while t <= END:
            result = outcome(self.job, t, rng)
            done = t + (PROBE_TIMEOUT if result == "timeout" else 0.05)
            self.probes.append((done, result))
            t += PROBE

    def gauges(self, t: float) -> dict[str, float]:
        """Every series of this replica as a scrape at time t reads it."""
        done = [result for finished, result in self.probes if finished <= t]
        values = {
            f'rollout_auth_callback_requests_total{{outcome="{o}"}}': float(done.count(o))
            for o in PROBE_OUTCOMES
        }
        values["rollout_auth_callback_last_success"] = float(bool(done) and done[-1] == "success")
        values['rollout_check_interval_seconds{check="callback"}'] = PROBE
        if self.instance == LEADER:
            values.update(leader_gauges(self.job, t))
        return values


def series_name(name: str, job: str, instance: str) -> str:
    """The full series, the target's labels added."""
    metric, _, labels = name.partition("{")
    extra = f'job="{job}",instance="{instance}"'
    return f"{metric}{{{extra},{labels}" if labels else f"{metric}{{{extra}}}"


def input_series(seed: int) -> list[dict[str, str]]:
    """promtool's input: every series on a 1 s grid, a sample at each of its target's scrapes."""
    rng = random.Random(seed)  # noqa: S311  # not secrets
    columns: dict[str, list[str]] = {}
    for job in JOBS:
        for instance, offset in INSTANCES.items():
            replica = Replica(job, instance)
            replica.draw(rng)
            for t in range(offset, END + 1, SCRAPE):
                missed = (instance, t) in MISSED
                for name, value in replica.gauges(t).items():
                    column = columns.setdefault(series_name(name, job, instance), ["_"] * (END + 1))
                    column[t] = "stale" if missed else f"{value:g}"
    return [{"series": name, "values": " ".join(values)} for name, values in columns.items()]


def evaluations() -> range:
    """The evaluation times replayed to Alertmanager."""
    return range(REPLAY_FROM, END + 1, EVALUATION)


def unit_test_file(seed: int) -> dict[str, Any]:
    """A promtool unit test file whose every failure is one evaluation's firing alerts."""
    times = evaluations()
    return {
        "rule_files": [str(path) for path in sorted(ALERTS_DIR.glob("*.rules.yml"))],
        "evaluation_interval": f"{EVALUATION}s",
        "tests": [
            {
                "interval": "1s",
                "input_series": input_series(seed),
                "promql_expr_test": [
                    {"expr": 'ALERTS{alertstate="firing"}', "eval_time": f"{t}s", "exp_samples": []}
                    for t in times
                ],
            }
        ],
    }


_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?")
_TIME = re.compile(r'expr: "ALERTS\{alertstate=\\?"firing\\?"\}", time: ([0-9hms]+),')
_SAMPLE = re.compile(r"\{([^{}]*)\} [-+.0-9E]+")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def seconds(text: str) -> int:
    """promtool's 1h10m15s, in seconds."""
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(f"not a promtool duration: {text!r}")
    hours, minutes, secs = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + secs


def firing_alerts(promtool_output: str) -> dict[int, list[Labels]]:
    """Evaluation time -> the label sets of the alerts firing then (no entry: none fired)."""
    timeline: dict[int, list[Labels]] = {}
    current: int | None = None
    for line in promtool_output.splitlines():
        if found := _TIME.search(line):
            current = seconds(found.group(1))
        elif current is not None and line.strip().startswith("got:"):
            timeline[current] = [alert_labels(s) for s in _SAMPLE.findall(line)]
    return timeline


def alert_labels(matchers: str) -> Labels:
    """An ALERTS sample's labels as the alert's: without __name__ and alertstate."""
    pairs = [(k, v) for k, v in _LABEL.findall(matchers) if k not in ("__name__", "alertstate")]
    return tuple(sorted(pairs))


def rule_timeline(workdir: Path, seed: int) -> dict[int, list[Labels]]:
    """Run promtool's rule manager over the world; the firing alerts at each evaluation."""
    path = workdir / "timeline.test.yml"
    path.write_text(yaml.safe_dump(unit_test_file(seed), width=1_000_000))
    done = subprocess.run(
        [binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr  # the failures, which hold the alerts, go to stderr
    if "SUCCESS" not in output and "FAILED:" not in output:
        raise RuntimeError(f"promtool did not run the rules:\n{output}")
    return firing_alerts(output)


def binary(name: str) -> str:
    """The real binary; its absence fails the test (the test command installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/install-system-deps installs it)")
    return path


def alertmanager_binary() -> str:
    """Debian's prometheus-alertmanager, or upstream's alertmanager; neither fails the test."""
    path = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if path is None:
        pytest.fail("alertmanager is not installed (scripts/install-system-deps installs it)")
    return path


@dataclass(frozen=True)
class Notification:
    """One webhook call: when (in the world's seconds), to whom, firing or resolved, for what."""

    at: float
    receiver: str
    status: str
    group: dict[str, str]
    alertnames: tuple[str, ...]


class Webhook:
    """Alertmanager's receivers, all on one server on 127.0.0.1; every call kept with its time."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.calls: list[Notification] = []
        self.server = LocalServer(self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                webhook.receive(json.loads(self.rfile.read(length)))
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler

    def receive(self, payload: dict[str, Any]) -> None:
        """Keep one webhook call."""
        names = tuple(sorted({a["labels"]["alertname"] for a in payload.get("alerts", [])}))
        call = Notification(
            self._clock(), payload["receiver"], payload["status"], payload["groupLabels"], names
        )
        with self._lock:
            self.calls.append(call)


def scaled(duration: str) -> str:
    """An Alertmanager duration divided by SCALE, in milliseconds."""
    return f"{round(seconds(duration) * 1000 / SCALE)}ms"


def scaled_route(route: dict[str, Any]) -> dict[str, Any]:
    """The route and its children with every timer divided by SCALE."""
    timers = ("group_wait", "group_interval", "repeat_interval")
    out = {key: scaled(value) if key in timers else value for key, value in route.items()}
    if "routes" in route:
        out["routes"] = [scaled_route(child) for child in route["routes"]]
    return out


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """The shipped example, its receivers on the webhook, its timers scaled."""
    example = yaml.safe_load((ALERTS_DIR / "alertmanager.example.yml").read_text())
    config = rewired(example, webhook_url)
    return {**config, "route": scaled_route(config["route"])}


class Replay:
    """A real Alertmanager and the webhook, the world's time mapped onto the wall clock."""

    def __init__(self, workdir: Path) -> None:
        self._start = time.monotonic()
        self.webhook = Webhook(self.now)
        self.webhook.server.start()
        config = workdir / "alertmanager.yml"
        config.write_text(yaml.safe_dump(alertmanager_config(self.webhook.server.base_url)))
        self.url = f"http://127.0.0.1:{free_port()}"
        self._process = Process(
            "alertmanager",
            [
                alertmanager_binary(),
                f"--config.file={config}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--cluster.listen-address=",
            ],
            workdir / "alertmanager.log",
        )
        self._process.wait_ready(f"{self.url}/-/ready")
        self._start = time.monotonic()

    def now(self) -> float:
        """The world's time: REPLAY_FROM when the replay starts, SCALE times faster than life."""
        return REPLAY_FROM + (time.monotonic() - self._start) * SCALE

    def wall(self, t: float) -> str:
        """The wall-clock time (RFC 3339) of world time t, for startsAt and endsAt."""
        seconds_from_now = (t - self.now()) / SCALE
        return datetime.fromtimestamp(time.time() + seconds_from_now, UTC).isoformat()

    def run(self, timeline: dict[int, list[Labels]]) -> None:
        """Post each evaluation's alerts at its time, as Prometheus's notifier would."""
        started: dict[Labels, int] = {}
        sent: dict[Labels, int] = {}
        for t in evaluations():
            delay = (t - self.now()) / SCALE
            if delay > 0:
                time.sleep(delay)
            firing = set(timeline.get(t, []))
            posts = [self._resolved(a, started.pop(a), t) for a in set(started) - firing]
            for alert in sorted(firing):
                started.setdefault(alert, t)
                if t - sent.get(alert, -RESEND) >= RESEND or started[alert] == t:
                    sent[alert] = t
                    posts.append(self._firing(alert, started[alert], t))
            if posts:
                httpx.post(f"{self.url}/api/v2/alerts", json=posts, timeout=5).raise_for_status()
        time.sleep(2.0)  # the last group_interval ticks

    def _firing(self, alert: Labels, since: int, t: int) -> dict[str, Any]:
        ends = t + 4 * RESEND
        return {"labels": dict(alert), "startsAt": self.wall(since), "endsAt": self.wall(ends)}

    def _resolved(self, alert: Labels, since: int, t: int) -> dict[str, Any]:
        return {"labels": dict(alert), "startsAt": self.wall(since), "endsAt": self.wall(t)}

    def close(self) -> None:
        """Stop Alertmanager and the webhook."""
        self._process.stop()
        self.webhook.server.stop()


def replayed(timeline: dict[int, list[Labels]], workdir: Path) -> Iterator[list[Notification]]:
    """The webhook calls of a replay of the timeline (Alertmanager stopped after)."""
    replay = Replay(workdir)
    try:
        replay.run(timeline)
        yield list(replay.webhook.calls)
    finally:
        replay.close()
