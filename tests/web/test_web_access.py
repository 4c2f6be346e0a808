"""Access control, route by route: every page and action for each role (viewer, data manager
and admin of oakfield's trust) and for a data manager of another school (birch), with the
expected status asserted for each; a record of a school the user may not see answers exactly
the page an id that does not exist answers, so nothing leaks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.routing import Route
from web_client import WebClient, signed_in_client
from web_world import BIRCH, OAK, PASSWORD, LiveServer

from registerwatch.store import Store
from registerwatch.web.pages import findings as findings_page

ANON, VIEWER, MANAGER, ADMIN, OTHER = "anon", "viewer", "manager", "admin", "other"
EMAILS = {
    VIEWER: "viewer@oak.example",
    MANAGER: "manager@oak.example",
    ADMIN: "admin@trust.example",
    OTHER: "manager@birch.example",
}
WHO = (ANON, VIEWER, MANAGER, ADMIN, OTHER)


@dataclass(frozen=True)
class Targets:
    """One school's records the routes are asked for."""

    school: str
    fingerprint: str
    pupil_id: str
    pupil_mis_id: str
    item_id: int


def _targets(store: Store, school_id: str) -> Targets:
    found = store.load_findings(school_id, status="open").values()
    with_pupil = next(s.finding for s in found if s.finding.pupil_id is not None)
    pupil = next(p for p in store.pupils(school_id) if p.id == with_pupil.pupil_id)
    item = store.outbox_items(school_id=school_id)[0]
    return Targets(school_id, with_pupil.fingerprint or "", pupil.id, pupil.mis_id, item.id)


@pytest.fixture(scope="module")
def clients(live: LiveServer) -> Iterator[dict[str, WebClient]]:
    made = {ANON: WebClient(live.url)}
    made |= {who: signed_in_client(live.url, email, PASSWORD) for who, email in EMAILS.items()}
    yield made
    for client in made.values():
        client.close()


# (method, path template, form, expected status per actor). {school}, {fp}, {pupil}, {item}
# are oakfield's records; every signed-out request is sent to the sign-in page (303).
OAK_ROUTES: list[tuple[str, str, dict[str, str], dict[str, int]]] = [
    ("GET", "/", {}, {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 200}),
    ("GET", "/account", {}, {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 200}),
    ("GET", "/runs", {}, {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 200}),
    ("GET", "/returns", {}, {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 200}),
    (
        "GET",
        "/schools/{school}/findings",
        {},
        {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 404},
    ),
    ("GET", "/findings/{fp}", {}, {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 404}),
    ("GET", "/pupils/{pupil}", {}, {ANON: 303, VIEWER: 200, MANAGER: 200, ADMIN: 200, OTHER: 404}),
    (
        "GET",
        "/returns/{item}/artefact",
        {},
        {ANON: 303, VIEWER: 403, MANAGER: 200, ADMIN: 200, OTHER: 404},
    ),
    (
        "POST",
        "/findings/{fp}/acknowledge",
        {"note": "checked with the form tutor"},
        {ANON: 303, VIEWER: 403, MANAGER: 303, ADMIN: 303, OTHER: 404},
    ),
    (
        "POST",
        "/findings/{fp}/returns",
        {
            "kind": "sickness",
            "episode_start": "2025-11-03",
            "made_at": "2025-12-02T09:00",
            "channel": "LA portal",
        },
        {ANON: 303, VIEWER: 403, MANAGER: 303, ADMIN: 303, OTHER: 404},
    ),
    ("GET", "/admin/users", {}, {ANON: 303, VIEWER: 403, MANAGER: 403, ADMIN: 200, OTHER: 403}),
    (
        "POST",
        "/admin/users",
        {
            "email": "added@oak.example",
            "role": "viewer",
            "school": OAK,
            "password": "the new viewer's passphrase",
            "password_again": "the new viewer's passphrase",
        },
        {ANON: 303, VIEWER: 403, MANAGER: 403, ADMIN: 303, OTHER: 403},
    ),
    (
        "POST",
        "/admin/users/{viewer_id}/disabled",
        {"disabled": "0"},
        {ANON: 303, VIEWER: 403, MANAGER: 403, ADMIN: 303, OTHER: 403},
    ),
    (
        "POST",
        "/account/morning-email",
        {"wanted": "0"},
        {ANON: 303, VIEWER: 303, MANAGER: 303, ADMIN: 303, OTHER: 303},
    ),
    # last: the admin's retry moves the failed item back to the queue
    (
        "POST",
        "/returns/{item}/retry",
        {},
        {ANON: 303, VIEWER: 403, MANAGER: 403, ADMIN: 303, OTHER: 403},
    ),
]
# Not in the matrix: /login (GET and POST) and /logout, tested in test_web_security.py; /static.
UNWALKED = {"/login", "/logout", "/static"}


