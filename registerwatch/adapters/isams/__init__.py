"""iSAMS-style adapter: REST (OAuth2 client credentials) and the Batch XML API.

See ``docs/adapters/isams.md`` for what is read, the field mapping and what is inferred.
"""

from registerwatch.adapters.isams.adapter import BATCH_WINDOW_DAYS, IsamsAdapter
from registerwatch.adapters.isams.client import (
    FACTS,
    IsamsClient,
    IsamsMessage,
    MethodsNotAllocatedError,
    XmlDocumentError,
    parse_message,
    parse_xml,
)
from registerwatch.adapters.isams.streams import DEFAULT_PM_CUTOFF, session_of

__all__ = [
    "BATCH_WINDOW_DAYS",
    "DEFAULT_PM_CUTOFF",
    "FACTS",
    "IsamsAdapter",
    "IsamsClient",
    "IsamsMessage",
    "MethodsNotAllocatedError",
    "XmlDocumentError",
    "parse_message",
    "parse_xml",
    "session_of",
]
