"""The report cites the law as a data manager reads it: no evidence tags."""

import re

from registerwatch.reports.build import plain_citation
from registerwatch.validators import all_rules


def test_no_citation_in_the_report_carries_an_evidence_tag() -> None:
    for rule in all_rules():
        shown = plain_citation(rule.citation)
        assert not re.search(r"VERIFIED|SECONDARY|INFERRED", shown), (rule.code, shown)
        assert shown.startswith(rule.citation[:8])  # the citation itself is kept
    assert plain_citation("SI 2024/208 reg 6 (items INFERRED)") == "SI 2024/208 reg 6"
    assert plain_citation("reg 10(2) table 1 (L and U)") == "reg 10(2) table 1 (L and U)"
