"""The dashboard's own queries: the datasource, job and instance variables, and the annotation
that marks when the migration was applied.

Grafana's schema, which the SDK's models follow, leaves some keys to the data source: a
Prometheus variable's `definition` (what the editor shows) and a Prometheus annotation's
`useValueForTime`, step and formats. The two models here add exactly those keys to the SDK's.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from grafana_foundation_sdk.cog import builder
from grafana_foundation_sdk.models import dashboard as model

from .panels import DATASOURCE, series

Built_co = TypeVar("Built_co", covariant=True)
# What "All" selects: also series without the label, such as the label-less absent() alert.
ALL = ".*"
# The series every monitor exports, whatever it checks: it lists the monitors.
MONITORS = "rollout_postgres_up"


class Prebuilt(builder.Builder[Built_co], Generic[Built_co]):
    """A model made whole by its constructor, where the dashboard builder asks for a builder."""

    def __init__(self, built: Built_co) -> None:
        self._built = built

    def build(self) -> Built_co:
        return self._built


class PrometheusVariable(model.VariableModel):
    """A query variable of label values, with the `definition` Grafana's editor shows."""

    def __init__(self, name: str, label: str, definition: str) -> None:
        super().__init__(
            type_val=model.VariableType.QUERY,
            name=name,
            label=label,
            hide=model.VariableHide.DONT_HIDE,
            query={
                "qryType": 1,
                "query": definition,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            datasource=DATASOURCE,
            multi=True,
            options=[],
            refresh=model.VariableRefresh.ON_TIME_RANGE_CHANGED,
            sort=model.VariableSort.ALPHABETICAL_ASC,
            include_all=True,
            all_value=ALL,
            regex="",
        )
        self.definition = definition

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "definition": self.definition}


class EventAnnotation(model.AnnotationQuery):
    """A Prometheus annotation whose value is the time of an event, in milliseconds: one
    annotation per series, titled `title`, its text and tags from the series' labels."""

    def __init__(self, name: str, expr: str, title: str, text: str, tag_keys: str) -> None:
        super().__init__(
            name=name,
            datasource=DATASOURCE,
            enable=True,
            hide=False,
            icon_color="orange",
            expr=expr,
        )
        self.title, self.text, self.tag_keys = title, text, tag_keys

    def to_json(self) -> dict[str, object]:
        return {
            **super().to_json(),
            "step": "60s",
            "useValueForTime": True,
            "titleFormat": self.title,
            "textFormat": self.text,
            "tagKeys": self.tag_keys,
        }


def datasource() -> model.VariableModel:
    """Which Prometheus to read: any data source of that type, chosen when the dashboard opens."""
    return model.VariableModel(
        type_val=model.VariableType.DATASOURCE,
        name="datasource",
        label="Data source",
        hide=model.VariableHide.DONT_HIDE,
        query="prometheus",
        multi=False,
        options=[],
        refresh=model.VariableRefresh.ON_DASHBOARD_LOAD,
        include_all=False,
        regex="",
    )


def variables() -> list[builder.Builder[model.VariableModel]]:
    """Data source, then job, then the instances of the chosen jobs: All by default."""
    job = f"label_values({MONITORS}, job)"
    instance = f'label_values({MONITORS}{{job=~"$job"}}, instance)'
    return [
        Prebuilt(datasource()),
        Prebuilt(PrometheusVariable("job", "Job", job)),
        Prebuilt(PrometheusVariable("instance", "Instance", instance)),
    ]


def annotation_queries() -> list[builder.Builder[model.AnnotationQuery]]:
    """Grafana's own (annotations and alerts), and when each monitor saw the migration applied."""
    grafana = model.AnnotationQuery(
        name="Annotations & Alerts",
        datasource=model.DataSourceRef(type_val="grafana", uid="-- Grafana --"),
        enable=True,
        hide=True,
        icon_color="rgba(0, 211, 255, 1)",
        type_val="dashboard",
        built_in=1,
    )
    applied = EventAnnotation(
        "Migration applied",
        f"{series('rollout_migration_applied_timestamp_seconds')} * 1000",
        title="Migration 001 applied",
        text="seen by {{instance}}",
        tag_keys="job,instance",
    )
    return [Prebuilt(grafana), Prebuilt(applied)]
