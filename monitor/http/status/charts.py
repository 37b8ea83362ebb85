"""Small inline SVG line charts of the last hour: no script, no external asset, escaped text."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# The drawing's own units; the SVG scales to the width of its container (a phone's 360 px too).
WIDTH, HEIGHT = 320.0, 132.0
LEFT, RIGHT, TOP, BOTTOM = 46.0, 8.0, 8.0, 20.0
# Two points further apart than this are not joined: the daemon did not probe in between.
GAP_SECONDS = 180.0
COLUMN = 1.0  # drawing units a column (the plot is 266 across: about a phone's pixel)
STYLES = 4  # series styles s0..s3 in the page's CSS (colour and dash, so not colour alone)
REFERENCE_STYLES = 2  # reference line styles r0, r1

Point = tuple[float, float]  # (Unix time, value)
Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend and its points, oldest first; `now` says what it is
    now in the legend's words (by default its last point's value)."""

    name: str
    points: tuple[Point, ...]
    now: str | None = None


@dataclass(frozen=True)
class Reference:
    """A horizontal line to compare against (the baseline, the objective)."""

    name: str
    value: float


@dataclass(frozen=True)
class Chart:
    """What one chart shows over [start, end]; a fixed value range or one fitted to the data."""

    key: str
    title: str
    start: float
    end: float
    series: tuple[Series, ...]
    references: tuple[Reference, ...] = ()
    fmt: Format = str
    low: float = 0.0
    high: float | None = None  # None: fitted to the highest value shown
    axis: Format | None = None  # the axis's shorter labels (they must fit LEFT); None: fmt


def percent(value: float) -> str:
    """0.995 -> '99.5%'."""
    return f"{value * 100:.1f}%"


def milliseconds(value: float) -> str:
    """0.0315 -> '31.5 ms'."""
    return f"{value * 1000:.1f} ms"


def count(value: float) -> str:
    """1234.0 -> '1,234'."""
    return f"{value:,.0f}"


def short_count(value: float) -> str:
    """An axis label of at most 5 characters: 950 -> '950', 12500 -> '12.5k', 1e7 -> '10M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least value (1 for none)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= value * (1 - 1e-12))


def top(chart: Chart) -> float:
    """The value at the top of the chart."""
    if chart.high is not None:
        return chart.high
    values = [v for s in chart.series for _, v in s.points] + [r.value for r in chart.references]
    return nice_ceiling(max(values, default=0.0))


def segments(points: Sequence[Point], gap: float = GAP_SECONDS) -> list[list[Point]]:
    """The points split where two neighbours are more than gap seconds apart."""
    result: list[list[Point]] = []
    for point in points:
        if result and point[0] - result[-1][-1][0] <= gap:
            result[-1].append(point)
        else:
            result.append([point])
    return result


class Plot:
    """Maps (time, value) onto the drawing's plot area."""

    def __init__(self, chart: Chart) -> None:
        self.start, self.end = chart.start, chart.end
        self.low, self.high = chart.low, top(chart)

    def x(self, at: float) -> float:
        """Horizontal position of a time, clamped to the window."""
        share = (min(max(at, self.start), self.end) - self.start) / (self.end - self.start)
        return LEFT + share * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        """Vertical position of a value, clamped to the range."""
        share = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
        return TOP + (1 - share) * (HEIGHT - TOP - BOTTOM)

    def xy(self, point: Point) -> str:
        """'x,y' of a point, as SVG's points attribute wants."""
        return f"{self.x(point[0]):.1f},{self.y(point[1]):.1f}"


def render_chart(chart: Chart) -> str:
    """A <figure>: the SVG with a title and a description, and a legend in words."""
    plot = Plot(chart)
    title_id, desc_id = f"{chart.key}-title", f"{chart.key}-desc"
    parts = [
        f'<svg viewBox="0 0 {WIDTH:g} {HEIGHT:g}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" data-chart="{escape(chart.key)}">',
        f'<title id="{title_id}">{escape(chart.title)}</title>',
        f'<desc id="{desc_id}">{escape(describe(chart))}</desc>',
        *frame(plot, chart.axis or chart.fmt),
        *(reference(plot, r, i, chart.fmt) for i, r in enumerate(chart.references)),
        *(line for i, s in enumerate(chart.series) for line in series(plot, s, i)),
    ]
    if not any(s.points for s in chart.series):
        parts.append(
            f'<text class="empty" x="{(LEFT + WIDTH - RIGHT) / 2:.1f}" '
            f'y="{(TOP + HEIGHT - BOTTOM) / 2:.1f}" text-anchor="middle">no data yet</text>'
        )
    parts.append("</svg>")
    return (
        f'<figure id="chart-{escape(chart.key)}"><figcaption>{escape(chart.title)}</figcaption>'
        f"{''.join(parts)}{legend(chart)}</figure>"
    )


