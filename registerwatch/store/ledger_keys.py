"""The ledger's HMAC keys: the one new entries are signed with, and the retired ones still
needed to check older entries.

The keys are read from files or environment variables the config names (``[ledger]``), never
from the store: someone who can rewrite the store but cannot read the key cannot recompute the
chain. Each entry records the id of the key that signed it, so a key can be rotated: new entries
are signed with the new key, and the old key stays configured (as a retired key) only to verify
the entries it signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from registerwatch.errors import StoreError

MIN_KEY_BYTES = 32  # 256 bits: HMAC-SHA256's own strength; `openssl rand -hex 32` gives 64


@dataclass(frozen=True)
class LedgerKeys:
    """``signing_id``: the key new entries are signed with (None: verify only). ``secrets``:
    every configured key by id, the signing key included. ``keyed_from_seq``: entries from this
    seq on must be keyed (an unkeyed one there is a rewrite, even before any keyed entry)."""

    signing_id: str | None
    secrets: Mapping[str, bytes] = field(repr=False)
    keyed_from_seq: int | None = None

    def __post_init__(self) -> None:
        if self.signing_id is not None and self.signing_id not in self.secrets:
            raise StoreError(f"ledger key {self.signing_id!r} is named but has no secret")
        for key_id, secret in self.secrets.items():
            if len(secret) < MIN_KEY_BYTES:
                raise StoreError(
                    f"ledger key {key_id!r} is shorter than {MIN_KEY_BYTES} bytes: make one with "
                    "`openssl rand -hex 32`"
                )

    def secret(self, key_id: str) -> bytes | None:
        return self.secrets.get(key_id)

    def __repr__(self) -> str:  # never the secrets
        return f"LedgerKeys(signing_id={self.signing_id!r}, key_ids={sorted(self.secrets)!r})"
