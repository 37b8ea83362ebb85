"""The demo stack with a real Prometheus scraping the real daemon every second and evaluating alerts/.

One stack for the module: a live migration, then a callback failure that must page (pending, then
firing, then delivered to Alertmanager), then healing that must resolve it; and every query of the
dashboard must return data from that Prometheus. `rollout-monitor verdict`, run as a process against
that Prometheus, passes the healthy rollout and fails the criteria the callback failure broke.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_queries import concrete, dashboard_queries
from prometheus_api import Prometheus, wait_for

from monitor.demo.settings import DemoSettings
from monitor.demo.stack import DemoStack

DASHBOARD = (
    Path(__file__).resolve().parent.parent / "monitor/assets/dashboards/rollout-overview.json"
)
PAGE_ALERT = "RolloutCallbackDown"
HEALTHY_PROBE = "rollout_auth_callback_last_success"
FAST = DemoSettings(
    users=300,
    logins_per_second=5.0,
    migrate_after=40.0,  # 1 probe a second: the baseline (20 probes) is learned well before it
    check_interval=1.0,
    probe_interval=1.0,
    scrape_interval=1.0,
)


@pytest.fixture(scope="module")
def stack() -> Iterator[DemoStack]:
    """The demo with Prometheus and Alertmanager, fast intervals, migration after 40s."""
    for binary in ("prometheus", "prometheus-alertmanager"):
        assert shutil.which(binary), f"{binary} is not installed (scripts/install-system-deps)"
    with DemoStack(FAST, say=lambda _: None) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: DemoStack) -> Prometheus:
    """The stack's Prometheus, once the migration is applied and the baseline is frozen."""
    assert stack.endpoints.prometheus is not None
    api = Prometheus(stack.endpoints.prometheus)
    wait_for(
        "migration applied (phase critical) and baseline frozen, as Prometheus sees them",
        lambda: (
            api.value('rollout:migration_phase{phase="critical"} == 1') == 1
            and api.value("rollout_baseline_frozen == 1") == 1
        ),
        timeout=90,
    )
    return api


def test_the_live_migration_is_seen_by_prometheus_with_a_baseline(prometheus: Prometheus) -> None:
    """Applied from Prisma's record, phase critical, baseline from the probes before it."""
    assert prometheus.value('rollout_migration_applied_timestamp_source{source="prisma"}') == 1
    assert prometheus.value('rollout_migration_state{state="applied"}') == 1
    assert prometheus.value('rollout:migration_phase{phase="not_applied"}') == 0
    probes = prometheus.value("rollout_baseline_auth_callback_probes")
    assert probes is not None
    assert probes >= 20
    assert prometheus.value('rollout_schema_object_present{name="update_token_validity"}') == 1


def test_every_dashboard_query_returns_data(prometheus: Prometheus) -> None:
    """Each panel, annotation and variable query of the dashboard gives at least one series."""
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 20

    def empty() -> list[str]:
        return [expr for expr in queries if not prometheus.query(concrete(expr))]

    # Checks, scrapes and rule evaluations each take up to a second to catch up with the migration.
    with contextlib.suppress(pytest.fail.Exception):
        wait_for("every dashboard query has data", lambda: not empty(), timeout=30)
    assert empty() == []


