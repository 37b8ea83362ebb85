"""One typed, validated, frozen configuration; its defaults describe migration 001."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from monitor.config.checks import ChecksConfig
from monitor.config.migration import as_settings, created, difference
from monitor.config.names import DEFAULT_LISTEN_ADDRESS, PRISMA_MIGRATE_LOCK
from monitor.config.section import Section
from monitor.config.urls import check_database_url, has_password, split_prisma_parameters
from monitor.config.values import (
    ColumnRef,
    Duration,
    FieldProblem,
    HttpUrl,
    Identifier,
    ListenAddress,
    PostgresDuration,
    Ratio,
)
from monitor.promql.query import Selector


class DatabaseConfig(Section):
    """How the monitor connects, and the bounds on everything it runs."""

    url: SecretStr | None = None
    password_file: Path | None = None
    application_name: Identifier = "rollout-monitor"
    pool_min_size: int = Field(1, ge=0, le=10)
    pool_max_size: int = Field(3, ge=1, le=10)
    connect_timeout: Duration = 5.0
    acquire_timeout: Duration = 5.0
    lock_timeout: PostgresDuration = 0.2
    statement_timeout: PostgresDuration = 3.0
    idle_in_transaction_session_timeout: PostgresDuration = 10.0

    @field_validator("url")
    @classmethod
    def _url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_database_url(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _bounds_are_consistent(self) -> DatabaseConfig:
        if self.pool_min_size > self.pool_max_size:
            raise FieldProblem("pool_min_size", "must not exceed pool_max_size")
        if self.lock_timeout > self.statement_timeout:
            raise FieldProblem("lock_timeout", "must not exceed statement_timeout")
        if (
            self.password_file is not None
            and self.url is not None
            and has_password(self.url.get_secret_value())
        ):
            raise FieldProblem(
                "password_file", "the database URL has a password too: keep one of the two"
            )
        return self


class UsersTable(Section):
    """The app's users table and the columns the checks read (never e-mail)."""

    table: Identifier = "users"
    id: Identifier = "id"
    threads_user_id: Identifier = "threadsUserId"
    threads_username: Identifier = "threadsUsername"
    new_columns: tuple[Identifier, ...] = ("threadsFullName", "threadsProfilePic")


class TokensTable(Section):
    """The app's token table and the columns the checks read (never the token itself)."""

    table: Identifier = "threads_tokens"
    user_id: Identifier = "userId"
    expires_at: Identifier = "expiresAt"
    is_valid: Identifier = "isValid"
    issued_at: Identifier = "issuedAt"
    last_refreshed_at: Identifier = "lastRefreshedAt"


class AppConfig(Section):
    """Where the watched app keeps its data."""

    schema_name: Identifier = Field("public", alias="schema")
    users: UsersTable = UsersTable()
    tokens: TokensTable = TokensTable()


class Trigger(Section):
    """A trigger and the table it belongs to."""

    name: Identifier
    table: Identifier


class Named(Section):
    """A constraint and the table it belongs to."""

    name: Identifier
    table: Identifier


