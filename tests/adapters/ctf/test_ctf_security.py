"""Unsafe or unreadable CTF files are refused with a clear error, and nothing is fetched."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree
from structlog.testing import capture_logs

from registerwatch.adapters.ctf import CtfFileError, parse_ctf
from registerwatch.adapters.ctf.parser import DTD_REFUSED, _parse_refusing_dtd
from registerwatch.errors import RegisterwatchError

DATA = Path(__file__).parent / "data"
REFUSED = (
    "CTF files must not contain a DTD or entities (possible billion-laughs / "
    "external-entity attack); refused"
)


def test_the_refusal_message_is_the_documented_one():
    assert DTD_REFUSED == REFUSED


@pytest.mark.parametrize("name", ["billion_laughs.xml", "xxe_file.xml", "xxe_http.xml"])
def test_dtd_and_entity_files_are_refused(name):
    path = DATA / name
    started = time.monotonic()
    with capture_logs() as events, pytest.raises(CtfFileError) as caught:
        parse_ctf(path, school_id="s")
    assert time.monotonic() - started < 2  # no expansion, no network wait
    assert str(caught.value) == f"file {path}: {REFUSED}"
    assert (caught.value.file, caught.value.problem) == (str(path), REFUSED)
    assert isinstance(caught.value, RegisterwatchError)
    assert [(e["event"], e["problem"]) for e in events] == [("ctf.file_refused", "dtd")]


def test_passwd_contents_never_reach_the_error(tmp_path):
    with pytest.raises(CtfFileError) as caught:
        parse_ctf(DATA / "xxe_file.xml", school_id="s")
    assert "root:" not in str(caught.value)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE CTfile SYSTEM "http://ctf-attacker.invalid/ctf.dtd">',  # external DTD only
        "<!DOCTYPE CTfile>",  # an empty DOCTYPE is refused too: CTF has no use for one
        "<!DOCTYPE CTfile [<!ELEMENT CTfile ANY>]>",
    ],
)
def test_any_doctype_is_refused(doctype):
    with pytest.raises(CtfFileError, match="must not contain a DTD"):
        parse_ctf(f'<?xml version="1.0"?>{doctype}<CTfile/>'.encode(), school_id="s")


def test_an_entity_reference_without_a_dtd_is_refused_as_an_entity():
    with pytest.raises(CtfFileError, match="must not contain a DTD or entities"):
        parse_ctf(
            b"<CTfile><Header><DocumentName>&xxe;</DocumentName></Header></CTfile>", school_id="s"
        )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_dtd_in_utf16_is_refused(encoding):
    text = (DATA / "billion_laughs.xml").read_text()
    text = text.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
    with pytest.raises(CtfFileError, match="must not contain a DTD"):
        parse_ctf(text.encode(encoding), school_id="s")


def test_the_parsed_document_check_refuses_without_the_byte_scan():
    # Defence in depth: the check on the parsed document stands on its own (an encoding the
    # byte scan does not know, such as UTF-32, reaches it).
    for name in ("billion_laughs.xml", "xxe_file.xml", "xxe_http.xml"):
        with pytest.raises(CtfFileError, match="must not contain a DTD"):
            _parse_refusing_dtd((DATA / name).read_bytes(), name)
    utf32 = (
        (DATA / "xxe_file.xml")
        .read_text()
        .replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-32"?>')
        .encode("utf-32")
    )
    with pytest.raises(CtfFileError, match="must not contain a DTD"):
        parse_ctf(utf32, school_id="s")


# -- nothing is read from the file system or the network -------------------------------------------


@contextmanager
def fifo_watch(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A named pipe that records whether anything opened it for reading.

    Opening a FIFO's write end without blocking succeeds only while a reader holds it open, so
    a watcher that keeps trying sees any read attempt; it then writes and closes, so a reader
    that did open it gets EOF instead of hanging the test.
    """
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    opened, stop = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.001)
                continue
            opened.set()
            os.write(fd, b"SECRET")
            os.close(fd)
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield fifo, opened
    finally:
        time.sleep(0.05)
        stop.set()
        watcher.join(timeout=5)


def xxe_to(uri: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE CTfile [<!ENTITY xxe SYSTEM "{uri}">]>'
        "<CTfile><Header><DocumentName>&xxe;</DocumentName></Header></CTfile>"
    ).encode()


def test_fifo_watch_sees_a_parser_that_resolves_entities(tmp_path):
    # Control: the watch does detect a read when entities are resolved (an unsafe parser).
    unsafe = etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True)
    with fifo_watch(tmp_path) as (fifo, opened):
        root = etree.fromstring(xxe_to(fifo.as_uri()), unsafe)
        assert opened.wait(timeout=5)
    assert root.findtext("Header/DocumentName") == "SECRET"


@pytest.mark.parametrize(
    "parse",
    [
        lambda raw: parse_ctf(raw, school_id="s"),
        lambda raw: _parse_refusing_dtd(raw, "x.xml"),  # also without the byte scan in front
    ],
    ids=["parse_ctf", "parsed-document-check"],
)
def test_an_external_file_entity_is_never_opened(tmp_path, parse: Callable[[bytes], object]):
    with fifo_watch(tmp_path) as (fifo, opened):
        with pytest.raises(CtfFileError, match="must not contain a DTD"):
            parse(xxe_to(fifo.as_uri()))
    assert not opened.is_set()


@pytest.mark.parametrize(
    "parse",
    [
        lambda raw: parse_ctf(raw, school_id="s"),
        lambda raw: _parse_refusing_dtd(raw, "x.xml"),
    ],
    ids=["parse_ctf", "parsed-document-check"],
)
def test_an_http_entity_or_dtd_is_never_fetched(parse: Callable[[bytes], object]):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.3)
    port = server.getsockname()[1]
    documents = [
        xxe_to(f"http://127.0.0.1:{port}/steal"),
        (
            f'<?xml version="1.0"?><!DOCTYPE CTfile SYSTEM "http://127.0.0.1:{port}/ctf.dtd">'
            "<CTfile/>"
        ).encode(),
    ]
    try:
        for raw in documents:
            with pytest.raises(CtfFileError, match="must not contain a DTD"):
                parse(raw)
        with pytest.raises(TimeoutError):
            server.accept()  # nobody connected
    finally:
        server.close()


# -- not a CTF, not XML ----------------------------------------------------------------------------


def test_a_root_other_than_ctfile_is_refused():
    path = DATA / "not_ctf_root.xml"
    with capture_logs() as events, pytest.raises(CtfFileError) as caught:
        parse_ctf(path, school_id="s")
    assert str(caught.value) == (
        f"file {path}: root element is <ATfile>, expected <CTfile>: "
        "this is not a Common Transfer File"
    )
    assert [(e["event"], e["problem"]) for e in events] == [("ctf.file_refused", "root")]


def test_malformed_xml_is_refused_with_its_line():
    path = DATA / "malformed.xml"
    with pytest.raises(CtfFileError) as caught:
        parse_ctf(path, school_id="s")
    message = str(caught.value)
    assert message.startswith(f"file {path}: is not well-formed XML: line 7, column ")
    assert "Opening and ending tag mismatch" in message
    assert message.endswith("— the file is damaged or not XML; export it again")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not xml at all",
        b"<CTfile>",
        b"<CTfile><Header><SchoolName>Smith & Jones</SchoolName></Header></CTfile>",
    ],
)
def test_other_non_xml_is_refused(raw):
    with pytest.raises(CtfFileError, match=r"^file upload\.xml: is not well-formed XML: line"):
        parse_ctf(raw, school_id="s", name="upload.xml")
