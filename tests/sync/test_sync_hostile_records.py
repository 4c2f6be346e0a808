"""Hostile records end as described, through the real adapters against the real loopback
simulators (issue 14, item 4): duplicates that disagree are quarantined with both versions and
neither is stored; a page over the record limit fails its school and the others sync; a CTF
addressed to another school is refused and adds nobody to the roll; repeated problems are one
aggregated warning each.

The simulators are served as they are; a response is tampered with on its way out (the app's
``route`` is wrapped), as a misbehaving MIS would answer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from structlog.testing import capture_logs
from sync_support import make_app, mis_table, school_config, serve

from registerwatch.adapters.base import RetryPolicy
from registerwatch.adapters.registry import build_adapter
from registerwatch.config import Settings, parse_config
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import Request, Response, SimulatorServer, VendorApp
from registerwatch.store import Store
from registerwatch.sync import sync_all

AS_OF = date(2025, 10, 1)
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01, max_retry_after=5)
ENV = {
    "OAK_ARBOR_USERNAME": "registerwatch",
    "OAK_ARBOR_PASSWORD": "simulator",
    "OAK_ISAMS_CLIENT_ID": "registerwatch",
    "OAK_ISAMS_CLIENT_SECRET": "simulator",
    "OAK_ISAMS_API_KEY": "simulator-key",
    "OAK_G4S_API_KEY": "simulator-key",
}
CTF_DATA = Path(__file__).resolve().parents[1] / "adapters" / "ctf" / "data"

Tamper = Callable[[Request, Response], Response]


def factory(school: Any, sync: Any, environ: Any) -> Any:
    return build_adapter(school, sync, ENV, retry=FAST_RETRY, sleep=lambda _s: None)


@dataclass
class Served:
    school: GeneratedSchool
    app: VendorApp
    server: SimulatorServer


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    running: list[Served] = []

    def start(
        vendor: str, tamper: Tamper | None = None, school_id: str = "oakfield", seed: int = 3
    ) -> Served:
        school = generate_school(
            seed, 12, school_id=school_id, vendor=vendor, as_of=AS_OF, inject_breaches=False
        )
        app = make_app(vendor, school)
        if tamper is not None:
            route = app.route
            app.route = lambda request: tamper(request, route(request))  # type: ignore[method-assign]
        item = Served(school, app, serve(app))
        running.append(item)
        return item

    yield start
    for item in running:
        item.server.stop()


def settings_for(tmp_path: Path, *served: Served, **sync: Any) -> Settings:
    return parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
            "sync": sync,
            "schools": [
                school_config(s.school, mis_table(s.app.vendor, s.server.url)) for s in served
            ],
        }
    )


def run(settings: Settings, store: Store) -> Any:
    return sync_all(settings, store, as_of=AS_OF, environ=ENV, adapter_factory=factory)


# -- tampering with JSON and XML answers ----------------------------------------------------


def json_list(payload: Any) -> list[Any] | None:
    """The records list of a JSON answer (the answer itself, or its first list-valued key)."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for value in payload.values():
            if isinstance(value, list):
                return value
    return None


def body_json(response: Response) -> Any:
    body = response.body.decode() if isinstance(response.body, bytes) else response.body
    return json.loads(body)


def with_json(response: Response, payload: Any) -> Response:
    response.body = json.dumps(payload, default=str)
    return response


NAME_KEYS = ("legal_first_name", "Forename", "forename", "firstName", "legalFirstName")


def pupil_twin(path_part: str) -> Tamper:
    """The first student is listed twice: the second time with another first name and DOB."""
    done: list[bool] = []

    def tamper(request: Request, response: Response) -> Response:
        if path_part not in request.path or response.status != 200 or done:
            return response
        payload = body_json(response)
        records = json_list(payload)
        if not records:
            return response
        twin = copy.deepcopy(records[0])
        for key in NAME_KEYS:
            if key in twin:
                twin[key] = "Changeling"
        for key in ("date_of_birth", "dob", "DOB", "dateOfBirth"):
            if key in twin:
                twin[key] = "2013-01-01"
        records.insert(1, twin)
        done.append(True)
        return with_json(response, payload)

    return tamper


