"""The web app (``registerwatch serve``): server-rendered pages over the store, per-school
access control, accounts and audit. ``app.create_app(store, settings)`` builds it; ``context``
(who is signed in and may see what), ``accounts`` (passwords, sign-in), ``middleware``
(session cookie, security headers, request log), ``morning`` (the morning email) and one module
per page under ``pages/``.

Nothing is imported here: the night imports ``web.morning`` alone, without Starlette.
"""