def verdict(stack: DemoStack, *options: str) -> tuple[int, dict[str, Any]]:
    """`rollout-monitor verdict` as a process against the stack's Prometheus: exit code, JSON."""
    assert stack.endpoints.prometheus is not None
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "verdict", "--format", "json", *options],
        env={"ROLLOUT_PROMETHEUS_URL": stack.endpoints.prometheus, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def results(document: dict[str, Any]) -> dict[str, str]:
    """Criterion -> result of a verdict's JSON."""
    return {c["criterion"]: c["result"] for c in document["criteria"]}


def test_the_verdict_passes_the_healthy_live_rollout(
    stack: DemoStack, prometheus: Prometheus
) -> None:
    """Fifteen seconds after the migration, over those fifteen seconds, from the real daemon's
    series. The latency tolerance is wide: this tests the chain, not this machine's jitter."""
    options = ("--window", "15s", "--min-probes", "5", "--latency-tolerance", "5")
    last: list[dict[str, Any]] = []

    def passes() -> bool:
        code, document = verdict(stack, *options)
        last[:] = [document]
        return code == 0

    try:
        wait_for("a complete 15 s window with logins since the migration", passes, timeout=60)
    except pytest.fail.Exception:
        undecided = [c for c in last[0]["criteria"] if c["result"] != "pass"] if last else []
        pytest.fail(f"no pass within 60 s; the last verdict's other criteria: {undecided}")
    code, document = verdict(stack, *options)
    assert (code, document["verdict"], document["window"]["complete"]) == (0, "pass", True)
    assert set(results(document).values()) == {"pass"}
    assert document["baseline"]["source"] == "monitor"
    assert document["baseline"]["probes"] == prometheus.value(
        "rollout_baseline_auth_callback_probes"
    )


def test_a_failing_callback_pages_then_resolves_when_healed(
    stack: DemoStack, prometheus: Prometheus
) -> None:
    """Injected 503s: the page alert goes pending, fires, reaches the pager; healing ends it."""
    assert prometheus.alert_state(PAGE_ALERT) is None
    stack.act("callback_5xx")
    wait_for("alert pending", lambda: prometheus.alert_state(PAGE_ALERT) == "pending", 20)
    waited = wait_for("alert firing", lambda: prometheus.alert_state(PAGE_ALERT) == "firing", 90)
    assert waited > 30  # it waited out its `for:` instead of firing at once
    alert = prometheus.alert(PAGE_ALERT)
    assert alert["labels"]["severity"] == "page"
    assert alert["labels"]["job"] == "rollout-monitor"
    assert alert["annotations"]["runbook_url"].startswith("docs/runbook.md#")
    assert prometheus.value("rollout_auth_callback_last_status_code == 503") == 503
    wait_for("the pager receiver notified", lambda: paged(stack, PAGE_ALERT), 60)
    # The daemon's status page shows the page as Alertmanager has it (checks.alerts).
    wait_for(
        "the status page shows the alert paging",
        lambda: f"{PAGE_ALERT} (paging) (Alertmanager at " in status_page(stack),
        30,
    )

    stack.act("heal")
    wait_for("probes healthy", lambda: prometheus.value(HEALTHY_PROBE) == 1, 30)
    # Healed, the page holds while two probes failed in the last 2 minutes (and 30 s more)
    # instead of resolving at the first good probe, then resolves by itself.
    for _ in range(6):
        assert prometheus.alert_state(PAGE_ALERT) == "firing"
        time.sleep(5)
    wait_for("alert resolved", lambda: prometheus.alert_state(PAGE_ALERT) is None, 150)


def test_a_proxys_404_for_the_lost_route_pages_once_and_resolves(
    stack: DemoStack, prometheus: Prometheus
) -> None:
    """Issue 21: the route gone, a proxy's 404 (a 4xx, healthy by the status codes) is not the
    app's own answer learned before the migration: unexpected_answer, and the callback down."""
    assert prometheus.alert_state(PAGE_ALERT) is None
    seen = 'rollout_auth_callback_requests_total{outcome="unexpected_answer"}'
    stack.act("route_404")
    wait_for("unexpected answers", lambda: (prometheus.value(seen) or 0) > 0, 30)
    wait_for("alert firing", lambda: prometheus.alert_state(PAGE_ALERT) == "firing", 120)
    assert "unexpected_answer (was 400 application/json {error}, now 404 text/html" in (
        status_page(stack).replace("&#x27;", "'")
    )
    stack.act("heal")
    wait_for("probes healthy", lambda: prometheus.value(HEALTHY_PROBE) == 1, 30)
    wait_for("alert resolved", lambda: prometheus.alert_state(PAGE_ALERT) is None, 180)


def status_page(stack: DemoStack) -> str:
    """The daemon's status page."""
    return httpx.get(stack.endpoints.metrics.removesuffix("metrics"), timeout=10).text


def paged(stack: DemoStack, alertname: str) -> bool:
    """Whether Alertmanager's `pager` receiver was notified of the alert firing."""
    assert stack.pager is not None
    return any(
        (note.receiver, note.status, note.alertname) == ("pager", "firing", alertname)
        for note in stack.pager.received()
    )


def test_the_verdict_fails_the_criteria_the_callback_failure_broke(
    stack: DemoStack, prometheus: Prometheus
) -> None:
    """After the 503s of the test above (healed since): the hour since the migration is not over,
    but a fail is final at once; the daemon's own view agrees."""
    code, document = verdict(stack, "--window", "1h", "--min-probes", "5")
    assert (code, document["verdict"], document["window"]["complete"]) == (1, "fail", False)
    decided = results(document)
    assert decided["error_rate_within_baseline"] == "fail"
    assert decided["users_can_authenticate"] == "fail"
    assert decided["migration_completed"] == "inconclusive"  # passing so far
    daemon = 'rollout_success_criterion{criterion="error_rate_within_baseline"}'
    assert prometheus.value(daemon) == 0
    # The daemon's gate decides from the same Prometheus: the command's verdict, and a roll-back.
    base = stack.endpoints.metrics.removesuffix("/metrics")
    gate = httpx.get(f"{base}/verdict?window=1h", timeout=30)
    assert (gate.status_code, gate.json()["source"], gate.json()["verdict"]) == (
        200,
        "prometheus",
        "fail",
    )
    assert httpx.post(f"{base}/gate/rollback?window=1h", timeout=30).status_code == 200
    assert httpx.post(f"{base}/gate/promote?window=1h", timeout=30).status_code == 409