def g4s_mark_twin(request: Request, response: Response) -> Response:
    """One session of the first marks page is listed twice with different codes."""
    if "student-session-marks/date/2025-09-10" not in request.path or response.status != 200:
        return response
    payload = body_json(response)
    records = [r for r in json_list(payload) or [] if r.get("session_mark_id") is not None]
    first = records[0]
    other = next(r for r in records if r["session_mark_id"] != first["session_mark_id"])
    twin = dict(first, session_mark_id=other["session_mark_id"], session_alias_id=None)
    listed = json_list(payload)
    assert listed is not None
    listed.append(twin)
    listed.append(dict(records[1]))  # and an exact copy of another session
    return with_json(response, payload)


def isams_mark_twin(request: Request, response: Response) -> Response:
    """In the Batch answer, one registration row is repeated with another code and the same
    LastUpdated (nothing says which is current)."""
    if "xml.ashx" not in request.path or response.status != 200:
        return response
    root = etree.fromstring(
        response.body if isinstance(response.body, bytes) else response.body.encode()
    )
    rows = [
        r
        for r in root.iter("RegistrationStatus")
        if r.findtext("Registered") == "1" and r.findtext("Code") not in (None, "", "N")
    ]
    if not rows:
        return response
    twin = copy.deepcopy(rows[0])
    twin.set("Id", "99999999")
    twin.find("Code").text = "N"  # type: ignore[union-attr]
    present = twin.find("PresentCode")
    if present is not None:
        present.text = "0"
    rows[0].addnext(twin)
    response.body = etree.tostring(root)
    return response


# -- duplicates that disagree ---------------------------------------------------------------


def test_go4schools_conflicting_marks_and_pupils_are_quarantined_with_both_versions(
    served, tmp_path
):
    pupil_tamper = pupil_twin("academic-years/2026/students")

    def both(request: Request, response: Response) -> Response:
        if request.path.endswith("/students"):
            return pupil_tamper(request, response)
        return g4s_mark_twin(request, response)

    item = served("go4schools", both)
    settings = settings_for(tmp_path, item)
    store = Store.open(settings.store.url)
    try:
        with capture_logs() as logs:
            (result,) = run(settings, store).schools
        assert result.status == "ok", result.error
        entries = store.quarantined("oakfield")
        conflicts = [e for e in entries if "conflicting-duplicate" in e.reason]
        by_resource: dict[str, list[Any]] = {}
        for entry in conflicts:
            by_resource.setdefault(entry.resource, []).append(entry)
        # Both versions of each, with the raw record as the MIS sent it and the fields named.
        assert sorted(by_resource) == ["marks", "pupils"]
        marks_q, pupils_q = by_resource["marks"], by_resource["pupils"]
        assert [e.record_ref.rsplit("(", 1)[1] for e in marks_q] == [
            "version 1 of 2)",
            "version 2 of 2)",
        ]
        assert len({e.raw for e in marks_q}) == 2 and all(
            "session_mark_id" in e.raw for e in marks_q
        )
        assert "code" in (marks_q[0].field or "")
        assert len(pupils_q) == 2 and all("legal_first_name" in e.raw for e in pupils_q)
        assert {"dob", "legal_forename"} <= set((pupils_q[0].field or "").split(","))
        assert not any("Changeling" in (e.record_ref or "") + e.reason for e in pupils_q)
        # Neither version stored: no mark for that session, no pupil for that id.
        pupil_ids = {p.id for p in store.pupils("oakfield")}
        assert len(pupil_ids) == len(item.school.pupils) - 1
        assert not any(p.legal_forename == "Changeling" for p in store.pupils("oakfield"))
        stored_keys = {(m.pupil_id, m.date, m.session.value) for m in store.marks("oakfield")}
        assert len(stored_keys) == len(item.school.marks) - 1
        # One aggregated warning per kind, not one per record.
        quarantined = [e for e in logs if e["event"] == "sync.records_quarantined"]
        assert {(e["resource"], e["count"]) for e in quarantined} >= {("marks", 2), ("pupils", 2)}
        dropped = [e for e in logs if e["event"] == "sync.duplicates_dropped"]
        assert [(e["resource"], e["count"]) for e in dropped] == [("marks", 1)]
        assert any("versions that disagree" in w for w in result.warnings)
    finally:
        store.close()


