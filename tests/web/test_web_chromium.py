"""The app in a real headless Chromium against uvicorn on loopback: a data manager signs in,
filters her school's findings, opens one, acknowledges it with a note, sees the note in its
history and `registerwatch findings list` sees it too; then she signs out. The page runs no
script, breaks no CSP rule and fetches nothing from another origin.

Skips only when /usr/bin/chromium is missing (CI installs Debian's chromium package).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from support.chromium import CHROMIUM_MARKS
from web_world import OAK, PASSWORD, LiveServer

from registerwatch.cli import main

pytestmark = CHROMIUM_MARKS


def test_a_data_manager_acknowledges_a_finding_in_the_browser(
    browser: Any, live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(live.url + "/")
        assert page.url == live.url + "/login"  # signed out: sent to sign in
        page.fill("input[name=email]", "manager@oak.example")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live.url + "/")
        assert page.locator("header .email").inner_text() == "manager@oak.example"

        # Schools -> the school's findings, filtered to errors that are open
        page.click(f"tr[data-school={OAK}] a")
        page.wait_for_url(f"**/schools/{OAK}/findings")
        page.select_option("select[name=severity]", "error")
        page.select_option("select[name=status]", "open")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**severity=error**")
        severities = page.locator("table.findings tbody tr td.rule .chip").all_inner_texts()
        assert severities and set(severities) == {"error"}
        dues = [
            datetime.strptime(text.strip(), "%d %b %Y").date() if text.strip() != "—" else date.max
            for text in page.locator("table.findings tbody tr td.due").all_inner_texts()
        ]
        assert dues and dues == sorted(dues)  # by due date, undated last

        # open the first finding and acknowledge it with a note
        page.locator("table.findings tbody tr td.rule a").first.click()
        page.wait_for_url("**/findings/**")
        fingerprint = page.locator("dd.fp").inner_text().strip()
        note = "Spoke to the form tutor; code corrected in the MIS"
        page.fill("textarea[name=note]", note)
        page.click("form[action$='/acknowledge'] button[type=submit]")
        page.wait_for_url(f"**/findings/{fingerprint}")
        history = page.locator("ol.history").inner_text()
        assert "acknowledged" in history and note in history
        assert "manager@oak.example" in history
        assert page.locator("dd.ack-note").inner_text() == note

        # sign out: the app is closed again
        page.click("header button:has-text('Sign out')")
        page.wait_for_url(live.url + "/login")
        page.goto(live.url + f"/findings/{fingerprint}")
        assert page.url == live.url + "/login"
    finally:
        context.close()

    assert console == []
    assert {urlsplit(u).netloc for u in requests} == {urlsplit(live.url).netloc}

    # the command line sees the acknowledgement the browser made
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "findings",
                "list",
                "--status",
                "all",
                "--school",
                OAK,
                "--format",
                "json",
                "--store",
                str(live.store.url.render_as_string(hide_password=False)),
            ]
        )
    assert exited.value.code in (0, None)
    listed = json.loads(capsys.readouterr().out)
    records = listed["findings"] if isinstance(listed, dict) else listed
    mine = [r for r in records if r["fingerprint"] == fingerprint]
    assert len(mine) == 1
    assert mine[0]["acknowledged"]["note"] == note
