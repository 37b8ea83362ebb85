"""The dashboard's building blocks, as grafana-foundation-sdk builders: its kinds of panel, each
querying the datasource variable for the chosen job and instance.

A panel says what it shows; these say how every panel of its kind looks: a stat shows one
colored value, a trend is a time series with its legend as a table, a reference line is dashed.
Grid positions are left to the SDK's layout (rows full width, panels left to right); ids and
query refIds are numbered in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every series is selected for the job and instance chosen at the top of the dashboard.
TARGET = 'job=~"$job", instance=~"$instance"'
GREY = "#808080"
DASHED = common.LineStyle(fill="dash", dash=[10, 10])

# A value and how it reads: text and color.
Reading = tuple[str, str]
# What the dashboard is made of, in reading order.
Item = dashboard_builders.Row | builder.Builder[model.Panel]


def series(name: str, **labels: str) -> str:
    """A selector of the name for the chosen job and instance, fixed labels first."""
    fixed = "".join(f'{label}="{value}", ' for label, value in labels.items())
    return f"{name}{{{fixed}{TARGET}}}"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and its legend."""

    expr: str
    legend: str


def targets(queries: Sequence[Query], *, instant: bool) -> list[builder.Builder[Dataquery]]:
    """The queries as Prometheus targets, refIds A, B, C... in order."""
    built: list[builder.Builder[Dataquery]] = []
    for index, query in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .datasource(DATASOURCE)
            .expr(query.expr)
            .legend_format(query.legend)
            .ref_id(chr(ord("A") + index))
        )
        built.append(target.instant() if instant else target.range())
    return built


class Framed(Protocol):
    """What every kind of panel's builder has: its frame, queries and color scheme."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...
    def targets(self, targets: list[builder.Builder[Dataquery]]) -> Self: ...
    def color_scheme(self, color: builder.Builder[model.FieldColor]) -> Self: ...


Kind = TypeVar("Kind", bound=Framed)


def framed(
    panel: Kind,
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    width: int,
    height: int,
    instant: bool,
    colors: model.FieldColorModeId = model.FieldColorModeId.THRESHOLDS,
) -> Kind:
    """A panel of any kind with its title, description, size and queries on the datasource."""
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
        .targets(targets(queries, instant=instant))
        .color_scheme(dashboard_builders.FieldColor().mode(colors))
    )


def readings(values: Mapping[int, Reading]) -> list[model.ValueMapping]:
    """One value mapping: each value shown as its text, in its color."""
    options = {
        str(value): model.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(values.items())
    }
    return [model.ValueMap(options=options)]


def steps(*colors: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds: each color from its value up (the first from None, the base)."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in colors])
    )


def last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def stat_panel(
    title: str,
    description: str,
    query: Query,
    *,
    width: int,
    height: int = 4,
    values: Mapping[int, Reading] | None = None,
    thresholds: Sequence[tuple[float | None, str]] = ((None, GREY),),
    unit: str = "none",
    no_value: str | None = "NO DATA",
    decimals: int | None = None,
    color_by: common.BigValueColorMode = common.BigValueColorMode.BACKGROUND,
) -> stat.Panel:
    """One value, colored: the instant result of one query."""
    panel = (
        framed(stat.Panel(), title, description, [query], width=width, height=height, instant=True)
        .mappings(readings(values) if values else [])
        .thresholds(steps(*thresholds))
        .unit(unit)
        .color_mode(color_by)
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .orientation(common.VizOrientation.AUTO)
        .text_mode(common.BigValueTextMode.VALUE)
        .wide_layout(True)
        .show_percent_change(False)
        .reduce_options(last_value())
    )
    if no_value is not None:
        panel = panel.no_value(no_value)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


@dataclass(frozen=True)
class Line:
    """How some series of a trend are drawn: picked by refId, name or name pattern."""

    color: str
    ref_id: str | None = None
    name: str | None = None
    pattern: str | None = None
    dashed: bool = False


def trend_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    width: int,
    unit: str,
    low: float | None = 0,
    high: float | None = None,
    lines: Sequence[Line] = (),
    stacked: bool = False,
    limit: float | None = None,
) -> timeseries.Panel:
    """Series over time with the last value of each in a table below; `limit` is shaded red
    above it."""
    panel = (
        framed(
            timeseries.Panel(),
            title,
            description,
            queries,
            width=width,
            height=8,
            instant=False,
            colors=model.FieldColorModeId.PALETTE_CLASSIC,
        )
        .draw_style(common.GraphDrawStyle.LINE)
        .fill_opacity(30 if stacked else 10)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            common_builders.StackingConfig()
            .group("A")
            .mode(common.StackingMode.NORMAL if stacked else common.StackingMode.NONE)
        )
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.OFF
                if limit is None
                else common.GraphThresholdsStyleMode.LINE_AND_AREA
            )
        )
        .mappings([])
        .thresholds(steps((None, "green"), *(() if limit is None else ((limit, "red"),))))
        .unit(unit)
        .legend(
            common_builders.VizLegendOptions()
            .calcs(["lastNotNull"])
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if low is not None:
        panel = panel.min(low)
    if high is not None:
        panel = panel.max(high)
    for line in lines:
        panel = _draw(panel, line)
    return panel


def _draw(panel: timeseries.Panel, line: Line) -> timeseries.Panel:
    properties = [
        model.DynamicConfigValue(id_val="color", value={"fixedColor": line.color, "mode": "fixed"})
    ]
    if line.dashed:
        properties += [
            model.DynamicConfigValue(id_val="custom.lineStyle", value=DASHED),
            model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
        ]
    if line.ref_id is not None:
        return panel.override_by_query(line.ref_id, properties)
    if line.name is not None:
        return panel.override_by_name(line.name, properties)
    if line.pattern is not None:
        return panel.override_by_regexp(line.pattern, properties)
    raise ValueError(f"line {line.color}: say which series it draws (ref_id, name or pattern)")


def states_panel(
    title: str, description: str, query: Query, *, width: int, values: Mapping[int, Reading]
) -> statetimeline.Panel:
    """Each series as a band of its states over time."""
    return (
        framed(
            statetimeline.Panel(), title, description, [query], width=width, height=8, instant=False
        )
        .fill_opacity(80)
        .line_width(0)
        .mappings(readings(values))
        .thresholds(steps((None, GREY)))
        .align_value(common.TimelineValueAlignment.CENTER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(False)
        )
        .merge_values(True)
        .row_height(0.9)
        .show_value(common.VisibilityMode.AUTO)
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.SINGLE)
            .sort(common.SortOrder.NONE)
        )
    )


def bars_panel(
    title: str,
    description: str,
    query: Query,
    *,
    width: int,
    unit: str,
    values: Mapping[int, Reading],
    thresholds: Sequence[tuple[float | None, str]],
) -> bargauge.Panel:
    """The instant value of each series as a horizontal bar."""
    return (
        framed(bargauge.Panel(), title, description, [query], width=width, height=8, instant=True)
        .mappings(readings(values))
        .min(0)
        .thresholds(steps(*thresholds))
        .unit(unit)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .orientation(common.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .value_mode(common.BarGaugeValueMode.COLOR)
        .name_placement(common.BarGaugeNamePlacement.AUTO)
        .sizing(common.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
        .reduce_options(last_value())
    )


def row(title: str) -> dashboard_builders.Row:
    """A band of the dashboard, expanded: the panels after it, up to the next, are under it."""
    return dashboard_builders.Row(title).collapsed(False)