def frame(plot: Plot, fmt: Format) -> list[str]:
    """The axes: the range's ends on the left, the hour's start, middle and now below."""
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    middle = (plot.start + plot.end) / 2
    minutes = round((plot.end - plot.start) / 60)
    return [
        f'<rect class="area" x="{LEFT:g}" y="{TOP:g}" width="{right - LEFT:g}" '
        f'height="{bottom - TOP:g}"/>',
        f'<text class="axis" x="{LEFT - 4:g}" y="{TOP + 8:g}" text-anchor="end">'
        f"{escape(fmt(plot.high))}</text>",
        f'<text class="axis" x="{LEFT - 4:g}" y="{bottom:g}" text-anchor="end">'
        f"{escape(fmt(plot.low))}</text>",
        f'<text class="axis" x="{LEFT:g}" y="{HEIGHT - 6:g}">-{minutes} min</text>',
        f'<text class="axis" x="{plot.x(middle):.1f}" y="{HEIGHT - 6:g}" '
        f'text-anchor="middle">-{minutes // 2} min</text>',
        f'<text class="axis" x="{right:g}" y="{HEIGHT - 6:g}" text-anchor="end">now</text>',
    ]


def reference(plot: Plot, line: Reference, index: int, fmt: Format) -> str:
    """A dashed horizontal line across the plot area."""
    y = plot.y(line.value)
    return (
        f'<line class="reference r{index % REFERENCE_STYLES}" '
        f'data-reference="{escape(line.name)}" x1="{LEFT:g}" '
        f'y1="{y:.1f}" x2="{WIDTH - RIGHT:g}" y2="{y:.1f}"><title>'
        f"{escape(line.name)}: {escape(fmt(line.value))}</title></line>"
    )


def series(plot: Plot, line: Series, index: int) -> list[str]:
    """One polyline per run of close points; a dot where a point stands alone, and on the
    latest point (a line of the last few seconds is too short to see)."""
    style = f"s{index % STYLES}"
    name = escape(line.name)
    drawn = []
    runs = [decimate(plot, run) for run in segments(line.points)]
    for run in runs:
        if len(run) == 1:
            drawn.append(dot(plot, run[0], f"point {style}", name))
        else:
            points = " ".join(plot.xy(p) for p in run)
            drawn.append(
                f'<polyline class="line {style}" data-series="{name}" '
                f'data-points="{len(run)}" points="{points}"/>'
            )
    if runs and len(runs[-1]) > 1:
        drawn.append(dot(plot, runs[-1][-1], f"point last {style}", name))
    return drawn


def decimate(plot: Plot, points: Sequence[Point]) -> list[Point]:
    """The lowest and the highest point of each column of the drawing, and the last point, in
    time order: a probe a second is 3,600 points an hour for 266 columns, and a spike of one
    probe must still show."""
    columns: dict[int, list[Point]] = {}
    for point in points:
        columns.setdefault(int(plot.x(point[0]) / COLUMN), []).append(point)
    kept: list[Point] = []
    for column in columns.values():
        low, high = min(column, key=lambda p: p[1]), max(column, key=lambda p: p[1])
        kept += sorted({low, high}) if len(column) > 2 else column
    if points and kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def dot(plot: Plot, point: Point, css: str, name: str) -> str:
    """A small circle on one point."""
    return (
        f'<circle class="{css}" data-series="{name}" '
        f'cx="{plot.x(point[0]):.1f}" cy="{plot.y(point[1]):.1f}" r="2"/>'
    )


def legend(chart: Chart) -> str:
    """Each line's name and latest value in words, so the chart never relies on colour alone."""
    items = [
        f'<li><span class="key s{i % STYLES}" aria-hidden="true"></span>'
        f"{escape(s.name)}: {escape(latest(s, chart.fmt))}</li>"
        for i, s in enumerate(chart.series)
    ]
    items += [
        f'<li><span class="key r{i % REFERENCE_STYLES}" aria-hidden="true"></span>'
        f"{escape(r.name)}: {escape(chart.fmt(r.value))}</li>"
        for i, r in enumerate(chart.references)
    ]
    return f'<ul class="legend">{"".join(items)}</ul>'


def latest(line: Series, fmt: Format) -> str:
    """What the series is now: as it says, else its last value, or that it has none."""
    if line.now is not None:
        return line.now
    return f"now {fmt(line.points[-1][1])}" if line.points else "no data"


def describe(chart: Chart) -> str:
    """One sentence for screen readers: every line's latest value."""
    lines = [f"{s.name} {latest(s, chart.fmt)}" for s in chart.series]
    lines += [f"{r.name} {chart.fmt(r.value)}" for r in chart.references]
    return f"{chart.title}, the last hour: " + "; ".join(lines) + "."
