"""Schema check: which of the migration's objects exist, and so the migration's state."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import Metric

from monitor.checks.registry import Parts, register
from monitor.config.checks import CheckSettings
from monitor.config.names import PRISMA_TABLE
from monitor.config.schema import AppConfig, MigrationConfig
from monitor.db import sql
from monitor.db.pool import Database, Row, Session
from monitor.observe.metrics import gauge, labelled_gauge, one_hot
from monitor.observe.migration import STATES, MigrationTracker, MigrationView, migration_state
from monitor.observe.readings import Readings, SchemaHealth

PRISMA_STATES = ("absent", "started", "failed", "finished", "rolled_back")
APPLIED_SOURCES = ("config", "prisma", "observed")


@dataclass(frozen=True)
class PrismaRecord:
    """What _prisma_migrations says of the migration."""

    state: str = "absent"
    finished_at: datetime | None = None
    started_at: datetime | None = None


def prisma_record(row: Row | None) -> PrismaRecord:
    """Classify the newest _prisma_migrations row for the migration."""
    if row is None:
        return PrismaRecord()
    started = row["started_at"]
    if row["rolled_back_at"] is not None:
        return PrismaRecord("rolled_back", row["finished_at"])
    if row["finished_at"] is not None:
        return PrismaRecord("finished", row["finished_at"], started)
    return PrismaRecord("failed" if row["has_logs"] else "started", None, started)


@dataclass(frozen=True)
class RunSigns:
    """What says the migration's run is under way, besides its objects appearing."""

    prisma_lock: bool = False  # Prisma Migrate's advisory lock held or awaited
    ddl_lock: bool = False  # an ACCESS EXCLUSIVE lock held or awaited on a watched table

    @property
    def locked(self) -> bool:
        """A lock sign: brief ones (autovacuum truncating, a `prisma migrate deploy` with nothing
        to apply) are common, so a run needs them on two looks in a row."""
        return self.prisma_lock or self.ddl_lock


