"""Arbor-style MIS adapter (REST v2, HTTP Basic): see docs/adapters/arbor.md."""

from registerwatch.adapters.arbor.adapter import ArborAdapter
from registerwatch.adapters.arbor.client import (
    ArborClient,
    ArborNotFoundError,
    ListingChangedError,
    PageNumberPaginator,
)

__all__ = ["ArborAdapter", "ArborClient", "ArborNotFoundError", "ListingChangedError",
           "PageNumberPaginator"]
