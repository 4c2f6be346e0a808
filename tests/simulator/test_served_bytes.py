"""What each vendor simulator serves for a whole first sync, to the byte: the digests below were
taken from the simulators before they reused rendered pages between requests (GO 4 Schools'
rows by day), so the reuse changes the cost of serving and nothing that is served.

A change to what a simulator serves (or to the generator) must update a digest on purpose:
``.venv/bin/python tests/simulator/test_served_bytes.py`` prints the current ones.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest

from registerwatch.adapters.registry import build_adapter
from registerwatch.calendar import calendar_for, school_year_of
from registerwatch.config import parse_config
from registerwatch.schema import Session
from registerwatch.simulator.generate import generate_school
from registerwatch.simulator.isams import TOKEN_PATH
from registerwatch.simulator.model import GeneratedSchool
from registerwatch.simulator.server import Request, Response, SimulatorServer, VendorApp
from registerwatch.simulator.vendors import build_app, credentials_environ, school_config

AS_OF = date(2025, 12, 1)
PUPILS = 80

# sha256 over the sorted sha256s of every (method, path, query, status, body) a first sync
# asked for.
DIGESTS = {
    # arbor: marks() resolves records against the registers registers() listed in the same
    # sync instead of listing them again (fewer page requests; every response unchanged).
    "arbor": "27e2f504b38843f593202897854b9b4363f58a9ff3559f3ff226eab2195219e1",
    "go4schools": "3c5848fa27a2b7d7992512fad13d648687a5ff43eb20ee1938c2a716af576a90",
    "isams": "ff5c8313bdb16691c92a814050aa5daa970e96d4e343ba8d7f078f7cf3fa90c0",
}


class Recording:
    """Wraps an app's ``handle`` to hash every request and response it serves.

    The digest is over the set of (request, response) hashes, not their order: an adapter may
    ask for independent resources at the same time (GO 4 Schools' dates), and which of them
    arrives first says nothing about what the simulator serves."""

    def __init__(self, app: VendorApp) -> None:
        self.served: list[bytes] = []
        self.requests = 0
        self._handle = app.handle
        self._lock = threading.Lock()
        app.handle = self  # type: ignore[method-assign]

    @property
    def digest(self) -> Any:
        digest = hashlib.sha256()
        for one in sorted(self.served):
            digest.update(one)
        return digest

    def __call__(self, request: Request) -> Response:
        response = self._handle(request)
        body = response.body.encode() if isinstance(response.body, str) else response.body
        if request.path == TOKEN_PATH:
            body = b"(a random token)"  # iSAMS's OAuth2 token: fresh on every sync
        query = sorted((k, tuple(v)) for k, v in request.query.items())
        one = hashlib.sha256()
        for part in (request.method, request.path, repr(query), str(response.status), body):
            data = part if isinstance(part, bytes) else part.encode()
            one.update(len(data).to_bytes(8, "big") + data)
        with self._lock:
            self.served.append(one.digest())
            self.requests += 1
        return response


def school_for(vendor: str) -> GeneratedSchool:
    return generate_school(seed=7, pupils=PUPILS, vendor=vendor, as_of=AS_OF)


@contextmanager
def served(vendor: str, school: GeneratedSchool) -> Iterator[tuple[VendorApp, Recording, str]]:
    app = build_app(vendor, school)
    recording = Recording(app)
    with SimulatorServer(app) as server:
        yield app, recording, server.url


def first_sync_pull(vendor: str, school: GeneratedSchool, url: str) -> dict[str, object]:
    """Everything a first sync pulls, through the vendor's real adapter."""
    settings = parse_config(
        {
            "store": {"url": "sqlite:///:memory:"},
            "schools": [school_config(school, vendor, url)],
        }
    )
    (config,) = settings.schools
    environ = credentials_environ(school.school.id, vendor)
    start = calendar_for(config).school_year_start(school_year_of(AS_OF))
    # Adapters fetch several requests at a time, answered in any order: the digest is over the
    # sorted exchanges, so it pins what is asked and served, not the order.
    adapter = build_adapter(config, settings.sync, environ)
    try:
        adapter.begin_sync(AS_OF)
        return {
            "pupils": adapter.pupils().records,
            "registers": adapter.registers(start, AS_OF).records,
            "marks": adapter.marks(start, AS_OF).records,
            "amendments": adapter.amendments(start, AS_OF).records,
            "calendar": adapter.calendar(),
        }
    finally:
        adapter.close()


def served_digest(vendor: str) -> str:
    school = school_for(vendor)
    with served(vendor, school) as (_app, recording, url):
        first_sync_pull(vendor, school, url)
        # The same pull again: what a second night (or a re-read listing) is served.
        first_sync_pull(vendor, school, url)
    return recording.digest.hexdigest()


@pytest.mark.parametrize("vendor", sorted(DIGESTS))
def test_a_first_sync_is_served_the_same_bytes(vendor: str) -> None:
    assert served_digest(vendor) == DIGESTS[vendor]


# Arbor's simulator serves changes made through set_mark/delete_mark (each is a revision of its
# changelog); the others read the school's lists as they are on every request.
@pytest.mark.parametrize("vendor", ["go4schools", "isams"])
def test_a_mark_edited_straight_into_the_schools_list_is_served_next_time(vendor: str) -> None:
    """Tests edit a served school in place (``school.marks[k] = ...``), not only through
    ``set_mark``: reused pages must notice."""
    school = school_for(vendor)
    with served(vendor, school) as (_app, _recording, url):
        before = first_sync_pull(vendor, school, url)["marks"]
        index, target = next(
            (n, m) for n, m in enumerate(school.marks) if m.code == "/" and m.session is Session.AM
        )
        school.marks[index] = target.model_copy(update={"code": "M", "vendor_code": "M"})
        after = first_sync_pull(vendor, school, url)["marks"]

    def code_of(marks: object) -> str:
        assert isinstance(marks, list)
        (mark,) = [
            m
            for m in marks
            if (m.pupil_id, m.date, m.session) == (target.pupil_id, target.date, target.session)
        ]
        return str(mark.code)

    assert code_of(before) == "/" and code_of(after) == "M"


if __name__ == "__main__":
    for name in sorted(DIGESTS):
        print(f'    "{name}": "{served_digest(name)}",')
