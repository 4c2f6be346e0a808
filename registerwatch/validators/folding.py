"""Per-pupil fold states: how a mark rule keeps a running summary instead of rereading the year.

After a school day every pupil on roll has a new mark, so a nightly scan is only cheap if each
rule carries a small per-pupil *state* that one night's marks are folded into. A rule with a
``fold`` (a :class:`PupilFold`) is judged in two steps, the same for a full and a nightly scan:

- ``fold(ctx, pupil, state, marks)`` takes the pupil's live marks strictly after the state's
  last folded session (``through``), in (date, session) order: the whole year from ``initial``
  in a full scan, one night's marks in a nightly one. It keeps only what the rule needs (code
  counts, the few marks of the codes the rule judges), never the pupil's mark list.
- ``findings(ctx, pupil, state)`` judges the state as of ``ctx.as_of`` (deadlines move with it),
  and ``school_findings(ctx, states)`` the school-level ones across pupils.

``check_by_folding`` is the rule's ``check``: one implementation, so a full scan and the
incremental pipeline cannot drift apart.

What a fold may depend on besides the marks: the pupil's record (roll dates, date of birth,
boarder), the calendar and the settings. A caller that sees any of them change must refold the
pupil (or the school) from ``initial``. A fold may update the state it is given in place and
returns it; after ``fold`` the caller keeps only the returned state.

Most folds stop at the last day of data (``ctx.data_end``): the rules judge completed registers
only, so a mark after it (a planned absence entered ahead) is left for a later night, which is
why ``through`` never passes ``(ctx.data_end, PM)`` for them. The few that judge marks of any
date (MRK002-MRK004: a wrong code is wrong on a planned session too) take every mark given, and
their ``through`` is the last one's session when that is later. Every fold advances ``through``
to at least ``(ctx.data_end, PM)``, even for a pupil with no new mark, so a caller can read one
date range of marks for the whole school.

The caller keeps a state for each pupil of ``pupils_for`` (for MRK001 and MRK002, also pupil ids
with marks but no record) and asks ``findings_of`` for the findings of all of them: findings are
recomputed from the states every scan, none is carried forward. A nightly run
(``fold_runs``) keeps them sparse: a *blank* state (``blank``) is not stored, a pupil the night
cannot change (``night_pupils``) is not folded, a state that cannot find (``quiet``) is not
judged, and ``fold_dumped`` may fold a night into the dumped state without loading it. Each is
an optimisation of the same fold: the findings and states are those of ``check``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from registerwatch.schema import Finding, Pupil, Session
from registerwatch.validators.context import ScanContext, SessionKey
from registerwatch.validators.lean_marks import MarkInterner, SessionMark, mark_token

if TYPE_CHECKING:
    from registerwatch.validators.base import Rule

S = TypeVar("S")
K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """What ``compute`` gives for each object, kept by the object's id together with the
    object itself (so the id cannot be reused while it is kept), for one scan: for what is
    asked many times of a few shared objects (the night's marks, which every pupil's night is
    made of; a stored counts dict that two rules judge). Keep it on the scan's context."""

    def __init__(self, compute: Callable[[K], V]) -> None:
        self._compute = compute
        self._kept: dict[int, tuple[K, V]] = {}

    def __call__(self, key: K) -> V:
        hit = self._kept.get(id(key))
        if hit is None or hit[0] is not key:
            hit = self._kept[id(key)] = (key, self._compute(key))
        return hit[1]


def context_memo(ctx: ScanContext, name: str, compute: Callable[[K], V]) -> IdentityMemo[K, V]:
    """The scan's ``IdentityMemo`` called ``name``, made with ``compute`` on first use."""
    memo: IdentityMemo[K, V] | None = ctx._cache.get(name)
    if memo is None:
        memo = ctx._cache[name] = IdentityMemo(compute)
    return memo


# Tokens of loaded states are parsed once per distinct mark, as the store's tokens are.
_INTERNER = MarkInterner()


# through sessions parsed once per distinct text (every pupil's state has one, mostly the same)
_SESSION_KEYS: dict[str, SessionKey] = {}


def session_key_text(key: SessionKey | None) -> str | None:
    """'2025-11-03AM' for (2025-11-03, AM): the through session in a dumped state."""
    return None if key is None else f"{key[0].isoformat()}{key[1].value}"


def session_key_from(text: str | None) -> SessionKey | None:
    if text is None:
        return None
    key = _SESSION_KEYS.get(text)
    if key is None:
        key = _SESSION_KEYS[text] = (date.fromisoformat(text[:10]), Session(text[10:]))
    return key


