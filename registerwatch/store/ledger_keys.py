"""The ledger's HMAC keys: the one new entries are signed with, and the retired ones still
needed to check older entries.

The keys are read from files or environment variables the config names (``[ledger]``), never
from the store: someone who can rewrite the store but cannot read the key cannot recompute the
chain. Each entry records the id of the key that signed it, so a key can be rotated: new entries
are signed with the new key, and the old key stays configured (as a retired key) only to verify
the entries it signed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
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

    def mac(self, key_id: str) -> Callable[[bytes], str] | None:
        """HMAC-SHA256 (hex) under the key ``key_id``; None when it is not configured."""
        secret = self.secrets.get(key_id)
        if secret is None:
            return None
        cache: dict[str, Callable[[bytes], str]] = self.__dict__.setdefault("_macs", {})
        if key_id not in cache:
            cache[key_id] = hmac_sha256_hex(secret)
        return cache[key_id]

    def __repr__(self) -> str:  # never the secrets
        return f"LedgerKeys(signing_id={self.signing_id!r}, key_ids={sorted(self.secrets)!r})"


def hmac_sha256_hex(secret: bytes) -> Callable[[bytes], str]:
    """HMAC-SHA256 as RFC 2104 defines it (``hmac.new(secret, msg, sha256).hexdigest()``), with
    the padded key's two hash states computed once: a first sync signs ~200k entries, and
    ``hmac.digest`` sets the key up again for each (2.4x the cost of this)."""
    block = hashlib.sha256().block_size
    key = hashlib.sha256(secret).digest() if len(secret) > block else secret
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(key.translate(hmac.trans_36))
    outer = hashlib.sha256(key.translate(hmac.trans_5C))

    def mac(message: bytes) -> str:
        step = inner.copy()
        step.update(message)
        result = outer.copy()
        result.update(step.digest())
        return result.hexdigest()

    return mac
