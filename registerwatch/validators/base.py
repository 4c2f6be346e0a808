"""The rule framework: the ``Rule`` base class, rule status, docs parsed from docstrings, and the
finding helper with its stable fingerprint.

A rule is one module (``validators/<family>/<CODE>.py``) with one ``Rule`` subclass named for the
violation. Metadata are class attributes; ``check(ctx)`` is pure over a
:class:`~registerwatch.validators.context.ScanContext` and yields findings. The docstring holds the
rule's documentation in five fixed sections (``DOC_SECTIONS``), each a heading underlined with
dashes; ``docs/rules/<CODE>.md`` is generated from it.

The context and the settings live in ``context.py`` and ``settings.py`` and the registry
(``all_rules``, ``run_rules``) in ``registry.py``; all are re-exported here and from
``registerwatch.validators`` (the registry only from the package, since it imports every rule).
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from registerwatch.schema import Finding, Session, SessionRef, Severity
from registerwatch.validators.context import ObservedChange, ScanContext
from registerwatch.validators.delta import RuleRun, ScanDelta
from registerwatch.validators.settings import RuleSettings

if TYPE_CHECKING:
    from registerwatch.validators.folding import PupilFold

__all__ = [
    "DOC_SECTIONS",
    "ObservedChange",
    "Rule",
    "RuleDocs",
    "RuleSettings",
    "RuleStatus",
    "ScanContext",
    "fingerprint",
    "session_ref",
    "session_text",
]

DOC_SECTIONS = ("What it checks", "Why it matters", "Example", "How to fix", "References")

CODE_PATTERN = re.compile(r"^[A-Z]{3}\d{3}$")
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class RuleStatus(StrEnum):
    """Ruff's lifecycle: preview rules may change meaning; removed codes are never reused."""

    PREVIEW = "preview"
    STABLE = "stable"
    DEPRECATED = "deprecated"
    REMOVED = "removed"


@dataclass(frozen=True)
class RuleDocs:
    """A rule's documentation: the docstring's first line and its named sections, in order."""

    summary: str
    sections: Mapping[str, str]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s for s in DOC_SECTIONS if not self.sections.get(s, "").strip())


def _parse_docstring(doc: str | None) -> RuleDocs:
    lines = inspect.cleandoc(doc or "").splitlines()
    headings = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip() and re.fullmatch(r"-{3,}", lines[i + 1].strip())
    ]
    first = headings[0] if headings else len(lines)
    summary = " ".join(line.strip() for line in lines[:first] if line.strip())
    sections: dict[str, str] = {}
    for n, start in enumerate(headings):
        end = headings[n + 1] if n + 1 < len(headings) else len(lines)
        sections[lines[start].strip()] = "\n".join(lines[start + 2 : end]).strip()
    return RuleDocs(summary=summary, sections=sections)


def session_ref(day: date, session: Session | str) -> SessionRef:
    return SessionRef(date=day, session=Session(session))


def session_text(ref: SessionRef | tuple[date, Session] | None) -> str:
    """'2025-11-03 AM', the form messages and evidence use for a session."""
    if ref is None:
        return ""
    day, session = (ref.date, ref.session) if isinstance(ref, SessionRef) else ref
    return f"{day.isoformat()} {Session(session).value}"


def fingerprint(
    rule: str,
    school_id: str,
    pupil_id: str | None,
    episode: SessionRef | None,
    discriminator: str = "",
) -> str:
    """sha256 of what makes a finding the same finding from one scan to the next.

    Severity, message, last session and deadline are left out on purpose: a run that grows, or a
    warning that becomes an error when its deadline passes, is the same finding, not a new one.
    """
    parts = (rule, school_id, pupil_id or "", session_text(episode), discriminator)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


_FIRST: Any = object()  # sentinel: the episode is the finding's first session


class Rule:
    """Base class of every rule. Subclasses set the metadata and implement ``check``."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    #: message template, formatted with the fields the rule passes to ``finding``
    title: ClassVar[str] = ""
    #: the usual severity; a rule may give a finding another one (a warning before a deadline)
    severity: ClassVar[Severity] = Severity.ERROR
    citation: ClassVar[str] = ""
    fix_hint: ClassVar[str] = ""
    status: ClassVar[RuleStatus] = RuleStatus.STABLE
    #: the RuleSettings fields the rule reads (listed in its generated docs)
    settings_used: ClassVar[tuple[str, ...]] = ()
    #: the rule's per-pupil state (validators/folding.py), for a rule judged per pupil over
    #: marks: its ``check`` folds every pupil's marks, and a nightly scan folds one night's
    fold: ClassVar[PupilFold[Any] | None] = None

    #: reads ``ctx.registers``: a nightly scan gives the rule only the registers of the delta's
    #: sessions when its ``run_delta`` answers, and every register otherwise
    reads_registers: ClassVar[bool] = False

    def check(self, ctx: ScanContext) -> Iterable[Finding]:
        raise NotImplementedError

    def run(self, ctx: ScanContext) -> RuleRun:
        """A full run: every finding, and the state a rule with a delta path keeps (default:
        ``check``, no state)."""
        return RuleRun(list(self.check(ctx)))

    def run_delta(self, ctx: ScanContext, delta: ScanDelta, state: Any) -> RuleRun | None:
        """Re-judge only what ``delta`` changed, from the ``state`` the last run kept; None
        when the rule cannot (it then runs in full). See ``validators.delta``."""
        return None

    @classmethod
    def family(cls) -> str:
        """The family folder: 'marks' for registerwatch.validators.marks.MRK001."""
        parts = cls.__module__.split(".")
        return parts[-2] if len(parts) >= 2 else ""

    @classmethod
    def docs(cls) -> RuleDocs:
        return _parse_docstring(cls.__doc__)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code} {self.name}>"

    def finding(
        self,
        ctx: ScanContext,
        *,
        pupil_id: str | None = None,
        first: SessionRef | None = None,
        last: SessionRef | None = None,
        due: date | None = None,
        severity: Severity | None = None,
        evidence: Mapping[str, Any] | None = None,
        discriminator: str = "",
        episode: SessionRef | None = _FIRST,
        template: str | None = None,
        **message_fields: Any,
    ) -> Finding:
        """A finding of this rule, its message formatted from ``title`` and ``message_fields``.

        ``episode`` (default: ``first``) and ``discriminator`` go into the fingerprint with the
        rule, school and pupil; choose them so that an unchanged breach gets the same fingerprint
        on every scan. ``template`` replaces ``title`` for a finding of another shape (a
        school-level notice). Messages refer to pupils by id only: never pass names, UPNs or DOBs.
        """
        if last is None:
            last = first
        fields = {
            "pupil": pupil_id or "",
            "first": session_text(first),
            "last": session_text(last),
            "due": due.isoformat() if due else "",
            **message_fields,
        }
        return Finding(
            rule=self.code,
            severity=severity or self.severity,
            school_id=ctx.school_id,
            pupil_id=pupil_id,
            first_session=first,
            last_session=last,
            due=due,
            message=(template or self.title).format(**fields),
            evidence=dict(evidence or {}),
            fingerprint=fingerprint(
                self.code,
                ctx.school_id,
                pupil_id,
                first if episode is _FIRST else episode,
                discriminator,
            ),
        )
