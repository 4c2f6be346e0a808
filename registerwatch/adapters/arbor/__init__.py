"""Arbor-style MIS adapter (REST v2, HTTP Basic): see docs/adapters/arbor.md."""

from registerwatch.adapters.arbor.adapter import ArborAdapter
from registerwatch.adapters.arbor.client import (
    FACTS,
    ArborClient,
    ArborNotFoundError,
    ArborPaginator,
)
from registerwatch.adapters.base import ListingChangedError

__all__ = [
    "FACTS",
    "ArborAdapter",
    "ArborClient",
    "ArborNotFoundError",
    "ArborPaginator",
    "ListingChangedError",
]
