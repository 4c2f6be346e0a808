"""``[ledger]``: the HMAC key that signs the amendment ledger's chain, and the tip sink.

    [ledger]
    key_id = "2027-01"                           # recorded on every entry it signs
    key_file = "/etc/registerwatch/ledger.key"   # or key_env = "REGISTERWATCH_LEDGER_KEY"
    keyed_from_seq = 1                           # optional: entries from here on must be keyed

    [[ledger.retired_keys]]                      # a key rotated out: verifies its old entries
    key_id = "2026-09"
    key_file = "/etc/registerwatch/ledger-2026-09.key"

    [ledger.sink]                                # each run's tip, outside the store
    file = "/var/log/registerwatch-tips/tips.jsonl"   # or url = "https://audit.example/tips"

Without ``[ledger]`` the chain is plain SHA-256 (the embedded demo needs no setup); ``ledger
verify`` says so. Keys live outside the store, like every other secret: read from the file or
variable named here, never written into the config.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, model_validator

from registerwatch import netguard
from registerwatch.config.credentials import read_credential
from registerwatch.config.types import ConfigPath, EnvVarName, Section
from registerwatch.errors import ConfigError
from registerwatch.store.ledger_keys import MIN_KEY_BYTES, LedgerKeys
from registerwatch.store.ledger_sink import FileTipSink, HttpTipSink, TipSink

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_key_id(value: str) -> str:
    if not _KEY_ID.fullmatch(value):
        raise ValueError(
            "must be a short name for the key (letters, digits, '.', '_', '-'; at most 64), "
            'e.g. "2027-01"'
        )
    return value


KeyId = Annotated[str, AfterValidator(_check_key_id)]


class LedgerKeySettings(Section):
    """One key: its id and where its secret is (an environment variable or a file)."""

    key_id: KeyId
    key_env: EnvVarName | None = None
    key_file: ConfigPath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> LedgerKeySettings:
        if (self.key_env is None) == (self.key_file is None):
            raise ValueError("set exactly one of key_env and key_file")
        return self

    def read(self, environ: Mapping[str, str]) -> bytes:
        secret: SecretStr = read_credential(
            f"ledger key {self.key_id!r}",
            "ledger HMAC key",
            self.key_env,
            self.key_file,
            environ,
        )
        value = secret.get_secret_value().encode("utf-8")
        if len(value) < MIN_KEY_BYTES:
            where = self.key_env or self.key_file
            raise ConfigError(
                f"ledger key {self.key_id!r} ({where}) is shorter than {MIN_KEY_BYTES} "
                "characters: make one with `openssl rand -hex 32`"
            )
        return value


class LedgerSinkSettings(Section):
    """``[ledger.sink]``: a file outside the store's folder, or an HTTP endpoint."""

    file: ConfigPath | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    token_env: EnvVarName | None = None
    token_file: ConfigPath | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 15.0
    deadline_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @model_validator(mode="after")
    def _one_target(self) -> LedgerSinkSettings:
        if (self.file is None) == (self.url is None):
            raise ValueError("set exactly one of file and url")
        if self.file is not None and (self.token_env or self.token_file):
            raise ValueError("token_env/token_file are for a url sink only")
        return self


class LedgerSettings(Section):
    """``[ledger]``: see the module docs."""

    key_id: KeyId | None = None
    key_env: EnvVarName | None = None
    key_file: ConfigPath | None = None
    keyed_from_seq: Annotated[int, Field(ge=1)] | None = None
    retired_keys: list[LedgerKeySettings] = Field(default_factory=list)
    sink: LedgerSinkSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> LedgerSettings:
        given = self.key_env is not None or self.key_file is not None
        if self.key_id is None and given:
            raise ValueError("key_env/key_file need a key_id (recorded on every entry it signs)")
        if self.key_id is not None and not given:
            raise ValueError("key_id needs key_env or key_file (where the key's secret is)")
        if self.key_env is not None and self.key_file is not None:
            raise ValueError("set only one of key_env and key_file")
        ids = [k.key_id for k in self.retired_keys] + ([self.key_id] if self.key_id else [])
        if len(ids) != len(set(ids)):
            raise ValueError("each key_id may appear once (current key and retired_keys)")
        if self.keyed_from_seq is not None and not ids:
            raise ValueError("keyed_from_seq needs a key (key_id and key_env/key_file)")
        return self

    @property
    def keyed(self) -> bool:
        return self.key_id is not None or bool(self.retired_keys)

    def keys(self, environ: Mapping[str, str] | None = None) -> LedgerKeys | None:
        """The keys, read now; None when no key is configured (a plain SHA-256 chain).
        CredentialError/ConfigError naming the key when one cannot be read."""
        if not self.keyed:
            return None
        env: Mapping[str, str] = os.environ if environ is None else environ
        secrets: dict[str, bytes] = {}
        if self.key_id is not None:
            current = LedgerKeySettings(
                key_id=self.key_id, key_env=self.key_env, key_file=self.key_file
            )
            secrets[self.key_id] = current.read(env)
        for retired in self.retired_keys:
            secrets[retired.key_id] = retired.read(env)
        return LedgerKeys(self.key_id, secrets, self.keyed_from_seq)

    def tip_sink(self, store_url: str, environ: Mapping[str, str] | None = None) -> TipSink | None:
        """The configured tip sink (None: none). A file sink inside the store's own folder is a
        ConfigError: whoever can rewrite the store could rewrite the sink beside it."""
        if self.sink is None:
            return None
        if self.sink.file is not None:
            store_dir = _sqlite_folder(store_url)
            sink_dir = self.sink.file.expanduser().resolve().parent
            if store_dir is not None and (sink_dir == store_dir or store_dir in sink_dir.parents):
                raise ConfigError(
                    f"ledger.sink.file: {self.sink.file} is in the store's folder {store_dir}; "
                    "put the tip sink somewhere the store's owner cannot rewrite (another "
                    "folder, another machine's share)"
                )
            return FileTipSink(self.sink.file)
        assert self.sink.url is not None
        env: Mapping[str, str] = os.environ if environ is None else environ
        token = None
        if self.sink.token_env is not None or self.sink.token_file is not None:
            token = read_credential(
                "ledger.sink", "tip sink token", self.sink.token_env, self.sink.token_file, env
            ).get_secret_value()
        limits = netguard.NetLimits(
            connect=min(5.0, self.sink.timeout_seconds),
            read=self.sink.timeout_seconds,
            total=self.sink.deadline_seconds,
            max_bytes=64 * 1024 * 1024,
        )
        return HttpTipSink(self.sink.url, token=token, limits=limits)


def _sqlite_folder(store_url: str) -> Path | None:
    match = re.match(r"sqlite(?:\+\w+)?:///(.+?)(?:\?.*)?$", store_url)
    if match is None or match.group(1) == ":memory:" or match.group(1).startswith("file:"):
        return None
    return Path(match.group(1)).expanduser().resolve().parent
