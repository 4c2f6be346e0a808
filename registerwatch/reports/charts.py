"""Charts drawn by matplotlib as inline SVG: deterministic bytes, no fonts or files to fetch.

The report is one HTML file that must open with no network, so every chart is SVG text placed
in the page. To make the same data give the same bytes:

- figures are made with ``matplotlib.figure.Figure`` and the Agg-family SVG canvas, never pyplot,
  so no global backend or figure state is touched (the CLI, tests and a scheduler can all draw);
- ``svg.hashsalt`` is fixed (matplotlib otherwise salts its element ids with a random UUID) and
  differs per chart, so ids never collide when several charts share one page;
- ``svg.fonttype = 'none'`` keeps labels as text (the browser's sans-serif draws them) instead of
  embedding glyph outlines whose ids would also collide between charts;
- the creation date and creator are left out, and the XML prolog, DOCTYPE (which points at a
  w3.org DTD) and ``<metadata>`` block are stripped: none of them belongs inside HTML.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from registerwatch.reports.model import (
    MONTH_ABBREVIATIONS,
    SEVERITY_ORDER,
    DueBucket,
    NAgeBucket,
    WeekRate,
)
from registerwatch.schema import Severity

if TYPE_CHECKING:  # matplotlib itself is imported only when a chart is drawn
    from matplotlib.typing import RcKeyType

SEVERITY_COLOURS = {
    Severity.ERROR: "#b42318",
    Severity.WARNING: "#b54708",
    Severity.INFO: "#175cd3",
}
ATTENDANCE_COLOUR = "#1f5f8b"
AUTHORISED_COLOUR = "#8fb3d9"
UNAUTHORISED_COLOUR = "#c4320a"
# N ages from fresh (grey) to long overdue (dark red), one colour per bucket.
N_AGE_COLOURS = ("#98a2b3", "#f79009", "#d92d20", "#7a271a")

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # matplotlib's own font: layout needs no system font
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#667085",
    "axes.labelcolor": "#344054",
    "xtick.color": "#475467",
    "ytick.color": "#475467",
    "axes.grid": True,
    "grid.color": "#eaecf0",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
}

_PROLOG = re.compile(r"\A\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
# matplotlib names its groups figure_1, axes_1, text_1 ... in every chart: on a page with several
# charts those ids would repeat. Nothing refers to a group's id (references go to the salted ids
# of markers and clip paths), so they are dropped.
_GROUP_ID = re.compile(r'<g id="[^"]*"')


def _svg(figure: Any, chart_id: str, label: str) -> str:
    """The figure as an ``<svg>`` element for inline use, labelled for screen readers."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(figure)
    buffer = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"registerwatch-{chart_id}"}):
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None},
            bbox_inches="tight",
            pad_inches=0.05,
        )
    text = _GROUP_ID.sub("<g", _METADATA.sub("", _PROLOG.sub("", buffer.getvalue())))
    attribute = escape(label, quote=True)
    return text.replace(
        "<svg ", f'<svg class="chart" role="img" aria-label="{attribute}" ', 1
    ).strip()


# Every chart is drawn 4.6 inches wide: the page scales each to its column, so equal widths
# keep the lettering the same size from chart to chart.
CHART_WIDTH = 4.6


def _figure(width: float, height: float) -> Any:
    import matplotlib
    from matplotlib.figure import Figure

    # The rc settings are read when artists are created as well as when saved.
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _week_labels(weeks: Sequence[WeekRate]) -> list[str]:
    return [f"{w.week_start.day} {MONTH_ABBREVIATIONS[w.week_start.month - 1]}" for w in weeks]


def weekly_attendance_svg(weeks: Sequence[WeekRate], chart_id: str) -> str | None:
    """Attendance rate per school week (a line); None when no week has a possible session."""
    import matplotlib

    if not any(w.statistics.possible for w in weeks):
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(CHART_WIDTH, 2.5)
        ax = fig.add_subplot()
        xs = list(range(len(weeks)))
        rates = [w.attendance_rate if w.statistics.possible else math.nan for w in weeks]
        ax.plot(xs, rates, color=ATTENDANCE_COLOUR, linewidth=1.8, marker="o", markersize=4)
        # A week still in progress is drawn hollow: its rate covers only the days so far.
        partial = [i for i, w in enumerate(weeks) if w.partial and w.statistics.possible]
        if partial:
            ax.plot(
                partial,
                [rates[i] for i in partial],
                linestyle="none",
                marker="o",
                markersize=6,
                markerfacecolor="white",
                markeredgecolor=ATTENDANCE_COLOUR,
            )
        low = min(r for r in rates if not math.isnan(r))
        ax.set_ylim(max(0.0, math.floor(min(low, 90.0) / 5) * 5 - 2), 100.5)
        ax.set_ylabel("attendance %")
        ax.set_xticks(xs, _week_labels(weeks), rotation=45, ha="right")
        ax.set_xlabel("week commencing")
        ax.grid(axis="x", visible=False)
    return _svg(fig, f"{chart_id}-attendance", "Attendance rate by school week")


