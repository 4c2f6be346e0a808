"""Fixtures for the outbox tests: small returns with their own XSDs, a config, a store, and real
loopback receivers (an HTTP server that honours Idempotency-Key, an aiosmtpd mail server).

The returns' real XSDs are not in ``exports/schemas`` yet, so ``load_schema`` is pointed at two
tiny schemas defined here (``test-la-1.xsd``, ``test-dfe-1.xsd``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from support.config_writer import write_config as write_toml_config

from registerwatch.config import Settings, parse_config
from registerwatch.exports import base
from registerwatch.exports.base import RenderedReturn, ReturnRecordKey
from registerwatch.store import Store

NOW = datetime(2025, 10, 6, 18, 0, tzinfo=UTC)
TOKEN = "la881-token-value"
TOKEN_ENV = "LA881_RETURNS_TOKEN"

# The layout of the real LA returns (la-common-1.xsd), cut down: Header with a RecordCount,
# and Records/Record, each with its RecordKey.
LA_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="LaReturn">
    <xs:complexType><xs:sequence>
      <xs:element name="Header"><xs:complexType><xs:sequence>
        <xs:element name="School" type="xs:string"/>
        <xs:element name="Generated" type="xs:dateTime"/>
        <xs:element name="RecordCount" type="xs:positiveInteger"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="Records"><xs:complexType><xs:sequence>
        <xs:element name="Record" maxOccurs="unbounded"><xs:complexType><xs:sequence>
          <xs:element name="RecordKey"><xs:complexType><xs:sequence>
            <xs:element name="PupilRef" type="xs:string"/>
            <xs:element name="Episode" type="xs:date"/>
          </xs:sequence></xs:complexType></xs:element>
          <xs:element name="Note" type="xs:string"/>
        </xs:sequence></xs:complexType></xs:element>
      </xs:sequence></xs:complexType></xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""

DFE_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="DailyAttendance">
    <xs:complexType><xs:sequence>
      <xs:element name="School" type="xs:string"/>
      <xs:element name="Date" type="xs:date"/>
      <xs:element name="Mark" minOccurs="0" maxOccurs="unbounded"><xs:complexType>
        <xs:attribute name="pupil" type="xs:string" use="required"/>
        <xs:attribute name="code" type="xs:string" use="required"/>
      </xs:complexType></xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""

TEST_SCHEMAS = {"test-la-1.xsd": LA_XSD, "test-dfe-1.xsd": DFE_XSD}


@pytest.fixture(autouse=True)
def test_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    real = base.load_schema

    def load(name: str) -> etree.XMLSchema:
        if name in TEST_SCHEMAS:
            return etree.XMLSchema(etree.fromstring(TEST_SCHEMAS[name]))
        return real(name)

    monkeypatch.setattr(base, "load_schema", load)


def la_return(
    pupils: list[tuple[str, str]],
    *,
    kind: str = "la-sickness",
    school: str = "oakfield",
    generated: datetime = NOW,
) -> RenderedReturn:
    """An LA notification listing (pupil id, episode start) pairs."""
    root = etree.Element("LaReturn")
    header = base.sub(root, "Header")
    base.sub(header, "School", school)
    base.sub(header, "Generated", generated.isoformat())
    base.sub(header, "RecordCount", len(pupils))
    records = base.sub(root, "Records")
    for pupil_id, episode in pupils:
        record = base.sub(records, "Record")
        key = base.sub(record, "RecordKey")
        base.sub(key, "PupilRef", pupil_id)
        base.sub(key, "Episode", episode)
        base.sub(record, "Note", f"return for {pupil_id}")
    return RenderedReturn(
        kind=kind,
        school_id=school,
        schema_name="test-la-1.xsd",
        xml=base.xml_bytes(root),
        csv_header=["pupil_id", "episode_start"],
        csv_rows=[list(p) for p in pupils],
        file_stem=f"{kind}_{school}_{generated:%Y-%m-%d}",
        records=[ReturnRecordKey(p, e) for p, e in pupils],
        period=generated.date().isoformat(),
    )


def dfe_return(
    day: str, marks: list[tuple[str, str]], *, school: str = "oakfield"
) -> RenderedReturn:
    root = etree.Element("DailyAttendance")
    base.sub(root, "School", school)
    base.sub(root, "Date", day)
    for pupil_id, code in marks:
        etree.SubElement(root, "Mark", pupil=pupil_id, code=code)
    return RenderedReturn(
        kind="dfe-daily",
        school_id=school,
        schema_name="test-dfe-1.xsd",
        xml=base.xml_bytes(root),
        csv_header=["pupil_id", "code"],
        csv_rows=[list(m) for m in marks],
        file_stem=f"dfe-daily_{school}_{day}",
        records=[ReturnRecordKey(p, day) for p, _ in marks],
        period=day,
    )


def school_table(school_id: str, la_code: str, number: int) -> dict[str, Any]:
    return {
        "id": school_id,
        "urn": f"{140000 + number}",
        "laestab": f"{la_code}{4000 + number}",
        "name": f"{school_id.title()} School",
        "la_code": la_code,
        "phase": "primary",
        "mis": {"vendor": "ctf", "path": "ctf"},
        "calendar": {"terms": [{"start": "2025-09-03", "end": "2025-12-19"}]},
    }


SCHOOLS = [school_table("oakfield", "881", 1), school_table("brook", "330", 2)]


def make_settings(tmp_path: Path, transports: dict[str, Any]) -> Settings:
    return parse_config(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
            "transports": transports,
            "schools": SCHOOLS,
        },
        config_dir=tmp_path,
    )


def write_config(path: Path, store_url: str, transports: dict[str, Any]) -> Path:
    """The same config as a TOML file, for the subprocess runs."""
    return write_toml_config(path, store_url, SCHOOLS, transports=transports)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def env() -> dict[str, str]:
    return {TOKEN_ENV: TOKEN}


# -- the HTTP receiver ------------------------------------------------------------------------


class Receiver:
    """A loopback LA endpoint that honours Idempotency-Key like the IETF draft describes: the
    first request with a key is filed and gets a new reference; a repeat is answered with the
    original reference and filed nowhere.

    ``script`` holds (status, headers) answers given, in order, before any filing (e.g. 500,
    or 429 with Retry-After); ``reject`` answers 422 for bodies it matches; ``block_at`` makes
    the n-th filing hang *after* it is filed, until ``release`` is set (so a client killed
    meanwhile never learns its return arrived).
    """

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.filed: dict[str, dict[str, Any]] = {}
        self.script: list[tuple[int, dict[str, str]]] = []
        self.reject: Callable[[bytes], bool] = lambda body: False
        self.block_at: int | None = None
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/la/881/returns"

    def requests_for(self, key: str) -> int:
        return sum(1 for r in self.requests if r["key"] == key)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length", "0")))
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            self.requests.append({"key": key, "body": body, "headers": dict(request.headers)})
            scripted = self.script.pop(0) if self.script else None
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _answer(request, 401, {"title": "Unauthorized"})
        if scripted is not None:
            status, headers = scripted
            return _answer(request, status, {"title": "try later"}, headers)
        if self.reject(body):
            return _answer(
                request,
                422,
                {
                    "title": "Unprocessable Entity",
                    "detail": "EpisodeStart is after the return date",
                },
            )
        with self.lock:
            if key in self.filed:
                self.filed[key]["replays"] += 1
                return _answer(request, 200, {"reference": self.filed[key]["reference"]})
            reference = f"LA881-{len(self.filed) + 1:04d}"
            self.filed[key] = {"reference": reference, "body": body, "replays": 0}
            count = len(self.filed)
        if self.block_at == count:
            self.blocked.set()
            self.release.wait(60)
        _answer(request, 201, {"reference": reference})


def _answer(
    request: BaseHTTPRequestHandler,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(payload).encode()
    try:
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client was killed while we held its answer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            state.handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.server = server
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