def test_isams_conflicting_marks_are_quarantined_and_the_rest_stored(served, tmp_path):
    """iSAMS rows carry LastUpdated: a repeat with another code and the same LastUpdated has
    nothing to order it. (A student listed twice on the REST listing is caught earlier, by the
    paging-consistency policy: the listing is read again.)"""
    item = served("isams", isams_mark_twin)
    settings = settings_for(tmp_path, item)
    store = Store.open(settings.store.url)
    try:
        with capture_logs() as logs:
            (result,) = run(settings, store).schools
        assert result.status == "ok", result.error
        conflicts = [
            e for e in store.quarantined("oakfield") if "conflicting-duplicate" in e.reason
        ]
        assert sorted(e.resource for e in conflicts) == ["marks", "marks"]
        assert all("RegistrationStatus" in (e.record_ref or "") for e in conflicts), [
            (e.record_ref, e.raw[:80]) for e in conflicts
        ]
        assert {"<Code>N</Code>" in e.raw or '"Code": "N"' in e.raw for e in conflicts} == {
            True,
            False,
        }
        assert len(store.pupils("oakfield")) == len(item.school.pupils)
        assert len(store.marks("oakfield")) == len(item.school.marks) - 1
        warned = [e for e in logs if e["event"] == "sync.records_quarantined"]
        assert [(e["resource"], e["count"]) for e in warned] == [("marks", 2)]
    finally:
        store.close()


def test_a_conflict_leaves_the_stored_value_standing_until_the_mis_agrees(served, tmp_path):
    """A clean first night stores the school; the next night the MIS lists a session twice
    with different codes: the stored mark stands, no ledger entry is written, and once the
    MIS agrees with itself again nothing has changed."""
    conflict_on: list[bool] = []

    def tamper(request: Request, response: Response) -> Response:
        return g4s_mark_twin(request, response) if conflict_on else response

    item = served("go4schools", tamper)
    settings = settings_for(tmp_path, item)
    store = Store.open(settings.store.url)
    try:
        (first,) = run(settings, store).schools
        assert first.status == "ok" and first.marks_new == len(item.school.marks)
        before = {(m.pupil_id, m.date, m.session): m.code for m in store.marks("oakfield")}
        conflict_on.append(True)
        (second,) = run(settings, store).schools
        assert second.status == "ok", second.error
        assert (second.marks_changed, second.marks_deleted, second.ledger_entries) == (0, 0, 0)
        after = {(m.pupil_id, m.date, m.session): m.code for m in store.marks("oakfield")}
        assert after == before
        conflict_on.clear()
        (third,) = run(settings, store).schools
        assert (third.marks_changed, third.ledger_entries) == (0, 0)
    finally:
        store.close()


# -- a junk page over the record limit --------------------------------------------------------


def test_a_page_over_the_record_limit_fails_its_school_and_the_other_syncs(served, tmp_path):
    def junk(request: Request, response: Response) -> Response:
        if not request.path.endswith("/students") or response.status != 200:
            return response
        payload = body_json(response)
        listed = json_list(payload)
        assert listed is not None
        listed.extend({"id": 10_000_000 + n} for n in range(10_050))
        return with_json(response, payload)

    bad = served("go4schools", junk, school_id="junkton")
    good = served("go4schools", school_id="goodley", seed=4)
    settings = settings_for(tmp_path, bad, good)
    store = Store.open(settings.store.url)
    try:
        with capture_logs() as logs:
            results = {r.school_id: r for r in run(settings, store).schools}
        assert results["goodley"].status == "ok"
        assert len(store.marks("goodley")) == len(good.school.marks)
        failed = results["junkton"]
        assert failed.status == "failed"
        assert "more than the limit of 10000 per page" in (failed.error or "")
        assert "max_records_per_page" in (failed.error or "")
        assert store.pupils("junkton") == [] and store.marks("junkton") == []
        # Nothing was mapped or quarantined record by record: no per-record warning flood.
        assert len([e for e in logs if e.get("log_level") == "warning"]) < 20
    finally:
        store.close()


# -- a CTF addressed to another school ------------------------------------------------------


