"""Runs: the night's steps and their outcomes, as ``registerwatch runs`` lists them. Counts
name schools, so they are shown only to users who see every school."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registerwatch.web.context import render, signed_in, state


def runs_page(request: Request) -> Response:
    user = signed_in(request)
    web = state(request)
    return render(
        request,
        "runs.html.j2",
        {"runs": web.store.runs(limit=100), "show_counts": user.all_schools},
        user=user,
    )


routes = [Route("/runs", runs_page, methods=["GET"], name="runs")]
