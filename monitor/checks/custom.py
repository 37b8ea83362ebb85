"""SQL checks from the configuration: run this query, export these columns as gauges."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.metrics_core import Metric
from psycopg import sql

from monitor.checks.base import CheckFailed
from monitor.config.checks import QueryMetric, SqlCheckSettings
from monitor.db.pool import Database, Row
from monitor.observe.metrics import labelled_gauge
from monitor.output.shown import shown


class SqlCheck:
    """Runs the configured query read-only and time-boxed, after guarding the tables it names."""

    def __init__(self, db: Database, schema: str, settings: SqlCheckSettings) -> None:
        self._db = db
        self._schema = schema
        self._settings = settings
        self.name = settings.name
        self.interval = settings.interval
        self._query = sql.Composed([sql.SQL(settings.sql)])

    def run(self) -> Sequence[Metric]:
        """One gauge sample per row and metric."""
        with self._db.session() as session:
            if self._settings.tables:
                session.guard(self._schema, self._settings.tables)
            rows = session.rows(self._query)
        return [family(metric, rows) for metric in self._settings.metrics]


def family(metric: QueryMetric, rows: list[Row]) -> Metric:
    """The metric's gauge family, from the value and label columns of every row."""
    missing = [c for c in (metric.value, *metric.labels) if rows and c not in rows[0]]
    if missing:
        raise CheckFailed(f"{metric.name}: the query returns no column {', '.join(missing)}")
    samples: dict[tuple[str, ...], float] = {}
    for row in rows:
        labels = tuple(label_value(row[label]) for label in metric.labels)
        if labels in samples:  # Prometheus would refuse the whole scrape
            shown_labels = ", ".join(
                f"{k}={shown(v)}" for k, v in zip(metric.labels, labels, strict=True)
            )
            raise CheckFailed(f"{metric.name}: two rows with the same labels ({shown_labels})")
        value = row[metric.value]
        if value is None:
            raise CheckFailed(f"{metric.name}: the query returned NULL in {metric.value}")
        samples[labels] = float(value)
    return labelled_gauge(metric.name, metric.help, metric.labels, samples)


def label_value(value: object) -> str:
    """A column's value as a label: NULL is the empty string (a label Prometheus treats as
    absent), never the text "None"."""
    return "" if value is None else str(value)
