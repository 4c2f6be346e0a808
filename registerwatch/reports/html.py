"""The report as one self-contained HTML page (Jinja2, autoescaped; charts as inline SVG).

The page must open from a file on a machine with no network (a data manager's laptop, an
attachment), and it holds pupil data, so it loads nothing: CSS is inline, charts are inline SVG,
there is no script, and a Content-Security-Policy forbids every fetch except ``data:`` images,
so even a link slipped into a message could not make the browser call out.

Everything a rule or the MIS wrote (messages, notes, names) is escaped by Jinja's autoescape;
only the SVG text made by ``charts`` is marked safe.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from registerwatch import __version__
from registerwatch.calendar import LONDON
from registerwatch.reports import charts
from registerwatch.reports.model import (
    DAY_NAMES,
    MONTH_NAMES,
    SEVERITY_ORDER,
    ReportData,
    SchoolReport,
)
from registerwatch.schema import Severity

TEMPLATE = "report.html.j2"

SEVERITY_HEADINGS = {
    Severity.ERROR: "Errors: the law is already broken",
    Severity.WARNING: "Warnings: a deadline is near or a threshold is reached",
    Severity.INFO: "For your attention",
}


def _long_date(day: date) -> str:
    """'Tuesday 2 December 2025'."""
    return f"{DAY_NAMES[day.weekday()]} {day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def _when(instant: datetime | None) -> str:
    """An instant in UK time, as staff read it: '2 December 2025, 07:00 GMT'."""
    if instant is None:
        return ""
    local = instant.astimezone(LONDON)
    month = MONTH_NAMES[local.month - 1]
    return f"{local.day} {month} {local.year}, {local:%H:%M} {local.tzname()}"


def _short_date(instant: datetime | None) -> str:
    return "" if instant is None else instant.astimezone(LONDON).date().isoformat()


def _pct(value: float) -> str:
    return f"{value:.1f}%"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("registerwatch.reports", "templates"),
        # On for every template, whatever its name: the page shows text from the MIS and rules.
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(long_date=_long_date, when=_when, short_date=_short_date, pct=_pct)
    return env


def _school_charts(school: SchoolReport) -> dict[str, Markup | None]:
    # Chart ids are unique per school (ids are slugs), so SVG element ids never repeat.
    chart_id = school.school_id

    def safe(svg: str | None) -> Markup | None:
        return None if svg is None else Markup(svg)

    return {
        "attendance": safe(charts.weekly_attendance_svg(school.weeks, chart_id)),
        "absence": safe(charts.weekly_absence_svg(school.weeks, chart_id)),
        "deadlines": safe(charts.deadlines_svg(school.due_buckets, chart_id)),
        "n_ages": safe(charts.n_ages_svg(school.n_ages, chart_id)),
    }


def render_html(data: ReportData) -> str:
    """The report page. Deterministic: the same data gives the same text."""
    template = _environment().get_template(TEMPLATE)
    return template.render(
        data=data,
        schools=[(school, _school_charts(school)) for school in data.schools],
        severities=SEVERITY_ORDER,
        severity_headings=SEVERITY_HEADINGS,
        Severity=Severity,
        version=__version__,
    )