def load_mark(token: str) -> SessionMark:
    """The shared SessionMark of a dumped mark token."""
    return _INTERNER[token]


def advance(through: SessionKey | None, ctx: ScanContext) -> SessionKey:
    """The new ``through`` after a fold: every mark up to the last day of data has been seen."""
    night: SessionKey = (ctx.data_end, Session.PM)
    return night if through is None or through < night else through


class PupilFold(Generic[S]):
    """One rule's per-pupil state: see the module docstring for the contract.

    A fold is a class attribute of its rule (``fold = SomeFold()``); ``rule`` is an instance of
    that rule class, so findings come from ``Rule.finding`` with the rule's code and title.
    """

    _owner: type[Rule] | None = None
    _rule: Rule | None = None
    #: folds with the same key fold alike (same initial, fold and dump; ATT002 and ATT003): a
    #: nightly run given states equal to another's that night reuses its fold and only judges
    share_key: str | None = None
    #: False for a rule that judges marks without the pupil's record (MRK001, MRK002): it also
    #: folds the marks of a pupil id with no record (see ``pupils_for``)
    needs_record = True

    def __set_name__(self, owner: type[Rule], name: str) -> None:
        self._owner = owner

    @property
    def rule(self) -> Rule:
        if self._rule is None:
            assert self._owner is not None, "a PupilFold must be a Rule's class attribute"
            self._rule = self._owner()
        return self._rule

    def initial(self, ctx: ScanContext, pupil: Pupil) -> S:
        raise NotImplementedError

    def fold(self, ctx: ScanContext, pupil: Pupil, state: S, marks: Sequence[SessionMark]) -> S:
        raise NotImplementedError

    def through(self, state: S) -> SessionKey | None:
        raise NotImplementedError

    def findings(self, ctx: ScanContext, pupil: Pupil, state: S) -> Iterable[Finding]:
        raise NotImplementedError

    def school_findings(self, ctx: ScanContext, states: Mapping[str, S]) -> Iterable[Finding]:
        return ()

    def dump(self, state: S) -> Any:
        """JSON-safe: a list whose first item is ``session_key_text(through)`` (the nightly run
        keeps it null while the pupil's through is the rule's, see ``fold_runs``)."""
        raise NotImplementedError

    def load(self, data: Any) -> S:
        raise NotImplementedError

    # -- what lets a nightly run skip a pupil (``fold_runs``) -------------------------------

    def blank(self, state: S) -> bool:
        """Whether the state is ``initial`` folded over marks that left nothing but its
        through: such a pupil is not stored, and is judged only if ``blank_judged`` says so.
        False (the default): every pupil's state is kept."""
        return False

    def night_pupils(self, ctx: ScanContext, night: NightMarks) -> set[str] | None:
        """The pupils whose state the night's marks can change beyond its through (a superset
        is fine); None (the default): fold every pupil. Only a fold whose state, apart from
        its through, changes with its marks alone (never with the scan day) may say less."""
        return None

    def fold_dumped(
        self, ctx: ScanContext, pupil: Pupil, data: Any, marks: Sequence[SessionMark]
    ) -> Any | None:
        """``dump(fold(ctx, pupil, load(data), marks))`` worked on the dumped state itself, for
        the common case of a fold whose every pupil changes every night (a new list: ``data``
        is left as it is). A null through is the rule's, before the night and after it, so it
        stays null. None (the default, or a case it does not handle): load, fold and dump. It
        must never give a blank state."""
        return None

    def quiet(self, ctx: ScanContext, pupil: Pupil, data: Any) -> bool:
        """Whether the dumped state surely gives no finding as of ``ctx`` (it is then neither
        loaded nor judged). Only for a fold without ``school_findings``. Default False."""
        return False

    def school_findings_dumped(
        self, ctx: ScanContext, entries: Mapping[str, Any]
    ) -> Iterable[Finding] | None:
        """``school_findings`` judged on the dumped states of the pupils with a non-blank one
        (``entries``: a null through is the rule's), for a fold whose pupils give no finding of
        their own, so a nightly run neither loads nor judges them one by one. None (the
        default): load and judge."""
        return None

    def blank_judged(self, ctx: ScanContext) -> Iterable[str]:
        """Pupil ids whose blank state can still find something (LAR001: a recorded expected
        sickness). Default: none."""
        return ()


