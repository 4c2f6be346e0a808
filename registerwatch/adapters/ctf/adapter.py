"""The CTF adapter: a file, or a folder of CTF files, read as if it were an MIS.

A school whose MIS has no usable API exports Common Transfer Files (with attendance) into a
folder; this adapter reads every ``*.xml`` file there (any case: CTF names often end ``.XML``).

- Files are read oldest first by their header ``<DateTime>`` (then by name, and files without a
  DateTime first), and a later file wins: the latest export of a pupil is the one kept, and a
  register entry in a later file replaces the same session's entry from an earlier one.
- A CTF carries no register-taking events, no amendment records and no school calendar, so
  ``registers`` and ``amendments`` are empty and ``calendar`` is None: rules that need them
  (REG001-REG003, AMD001/AMD002) cannot be checked for a CTF school, and sync's observed
  amendments (diffs between pulls) are the only change history.
- A file that cannot be read at all (a DTD or entities, not XML, not a CTF) raises
  CtfFileError naming it; bad pupils and marks inside a readable file are quarantined.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import structlog

from registerwatch.adapters.base import Batch, Capabilities, VendorFacts, dedupe_marks
from registerwatch.adapters.ctf.document import CtfDocument
from registerwatch.adapters.ctf.marks import VENDOR_SINGLE_CHARACTER_CODES
from registerwatch.adapters.ctf.parser import CtfFileError, parse_ctf
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register

log = structlog.get_logger("registerwatch.adapters.ctf")

# A file adapter under the same contract: no HTTP client, no paging, every capability off.
FACTS = VendorFacts(
    vendor="ctf",
    auth=("file",),
    paging="none",
    capabilities=Capabilities(
        registers=False,
        amendments=False,  # a CTF has no amendment records: AMD002 is not checkable
        social_worker=False,  # no has-a-social-worker flag: ATT005 is not checkable
        calendar=False,  # no term dates; "##" days are not a reliable calendar
    ),
    code_aliases=VENDOR_SINGLE_CHARACTER_CODES,
    credential_hint="the CTF path",
    concurrency=None,  # local files: only the pool size limits it
)


class CtfAdapter:
    """The Adapter protocol over a CTF file or a folder of them (not recursive)."""

    facts = FACTS
    vendor = FACTS.vendor
    exposes_amendments = bool(FACTS.capabilities.amendments)
    exposes_registers = FACTS.capabilities.registers
    exposes_social_worker = FACTS.capabilities.social_worker

    def __init__(self, *, school_id: str, path: str | Path, laestab: str | None = None) -> None:
        self.school_id = school_id
        self.path = Path(path)
        # Whose registers the attendance marks are (LA + establishment number); by default each
        # file's SourceSchool, i.e. the school that exported it.
        self.laestab = laestab
        self._documents: list[CtfDocument] | None = None

    def files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(
                p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() == ".xml"
            )
        if self.path.is_file():
            return [self.path]
        raise CtfFileError(
            str(self.path),
            f"does not exist — check the [schools.mis] path for school {self.school_id!r}",
        )

    def documents(self) -> list[CtfDocument]:
        """Every file parsed once (until ``close``), oldest first."""
        if self._documents is None:
            documents = [
                parse_ctf(path, school_id=self.school_id, laestab=self.laestab)
                for path in self.files()
            ]
            documents.sort(key=_file_order)
            log.info("ctf.folder_read", school=self.school_id, files=len(documents))
            self._documents = documents
        return self._documents

    def pupils(self) -> Batch[Pupil]:
        batch: Batch[Pupil] = Batch()
        latest: dict[str, Pupil] = {}
        for document in self.documents():
            for pupil in document.pupils.records:
                latest[pupil.id] = pupil  # a later file's record replaces an earlier one
            batch.quarantined.extend(document.pupils.quarantined)
        batch.records = list(latest.values())
        return batch

    def registers(self, start: date, end: date) -> Batch[Register]:
        return Batch()  # a CTF records no register-taking events

    def marks(self, start: date, end: date) -> Batch[Mark]:
        """Marks dated ``start`` to ``end`` inclusive.

        Quarantined marks are returned whatever the range: a bad character still says which
        file, pupil position and offset to look at, and some (a misaligned string) have no
        trustworthy date to filter on.
        """
        batch: Batch[Mark] = Batch()
        in_range: list[Mark] = []
        for document in self.documents():
            in_range.extend(m for m in document.marks.records if start <= m.date <= end)
            batch.quarantined.extend(document.marks.quarantined)
        # No mark has recorded_at, so dedupe_marks keeps the last seen: the latest file's.
        batch.records = dedupe_marks(in_range)
        return batch

    def amendments(self, start: date, end: date) -> Batch[Amendment]:
        return Batch()  # a CTF carries no amendment records

    def calendar(self) -> Calendar | None:
        return None  # a CTF carries no term dates; "##" days are not a reliable calendar

    def close(self) -> None:
        self._documents = None


def _file_order(document: CtfDocument) -> tuple[bool, datetime, str]:
    created = document.header.created
    return (created is not None, created or datetime.min, document.name)
