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
- A file addressed to another school (its ``DestSchool`` LAESTAB, or URN when it has one, is
  not this school's) is refused: none of its pupils or marks is read, and a quarantine entry
  (resource ``ctf-files``) names the file, the school and both numbers. A misfiled transfer
  must not put another school's pupils on this school's roll; the folder's other files are
  still read. Placeholder destinations (``MMM``/``XXX``: unknown, leaving the sector) and files
  without a ``DestSchool`` are not "another school".
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import structlog

from registerwatch.adapters.base import (
    AdapterBase,
    Batch,
    Capabilities,
    Quarantined,
    VendorFacts,
)
from registerwatch.adapters.ctf.document import CtfDocument
from registerwatch.adapters.ctf.marks import VENDOR_SINGLE_CHARACTER_CODES
from registerwatch.adapters.ctf.parser import CtfFileError, parse_ctf
from registerwatch.schema import Amendment, Calendar, Mark, Pupil, Register

log = structlog.get_logger("registerwatch.adapters.ctf")

# A file adapter under the same contract: no HTTP client, no paging, every capability off.
FACTS = VendorFacts(
    vendor="ctf",
    credentials=(),  # a file: the folder's permissions are the access control
    adapter="registerwatch.adapters.ctf:CtfAdapter",
    transport="file",
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


class CtfAdapter(AdapterBase):
    """The Adapter protocol over a CTF file or a folder of them (not recursive)."""

    facts = FACTS
    exposes_amendments = bool(FACTS.capabilities.amendments)

    def __init__(
        self,
        *,
        school_id: str,
        path: str | Path,
        laestab: str | None = None,
        urn: str | None = None,
    ) -> None:
        self.school_id = school_id
        self.path = Path(path)
        # Whose registers the attendance marks are (LA + establishment number); by default each
        # file's SourceSchool, i.e. the school that exported it. With ``urn`` it also says which
        # files are addressed to this school (see the module docstring).
        self.laestab = laestab
        self.urn = urn
        self._documents: list[CtfDocument] | None = None
        self.refused: list[Quarantined] = []

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
            documents = []
            self.refused = []
            for path in self.files():
                document = parse_ctf(path, school_id=self.school_id, laestab=self.laestab)
                refusal = self.addressed_elsewhere(document)
                if refusal is None:
                    documents.append(document)
                    continue
                log.warning(
                    "ctf.file_refused", school=self.school_id, file=document.name, reason=refusal
                )
                self.refused.append(
                    Quarantined(
                        resource="ctf-files",
                        record_ref=document.name,
                        field="Header/DestSchool",
                        reason=refusal,
                        raw=_header_text(document),
                        school=self.school_id,
                    )
                )
            documents.sort(key=_file_order)
            log.info(
                "ctf.folder_read",
                school=self.school_id,
                files=len(documents),
                refused=len(self.refused),
            )
            self._documents = documents
        return self._documents

    def addressed_elsewhere(self, document: CtfDocument) -> str | None:
        """Why ``document`` is not this school's to read (None: it is)."""
        dest = document.header.dest_school
        if dest is None:
            return None
        mismatch = []
        if self.laestab and not dest.is_placeholder and dest.laestab != self.laestab:
            mismatch.append(f"LAESTAB {dest.laestab} (this school's is {self.laestab})")
        if self.urn and dest.urn and dest.urn != self.urn:
            mismatch.append(f"URN {dest.urn} (this school's is {self.urn})")
        if not mismatch:
            return None
        return (
            f"{document.name} is addressed to another school: its DestSchool has "
            f"{' and '.join(mismatch)}; school {self.school_id!r} refused it and added none of "
            "its pupils or marks — move it to the folder of the school it is addressed to"
        )

    def pupils(self) -> Batch[Pupil]:
        batch: Batch[Pupil] = Batch()
        latest: dict[str, Pupil] = {}
        documents = self.documents()
        batch.quarantined.extend(self.refused)
        for document in documents:
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
        # Files are read oldest first: a session in a later file replaces the same session
        # from an earlier one (the later export is the MIS's later word). Within one file a
        # session given twice is left for sync's duplicate policy (no order to choose by).
        latest: dict[tuple[str, date, str], list[Mark]] = {}
        for document in self.documents():
            in_file: dict[tuple[str, date, str], list[Mark]] = {}
            for mark in document.marks.records:
                if start <= mark.date <= end:
                    key = (mark.pupil_id, mark.date, mark.session.value)
                    in_file.setdefault(key, []).append(mark)
            latest.update(in_file)
            batch.quarantined.extend(document.marks.quarantined)
        batch.records = [mark for versions in latest.values() for mark in versions]
        return batch

    def amendments(self, start: date, end: date) -> Batch[Amendment]:
        return Batch()  # a CTF carries no amendment records

    def calendar(self) -> Calendar | None:
        return None  # a CTF carries no term dates; "##" days are not a reliable calendar

    def close(self) -> None:
        self._documents = None


def _header_text(document: CtfDocument) -> str:
    """The refused file's header (schools, dates, supplier: no pupil data) for the store."""
    header = document.header
    return repr(
        {
            "file": document.name,
            "source_school": header.source_school,
            "dest_school": header.dest_school,
            "created": header.created,
            "supplier": header.supplier_id,
        }
    )


def _file_order(document: CtfDocument) -> tuple[bool, datetime, str]:
    created = document.header.created
    return (created is not None, created or datetime.min, document.name)
