"""An Arbor-style REST v2 API over a generated school, with vendor-shaped faults.

The package: ``protocol`` (names, codes, formats, the error envelope), ``query`` (filters and
paging), ``data`` (the school as Arbor records), ``app`` (HTTP routing, auth, changes, faults).

What is OBSERVED (in public sources) and what is INFERRED:

OBSERVED (official PHP SDK ``arbor-education/sis-sdk-php``, integrator code):
  - ``/rest-v2/`` paths with dashed lower-case plurals (the SDK's CamelCase ``/rest-v2/Students``
    is accepted too); HTTP Basic auth with per-application credentials;
  - list responses ``{"<lcfirst plural>": [...]}``, single items ``{"<lcfirst type>": {...}}``;
    objects carry ``entityType`` and a relative ``href``; related objects are
    ``{"entityType", "href"}`` stubs the client resolves; ``revisionId`` is read-only;
  - ``page-number`` / ``page-size`` with no total and no next link (a short page ends the list);
    filters ``filters.<property>.<operator>=`` (``equals from to after before in``), date-times
    ``Y-m-d H:i:s``, ``NULL`` for null;
  - the error envelope ``{"response": {"code", "reason", "errors": [{"exception", "message",
    "trace"}]}}``; a missing permission answered with an empty 200, not an error;
  - ``{resource}/changelog?from-revision=&to-revision=`` giving ``{"changes": [{"changedObject",
    "changeType", "fromRevision", "toRevision"}]}``;
  - property names of Student, Person, AttendanceRecord, AttendanceMark, AttendanceRegister,
    AttendanceRegisterType, Session, Term, AcademicLevel(+Membership),
    RegistrationForm(+Membership), UkDfe_UpnAssignment.

INFERRED (design choices for this simulator, never facts about the vendor):
  - the REST paths of the UkDfe module resources (``upn-assignments``, alias
    ``uk-dfe-upn-assignments``; ``sen-status-assignments``; ``in-care-status-assignments``),
    the ``genders``, ``sen-statuses`` and ``curriculum-grades`` code tables and their codes;
  - ``mostRecentEntryDate`` / ``leavingDate`` on the REST Student (seen on the GraphQL Student);
  - ``startDatetime`` and a ``registrationForm`` stub on AttendanceRegister (Arbor hangs a
    register off an ``event``; copying the event's start and group onto the register lets a
    list be filtered by date), and ``modifiedDatetime`` on AttendanceRecord (seen in GraphQL);
  - the AttendanceMark ids and the single-character codes ``1`` ``2`` ``3`` for C1 C2 J1
    (``ATTENDANCE_MARKS``); the default page size and the 1000-row clamp; the list order
    (``attendance-records``: most recently changed first); that the changelog is paged;
  - changelog ``changeType`` values beyond ``update`` (``create``, ``delete``), and that a
    baseline revision 1 covers the data the school started with;
  - the whole amendment history resource (``AMENDMENTS``): no vendor publishes one.

Vendor-shaped faults (``faults``, shared ``FaultInjector``):
  EMPTY_PERMISSION  200 with an empty list (or ``{}`` for one item): the silent "no access"
  STALE_CACHE       ``attendance-records`` as they were when the app started (before any
                    ``set_mark`` / ``delete_mark``): an old cached snapshot
  CHANGING_PAGES    after page 1 of ``attendance-records`` is served, the last record in the
                    list is saved again, which moves it to the front: every later page shifts
                    by one, so page 2 repeats page 1's last record and one record is never
                    served unless the client re-pulls
  MALFORMED         in one page of ``attendance-records`` or ``students``: a bad date, an
                    unknown code, a missing key (``MALFORMATIONS``); corrupted hrefs are kept
                    in ``corrupted``
"""

from __future__ import annotations

from registerwatch.simulator.arbor.app import ArborApp
from registerwatch.simulator.arbor.protocol import (
    AMENDMENTS,
    ATTENDANCE_MARKS,
    KINDS,
    MALFORMATIONS,
    SCHOOL_DEFINED_MARK,
    error_envelope,
)

__all__ = [
    "AMENDMENTS",
    "ATTENDANCE_MARKS",
    "KINDS",
    "MALFORMATIONS",
    "SCHOOL_DEFINED_MARK",
    "ArborApp",
    "error_envelope",
]
