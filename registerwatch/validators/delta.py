"""What changed since a school's last scan, as the rules see it: the nightly scan's delta.

After a school day every pupil on roll has a new mark, so a nightly scan is cheap only if each
rule re-judges what the day changed and carries forward what it found before. The scan
(``scan.incremental``) builds a :class:`ScanDelta` from the store; a rule that can use it
implements ``Rule.run_delta`` and returns a :class:`RuleRun` whose ``covers`` says which of its
findings the re-evaluation stands for. The scan keeps the rule's stored open findings outside
that scope as they are. A rule without a delta path, or any doubt (no delta: a first scan, a
change of basis or capabilities, a backdated scan, a long gap), runs in full with ``check``.

A carried finding must be exactly what a full scan would give: its severity and message must
not depend on ``as_of``, or the rule must cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from registerwatch.schema import Finding, SessionRef
from registerwatch.validators.context import SessionKey


@dataclass(frozen=True)
class ScanDelta:
    """What changed since the last scan that kept rule states.

    ``previous_as_of``: that scan's context ``as_of`` (the rules judged the days before it).
    ``sessions``: the sessions whose judgement may differ: newly judged days, sessions with a
    mark or register changed since, and days on which a changed pupil record alters a group's
    roll. ``localised``: every change found its sessions (False when a pupil's group, year or
    boarding changed, or a pupil came or went without roll dates: the register rules then run
    in full). ``pupils``: pupils whose record changed, appeared or went. ``changed_marks``: per
    pupil, the earliest session with a mark changed (content or deletion) since.
    """

    previous_as_of: date
    sessions: frozenset[SessionKey]
    localised: bool = True
    pupils: frozenset[str] = frozenset()
    changed_marks: Mapping[str, SessionKey] = field(default_factory=dict)

    def covers(self, ref: SessionRef | None) -> bool:
        """Whether the session is one the delta re-judges."""
        return ref is not None and (ref.date, ref.session) in self.sessions


@dataclass
class RuleRun:
    """One rule's findings from one scan, what it keeps for the next, and what it covers.

    ``state``: JSON-safe, handed back to ``run_delta`` next time (None: the rule keeps no state
    and has no delta path). ``covers``: which of the rule's findings this run stands for (None:
    all of them, a full run); stored open findings it does not cover are carried forward.
    """

    findings: list[Finding]
    state: Any = None
    covers: Callable[[Finding], bool] | None = None
