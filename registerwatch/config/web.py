"""``[web]``: the web app (``registerwatch serve``): sessions, sign-in throttling, the address
behind a reverse proxy, and the morning email."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from registerwatch.config.transports import TransportSettings
from registerwatch.config.types import Section


class WebSettings(Section):
    """``[web]``: every key has a default, so the table is optional."""

    # The address people open (behind a proxy: the proxy's https URL); the morning email links
    # to it.
    base_url: str = "http://127.0.0.1:8080"
    # A session ends after this many minutes without a request.
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # "auto": the session cookie is Secure when the request came over HTTPS (directly, or as a
    # trusted proxy says in X-Forwarded-Proto); "always": Secure on every response (serve
    # only behind HTTPS).
    secure_cookies: Literal["auto", "always"] = "auto"
    # Addresses whose X-Forwarded-For / X-Forwarded-Proto headers are believed (the reverse
    # proxy); "*" trusts any (only when the app's port is reachable from the proxy alone).
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # The key that signs session cookies: an environment variable, or a file. Without either,
    # a random key is made at start-up and sessions end when the server restarts.
    secret_key_env: str = "REGISTERWATCH_WEB_SECRET"
    secret_key_file: Path | None = None
    # Sign-in throttling: after this many wrong passwords within the window, the account (or
    # the address) must wait until the window has passed.
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_failures_per_account: int = Field(default=5, ge=1, le=1000)
    max_failures_per_address: int = Field(default=20, ge=1, le=10000)
    # The morning email: an smtp transport (as in [transports]); `to` is ignored, each user
    # who asked for it gets their own. Without it no morning email is sent.
    email: TransportSettings | None = None
