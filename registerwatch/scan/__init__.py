"""The scan: run the compliance rules over the store and keep each finding's lifecycle.

- ``pipeline``: :func:`run_scan` and its results (new / open / resolved, by fingerprint);
- ``context_loader``: one school's records read from the store as a ``ScanContext``;
- ``findings``: stored findings between scans (list, acknowledge, returns recorded by hand);
- ``output``: findings as JSON documents and CSV (the one CSV writer the report uses too).

Nothing here prints; ``registerwatch.cli.scanning`` does.
"""

from registerwatch.scan.pipeline import (
    FindingStatus,
    PupilRef,
    ScanFinding,
    ScanResult,
    SchoolScan,
    SchoolStatus,
    finding_order,
    pupil_ref,
    pupil_refs,
    run_scan,
    today_in_london,
)

__all__ = [
    "FindingStatus",
    "PupilRef",
    "ScanFinding",
    "ScanResult",
    "SchoolScan",
    "SchoolStatus",
    "finding_order",
    "pupil_ref",
    "pupil_refs",
    "run_scan",
    "today_in_london",
]
