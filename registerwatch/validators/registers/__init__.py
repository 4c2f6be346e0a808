"""Registers family: was each register taken, saved, and closed on time (SI 2024/208 reg 10(1))."""

from __future__ import annotations

from registerwatch.validators.base import Rule
from registerwatch.validators.registers.REG001 import RegisterNotTaken
from registerwatch.validators.registers.REG002 import RegisterNotSaved
from registerwatch.validators.registers.REG003 import RegisterClosedLate
from registerwatch.validators.registers.REG004 import NoShowOnStartingDay


def get_rules() -> list[type[Rule]]:
    return [RegisterNotTaken, RegisterNotSaved, RegisterClosedLate, NoShowOnStartingDay]
