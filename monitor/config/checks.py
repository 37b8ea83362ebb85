"""The `checks` section: one entry per built-in check, each with its own interval, and the
checks that are just a query (`checks.sql`)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from monitor.config.durations import format_duration
from monitor.config.files import FileProblem, read_bounded
from monitor.config.names import is_builtin
from monitor.config.section import Section
from monitor.config.values import (
    ByteSize,
    CallbackUrl,
    CelExpression,
    CheckName,
    Duration,
    FieldProblem,
    HeaderName,
    HeaderValue,
    HttpUrl,
    Identifier,
    Interval,
    LabelName,
    MetricName,
    Regexp,
    StatusCode,
    reject_repeats,
)


class CheckSettings(Section):
    """Settings every check has."""

    enabled: bool = True
    interval: Interval = 30.0

    @property
    def wanted(self) -> bool:
        """Whether the check is built: enabled (and, for some, given what it needs)."""
        return self.enabled


class ConnectionsSettings(CheckSettings):
    """pg_stat_activity, locks, and the app's pool."""

    interval: Interval = 15.0
    application_names: tuple[str, ...] = ()
    app_application_name: str | None = None
    app_pool_size: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _pool_needs_name(self) -> ConnectionsSettings:
        if self.app_pool_size is not None and self.app_application_name is None:
            raise FieldProblem(
                "app_pool_size", "needs app_application_name to find the app's sessions"
            )
        return self


class QueryPerformanceSettings(CheckSettings):
    """The plan's EXPLAIN ANALYZE of the user lookup."""

    interval: Interval = 300.0
    threads_user_id: str = "test_user_id"


class HeaderMatch(Section):
    """A response header and a regular expression for it, as blackbox_exporter's."""

    header: HeaderName
    regexp: Regexp
    allow_missing: bool = False


class TLSClientSettings(Section):
    """How the probe trusts an https callback's certificate (blackbox_exporter's tls_config)."""

    ca_file: Path | None = None  # the CA to trust instead of certifi's bundle
    insecure_skip_verify: bool = False  # the certificate unchecked: no expiry to report then

    @field_validator("ca_file")
    @classmethod
    def _certificates(cls, path: Path | None) -> Path | None:
        if path is not None:
            trusted_context(path)  # read bounded, and parsed: a problem is this field's
        return path


MAX_CA_BYTES = 1 << 20


def trusted_context(ca_file: Path) -> ssl.SSLContext:
    """A client context trusting the certificates of `ca_file` (PEM, at most 1 MiB)."""
    try:
        pem = read_bounded(ca_file, MAX_CA_BYTES, "CA file").decode("ascii")
    except (FileProblem, UnicodeDecodeError) as problem:
        raise ValueError(
            str(problem) if isinstance(problem, FileProblem) else f"{ca_file}: not PEM"
        ) from None
    try:
        context = ssl.create_default_context(cadata=pem)
    except ssl.SSLError:
        raise ValueError(f"{ca_file}: holds no certificate ssl can read") from None
    return context


class DeadlineSettings(CheckSettings):
    """A check that asks a server over the network: a deadline shorter than its interval."""

    timeout: Duration = 3.0

    @model_validator(mode="after")
    def _deadline_fits_interval(self) -> Self:
        if self.timeout >= self.interval:
            raise FieldProblem(
                "timeout", f"must be shorter than interval ({format_duration(self.interval)})"
            )
        return self


