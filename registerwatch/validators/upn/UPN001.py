"""UPN001 invalid-upn."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.upn import check_upn
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta, year_pupils_changed, year_state

_CENSUS_RULE = re.compile(r"census rule (\d{4})")

# What each census/CBDS UPN rule means, worded so the message never repeats the UPN itself
# (upn.check_upn's reasons quote characters of it).
PROBLEMS = {
    "1500": "is missing",
    "1510": "fails the DfE check letter",
    "1530": "has characters 2-4 (the LA number) that are not digits",
    "1540": "has characters 5-12 that are not all digits",
    "1550": "has a character 13 that is not a digit or an allowed letter",
}


def problem(reason: str) -> tuple[str, str]:
    """(census rule or 'length', description) for an invalid UPN's reason."""
    match = _CENSUS_RULE.search(reason)
    if match and match.group(1) in PROBLEMS:
        return match.group(1), PROBLEMS[match.group(1)]
    return "length", "is not 13 characters"


class InvalidUpn(Rule):
    """A pupil's UPN (or former UPN) fails the DfE format or check letter.

    What it checks
    --------------
    The UPN, and the former UPN when one is recorded, of every pupil on roll at some point in the
    school year of the scan date, with ``upn.check_upn``: 13 characters; a check letter from the
    23-letter alphabet (I, O and S are not used); digits in positions 2-12; a digit or an allowed
    letter in position 13 (a temporary UPN); and the check letter computed from positions 2-13
    (weights 2-13, sum mod 23). A missing UPN is a **warning**; an invalid one an **error**. The
    message names the census rule but never prints the UPN.

    Why it matters
    --------------
    The UPN is how the DfE, the LA and the next school match a pupil's records: the daily
    attendance collection, the census (rules 1500-1550) and common transfer files all reject or
    mismatch a pupil with an invalid UPN, and their attendance goes missing from the national
    record.

    Example
    -------
    Pupil `s1:4012`'s UPN has a mistyped digit, so its first letter no longer matches the check
    letter: one error, "UPN fails the DfE check letter (census rule 1510)".

    How to fix
    ----------
    Correct the UPN in the MIS from the previous school's common transfer file or the DfE's
    records; if the pupil has none, generate a (temporary) UPN in the MIS.

    References
    ----------
    - DfE UPN guidance (format and check letter, VERIFIED via python-stdnum, DfE MTC and dfeqa
      implementations); census/CBDS validation rules 1500, 1510, 1530, 1540, 1550 (VERIFIED).
    - LA numbers are not checked against the LA list (census rule 1530's list test): the product
      does not hold the current GIAS list (see ``registerwatch.upn``).
    """

    code = "UPN001"
    name = "invalid-upn"
    title = "Pupil {pupil}'s {which} {problem} (census rule {rule})"
    severity = Severity.ERROR
    citation = "DfE UPN guidance; census validation rules 1500-1550"
    fix_hint = "Correct the UPN from the CTF or DfE records, or generate one in the MIS"

    LENGTH = "Pupil {pupil}'s {which} {problem}"

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return self._findings(ctx, ctx.pupils_this_year)

    def run(self, ctx: ScanContext) -> RuleRun:
        return RuleRun(list(self.check(ctx)), state=year_state(ctx))

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Only the pupils whose record changed or who came on roll since: a finding rests on
        the pupil's record alone."""
        changed = year_pupils_changed(ctx, delta, state)
        if changed is None:
            return None
        start, _ = ctx.school_year
        pupils = [
            p
            for pid in changed
            if (p := ctx.pupils_by_id.get(pid)) is not None
            and ctx.on_roll_in(p, start, ctx.as_of)  # ctx.pupils_this_year
        ]
        return RuleRun(
            list(self._findings(ctx, pupils)),
            state=year_state(ctx),
            covers=lambda f: f.pupil_id in changed,
        )

    def _findings(self, ctx: ScanContext, pupils: Iterable[Pupil]) -> Iterator[Finding]:
        for pupil in sorted(pupils, key=lambda p: p.id):
            for field, which, value in (
                ("upn", "UPN", pupil.upn),
                ("former_upn", "former UPN", pupil.former_upn),
            ):
                if field == "former_upn" and not (value or "").strip():
                    continue  # a former UPN is recorded only when there was one
                result = check_upn(value)
                if result.valid:
                    continue
                rule, text = problem(result.reason or "")
                severity = Severity.WARNING if rule == "1500" else Severity.ERROR
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    severity=severity,
                    discriminator=field,
                    template=self.LENGTH if rule == "length" else None,
                    which=which,
                    problem=text,
                    rule=rule,
                    evidence={
                        "field": field,
                        "census_rule": rule if rule != "length" else None,
                        "temporary": result.temporary,
                    },
                )