def test_a_ctf_for_another_school_is_refused_and_adds_nobody(tmp_path):
    folder = tmp_path / "ctf-in"
    folder.mkdir()
    ours = (CTF_DATA / "ctf25_wenlock.xml").read_text(encoding="utf-8")
    (folder / "wenlock.xml").write_text(ours, encoding="utf-8")
    theirs = (
        ours.replace(
            "<DestSchool>\n      <LEA>893</LEA>\n      <Estab>4001</Estab>",
            "<DestSchool>\n      <LEA>894</LEA>\n      <Estab>2002</Estab>",
        )
        .replace("E893400116001", "A894200216001")
        .replace("<DateTime>2024-09-10T16:30:00", "<DateTime>2024-09-11T16:30:00")
    )
    assert theirs != ours
    (folder / "for-telford.xml").write_text(theirs, encoding="utf-8")
    settings = parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'ctf.db'}"},
            "schools": [
                {
                    "id": "wenlock",
                    "urn": "149002",
                    "laestab": "8934001",
                    "name": "Wenlock Primary School",
                    "la_code": "893",
                    "phase": "primary",
                    "mis": {"vendor": "ctf", "path": str(folder)},
                    "calendar": {
                        "terms": [{"start": date(2024, 9, 2), "end": date(2024, 10, 25)}],
                        "closures": [],
                        "register_times": {},
                    },
                }
            ],
        }
    )
    store = Store.open(settings.store.url)
    try:
        (result,) = sync_all(
            settings, store, as_of=date(2024, 9, 10), environ={}, adapter_factory=factory
        ).schools
        assert result.status == "ok", result.error
        (refused,) = store.quarantined("wenlock", resource="ctf-files")
        assert refused.record_ref == "for-telford.xml"
        for needle in ("for-telford.xml", "'wenlock'", "8942002", "8934001"):
            assert needle in refused.reason
        # Only the file addressed to this school reached the roll.
        assert sorted(p.mis_id for p in store.pupils("wenlock")) == [
            "E893400116001",
            "U893400116002",
        ]
        assert any(
            "ctf-files" in w or "pupils: 1 records quarantined" in w for w in result.warnings
        )
    finally:
        store.close()


def arbor_mark_twin() -> Tamper:
    """The first page of attendance records lists one session twice: another record (its own
    href) with another mark and the same modifiedDatetime. In one listing window only: the
    Arbor adapter lists a long window as several shorter ones, each with a first page."""
    window: list[str | None] = []

    def tamper(request: Request, response: Response) -> Response:
        if not request.path.endswith("/attendance-records") or response.status != 200:
            return response
        if request.arg("page-number", "1") != "1":
            return response
        start = request.arg("filters.startDatetime.from")
        if window and window[0] != start:
            return response
        if twinned(response):
            window[:] = [start]
        return response

    return tamper


def twinned(response: Response) -> bool:
    payload = body_json(response)
    listed = json_list(payload) or []
    first = listed[0] if listed else None
    other = next(
        (r for r in listed if first and r["attendanceMark"] != first["attendanceMark"]), None
    )
    if first is None or other is None:
        return False
    twin = dict(first, attendanceMark=other["attendanceMark"])
    twin["href"] = first["href"].rsplit("/", 1)[0] + "/99999999"
    if "id" in twin:
        twin["id"] = 99999999
    listed.insert(1, twin)
    with_json(response, payload)
    return True


def test_arbor_conflicting_marks_are_quarantined_and_the_rest_stored(served, tmp_path):
    item = served("arbor", arbor_mark_twin())
    settings = settings_for(tmp_path, item)
    store = Store.open(settings.store.url)
    try:
        (result,) = run(settings, store).schools
        assert result.status == "ok", result.error
        conflicts = [
            e for e in store.quarantined("oakfield") if "conflicting-duplicate" in e.reason
        ]
        assert [e.resource for e in conflicts] == ["marks", "marks"]
        assert len({e.raw for e in conflicts}) == 2
        assert all('"attendanceMark"' in e.raw for e in conflicts)
        assert len(store.marks("oakfield")) == len(item.school.marks) - 1
        assert len(store.pupils("oakfield")) == len(item.school.pupils)
    finally:
        store.close()