class CallbackSettings(DeadlineSettings):
    """The synthetic OAuth callback probe (the plan's curl)."""

    # 900 probes an hour: enough for the criteria's tests to see 3x the error budget or a 30%
    # slower p95 in the critical hour more than 95% of the time (bench/judgement.py).
    interval: Interval = 4.0
    url: CallbackUrl = "http://localhost:3000/api/auth/callback/threads"
    method: Literal["GET", "POST", "PUT", "HEAD"] = "POST"
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=lambda: {"Content-Type": "application/json"}
    )
    body: str = '{"code":"test"}'
    valid_status_codes: tuple[StatusCode, ...] = ("2xx", "3xx", "4xx")
    # The probe stops reading the answer there (decompressed): a body cut off is its own
    # outcome, and memory stays flat whatever the callback sends.
    body_size_limit: ByteSize = 1 << 20
    follow_redirects: bool = False  # a 3xx is the answer (the app's redirect), as configured
    # The app's own answers, pinned (as the status page and rollout_auth_callback_expected_
    # answer_info show them learned): any other answer is unexpected_answer. Empty: learned
    # before the migration with the baseline.
    expected_answers: tuple[str, ...] = ()
    tls_config: TLSClientSettings = TLSClientSettings()
    # blackbox_exporter's matchers, same names and meaning; each failing with its own outcome.
    fail_if_body_matches_regexp: tuple[Regexp, ...] = ()
    fail_if_body_not_matches_regexp: tuple[Regexp, ...] = ()
    fail_if_header_matches: tuple[HeaderMatch, ...] = ()
    fail_if_header_not_matches: tuple[HeaderMatch, ...] = ()
    fail_if_body_json_matches_cel: CelExpression | None = None
    fail_if_body_json_not_matches_cel: CelExpression | None = None

    def is_valid_status(self, status: int) -> bool:
        """Whether an answer with this status counts as the healthy app's answer."""
        return any(
            status == code if isinstance(code, int) else str(status)[0] == code[0]
            for code in self.valid_status_codes
        )


class AlertsSettings(DeadlineSettings):
    """The rollout's alerts firing, asked of Alertmanager (what pages, inhibited or not) or of
    Prometheus (its rules' alerts), for the status page; built only with a url."""

    interval: Interval = 15.0
    url: HttpUrl = None
    api: Literal["alertmanager", "prometheus"] = "alertmanager"
    timeout: Duration = 5.0

    @property
    def wanted(self) -> bool:
        """Enabled, and told where to ask."""
        return self.enabled and self.url is not None


class SlowCheckSettings(CheckSettings):
    """A check that scans the app's tables, and so runs less often."""

    interval: Interval = 60.0


class RunCheckSettings(CheckSettings):
    """The migration's run, live: which statement, its lock wait, its blocker (system views
    only, so it can run often)."""

    interval: Interval = 5.0


class FastCheckSettings(CheckSettings):
    """A check that reads only memory or cheap views."""

    interval: Interval = 15.0


class QueryMetric(Section):
    """One metric a SQL check exports: a gauge per row, from a value column and label columns."""

    name: MetricName
    help: str = "Exported by a SQL check of the configuration."
    value: Identifier
    labels: tuple[LabelName, ...] = ()

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if is_builtin(value):
            raise ValueError(f"{value} is a metric of rollout-monitor itself: choose another name")
        return value


class SqlCheckSettings(SlowCheckSettings):
    """A check that is just a query and the metrics its columns become (no Python needed)."""

    name: CheckName
    sql: str = Field(min_length=1)
    tables: tuple[Identifier, ...] = ()
    metrics: tuple[QueryMetric, ...]

    @model_validator(mode="after")
    def _exports_something(self) -> SqlCheckSettings:
        if not self.metrics:
            raise FieldProblem("metrics", "must list at least one")
        return self


class ChecksConfig(Section):
    """One entry per check, each with its own interval; `sql` adds checks that are just queries."""

    schema_check: CheckSettings = Field(CheckSettings(), alias="schema")
    drift: SlowCheckSettings = SlowCheckSettings()
    migration_run: RunCheckSettings = RunCheckSettings()
    backfill: SlowCheckSettings = SlowCheckSettings()
    connections: ConnectionsSettings = ConnectionsSettings()
    activity: CheckSettings = CheckSettings()
    query_performance: QueryPerformanceSettings = QueryPerformanceSettings()
    pool: FastCheckSettings = FastCheckSettings()
    callback: CallbackSettings = CallbackSettings()
    alerts: AlertsSettings = AlertsSettings()
    sql: tuple[SqlCheckSettings, ...] = ()

    @model_validator(mode="after")
    def _names_are_unique(self) -> ChecksConfig:
        builtin = {"schema", *type(self).model_fields} - {"schema_check", "sql"}
        reject_repeats("check", [check.name for check in self.sql], builtin)
        metrics = [metric.name for check in self.sql for metric in check.metrics]
        reject_repeats("metric", metrics, set())
        return self
