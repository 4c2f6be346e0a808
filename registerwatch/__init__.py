"""registerwatch: keeps English schools' attendance registers lawful."""

__version__ = "0.1.0"
