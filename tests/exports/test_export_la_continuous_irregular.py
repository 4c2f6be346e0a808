"""la-continuous-absence carries LAR002's irregular-attendance records, counting only their
unauthorised sessions, and the cause the school entered (legal review §3)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from lxml import etree
from test_export_la_fixtures import AS_OF, SCHOOL_ID, load, request_for, scan

from registerwatch.exports.registry import builder
from registerwatch.scan.findings import record_notification
from registerwatch.schema import Mark, Session
from registerwatch.store import Store

RUBY = f"{SCHOOL_ID}:1009"
# O on both sessions of Mondays, Tuesdays, Thursdays and Fridays, present on Wednesdays: never
# 10 school days in a row, 20 unauthorised sessions in November's return period
TRUANT_DAYS = [date(2025, 11, d) for d in (3, 4, 6, 7, 10, 11, 14, 17, 18, 20)]


def test_irregular_attendance_is_in_the_return_with_the_school_cause(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        load(store)
        store.upsert_marks(
            [
                Mark(pupil_id=RUBY, date=day, session=session, code="O", vendor_code="O")
                for day in TRUANT_DAYS
                for session in Session
            ],
            SCHOOL_ID,
            at=datetime(2025, 11, 20, 19, 0, tzinfo=UTC),
        )
        found = [f for f in scan(store, SCHOOL_ID, AS_OF) if f.pupil_id == RUBY]
        assert [(f.rule, f.evidence.get("kind")) for f in found] == [("LAR002", "irregular")]
        record_notification(
            store,
            school_id=SCHOOL_ID,
            kind="absence_cause",
            pupil_mis_id="1009",
            episode_start=date(2025, 11, 3),
            channel="entered by the school",
            reference="Caring for a younger sibling",
        )

        (rendered,) = builder("la-continuous-absence")(request_for(store))  # type: ignore[arg-type]
        root = etree.fromstring(rendered.xml)
        (ruby,) = [
            r for r in root.iterfind("Records/Record") if r.findtext("RecordKey/PupilRef") == RUBY
        ]
        episode = ruby.find("Episode")
        assert episode is not None
        assert episode.findtext("RecordType") == "irregular"
        assert (episode.find("Start").text, episode.find("End").text) == (  # type: ignore[union-attr]
            "2025-11-03",
            "2025-11-20",
        )
        # only the unauthorised sessions: the Wednesdays' present marks are not in the record
        assert [(c.get("code"), c.text) for c in episode.iterfind("Sessions/Count")] == [
            ("O", "20")
        ]
        assert episode.findtext("SchoolCause") == "Caring for a younger sibling"
        assert episode.find("SchoolDays").get("status") == "not-held"  # type: ignore[union-attr]
        others = [r.findtext("Episode/RecordType") for r in root.iterfind("Records/Record")]
        assert others.count("continuous") == 2
