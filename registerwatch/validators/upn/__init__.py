"""UPN family: every pupil's Unique Pupil Number is well formed and unique."""

from __future__ import annotations

from registerwatch.validators.base import Rule
from registerwatch.validators.upn.UPN001 import InvalidUpn
from registerwatch.validators.upn.UPN002 import DuplicateUpn


def get_rules() -> list[type[Rule]]:
    return [InvalidUpn, DuplicateUpn]
