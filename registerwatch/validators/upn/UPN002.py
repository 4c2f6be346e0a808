"""UPN002 duplicate-upn."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from registerwatch.schema import Finding, Pupil, Severity
from registerwatch.upn import normalise_upn
from registerwatch.validators.base import Rule
from registerwatch.validators.context import ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta, year_pupils_changed, year_state


def _overlap(a: Pupil, b: Pupil) -> bool:
    """Were both on roll on some common day? (unknown ends are open)"""
    a_start, b_start = a.starting_day or date.min, b.starting_day or date.min
    a_end, b_end = a.leaving_date or date.max, b.leaving_date or date.max
    return a_start <= b_end and b_start <= a_end


class DuplicateUpn(Rule):
    """Two or more pupil records share a UPN.

    What it checks
    --------------
    The UPNs (ignoring case and surrounding spaces) of the pupils on roll at some point in the
    school year of the scan date. Pupil records sharing a UPN whose times on roll overlap are
    duplicates: one **error** for each pupil concerned, listing the other pupil ids. Two records
    whose times on roll do not overlap are a pupil who left and was re-admitted under a new MIS
    record, which is lawful, and are not reported.

    Why it matters
    --------------
    A UPN identifies one pupil nationally. Two records with one UPN split a pupil's attendance
    between them (or merge two pupils'), so both the school's statistics and the DfE's daily
    collection are wrong, and the census rejects it (rule 1520).

    Example
    -------
    Pupils `s1:4012` and `s1:4090` are both on roll this term with the same UPN: two errors, each
    naming the other record.

    How to fix
    ----------
    If the two records are the same child, merge them in the MIS; otherwise correct the UPN that
    was mistyped or copied from a sibling.

    References
    ----------
    - Census/CBDS validation rule 1520, "More than one pupil record with the same UPN" (VERIFIED:
      DfE data provider hub).
    - DfE UPN guidance: one UPN per pupil for their school career (SECONDARY).
    """

    code = "UPN002"
    name = "duplicate-upn"
    title = "Pupil {pupil} shares a UPN with {others}"
    severity = Severity.ERROR
    citation = "Census validation rule 1520; DfE UPN guidance"
    fix_hint = "Merge duplicate records of one child, or correct the mistyped UPN"

    def check(self, ctx: ScanContext) -> Iterator[Finding]:
        return iter(self.run(ctx).findings)

    def run(self, ctx: ScanContext) -> RuleRun:
        found = list(self._findings(ctx, ctx.pupils_this_year))
        return RuleRun(found, state=_state(ctx, {}, found))

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Only the UPNs of the pupils whose record changed or who came on roll since, and of
        those they shared one with (kept in the state by pupil id, never the UPN): no change,
        nothing judged."""
        if not isinstance(state, dict) or not isinstance(state.get("shared"), dict):
            return None
        changed = year_pupils_changed(ctx, delta, {"school_year": state.get("school_year")})
        if changed is None:
            return None
        shared: dict[str, list[str]] = state["shared"]
        touched = set(changed)
        for pupil_id in changed:
            touched.update(shared.get(pupil_id, ()))
        upns = {
            normalise_upn(p.upn)
            for pid in touched
            if (p := ctx.pupils_by_id.get(pid)) is not None and p.upn
        }
        upns.discard("")
        start, _ = ctx.school_year
        group = (
            [
                p
                for p in ctx.pupils
                if p.upn and normalise_upn(p.upn) in upns and ctx.on_roll_in(p, start, ctx.as_of)
            ]
            if upns
            else []
        )
        touched.update(p.id for p in group)
        found = list(self._findings(ctx, group))
        kept = {pid: others for pid, others in shared.items() if pid not in touched}
        return RuleRun(
            found, state=_state(ctx, kept, found), covers=lambda f: f.pupil_id in touched
        )

    def _findings(self, ctx: ScanContext, pupils: Iterable[Pupil]) -> Iterator[Finding]:
        by_upn: dict[str, list[Pupil]] = defaultdict(list)
        for pupil in pupils:
            if pupil.upn and normalise_upn(pupil.upn):
                by_upn[normalise_upn(pupil.upn)].append(pupil)
        for upn in sorted(by_upn):
            pupils_of = sorted(by_upn[upn], key=lambda p: p.id)
            if len(pupils_of) < 2:
                continue
            for pupil in pupils_of:
                others = [o.id for o in pupils_of if o is not pupil and _overlap(pupil, o)]
                if not others:
                    continue
                yield self.finding(
                    ctx,
                    pupil_id=pupil.id,
                    others=", ".join(others),
                    # one finding per pupil; nothing derived from the UPN goes in the fingerprint
                    # (a hash of a UPN from a known school is cheap to reverse)
                    discriminator="duplicate",
                    evidence={"shared_with": others, "census_rule": "1520"},
                )


def _state(ctx: ScanContext, kept: dict[str, list[str]], found: list[Finding]) -> dict[str, Any]:
    """What the next scan starts from: the school year, and who shares a UPN with whom."""
    shared = dict(kept)
    for finding in found:
        assert finding.pupil_id is not None
        shared[finding.pupil_id] = list(finding.evidence["shared_with"])
    return {**year_state(ctx), "shared": shared}