@dataclass(frozen=True)
class NightMarks:
    """Every pupil's marks strictly after one session (``after``), read once per scan and
    shared by the folding rules: ``by_pupil`` (only pupils with such marks) and ``pupils_of``,
    each distinct shared mark to the pupils with it, so a rule about a few codes finds its
    pupils with a look at each distinct mark (a night holds a few dozen), not at each pupil."""

    after: SessionKey | None
    by_pupil: dict[str, Sequence[SessionMark]]
    pupils_of: dict[SessionMark, list[str]]

    def pupils_with(self, keep: Callable[[SessionMark], bool]) -> set[str]:
        """The pupils with a mark that ``keep`` accepts (asked once per distinct mark)."""
        out: set[str] = set()
        for mark, pupils in self.pupils_of.items():
            if keep(mark):
                out.update(pupils)
        return out


def night_marks(ctx: ScanContext, after: SessionKey | None, ids: Iterable[str]) -> NightMarks:
    """The marks after ``after`` of the context's pupils and of ``ids`` (cached on the context
    per ``after``: every folding rule of a nightly scan reads the same night)."""
    cache: dict[SessionKey | None, NightMarks] = ctx._cache.setdefault("night_marks", {})
    night = cache.get(after)
    if night is None:
        known = ctx.pupils_by_id
        by_pupil: dict[str, Sequence[SessionMark]] = {}
        for pid in (*known, *(i for i in ids if i not in known)):
            marks = ctx.pupil_marks_after(pid, after)
            if marks:
                by_pupil[pid] = marks
        pupils_of: dict[SessionMark, list[str]] = {}
        for pid, marks in by_pupil.items():
            for mark in marks:
                found = pupils_of.get(mark)
                if found is None:
                    pupils_of[mark] = [pid]
                else:
                    found.append(pid)
        night = cache[after] = NightMarks(after, by_pupil, pupils_of)
    return night


def pupils_for(ctx: ScanContext, fold: PupilFold[Any], stored: Iterable[str] = ()) -> list[Pupil]:
    """The pupils whose states ``fold`` keeps: every pupil of the context and, for a fold that
    does not need the record, a bare record for each pupil id with marks (in the context, or a
    state in ``stored``) but no record (a pupil record the sync quarantined), since their marks
    are judged all the same."""
    pupils = list(ctx.pupils)
    if not fold.needs_record:
        known = set(ctx.pupils_by_id)
        for pid in (*ctx.marks_by_pupil, *stored):
            if pid not in known:
                known.add(pid)
                pupils.append(Pupil(id=pid, school_id=ctx.school_id, mis_id=pid))
    return pupils


def fold_school(ctx: ScanContext, fold: PupilFold[S]) -> dict[str, S]:
    """Every pupil's state folded from ``initial`` over all of their marks in the context."""
    return {
        pupil.id: fold.fold(ctx, pupil, fold.initial(ctx, pupil), ctx.pupil_marks(pupil.id))
        for pupil in pupils_for(ctx, fold)
    }


def findings_of(ctx: ScanContext, fold: PupilFold[S], states: Mapping[str, S]) -> Iterator[Finding]:
    """The findings of folded states: each pupil's, then the school's."""
    for pupil in pupils_for(ctx, fold, states):
        state = states.get(pupil.id)
        if state is not None:
            yield from fold.findings(ctx, pupil, state)
    yield from fold.school_findings(ctx, states)


def check_by_folding(ctx: ScanContext, fold: PupilFold[Any]) -> Iterator[Finding]:
    """A folding rule's ``check``: fold every pupil's marks from ``initial``, then judge."""
    yield from findings_of(ctx, fold, fold_school(ctx, fold))


# -- the fold most mark rules use: keep the few marks of the codes the rule judges -------------


@dataclass
class KeptMarks:
    """The pupil's marks of some codes, in (date, session) order, and the last folded session."""

    through: SessionKey | None = None
    marks: list[SessionMark] = field(default_factory=list)


def marks_of_codes(
    ctx: ScanContext, pupil_id: str, marks: Sequence[SessionMark], codes: Iterable[str]
) -> list[SessionMark]:
    """``marks`` with one of ``codes``, in order. When ``marks`` is the context's own tuple for
    the pupil (a full scan), the context's per-code grouping (built once, shared by the rules)
    answers; otherwise one pass over the few marks of a night."""
    if marks is ctx.marks_by_pupil.get(pupil_id):
        return ctx.marks_with_codes(pupil_id, codes)
    wanted = frozenset(codes)
    return [m for m in marks if m.code in wanted]


