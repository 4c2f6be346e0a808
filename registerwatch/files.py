"""Writing output files that hold pupil data: atomically, and readable by the owner only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_FILE_MODE = 0o600


def write_private(path: str | Path, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` with mode 0600, atomically.

    The bytes go to a temporary file in the same folder (created 0600 by mkstemp), are flushed
    to disk, then renamed over ``path``: a reader never sees half a file, and a killed run
    leaves either the old file or the new one.
    """
    target = Path(path)
    # A folder made for pupil data is the owner's alone too.
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, PRIVATE_FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# A CSV cell a spreadsheet would run as a formula starts with one of these (OWASP "CSV
# injection"); names, notes, phone numbers and MIS ids are not ours to trust.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with an apostrophe in front when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