def _path(template: str, t: Targets, viewer_id: int) -> str:
    return template.format(
        school=t.school, fp=t.fingerprint, pupil=t.pupil_id, item=t.item_id, viewer_id=viewer_id
    )


def test_every_route_is_walked(live: LiveServer) -> None:
    """A route (a path and method) added without a row in the matrix fails here."""
    declared = {
        (method, route.path)
        for route in live.app.routes
        if isinstance(route, Route) and route.path not in UNWALKED
        for method in (route.methods or set()) - {"HEAD"}
    }
    walked = {
        (
            method,
            template.replace("{school}", "{school_id}")
            .replace("{fp}", "{fingerprint}")
            .replace("{pupil}", "{pupil_id}")
            .replace("{item}", "{item_id:int}")
            .replace("{viewer_id}", "{user_id:int}"),
        )
        for method, template, _f, _e in OAK_ROUTES
    }
    assert declared == walked
    assert {getattr(r, "path", "") for r in live.app.routes} - UNWALKED == {p for _m, p in walked}


def test_each_role_gets_the_expected_status_on_every_route(
    live: LiveServer, clients: dict[str, WebClient]
) -> None:
    oak = _targets(live.store, OAK)
    viewer = live.store.user(EMAILS[VIEWER])
    assert viewer is not None
    outcomes = {}
    for method, template, form, _expected in OAK_ROUTES:
        path = _path(template, oak, viewer.id)
        for who in WHO:
            client = clients[who]
            response = client.get(path) if method == "GET" else client.post(path, form)
            outcomes[(method, template, who)] = response.status_code
            if response.status_code == 303 and who == ANON:
                assert response.headers["location"] == "/login"
    expected = {(m, t, who): e[who] for m, t, _f, e in OAK_ROUTES for who in WHO}
    assert outcomes == expected


def test_another_schools_records_answer_exactly_like_missing_ones(
    live: LiveServer, clients: dict[str, WebClient]
) -> None:
    """oakfield's data manager asks for birch's finding, pupil, school and outbox item: each is
    the same 404 page as a made-up id, and names nothing of birch's."""
    birch = _targets(live.store, BIRCH)
    client = clients[MANAGER]
    pairs = [
        (f"/findings/{birch.fingerprint}", "/findings/" + "0" * 64),
        (f"/pupils/{birch.pupil_id}", f"/pupils/{BIRCH}:no-such-pupil"),
        (f"/schools/{BIRCH}/findings", "/schools/no-such-school/findings"),
        (f"/returns/{birch.item_id}/artefact", "/returns/999999/artefact"),
    ]
    for guessed, missing in pairs:
        got, none = client.get(guessed), client.get(missing)
        assert (got.status_code, none.status_code) == (404, 404), guessed
        assert got.text == none.text
        for secret in (birch.fingerprint, birch.pupil_mis_id, "Birch"):
            assert secret not in got.text
    for action in (
        f"/findings/{birch.fingerprint}/acknowledge",
        f"/findings/{birch.fingerprint}/returns",
    ):
        assert client.post(action, {"note": "x", "kind": "sickness"}).status_code == 404
    # nothing was written to birch's finding
    stored = live.store.load_findings(BIRCH)[birch.fingerprint]
    assert stored.acknowledged_at is None


def test_lists_show_only_the_users_schools(live: LiveServer, clients: dict[str, WebClient]) -> None:
    oak, birch = _targets(live.store, OAK), _targets(live.store, BIRCH)
    home = clients[MANAGER].get("/").text
    assert f'data-school="{OAK}"' in home and f'data-school="{BIRCH}"' not in home
    returns = clients[MANAGER].get("/returns").text
    assert f'data-item="{oak.item_id}"' in returns and f'data-item="{birch.item_id}"' not in returns
    admin_home = clients[ADMIN].get("/").text
    assert f'data-school="{OAK}"' in admin_home and f'data-school="{BIRCH}"' in admin_home
    # a viewer sees no download link and no retry button
    viewer_returns = clients[VIEWER].get("/returns").text
    assert "/artefact" not in viewer_returns and "/retry" not in viewer_returns


