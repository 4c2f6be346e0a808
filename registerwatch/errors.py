"""One exception tree for the whole product.

Every exception says what the caller (usually a data manager or an integration engineer) should
do next. Only ``cli.py`` turns them into messages and exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence


class RegisterwatchError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(RegisterwatchError):
    """The configuration file is missing, unreadable or invalid: fix the listed TOML paths."""

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        self.errors = list(errors)
        detail = "".join(f"\n  - {e}" for e in self.errors)
        super().__init__(message + detail)


class CredentialError(ConfigError):
    """A credential named in the config could not be read: set the variable or create the file."""


class InvalidRecord(RegisterwatchError):
    """A record that cannot be mapped to the common schema; it is quarantined, never fatal."""

    def __init__(
        self,
        reason: str,
        *,
        record_ref: str | None = None,
        field: str | None = None,
        resource: str | None = None,
    ) -> None:
        self.reason = reason
        self.record_ref = record_ref
        self.field = field
        self.resource = resource
        where = ", ".join(
            p
            for p in (
                f"resource {resource}" if resource else "",
                f"record {record_ref}" if record_ref else "",
                f"field {field}" if field else "",
            )
            if p
        )
        super().__init__(f"{where}: {reason}" if where else reason)


class ApiError(RegisterwatchError):
    """A problem talking to an MIS API."""


class RetriableApiError(ApiError):
    """A transient MIS failure (429, 5xx, timeout, vendor deadlock): retry with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class MisTooSlowError(RetriableApiError):
    """The MIS (or a receiver) did not finish answering within the configured wall-clock
    deadline: this school fails for this run and the others go on; the next run tries again.
    Raise ``deadline_seconds`` for this vendor if the MIS is only slow, not stuck."""


class StopRequestedError(RegisterwatchError):
    """The process was asked to stop (SIGTERM, Ctrl-C) while a request was in flight."""


class FatalApiError(ApiError):
    """An MIS failure that retrying cannot fix (bad credentials, missing permission)."""


class UnsafeResponseError(FatalApiError):
    """A response broke a safety limit (larger than max_response_mb after decompression,
    JSON nested too deeply, a redirect to another host): refused for this run, never parsed."""


class PermissionGapError(FatalApiError):
    """The MIS answered 200 with nothing where there must be data: the API user lacks a
    permission. Ask the school's MIS administrator to grant it; nothing was changed."""


class PagingError(FatalApiError):
    """The MIS broke its paging contract (a cursor that does not advance, a page that repeats)."""


class StoreError(RegisterwatchError):
    """The store could not be opened or is at the wrong schema version: run `registerwatch db upgrade`."""


class LedgerIntegrityError(StoreError):
    """The amendment ledger's hash chain is broken at the named entry."""


class CalendarError(RegisterwatchError):
    """A date asked of the school calendar that it cannot answer (no terms cover it)."""


class ExportValidationError(RegisterwatchError):
    """A rendered return does not validate against its XSD; nothing was written or queued."""

    def __init__(self, message: str, errors: Sequence[str] = ()) -> None:
        self.errors = list(errors)
        detail = "".join(f"\n  - {e}" for e in self.errors)
        super().__init__(message + detail)


class SubmissionError(RegisterwatchError):
    """A return could not be submitted; it stays in the outbox with the last error."""


class RunLockedError(RegisterwatchError):
    """Another registerwatch run holds the lock: wait for it to finish or check `registerwatch runs`."""


class InputFileError(RegisterwatchError):
    """An input file (a CTF, say) could not be read or was refused: fix or remove the named file."""
