"""Folder transport: drop the return into a directory the receiver collects from (an SFTP-synced
folder, a share).

The file is ``<idempotency key>.xml`` (plus ``<key>.csv`` when a CSV was written beside the
artefact), written atomically with mode 0600 (``files.write_private``: a collector never sees
half a file). The name is the key, so a rerun after an interrupted run replaces the same file
instead of adding a second return. The CSV goes first and the XML last, so a collector that
picks up ``*.xml`` finds its companion already there.

The receipt is the XML file's path, and the item is ``sent``: nothing confirms collection.
"""

from __future__ import annotations

from pathlib import Path

from registerwatch.files import write_private
from registerwatch.outbox.transports.base import Receipt, Submission, SubmissionDeferredError


class FolderTransport:
    kind = "folder"

    def __init__(self, path: str | Path, *, label: str, toml_key: str) -> None:
        self.path = Path(path)
        self.label = label
        self.toml_key = toml_key

    def describe(self) -> str:
        return f"write into {self.path}"

    def close(self) -> None:
        pass

    def send(self, submission: Submission) -> Receipt:
        target = self.path / f"{submission.file_stem}.xml"
        try:
            if submission.csv is not None:
                write_private(self.path / f"{submission.file_stem}.csv", submission.csv)
            write_private(target, submission.xml)
        except OSError as exc:
            # A full disk or an unmounted share: every item would fail the same way.
            raise SubmissionDeferredError(
                f"{self.label}: {submission.return_kind} item {submission.item_id} not written: "
                f"cannot write into {self.path} ({exc.strerror or type(exc).__name__}); check "
                f"path in [{self.toml_key}]",
                transport_wide=True,
                tries=1,
            ) from None
        return Receipt(reference=str(target), acknowledged=False, tries=1)