def test_actions_are_audited_with_who_did_them(
    live: LiveServer, clients: dict[str, WebClient]
) -> None:
    oak = _targets(live.store, OAK)
    clients[MANAGER].post(f"/findings/{oak.fingerprint}/acknowledge", {"note": "audit me"})
    clients[MANAGER].get(f"/pupils/{oak.pupil_id}")
    clients[MANAGER].get(f"/returns/{oak.item_id}/artefact")
    entries = live.store.audit_entries(actor=EMAILS[MANAGER])
    actions = {(e.action, e.subject) for e in entries}
    assert ("acknowledged", oak.fingerprint) in actions
    assert ("pupil_viewed", oak.pupil_id) in actions
    assert ("artefact_downloaded", f"outbox:{oak.item_id}") in actions
    page = clients[VIEWER].get(f"/findings/{oak.fingerprint}").text
    assert "acknowledged" in page and EMAILS[MANAGER] in page and "audit me" in page


def test_findings_filters_narrow_the_list(live: LiveServer, clients: dict[str, WebClient]) -> None:
    client = clients[VIEWER]
    rows = re.compile(r'<tr class="sev-(\w+)">')
    every = rows.findall(client.get(f"/schools/{OAK}/findings?status=all").text)
    stored = live.store.load_findings(OAK)
    assert len(every) == len(stored)
    errors = rows.findall(client.get(f"/schools/{OAK}/findings?status=all&severity=error").text)
    assert errors == ["error"] * sum(
        1 for s in stored.values() if str(s.finding.severity) == "error"
    )
    resolved = client.get(f"/schools/{OAK}/findings?status=resolved").text
    assert (
        len(rows.findall(resolved))
        == resolved.count("chip st-resolved")
        == sum(1 for s in stored.values() if s.status == "resolved" and s.resolution != "late")
    )
    pupils = {p.id: p for p in live.store.pupils(OAK)}
    group = next(
        pupils[s.finding.pupil_id].reg_group
        for s in stored.values()
        if s.finding.pupil_id in pupils and pupils[s.finding.pupil_id].reg_group
    )
    in_group = {
        fp
        for fp, s in stored.items()
        if s.finding.pupil_id in pupils and pupils[s.finding.pupil_id].reg_group == group
    }
    page = client.get(f"/schools/{OAK}/findings?status=all&group={group}").text
    assert set(re.findall(r"/findings/([0-9a-f]{64})", page)) == in_group


def test_findings_pages_reach_every_finding(
    live: LiveServer, clients: dict[str, WebClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long list is paged; following "Next page" from the first page reaches every finding
    of the filter once, in the same order as one long page."""
    monkeypatch.setattr(findings_page, "PAGE_SIZE", 5)
    client = clients[VIEWER]
    finding_link = re.compile(r'href="/findings/([0-9a-f]{64})"')
    next_link = re.compile(r'<a href="(\?[^"]+)" rel="next">')
    stored = live.store.load_findings(OAK)
    assert len(stored) > 10
    seen: list[str] = []
    path = f"/schools/{OAK}/findings?status=all"
    pages = 0
    while True:
        page = client.get(path).text
        pages += 1
        seen += finding_link.findall(page)
        found = next_link.search(page)
        if found is None:
            break
        assert "status=all" in found.group(1)  # the filter is kept
        path = f"/schools/{OAK}/findings" + found.group(1).replace("&amp;", "&")
    assert pages == -(-len(stored) // 5)
    assert sorted(seen) == sorted(stored) and len(seen) == len(set(seen))
    monkeypatch.setattr(findings_page, "PAGE_SIZE", 1000)
    whole = client.get(f"/schools/{OAK}/findings?status=all").text
    assert finding_link.findall(whole) == seen
    assert client.get(f"/schools/{OAK}/findings?page=x").status_code == 400
    assert client.get(f"/schools/{OAK}/findings?status=all&page=999").status_code == 200