def until(marks: list[SessionMark], last_day: date) -> list[SessionMark]:
    """The sorted ``marks`` dated on or before ``last_day``."""
    end = bisect.bisect_right(marks, (last_day, Session.PM, "\uffff"))
    return marks if end == len(marks) else marks[:end]


class MarksJudge(Protocol):
    """A rule that judges a pupil from the marks its ``CodeMarksFold`` kept."""

    def judge(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> Iterable[Finding]: ...


class CodeMarksFold(PupilFold[KeptMarks]):
    """Keeps the pupil's marks whose code the rule judges (``codes``, or ``select``): N for
    MRK001, I for LAR001, a code outside its regulations for MRK002... Rare marks, so the state
    stays small, and ``judge`` reruns the rule's own logic on
    them as of ``ctx.as_of`` (by default the rule's own ``judge(ctx, pupil, marks)``).

    ``complete_days_only``: the rule judges marks up to the last day of data only, so later marks
    are left for a later night (the default); false for a rule that judges marks of any date.
    """

    complete_days_only = True
    #: a rule that can find something without any of the marks (LAR001's recorded expected
    #: sickness) is asked for every pupil
    judge_without_marks = False

    def codes(self, ctx: ScanContext) -> Iterable[str]:
        """The codes of the marks kept (or override ``select``)."""
        raise NotImplementedError

    def select(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> list[SessionMark]:
        """Of ``marks``, in order, those the state keeps: by default those with ``codes``."""
        return marks_of_codes(ctx, pupil.id, marks, self.codes(ctx))

    def judge(
        self, ctx: ScanContext, pupil: Pupil, marks: Sequence[SessionMark]
    ) -> Iterable[Finding]:
        """The pupil's findings from the kept marks: the rule's own ``judge`` by default."""
        return cast(MarksJudge, self.rule).judge(ctx, pupil, marks)

    def initial(self, ctx: ScanContext, pupil: Pupil) -> KeptMarks:
        return KeptMarks()

    def fold(
        self, ctx: ScanContext, pupil: Pupil, state: KeptMarks, marks: Sequence[SessionMark]
    ) -> KeptMarks:
        chosen = self.select(ctx, pupil, marks)
        if self.complete_days_only:
            chosen = until(chosen, ctx.data_end)
        elif marks:
            last = (marks[-1].date, marks[-1].session)
            state.through = last if state.through is None or state.through < last else state.through
        state.marks.extend(chosen)
        state.through = advance(state.through, ctx)
        return state

    def through(self, state: KeptMarks) -> SessionKey | None:
        return state.through

    def findings(self, ctx: ScanContext, pupil: Pupil, state: KeptMarks) -> Iterable[Finding]:
        if not state.marks and not self.judge_without_marks:
            return ()
        return self.judge(ctx, pupil, state.marks)

    def blank(self, state: KeptMarks) -> bool:
        return not state.marks

    def keeps(self, ctx: ScanContext, mark: SessionMark) -> bool:
        """Whether ``select`` may keep the mark, for some pupil (a superset is fine): by
        default, a mark of ``codes``. Asked once per distinct mark of a night."""
        key = f"fold-codes:{id(self)}"
        codes: frozenset[str] | None = ctx._cache.get(key)
        if codes is None:
            codes = ctx._cache[key] = frozenset(self.codes(ctx))
        return mark.code in codes

    def night_pupils(self, ctx: ScanContext, night: NightMarks) -> set[str] | None:
        """The pupils with a mark ``keeps`` accepts; for a rule that judges marks of any date,
        also those with a mark after the last day of data (their through goes past it)."""
        last: SessionKey = (ctx.data_end, Session.PM)
        if self.complete_days_only:
            return night.pupils_with(lambda m: m.date <= ctx.data_end and self.keeps(ctx, m))
        return night.pupils_with(lambda m: (m.date, m.session) > last or self.keeps(ctx, m))

    def dump(self, state: KeptMarks) -> Any:
        # [through, mark tokens...]: a flat list, since most pupils' state is only the through
        return [
            session_key_text(state.through),
            *(mark_token(m.date, m.session.value, m.code, m.minutes_late) for m in state.marks),
        ]

    def load(self, data: Any) -> KeptMarks:
        # the tokens looked up in C: every stored state of a kept mark is loaded every night
        return KeptMarks(
            through=session_key_from(data[0]),
            marks=list(map(_INTERNER.__getitem__, data[1:])),
        )
