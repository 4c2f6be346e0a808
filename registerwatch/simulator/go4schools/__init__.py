"""A GO 4 Schools-style API ("customer v1") over a generated school, with vendor-shaped faults.

The package: ``protocol`` (paths, the code table, day types, attributes, formats, errors),
``data`` (the school as GO 4 Schools records), ``app`` (HTTP routing, cursor paging, faults).

What is OBSERVED (in public sources) and what is INFERRED:

OBSERVED (official doc excerpt, ArchwayTrust/Education-G4S-APISync, afsarchowdhury/g4sr):
  - base path ``/customer/v1``, ``Authorization: Bearer {key}``, per-school key;
  - the academic year in the path is the year the academic year *ends* (2025/26 -> ``2026``);
  - ``has_more`` + integer ``cursor`` paging; the cursor is the last id returned;
  - ``students``, ``students/education-details``, ``attendance/codes`` (codes with ``aliases``),
    one ``attendance/student-session-marks/date/{yyyy-mm-dd}`` request per date, snake_case
    fields, ``timetables/calendar`` rows of ``timetable_id``/``week``/``date``/``day_type_code``,
    ``/school`` with ``academic_years`` and ``current_academic_year``;
  - error messages ("Invalid Cursor", "Invalid date.", the 401 and 403 texts).

INFERRED (a design choice for this simulator, never a fact about the vendor):
  - the error body ``{"error": message, "status": code}`` and collection-key casing;
  - the page size; the single-character encodings ``<`` ``>`` ``?`` for C1 C2 J1 (One/Capita's
    mapping) and the school aliases in ``ALIASES``;
  - ``day_type_code`` values (``DAY_TYPES``) and that the calendar lists term weekdays only;
  - the meaning of ``student_education_attributes`` codes (``ATTRIBUTES``);
  - the whole amendment history resource (``AMENDMENTS_PATH``): no vendor publishes one.
  - register-taking events are NOT served: GO 4 Schools exposes no register-taken time or taker
    (no public documentation describes one), so neither does this simulator.

Vendor-shaped faults, armed through ``faults`` (``FaultInjector``) like every simulator:
  EMPTY_PERMISSION  200 with an empty list (a module the key may not read)
  STALE_CACHE       marks/amendments/students from the snapshot taken at start (or at the last
                    ``refresh_cache()``), i.e. from before later edits
  CHANGING_PAGES    before a follow-on page (one with ``?cursor=``) of session marks, a mark on
                    an already-served pupil and one on a not-yet-served pupil are edited
  MALFORMED         the first records of the response get a bad date, an unknown code id, a
                    missing key... (``MALFORMATIONS``); each one is logged in ``corrupted``
A broken cursor is not a shared FaultKind, so it is a switch on this app: ``broken_cursor`` in
the constructor, ``set_broken_cursor(mode)``, or ``POST /_sim/go4schools/cursor {"mode": ...}``
(``DELETE`` clears). Modes: ``repeat`` (every page is the first page, with the same cursor),
``backwards`` (follow-on pages answer with a cursor lower than the one asked for), ``missing``
(``has_more: true`` with ``cursor: null``).
"""

from registerwatch.simulator.go4schools.app import Go4SchoolsApp
from registerwatch.simulator.go4schools.protocol import (
    ALIASES,
    AMENDMENTS_PATH,
    ATTRIBUTES,
    CODE_TABLE,
    CURSOR_MODES,
    DAY_TYPES,
    MALFORMATIONS,
    PREFIX,
    VENDOR_ENCODINGS,
    CodeRow,
    Corruption,
    academic_year_of,
)

__all__: list[str] = [
    "ALIASES",
    "AMENDMENTS_PATH",
    "ATTRIBUTES",
    "CODE_TABLE",
    "CURSOR_MODES",
    "DAY_TYPES",
    "MALFORMATIONS",
    "PREFIX",
    "VENDOR_ENCODINGS",
    "CodeRow",
    "Corruption",
    "Go4SchoolsApp",
    "academic_year_of",
]
