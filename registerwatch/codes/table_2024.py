"""The 2024 table: SI 2024/208 reg 10 and WTISA (August 2024) chapter 6, valid from 19 August
2024 (evidence per row: see the package docstring)."""

from __future__ import annotations

from registerwatch.codes.types import AttendanceCode, Category, Evidence, _row

_C = Category
_V, _S, _I = Evidence.VERIFIED, Evidence.SECONDARY, Evidence.INFERRED

CODES_2024: tuple[AttendanceCode, ...] = (
    # Present (reg 10(2), Table 1)
    _row("/", "Present (AM)", _C.PRESENT, possible=True, attendance=True, evidence=_V),
    _row("\\", "Present (PM)", _C.PRESENT, possible=True, attendance=True, evidence=_V),
    _row(
        "L",
        "Late, arrived before the register closed",
        _C.PRESENT,
        possible=True,
        attendance=True,
        evidence=_V,
    ),
    # Attending a place other than the school (reg 10(3), Table 2): approved educational activity
    _row(
        "K",
        "Attending education provision arranged by the local authority",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        evidence=_V,
    ),
    _row(
        "V",
        "Attending an educational visit or trip",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
        evidence=_V,
    ),
    _row(
        "P",
        "Participating in a supervised sporting activity",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
    ),
    _row(
        "W",
        "Attending work experience",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
    ),
    _row(
        "B",
        "Attending any other approved educational activity",
        _C.APPROVED_EDUCATIONAL_ACTIVITY,
        possible=True,
        attendance=True,
    ),
    # INFERRED (not possible): DfE data has no column for D.
    _row(
        "D",
        "Dual registered: attending another school at which the pupil is registered",
        _C.DUAL_REGISTRATION,
        possible=False,
        evidence=_I,
    ),
    # Leave of absence
    _row(
        "C1",
        "Leave of absence: regulated performance or regulated employment abroad",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row(
        "M",
        "Leave of absence: medical or dental appointment",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row(
        "J1",
        "Leave of absence: interview for employment or admission to another institution",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row("S", "Leave of absence: study leave", _C.LEAVE_OF_ABSENCE, possible=True, authorised=True),
    # INFERRED (not possible): DfE data has no column for X.
    _row(
        "X",
        "Non-compulsory school age pupil not required to attend",
        _C.LEAVE_OF_ABSENCE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "C2",
        "Leave of absence: temporary reduced (part-time) timetable",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    _row(
        "C",
        "Leave of absence: exceptional circumstances",
        _C.LEAVE_OF_ABSENCE,
        possible=True,
        authorised=True,
    ),
    # Other authorised absence
    _row(
        "T",
        "Mobile child travelling for occupational purposes",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
    ),
    _row("R", "Religious observance", _C.AUTHORISED_OTHER, possible=True, authorised=True),
    _row(
        "I",
        "Illness (not medical or dental appointment)",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
    ),
    _row(
        "E",
        "Suspended or permanently excluded, no alternative provision",
        _C.AUTHORISED_OTHER,
        possible=True,
        authorised=True,
    ),
    # Unable to attend because of unavoidable cause: INFERRED not possible (no DfE column).
    _row(
        "Q",
        "Unable to attend: lack of access arrangements by the local authority",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y1",
        "Unable to attend: transport normally provided not available",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y2",
        "Unable to attend: widespread disruption to travel",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y3",
        "Unable to attend: part of the school premises closed",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y4",
        "Unable to attend: whole school site unexpectedly closed",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y5",
        "Unable to attend: pupil in criminal justice detention",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y6",
        "Unable to attend: public health guidance or law",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "Y7",
        "Unable to attend: any other unavoidable cause",
        _C.UNAVOIDABLE_CAUSE,
        possible=False,
        evidence=_I,
    ),
    # Unauthorised absence
    _row(
        "G",
        "Unauthorised: holiday not granted by the school",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    _row(
        "N",
        "Unauthorised: reason not yet established",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    _row(
        "O",
        "Unauthorised: absent in other or unknown circumstances",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    _row(
        "U",
        "Unauthorised: arrived after the register closed",
        _C.UNAUTHORISED,
        possible=True,
        unauthorised=True,
    ),
    # Administrative
    _row(
        "Z",
        "Prospective pupil not yet on the admission register",
        _C.ADMINISTRATIVE,
        possible=False,
        evidence=_I,
    ),
    _row(
        "#",
        "Planned whole or partial school closure",
        _C.ADMINISTRATIVE,
        possible=False,
        evidence=_I,
    ),
)
