"""National attendance codes: the 2024 table and the legacy 2006 codes, as data.

Sources:
- The codes and their categories are set out in The School Attendance (Pupil Registration)
  (England) Regulations 2024 (SI 2024/208) reg 10 and WTISA (August 2024) chapter 6. Present and
  Table 2 codes are VERIFIED; the rest are SECONDARY (LA and vendor copies of the table).
- The statistical treatment (possible / attendance / authorised / unauthorised) is VERIFIED
  against DfE's published 2024/25 year-to-date data: possible = present + L + approved
  educational activity + authorised + unauthorised; codes without a DfE column (D, X, Q, Y1-Y7,
  Z, #) are outside possible sessions. That last point is only *supported* by the data, so it is
  marked INFERRED on those rows and lives in this one table.
- Legacy 2006 codes (H, F, J, Y and old meanings) stop being valid on 19 August 2024, the day the
  2024 Regulations came into force (VERIFIED: Explanatory Note / Stone King bulletin).

The table is the single place to change a treatment: rules, statistics and returns all read it.

The package, by seam (``from registerwatch.codes import X`` works for every name):
- ``types``: a code row (category, statistical treatment, validity dates, evidence);
- ``table_2024``: the 2024 table; ``legacy_2006``: the 2006 codes, valid to 18 August 2024;
- ``lookup``: code sets and shared constants (illness, the CTF marks characters), lookup by date;
- ``statistics``: session totals and rates as DfE publishes them.
"""

from registerwatch.codes.legacy_2006 import CODES_2006
from registerwatch.codes.lookup import (
    ALL_CODES,
    AUTHORISED_CODES,
    CTF_NOT_IN_SESSION,
    CTF_SINGLE_CHARACTER_CODES,
    ILLNESS_CODE,
    NOT_POSSIBLE_CODES,
    PRESENT_CODES,
    UNAUTHORISED_CODES,
    UnknownCodeError,
    code_table,
    is_known_code,
    lookup,
    valid_on,
)
from registerwatch.codes.statistics import (
    SessionStatistics,
    session_statistics,
    statistics_for_marks,
)
from registerwatch.codes.table_2024 import CODES_2024
from registerwatch.codes.types import (
    LEGACY_LAST_VALID_DAY,
    REGULATIONS_2006_IN_FORCE,
    REGULATIONS_2024_IN_FORCE,
    AttendanceCode,
    Category,
    Evidence,
)

__all__ = [
    "ALL_CODES",
    "AUTHORISED_CODES",
    "CODES_2006",
    "CODES_2024",
    "CTF_NOT_IN_SESSION",
    "CTF_SINGLE_CHARACTER_CODES",
    "ILLNESS_CODE",
    "LEGACY_LAST_VALID_DAY",
    "NOT_POSSIBLE_CODES",
    "PRESENT_CODES",
    "REGULATIONS_2006_IN_FORCE",
    "REGULATIONS_2024_IN_FORCE",
    "UNAUTHORISED_CODES",
    "AttendanceCode",
    "Category",
    "Evidence",
    "SessionStatistics",
    "UnknownCodeError",
    "code_table",
    "is_known_code",
    "lookup",
    "session_statistics",
    "statistics_for_marks",
    "valid_on",
]
