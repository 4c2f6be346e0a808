"""The web app (``registerwatch serve``): server-rendered pages over the store, per-school
access control, accounts and audit. ``create_app(store, settings)`` builds it; ``app`` (the
factory), ``context`` (who is signed in and may see what), ``accounts`` (passwords, sign-in),
``middleware`` (session cookie, security headers, request log) and one module per page under
``pages/``."""

from registerwatch.web.app import create_app

__all__ = ["create_app"]
