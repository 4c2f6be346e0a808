"""Build the adapter a school's ``[schools.mis]`` table describes.

Turns settings into constructor arguments for the adapter each vendor's FACTS names
(``adapters/vendors.py``: ``adapter``, ``transport``, ``sync_options``). Credentials are read here, at use time (never when the config is loaded), and handed
to the adapter as plain strings; ``credential_hint`` names the environment variables or files
they came from, so a 401 says which secret to check ("check OAKFIELD_ARBOR_USERNAME /
OAKFIELD_ARBOR_PASSWORD"), never the secret itself.

Adapter modules are imported only for the vendor asked for: a CLI run that syncs one CTF school
does not import the HTTP adapters.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from registerwatch.adapters.base import Adapter
from registerwatch.adapters.vendors import vendor_facts
from registerwatch.config import (
    MisSettings,
    SchoolSettings,
    SyncSettings,
)
from registerwatch.errors import ConfigError

# Connect timeout, in seconds, for every MIS request. The read timeout is the config's
# [sync] timeout_seconds; a host that does not even accept a connection within this is down, and
# waiting the full read timeout for it would only delay the retry.
CONNECT_TIMEOUT_SECONDS = 5.0

# Constructor arguments only HTTP adapters take. build_adapter drops them (rather than failing)
# for an adapter that does not take them, so a caller can pass one set of overrides (a test's
# fast RetryPolicy, a no-op sleep) for every school whatever its vendor.
HTTP_OPTIONS = frozenset({"timeout", "retry", "sleep"})


def credential_hint(mis: MisSettings) -> str:
    """Where this school's secrets come from, for error messages: env var names or file paths.

    Only the names are used, never the values. For iSAMS, which accepts either a client id and
    secret or an API key, only the keys the config actually sets are named.
    """
    sources: list[str] = []
    for mode in vendor_facts(mis.vendor).credentials:
        for cred in mode:
            env_name = getattr(mis, f"{cred}_env")
            file = getattr(mis, f"{cred}_file")
            if env_name is not None:
                sources.append(env_name)
            elif file is not None:
                sources.append(f"the file {file}")
    return " / ".join(sources) if sources else f"the {mis.vendor.value} credentials"


def _plain_credentials(school: SchoolSettings, environ: Mapping[str, str] | None) -> dict[str, str]:
    # Raises CredentialError naming the school and the variable or file to set.
    return {
        name: secret.get_secret_value() for name, secret in school.mis.credentials(environ).items()
    }


def _file_kwargs(
    school: SchoolSettings, sync: SyncSettings, environ: Mapping[str, str] | None
) -> dict[str, Any]:
    # The config guarantees a path for a file school; the school's own LAESTAB and URN say
    # whose registers the files' attendance blocks are and which files are addressed to it.
    return {
        "school_id": school.id,
        "path": school.mis.path,
        "laestab": school.laestab,
        "urn": school.urn,
    }


def _http_kwargs(
    school: SchoolSettings, sync: SyncSettings, environ: Mapping[str, str] | None
) -> dict[str, Any]:
    mis = school.mis
    read_timeout = float(mis.timeout_seconds or sync.timeout_seconds)
    deadline = float(mis.deadline_seconds or sync.deadline_seconds)
    return {
        "school_id": school.id,
        "base_url": school.mis.base_url,
        "credentials": _plain_credentials(school, environ),
        "credential_hint": credential_hint(school.mis),
        # (connect, read, whole request): the third is the wall-clock deadline netguard keeps.
        "timeout": (min(CONNECT_TIMEOUT_SECONDS, read_timeout), read_timeout, deadline),
        "max_records_per_page": mis.max_records_per_page or sync.max_records_per_page,
    }


def build_adapter(
    school: SchoolSettings,
    sync: SyncSettings,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Adapter:
    """The adapter for ``school``'s MIS, ready to use; close it when done.

    ``environ`` is where ``*_env`` credentials are read from (``os.environ`` by default).
    ``overrides`` replace or add constructor arguments (``retry``, ``sleep``, ``timeout``...);
    the HTTP-only ones (:data:`HTTP_OPTIONS`) are ignored for an adapter that does not take them.
    Raises CredentialError when a credential cannot be read.
    """
    facts = vendor_facts(school.mis.vendor)
    if not facts.adapter:  # pragma: no cover - every vendor declares one
        raise ConfigError(f"school {school.id!r}: no adapter for vendor {school.mis.vendor!r}")
    module, _, name = facts.adapter.partition(":")
    factory: Callable[..., Adapter] = getattr(importlib.import_module(module), name)
    if facts.transport == "file":
        kwargs = _file_kwargs(school, sync, environ)
    else:
        kwargs = _http_kwargs(school, sync, environ)
        kwargs |= {arg: getattr(sync, setting) for arg, setting in facts.sync_options.items()}
    accepted = inspect.signature(factory).parameters
    for name, value in overrides.items():
        if name not in accepted and name in HTTP_OPTIONS:
            continue
        kwargs[name] = value  # an unknown name still fails loudly in the constructor
    return factory(**kwargs)


__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "HTTP_OPTIONS",
    "build_adapter",
    "credential_hint",
    "vendor_facts",
]