class SchemaCheck:
    """Reads the catalogs (never the tables) to tell pending, partial, applied or rolled back."""

    name = "schema"

    def __init__(
        self,
        db: Database,
        settings: CheckSettings,
        app: AppConfig,
        migration: MigrationConfig,
        *,
        tracker: MigrationTracker,
        clock: Callable[[], float] = time.time,
        readings: Readings | None = None,
    ) -> None:
        self._db = db
        self._schema = app.schema_name
        self._migration = migration
        self._tracker = tracker
        self._readings = readings or Readings()
        self._clock = clock
        self._locked_before = False  # the last look saw a lock sign
        self._users_table = app.users.table
        self._tokens_table = app.tokens.table
        self.interval = settings.interval
        self._params = self._object_params()

    def _object_params(self) -> dict[str, Any]:
        objects = self._migration.objects
        pairs = [c.split(".") for c in objects.columns]
        return {
            "schema": self._schema,
            "column_tables": [table for table, _ in pairs],
            "column_names": [column for _, column in pairs],
            "indexes": list(objects.indexes),
            "trigger_tables": [t.table for t in objects.triggers],
            "trigger_names": [t.name for t in objects.triggers],
            "functions": list(objects.functions),
            "tables": list(objects.tables),
            "constraint_tables": [c.table for c in objects.constraints],
            "constraint_names": [c.name for c in objects.constraints],
        }

    def run(self) -> Sequence[Metric]:
        """Query the catalogs, publish the migration's state, and return the schema families."""
        with self._db.session() as session:
            objects = session.rows(sql.query("schema_objects"), self._params)
            record = self._read_prisma(session)
            signs = self._run_signs(session)
            version = session.row(sql.query("server_version"))["version"]
        view = self._conclude(objects, record, signs)
        self._tracker.publish(view)
        self._readings.publish(self.name, schema_health(objects))
        return [
            *self._object_families(objects),
            *self._state_families(view, record.state),
            labelled_gauge(
                "rollout_postgres_server_info",
                "The server's version.",
                ["version"],
                {(version,): 1},
            ),
        ]

    def _read_prisma(self, session: Session) -> PrismaRecord:
        exists = {"schema": self._schema, "table": PRISMA_TABLE}
        if not session.row(sql.query("table_exists"), exists)["present"]:
            return PrismaRecord()
        query = sql.query(
            "prisma_migration", prisma_migrations=sql.table(self._schema, PRISMA_TABLE)
        )
        rows = session.rows(query, {"name": self._migration.prisma_name})
        return prisma_record(rows[0] if rows else None)

    def _run_signs(self, session: Session) -> RunSigns:
        """Locks that only a running migration (or DDL as disruptive) holds or awaits."""
        ddl = session.locked_tables(self._schema, [self._users_table, self._tokens_table])
        prisma = session.row(sql.query("prisma_migrate_lock"))["held"]
        return RunSigns(prisma_lock=bool(prisma), ddl_lock=bool(ddl))

    def _conclude(self, objects: list[Row], record: PrismaRecord, signs: RunSigns) -> MigrationView:
        before = self._tracker.current()
        present = sum(1 for row in objects if row["present"])
        was_applied = before.seen_applied or record.finished_at is not None
        state = migration_state(present, len(objects), was_applied)
        if state != "applied":
            # Before it was ever applied, objects appearing one by one are its run too.
            locked, self._locked_before = signs.locked and self._locked_before, signs.locked
            started = record.state == "started" or state == "partial"
            running = not was_applied and (started or locked)
            since = self._started_at(record, before) if running else None
            return MigrationView(state, was_applied, running=running, started_at=since)
        observed = before.observed_applied_at if before.state == "applied" else None
        observed = observed or datetime.fromtimestamp(self._clock(), UTC)
        source, applied_at = self._applied_at(record, observed)
        return MigrationView(
            state, True, observed, applied_at, source, started_at=self._run_of(record, before)
        )

    def _run_of(self, record: PrismaRecord, before: MigrationView) -> datetime | None:
        """When the applied migration's run started: as seen running, else Prisma's, else None
        (applied between two looks, with no record of its start)."""
        if before.running or before.started_at is not None:
            return self._started_at(record, before)
        return as_utc(record.started_at) if record.started_at is not None else None

    def _started_at(self, record: PrismaRecord, before: MigrationView) -> datetime:
        """When the run started: Prisma's started_at of this attempt, else when first seen."""
        if record.state in ("started", "finished") and record.started_at is not None:
            return as_utc(record.started_at)
        if before.started_at is not None:
            return before.started_at
        return datetime.fromtimestamp(self._clock(), UTC)

    def _applied_at(self, record: PrismaRecord, observed: datetime) -> tuple[str, datetime]:
        """When the migration was applied and who says so: config, then Prisma, then us."""
        if self._migration.applied_at is not None:
            return "config", as_utc(self._migration.applied_at)
        if record.finished_at is not None:
            return "prisma", as_utc(record.finished_at)
        return "observed", observed

    def _object_families(self, objects: list[Row]) -> list[Metric]:
        present: dict[tuple[str, ...], float] = {
            (r["kind"], r["name"]): float(r["present"]) for r in objects
        }
        return [
            labelled_gauge(
                "rollout_schema_object_present",
                "1 when the migration's object exists, else 0.",
                ["kind", "name"],
                present,
            ),
            labelled_gauge(
                "rollout_schema_index_valid",
                "1 when the migration's index is valid and ready (present indexes only).",
                ["name"],
                health(objects, "index"),
            ),
            labelled_gauge(
                "rollout_schema_trigger_enabled",
                "1 when the migration's trigger is enabled (present triggers only).",
                ["name"],
                health(objects, "trigger"),
            ),
            gauge(
                "rollout_schema_objects_expected", "Objects the migration creates.", len(objects)
            ),
        ]

    def _state_families(self, view: MigrationView, prisma_state: str) -> list[Metric]:
        families: list[Metric] = [
            one_hot(
                "rollout_migration_state",
                "1 for the migration's current state, 0 for the others.",
                "state",
                STATES,
                view.state,
            ),
            labelled_gauge(
                "rollout_migration_info",
                "The migration being watched.",
                ["migration"],
                {(self._migration.name,): 1},
            ),
            one_hot(
                "rollout_prisma_migration_state",
                "1 for what _prisma_migrations records of the migration, 0 for the others.",
                "state",
                PRISMA_STATES,
                prisma_state,
            ),
            gauge(
                "rollout_migration_running",
                "1 while the migration's run is under way: Prisma's lock or record of a started"
                " attempt, DDL locks on a watched table, or its objects appearing one by one.",
                float(view.running),
            ),
        ]
        if view.started_at is not None:
            families.append(
                gauge(
                    "rollout_migration_started_timestamp_seconds",
                    "Unix time the migration's run started (Prisma's started_at, else when this"
                    " monitor first saw it running); exported while it runs and once applied.",
                    view.started_at.timestamp(),
                )
            )
        if view.applied_at is not None and view.applied_source is not None:
            families += [
                gauge(
                    "rollout_migration_applied_timestamp_seconds",
                    "Unix time the migration was applied (exported while it is applied).",
                    view.applied_at.timestamp(),
                ),
                one_hot(
                    "rollout_migration_applied_timestamp_source",
                    "1 for where the applied time comes from: config, prisma or observed.",
                    "source",
                    APPLIED_SOURCES,
                    view.applied_source,
                ),
            ]
        return families


def schema_health(objects: list[Row]) -> SchemaHealth:
    """The health of the migration's present indexes and triggers, and any trigger missing."""

    def all_healthy(kind: str) -> bool | None:
        found = health(objects, kind).values()
        return all(v == 1 for v in found) if found else None

    missing = any(r["kind"] == "trigger" and not r["present"] for r in objects)
    return SchemaHealth(all_healthy("index"), all_healthy("trigger"), trigger_missing=missing)


def health(objects: list[Row], kind: str) -> dict[tuple[str, ...], float]:
    """name -> 1/0 health for present objects of one kind."""
    return {
        (r["name"],): float(bool(r["healthy"]))
        for r in objects
        if r["kind"] == kind and r["present"]
    }


def as_utc(moment: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken to be UTC already (as Prisma stores it)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@register("schema_check", order=0)
def _build(settings: CheckSettings, parts: Parts) -> SchemaCheck:
    return SchemaCheck(
        parts.db,
        settings,
        parts.app,
        parts.migration,
        tracker=parts.tracker,
        readings=parts.readings,
    )
