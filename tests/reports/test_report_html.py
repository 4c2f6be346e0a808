"""render_html: a self-contained, escaped, deterministic page whose tables hold the findings."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

from report_world import (
    ACK_NOTE,
    AS_OF,
    BROOK_ORDER,
    GENERATED_AT,
    SCAN_2,
    SCRIPT_MESSAGE,
    Scanned,
    World,
)

from registerwatch.reports import build_report_data, render_html


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of the document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def rows(self, table_id: str) -> list[dict[str, str]]:
        """Attributes of the finding rows (those with a fingerprint) of one table."""
        out, inside = [], False
        for tag, attrs in self.tags:
            if tag == "table":
                inside = attrs.get("id") == table_id
            elif inside and tag == "tr" and "data-fingerprint" in attrs:
                out.append(attrs)
        return out


def small_page(world: World) -> str:
    data = build_report_data(world.store, world.settings, as_of=AS_OF, generated_at=GENERATED_AT)
    return render_html(data)


def test_page_is_self_contained(small: World, scanned: Scanned) -> None:
    scanned_html = render_html(
        build_report_data(
            scanned.world.store,
            scanned.world.settings,
            as_of=scanned.as_of,
            generated_at=scanned.generated_at,
        )
    )
    for html in (small_page(small), scanned_html):
        page = Page(html)
        for tag, attrs in page.tags:
            for name in ("src", "href", "xlink:href", "action", "poster", "data"):
                value = attrs.get(name, "").strip().lower()
                assert not value.startswith(("http:", "https:", "//", "ftp:")), (tag, attrs)
        assert not {"script", "iframe", "object", "embed", "img"} & {t for t, _ in page.tags}
        assert [a["href"] for t, a in page.tags if t == "link"] == ["data:,"]  # no favicon fetch
        # no URL anywhere but the SVG namespace names, which a browser never fetches
        without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)
        assert "http://" not in without_namespaces and "https://" not in without_namespaces
        assert "@import" not in html and "url(http" not in html
        csp = next(
            a["content"]
            for t, a in page.tags
            if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
        )
        assert "default-src 'none'" in csp


def test_text_from_the_store_is_escaped(small: World) -> None:
    html = small_page(small)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#39;8A&#39;)&lt;/script&gt; &amp; &#34;9B&#34;" in html
    assert "<b>19/11</b>" not in html and "&lt;b&gt;19/11&lt;/b&gt;" in html
    # and the reader sees exactly what was written
    text = "".join(Page(html).text)
    assert SCRIPT_MESSAGE in text and ACK_NOTE in text
    # a school name with an ampersand is escaped too
    assert "Fern Primary &amp; Nursery" in html


def test_findings_table_rows_and_attributes(small: World) -> None:
    page = Page(small_page(small))
    rows = page.rows("findings-brook")

    assert [r["data-fingerprint"] for r in rows] == BROOK_ORDER
    assert [r["data-rule"] for r in rows] == [
        "MRK001",
        "LAR004",
        "REG001",
        "MRK001",
        "ATT002",
        "AMD002",
    ]
    assert [r["data-severity"] for r in rows] == ["error"] * 3 + ["warning"] * 2 + ["info"]
    assert [r["data-overdue"] for r in rows] == ["true"] + ["false"] * 5
    assert [r["data-status"] for r in rows] == ["open", "open", "new", "new", "open", "new"]
    assert page.rows("findings-fern") == []  # fern has none: no table, a sentence instead
    assert "No open findings." in "".join(page.text)


def test_rule_summary_table_lists_every_rule_with_its_counts(small: World) -> None:
    page = Page(small_page(small))
    totals = {}
    inside = False
    for tag, attrs in page.tags:
        if tag == "table":
            inside = attrs.get("id") == "rules-brook"
        elif inside and tag == "tr" and "data-rule" in attrs:
            totals[attrs["data-rule"]] = int(attrs["data-total"])
    assert len(totals) == 30
    assert {k: v for k, v in totals.items() if v} == {
        "MRK001": 2,
        "LAR004": 1,
        "ATT002": 1,
        "REG001": 1,
        "AMD002": 1,
    }


def test_charts_are_inline_svg_with_unique_ids(small: World) -> None:
    html = small_page(small)
    page = Page(html)
    svgs = [a for t, a in page.tags if t == "svg"]
    # brook: attendance, absence, deadlines, N ages; fern: attendance, absence, N ages
    assert [a["aria-label"] for a in svgs] == [
        "Attendance rate by school week",
        "Authorised and unauthorised absence by school week",
        "Open findings by days past their due date",
        "Sessions still coded N by age in school days",
        "Attendance rate by school week",
        "Authorised and unauthorised absence by school week",
        "Sessions still coded N by age in school days",
    ]
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html and "<metadata>" not in html
    ids = Counter(a["id"] for _, a in page.tags if "id" in a)
    assert [k for k, n in ids.items() if n > 1] == []
    # every in-page reference (markers, clip paths) points at an element of the page
    refs = set(re.findall(r'(?:href="|url\()#([\w-]+)', html))
    assert refs and refs <= set(ids)


def test_same_input_gives_the_same_bytes(small: World) -> None:
    first = small_page(small)
    assert first == small_page(small)
    # the page says which day it is about and the generated_at it was given, not "now"
    assert "Wednesday 19 November 2025" in first
    assert "19 November 2025, 06:30 GMT" in first


def test_header_says_how_fresh_the_findings_are(small: World) -> None:
    assert "No scan run is recorded in the store." in "".join(Page(small_page(small)).text)
    run = small.store.start_run("scan", at=SCAN_2)
    small.store.finish_run(run, "failed", {}, at=SCAN_2)
    text = " ".join("".join(Page(small_page(small)).text).split())
    assert (
        "Latest scan run: 18 November 2025, 19:00 GMT · failed: some findings may be as "
        "an earlier scan left them"
    ) in text


def test_no_pupil_names_upns_or_dates_of_birth(scanned: Scanned) -> None:
    html = render_html(
        build_report_data(
            scanned.world.store,
            scanned.world.settings,
            as_of=scanned.as_of,
            generated_at=scanned.generated_at,
        )
    )
    flagged = {f.pupil_id for f in scanned.findings if f.pupil_id}
    pupils = [p for p in scanned.school.pupils if p.id in flagged]
    assert len(pupils) > 10
    for p in pupils:
        assert f">{p.mis_id}<" in html  # shown by MIS id
        for personal in (f"{p.legal_forename} {p.legal_surname}", p.upn, p.former_upn):
            if personal:
                assert personal not in html, (p.id, personal)
        assert p.dob is None or p.dob.isoformat() not in html
