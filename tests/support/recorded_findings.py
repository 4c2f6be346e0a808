"""Record the mark rules' findings on generated schools: the oracle of tests/validators/test_rules_folding.py.

``recorded_findings.json.gz`` was written by this script with the rules as they were before
their folds (commit c2ceb08): the folds must give exactly these findings. Rerun it only for an
intended change of findings, and say so in the commit:

    PYTHONPATH=tests .venv/bin/python -m support.recorded_findings
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path
from typing import Any

from registerwatch.simulator.generate import generate_school
from registerwatch.validators import get_rule, run_rules
from registerwatch.validators.settings import RuleSettings
from support.generated_context import context

RECORDED = Path(__file__).with_name("recorded_findings.json.gz")

# The per-pupil mark rules (MRK005 included: it is judged per session, and stays unchanged).
CODES = [
    *(f"MRK00{n}" for n in range(1, 9)),
    *("ATT001", "ATT002", "ATT003", "ATT004", "ATT007", "LAR001", "LAR002", "LAR003"),
]
# A primary school through January and a larger one to March: half-terms, Christmas and the
# turns of the months, with leavers and joiners.
SCHOOLS: list[dict[str, Any]] = [
    {"seed": 1, "pupils": 150, "as_of": date(2026, 1, 12)},
    {"seed": 3, "pupils": 220, "as_of": date(2026, 3, 16)},
]
AS_OFS = [
    date(2025, 9, 22),
    date(2025, 10, 27),
    date(2025, 11, 3),
    date(2025, 12, 1),
    date(2026, 1, 5),
    date(2026, 1, 12),
    date(2026, 2, 2),
    date(2026, 3, 16),
]
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "variant": {
        "la_return_schedule": "termly",
        "sickness_return_per": "per_year",
        "penalty_csa_only": False,
        "absence_measures_csa_only": False,
    },
    # ATT007 has no trigger by default; ATT004's baseline can be rolling weeks
    "triggers": {
        "attendance_triggers": [
            {"name": "term-80", "below_percent": 80, "window": "term"},
            {"name": "year-88", "below_percent": 88, "window": "year"},
            {"name": "weeks-75", "below_percent": 75, "window": "weeks", "school_weeks": 4},
        ],
        "ehcp_baseline_school_weeks": 6,
        "la_return_schedule": "dates",
        "la_return_dates": ["2025-10-17", "2025-12-19", "2026-02-13"],
        "irregular_absence_sessions": 8,
    },
}


def record() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    rules = [get_rule(code) for code in CODES]
    for params in SCHOOLS:
        school = generate_school(**params)
        for name, overrides in SETTINGS.items():
            for as_of in AS_OFS:
                if as_of > params["as_of"]:
                    continue
                ctx = context(school, as_of, RuleSettings(**overrides))
                out.append(
                    {
                        "seed": params["seed"],
                        "settings": name,
                        "as_of": as_of.isoformat(),
                        "findings": [f.model_dump(mode="json") for f in run_rules(ctx, rules)],
                    }
                )
    return out


if __name__ == "__main__":
    RECORDED.write_bytes(gzip.compress(json.dumps(record(), sort_keys=True).encode(), 9))
