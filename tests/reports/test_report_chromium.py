"""The report in a real headless Chromium: it opens from a file with no network, raises no
console error, fetches nothing, and shows the findings and charts the store holds.

Skips only when /usr/bin/chromium is missing (CI installs Debian's chromium package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report_world import Scanned
from support.chromium import CHROMIUM_MARKS

from registerwatch.reports import write_report

pytestmark = CHROMIUM_MARKS


class Watch:
    """What a page did: console messages, uncaught errors, requests and failed requests."""

    def __init__(self, page: Any) -> None:
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: self.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))


def test_report_opens_offline_without_errors(
    browser: Any, scanned: Scanned, tmp_path: Path
) -> None:
    files = write_report(
        scanned.world.store,
        scanned.world.settings,
        tmp_path / "report",
        as_of=scanned.as_of,
        generated_at=scanned.generated_at,
    )
    school_id = scanned.school.school.id
    # offline: any fetch the page tried would fail, and be caught below
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    try:
        page = context.new_page()
        watch = Watch(page)
        page.goto(files.html.as_uri(), wait_until="load")

        assert [m for m in watch.console if m[0] in ("error", "warning")] == []
        assert watch.errors == [] and watch.failed == []
        assert watch.requests == [files.html.as_uri()]  # the page itself, nothing else

        rows = page.locator(f"table#findings-{school_id} tbody tr[data-fingerprint]")
        assert rows.count() == len(scanned.findings)
        assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.rule)")) == sorted(
            f.rule for f in scanned.findings
        )
        assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.fingerprint)")) == {
            f.fingerprint for f in scanned.findings
        }
        # errors first, then warnings (this school has no info findings)
        severities = rows.evaluate_all("rs => rs.map(r => r.dataset.severity)")
        assert severities == sorted(severities, key=["error", "warning", "info"].index)

        charts = page.locator("section.school figure svg.chart")
        assert charts.count() == 4
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150
        assert page.evaluate("document.querySelectorAll('script, img, iframe').length") == 0
        assert "Latest scan run: 30 November 2025, 20:00 GMT" in page.inner_text("header")
        # the page fits the window: nothing runs off to the right
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 50_000  # a page of tables and charts, not a blank one
    finally:
        context.close()


def test_report_reads_on_a_narrow_screen(browser: Any, scanned: Scanned, tmp_path: Path) -> None:
    files = write_report(
        scanned.world.store,
        scanned.world.settings,
        tmp_path / "report",
        as_of=scanned.as_of,
        generated_at=scanned.generated_at,
    )
    context = browser.new_context(viewport={"width": 760, "height": 900}, offline=True)
    try:
        page = context.new_page()
        watch = Watch(page)
        page.goto(files.html.as_uri(), wait_until="load")
        assert [m for m in watch.console if m[0] == "error"] == [] and watch.failed == []
        # charts stack into one column and shrink to fit
        widths = page.locator("figure svg.chart").evaluate_all(
            "els => els.map(e => e.getBoundingClientRect().right)"
        )
        assert len(widths) == 4 and max(widths) <= 760
        # the page does not scroll sideways, and each finding's text gets the full width
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        message = page.locator("table.findings td.finding").first.bounding_box()
        assert message is not None and message["width"] > 600
        page.screenshot(path=str(tmp_path / "report-narrow.png"), full_page=True)
    finally:
        context.close()


def test_every_error_row_shows_a_due_date_or_why_none_applies(
    browser: Any, scanned: Scanned, tmp_path: Path
) -> None:
    import re

    from registerwatch.config import parse_config

    # The generated school with [schools.report] include_names = true, as a config would say.
    named = parse_config(
        {
            "store": {"url": scanned.world.settings.store.url},
            "schools": [{**_school_table(scanned), "report": {"include_names": True}}],
        }
    )
    files = write_report(
        scanned.world.store,
        named,
        tmp_path / "report",
        as_of=scanned.as_of,
        generated_at=scanned.generated_at,
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    try:
        page = context.new_page()
        page.goto(files.html.as_uri(), wait_until="load")
        due = page.locator("tbody.sev-error tr[data-fingerprint] td.due")
        texts = [" ".join(t.split()) for t in due.all_inner_texts()]
        errors = [f for f in scanned.findings if f.severity.value == "error"]
        assert len(texts) == len(errors) > 0
        dated = re.compile(r"^\d{4}-\d{2}-\d{2}( overdue| due today)?$")
        assert [t for t in texts if not dated.match(t) and t != "no deadline: fix when found"] == []
        assert sum(1 for t in texts if dated.match(t)) == sum(1 for f in errors if f.due)
        assert "no deadline: fix when found" in texts  # the generated school has both kinds
        # the names banner is shown, and names sit beside MIS ids
        banner = page.locator("header p.privacy.names")
        assert banner.is_visible() and "This report names pupils" in banner.inner_text()
        pupil_id = next(f.pupil_id for f in scanned.findings if f.pupil_id)
        pupil = next(p for p in scanned.school.pupils if p.id == pupil_id)
        surname = pupil.preferred_surname or pupil.legal_surname
        assert surname and surname in page.inner_text("table.findings")
        # the deadlines chart is drawn and labelled
        chart = page.locator('svg[aria-label="Open findings by days past their due date"]')
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()


def _school_table(scanned: Scanned) -> dict[str, Any]:
    from report_world import generated_school_settings

    return generated_school_settings(scanned.school)