class MigrationObjects(Section):
    """Every object the migration creates; its presence decides the migration state."""

    columns: tuple[ColumnRef, ...] = ()
    indexes: tuple[Identifier, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    functions: tuple[Identifier, ...] = ()
    tables: tuple[Identifier, ...] = ()
    constraints: tuple[Named, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> MigrationObjects:
        if not self.names():
            raise ValueError("at least one object is needed to tell the migration state")
        return self

    def names(self) -> set[tuple[str, str]]:
        """(kind, name) of every object listed."""
        return {
            *(("column", c) for c in self.columns),
            *(("index", i) for i in self.indexes),
            *(("trigger", t.name) for t in self.triggers),
            *(("function", f) for f in self.functions),
            *(("table", t) for t in self.tables),
            *(("constraint", c.name) for c in self.constraints),
        }


class MigrationConfig(Section):
    """The migration being rolled out: its SQL (by default the bundled SQL of 001) and the
    objects it creates, read from that SQL unless listed here (a list must agree with it)."""

    name: str = Field("001_threads_oauth_enhancements", min_length=1)
    prisma_migration_name: str | None = None
    applied_at: datetime | None = None
    sql_file: Path | None = None
    objects: MigrationObjects

    @model_validator(mode="before")
    @classmethod
    def _objects_from_the_sql(cls, data: Any) -> Any:
        """Unlisted objects are the SQL's (a path of the wrong type is left for its field)."""
        if not isinstance(data, dict) or "objects" in data:
            return data
        path = data.get("sql_file")
        if path is not None and not isinstance(path, str | Path):
            return data
        _, made = created(None if path is None else Path(path))
        return {**data, "objects": as_settings(made)}

    @model_validator(mode="after")
    def _objects_agree_with_the_sql(self) -> MigrationConfig:
        where, made = created(self.sql_file)
        problem = difference(self.objects.names(), {(o.kind, o.name) for o in made}, where)
        if problem is not None:
            raise FieldProblem("objects", problem)
        return self

    @property
    def prisma_name(self) -> str:
        """The name looked up in _prisma_migrations (exactly, or after a timestamp prefix)."""
        return self.prisma_migration_name or self.name


class FixedBaseline(Section):
    """A baseline given by the operator (source configuration): used instead of learning one."""

    success_ratio: Ratio | None = None
    p50: Duration | None = None
    p95: Duration | None = None
    p99: Duration | None = None
    user_lookup_execution: Duration | None = None
    db_connections_ratio: Ratio | None = None

    @model_validator(mode="after")
    def _something_set(self) -> FixedBaseline:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("set at least one value, e.g. success_ratio or p95")
        return self


class BaselineSettings(Section):
    """The callback's latency and success before the migration, learned while it is pending."""

    window: Duration = 3600.0
    min_probes: int = Field(20, ge=1)
    state_file: Path | None = None
    fixed: FixedBaseline | None = None
    prometheus_url: HttpUrl = None
    prometheus_selector: str = ""  # label matchers picking this monitor's series, job="x"

    @field_validator("prometheus_selector")
    @classmethod
    def _label_matchers(cls, value: str) -> str:
        Selector.parse(value)  # a SelectorError is a ValueError, reported with its location
        return value


class CriteriaSettings(Section):
    """What the daemon's own view of the success criteria counts as good enough."""

    objective: float = Field(0.99, gt=0, le=1)
    min_probes: int | None = Field(None, ge=1)  # None: baseline.min_probes
    latency_tolerance: float = Field(1.10, ge=1)


class PreflightSettings(Section):
    """`rollout-monitor preflight`: where the backup is, and the application-state queries."""

    backup: Path | None = None
    backup_max_age: Duration = 86400.0
    backup_timeout: Duration = 600.0
    pg_restore: Path | None = None
    in_flight_query: str | None = Field(None, min_length=1)
    in_flight_max: int = Field(0, ge=0)
    active_sessions_query: str | None = Field(None, min_length=1)
    active_sessions_max: int | None = Field(None, ge=0)


class LargeTablesSettings(Section):
    """Above this many rows (pg_class estimate), checks sample the app's tables, not scan them."""

    estimate_above_rows: int = Field(100_000, ge=0)
    sample_rows: int = Field(10_000, ge=100)
    # Above the threshold, wrongly invalid tokens are still counted exactly when the planner
    # costs that count at most this (measured: under 50 ms cold, a few ms warm): a rare count a
    # sample would miss.
    exact_max_cost: float = Field(15_000.0, ge=0)
    # Above estimate_above_rows the drift check also reads the whole token table, sweep_blocks
    # heap blocks per short transaction, a few slices a run, one pass per sweep_period: exact
    # drift counts at most one pass old (checks/counting/sweep.py). Needs SELECT on the token
    # table's ctid (docs/monitoring-role.sql) and PostgreSQL 14+; without either, the sample stands.
    sweep: bool = True
    sweep_period: Duration = 900.0
    sweep_blocks: int = Field(2_000, ge=1)


class LogConfig(Section):
    """Log level and format; 'auto' is JSON unless stderr is a terminal."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class LeaderSettings(Section):
    """Several monitors watching one database (a sidecar in each app pod): one of them, the
    leader, runs the database checks; the others probe their own pod's callback only."""

    enabled: bool = True
    interval: Duration = 5.0  # how often a follower tries to lead, and the leader checks it does
    lock_key: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # None: from migration.name

    @field_validator("lock_key")
    @classmethod
    def _not_prismas(cls, value: int | None) -> int | None:
        if value == PRISMA_MIGRATE_LOCK:
            raise ValueError(f"{value} is the lock prisma migrate takes: choose another")
        return value


class Config(Section):
    """The whole configuration, validated once at the edge and trusted everywhere after."""

    database: DatabaseConfig = DatabaseConfig()
    listen_address: ListenAddress = DEFAULT_LISTEN_ADDRESS
    web_config_file: Path | None = None
    app: AppConfig = AppConfig()
    migration: MigrationConfig = Field(default_factory=lambda: MigrationConfig.model_validate({}))
    checks: ChecksConfig = ChecksConfig()
    baseline: BaselineSettings = BaselineSettings()
    criteria: CriteriaSettings = CriteriaSettings()
    preflight: PreflightSettings = PreflightSettings()
    large_tables: LargeTablesSettings = LargeTablesSettings()
    log: LogConfig = LogConfig()
    leader: LeaderSettings = LeaderSettings()

    @model_validator(mode="after")
    def _leader_has_a_session_for_its_lock(self) -> Config:
        if self.leader.enabled and self.database.pool_max_size < 2:
            raise FieldProblem(
                "database.pool_max_size",
                "must be at least 2 while leader.enabled (one session"
                " holds the leader's lock); or set leader.enabled: false",
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _adopt_prisma_schema(cls, data: Any) -> Any:
        """A Prisma URL's ?schema= names the app's schema, unless app.schema says otherwise."""
        database = data.get("database") if isinstance(data, dict) else None
        url = database.get("url") if isinstance(database, dict) else None
        app = data.get("app", {}) if isinstance(data, dict) else None
        if not isinstance(url, str) or not isinstance(app, dict) or "schema" in app:
            return data
        schema = split_prisma_parameters(url)[1].get("schema")
        return {**data, "app": {**app, "schema": schema}} if schema else data

    @property
    def listen_host(self) -> str:
        """The host part of listen_address, without IPv6 brackets."""
        return self.listen_address.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """The port part of listen_address."""
        return int(self.listen_address.rpartition(":")[2])

    @property
    def database_url(self) -> str:
        """The database URL; loading guarantees it is set."""
        if self.database.url is None:
            raise ValueError("database.url is not set")
        return self.database.url.get_secret_value()