def weekly_absence_svg(weeks: Sequence[WeekRate], chart_id: str) -> str | None:
    """Authorised and unauthorised absence rates per school week (stacked bars)."""
    import matplotlib

    if not any(w.statistics.possible for w in weeks):
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(CHART_WIDTH, 2.5)
        ax = fig.add_subplot()
        xs = list(range(len(weeks)))
        authorised = [w.authorised_absence_rate for w in weeks]
        unauthorised = [w.unauthorised_absence_rate for w in weeks]
        ax.bar(xs, authorised, color=AUTHORISED_COLOUR, label="authorised", width=0.7)
        ax.bar(
            xs,
            unauthorised,
            bottom=authorised,
            color=UNAUTHORISED_COLOUR,
            label="unauthorised",
            width=0.7,
        )
        top = max((a + u for a, u in zip(authorised, unauthorised, strict=True)), default=0.0)
        ax.set_ylim(0, max(5.0, math.ceil(top * 1.25)))
        ax.set_ylabel("absence %")
        ax.set_xticks(xs, _week_labels(weeks), rotation=45, ha="right")
        ax.set_xlabel("week commencing")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", frameon=False, ncols=2, fontsize=8)
    return _svg(fig, f"{chart_id}-absence", "Authorised and unauthorised absence by school week")


def deadlines_svg(buckets: Sequence[DueBucket], chart_id: str) -> str | None:
    """Open findings by days past their due date, and those due in the week to come, stacked by
    severity (horizontal bars, the most overdue at the bottom); None when none has a due date
    within the chart's range."""
    import matplotlib

    if not any(b.total for b in buckets):
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(CHART_WIDTH, 0.8 + 0.3 * len(buckets))
        ax = fig.add_subplot()
        # barh draws bottom-up: the week to come on top, reading down to the longest overdue
        shown = list(reversed(buckets))
        ys = list(range(len(shown)))
        left = [0] * len(shown)
        for severity in SEVERITY_ORDER:
            counts = [b.count(severity) for b in shown]
            if any(counts):
                ax.barh(
                    ys,
                    counts,
                    left=left,
                    color=SEVERITY_COLOURS[severity],
                    label=severity.value,
                    height=0.7,
                )
                left = [a + b for a, b in zip(left, counts, strict=True)]
        for y, total in zip(ys, left, strict=True):
            ax.text(total, y, f" {total}", va="center", fontsize=8, color="#344054")
        ax.set_yticks(ys, [b.label for b in shown], fontsize=8)
        ax.set_xlim(0, max(left) * 1.15 + 1)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("open findings")
        ax.grid(axis="y", visible=False)
        # Above the bars, so it never covers the longest one.
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), frameon=False, fontsize=8, ncols=3)
    return _svg(fig, f"{chart_id}-deadlines", "Open findings by days past their due date")


def n_ages_svg(buckets: Sequence[NAgeBucket], chart_id: str) -> str | None:
    """Sessions still coded N by age in school days; None when there are none."""
    import matplotlib

    if not any(b.sessions for b in buckets):
        return None
    with matplotlib.rc_context(_RC):
        fig = _figure(CHART_WIDTH, 2.5)
        ax = fig.add_subplot()
        xs = list(range(len(buckets)))
        sessions = [b.sessions for b in buckets]
        ax.bar(xs, sessions, color=N_AGE_COLOURS[: len(buckets)], width=0.65)
        for x, n in zip(xs, sessions, strict=True):
            ax.text(x, n, str(n), ha="center", va="bottom", fontsize=8, color="#344054")
        ax.set_xticks(xs, [b.label for b in buckets])
        ax.set_xlabel("school days since the session")
        ax.set_ylabel("sessions coded N")
        ax.set_ylim(0, max(sessions) * 1.2 + 1)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="x", visible=False)
    return _svg(fig, f"{chart_id}-n-ages", "Sessions still coded N by age in school days")
