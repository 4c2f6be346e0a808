"""GO 4 Schools-style adapter ("customer v1"): see docs/adapters/go4schools.md."""

from registerwatch.adapters.go4schools.adapter import Go4SchoolsAdapter
from registerwatch.adapters.go4schools.client import (
    FACTS,
    CursorPaginator,
    Go4SchoolsClient,
    ResourceNotFoundError,
    normalise_academic_year,
)

__all__ = [
    "FACTS",
    "CursorPaginator",
    "Go4SchoolsAdapter",
    "Go4SchoolsClient",
    "ResourceNotFoundError",
    "normalise_academic_year",
]
