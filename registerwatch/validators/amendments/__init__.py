"""Amendments family: every change to a register entry is recorded, and no entry is lost."""

from __future__ import annotations

from registerwatch.validators.amendments.AMD001 import IncompleteAmendmentRecord
from registerwatch.validators.amendments.AMD002 import UnrecordedRegisterChange
from registerwatch.validators.amendments.AMD003 import RegisterEntryDeleted
from registerwatch.validators.base import Rule


def get_rules() -> list[type[Rule]]:
    return [IncompleteAmendmentRecord, UnrecordedRegisterChange, RegisterEntryDeleted]
