"""The adapter framework every vendor builds on (see ``docs/adapters/new-vendor.md``).

- ``contract``: the ``Adapter`` protocol sync calls, ``Batch`` and ``Quarantined``, and the
  ``VendorFacts`` each vendor declares once.
- ``http``: the one HTTP client (auth hooks, timeouts, the shared retry policy, request
  counting, one ``classify(response)`` hook per vendor).
- ``streams``: the one stream base class and quarantine policy.
- ``pagination``: page-number, offset, cursor and link paginators, and the one
  "data moved while paging, read it again" policy.
- ``mapping``: codes, dates and instants, required fields, the repeated-marks rule.
- ``checked``: ``build_mark``, a ``Mark`` without re-validating values already checked.
"""

from registerwatch.adapters.base.checked import build_mark
from registerwatch.adapters.base.contract import (
    Adapter,
    AdapterBase,
    Batch,
    Capabilities,
    Quarantined,
    VendorFacts,
)
from registerwatch.adapters.base.http import DEFAULT_TIMEOUT, ApiClient, body_summary, path_of
from registerwatch.adapters.base.inflight import (
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    Prefetcher,
    fetch_in_order,
)
from registerwatch.adapters.base.mapping import (
    dedupe_marks,
    drop_repeats,
    normalise_code,
    parse_date,
    parse_instant,
    require,
)
from registerwatch.adapters.base.pagination import (
    MAX_LISTING_READS,
    MAX_PAGES,
    MAX_RECORDS_PER_PAGE,
    CursorPaginator,
    LinkPaginator,
    ListingChangedError,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    check_page_size,
    read_consistently,
)
from registerwatch.adapters.base.streams import (
    Stream,
    quarantine,
    raw_text,
    validation_error,
)
from registerwatch.retry import RetryPolicy, parse_retry_after

__all__ = [
    "DEFAULT_MAX_CONCURRENT_REQUESTS",
    "DEFAULT_TIMEOUT",
    "MAX_LISTING_READS",
    "MAX_PAGES",
    "MAX_RECORDS_PER_PAGE",
    "Adapter",
    "AdapterBase",
    "ApiClient",
    "Batch",
    "Capabilities",
    "CursorPaginator",
    "LinkPaginator",
    "ListingChangedError",
    "OffsetPaginator",
    "PageNumberPaginator",
    "Paginator",
    "Prefetcher",
    "Quarantined",
    "RetryPolicy",
    "Stream",
    "VendorFacts",
    "body_summary",
    "build_mark",
    "check_page_size",
    "dedupe_marks",
    "drop_repeats",
    "fetch_in_order",
    "normalise_code",
    "parse_date",
    "parse_instant",
    "parse_retry_after",
    "path_of",
    "quarantine",
    "raw_text",
    "read_consistently",
    "require",
    "validation_error",
]
